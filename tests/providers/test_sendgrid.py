"""The SendGrid adapter through the real SDK: against Prism (the official spec) and a scripted server."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from reminders.dispatch.ics import session_ics
from reminders.providers.base import OutcomeUnknown, OutgoingMessage, PermanentError, TransientError
from reminders.providers.sendgrid.send import SendGridProvider
from tests.providers.conftest import PrismServer, Reply, ScriptedServer, free_port

ADDRESS = "ana.diaz@example.com"
UNSUBSCRIBE = "https://clinic.example.org/unsubscribe/tok.en"


def provider(base_url: str, *, timeout: float = 10.0) -> SendGridProvider:
    return SendGridProvider(
        api_key="SG.test-key",
        from_email="reminders@clinic.example.org",
        from_name="Lakeside",
        base_url=base_url,
        rate_per_second=0,
        timeout=timeout,
    )


def email(message_id: int = 7) -> OutgoingMessage:
    ics = session_ics(
        session_id="s1",
        starts_at=datetime(2026, 12, 1, 14, tzinfo=UTC),
        duration_minutes=60,
        summary="Appointment at Lakeside",
        location_name="Downtown",
        location_address="1 Main St",
        tz=ZoneInfo("America/New_York"),
        clinic_name="Lakeside",
    )
    return OutgoingMessage(
        message_id=message_id,
        channel="email",
        to=ADDRESS,
        subject="Your appointment tomorrow",
        body="Hello Ana, see you tomorrow at 9:00.",
        html="<p>Hello Ana, see you tomorrow at <b>9:00</b>.</p>",
        rule="reminder-1d",
        kind="reminder",
        session_id="s1",
        patient_id="p1",
        attachments=(ics,),
        unsubscribe_url=UNSUBSCRIBE,
    )


def test_mail_send_validates_against_the_spec(sendgrid_prism: PrismServer) -> None:
    mark = sendgrid_prism.checkpoint()
    # Prism's 202 carries no X-Message-Id: the id is then empty, the send still succeeded.
    assert provider(sendgrid_prism.url).send(email()) == ""
    assert sendgrid_prism.validation_errors(since=mark) == []


def test_an_invalid_mail_is_refused_by_prism(sendgrid_prism: PrismServer) -> None:
    """The check has teeth: an invalid recipient address is refused by Prism."""
    with pytest.raises(PermanentError) as info:
        provider(sendgrid_prism.url).send(
            OutgoingMessage(message_id=1, channel="email", to="x@localhost", body="x", subject="x")
        )
    assert info.value.code in ("400", "422")


def test_a_malformed_address_fails_before_any_request(scripted: ScriptedServer) -> None:
    with pytest.raises(PermanentError) as info:
        provider(scripted.url).send(
            OutgoingMessage(message_id=1, channel="email", to="not an address", body="x")
        )
    assert info.value.effect == "invalid_address"
    assert scripted.requests == []


def test_request_body_and_headers(scripted: ScriptedServer) -> None:
    scripted.script(Reply(202, None, {"X-Message-Id": "abc123XYZ"}))
    assert provider(scripted.url).send(email()) == "abc123XYZ"
    request = scripted.requests[0]
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    body = json.loads(request.body)
    assert body["personalizations"][0]["to"] == [{"email": ADDRESS}]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["personalizations"][0]["custom_args"] == {"message_id": "7"}
    assert body["categories"] == ["reminder-1d"]
    assert body["headers"] == {
        "List-Unsubscribe": f"<{UNSUBSCRIBE}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    [attachment] = body["attachments"]
    assert attachment["filename"] == "session.ics"
    assert attachment["type"] == "text/calendar"
    assert base64.b64decode(attachment["content"]).startswith(b"BEGIN:VCALENDAR")


def test_no_unsubscribe_headers_without_a_url(scripted: ScriptedServer) -> None:
    scripted.script(Reply(202, None, {"X-Message-Id": "id1"}))
    message = OutgoingMessage(
        message_id=3, channel="email", to=ADDRESS, body="alert", subject="Alert"
    )
    provider(scripted.url).send(message)
    body = json.loads(scripted.requests[0].body)
    assert "headers" not in body
    assert [c["type"] for c in body["content"]] == ["text/plain"]


@pytest.mark.parametrize(
    ("reply", "code", "effect"),
    [
        (
            Reply(
                400,
                {
                    "errors": [
                        {
                            "message": "Does not contain a valid address.",
                            "field": "personalizations.0.to.0.email",
                        }
                    ]
                },
            ),
            "400",
            "invalid_address",
        ),
        (Reply(400, {"errors": [{"message": "bad subject", "field": "subject"}]}), "400", None),
        (Reply(401, {"errors": [{"message": "authorization required"}]}), "401", None),
        (Reply(413, {"errors": [{"message": "too large"}]}), "413", None),
    ],
)
def test_client_errors_are_permanent(
    scripted: ScriptedServer, reply: Reply, code: str, effect: str | None
) -> None:
    scripted.script(reply)
    with pytest.raises(PermanentError) as info:
        provider(scripted.url).send(email())
    assert (info.value.code, info.value.effect) == (code, effect)
    assert len(scripted.requests) == 1


@pytest.mark.parametrize(
    ("reply", "code", "retry_after"),
    [
        (Reply(429, {"errors": [{"message": "too many"}]}, {"Retry-After": "30"}), "429", 30.0),
        (Reply(500, {"errors": [{"message": "oops"}]}), "500", None),
        (Reply(503, None, {"Retry-After": "5"}), "503", 5.0),
    ],
)
def test_rate_limits_and_server_errors_are_transient(
    scripted: ScriptedServer, reply: Reply, code: str, retry_after: float | None
) -> None:
    scripted.script(reply)
    with pytest.raises(TransientError) as info:
        provider(scripted.url).send(email())
    assert (info.value.code, info.value.retry_after) == (code, retry_after)


def test_a_slow_answer_is_an_outcome_unknown(scripted: ScriptedServer) -> None:
    # SendGrid may have the mail: the dispatcher must not send it again blindly.
    scripted.script(Reply(202, None, {"X-Message-Id": "late"}, delay=2.0))
    with pytest.raises(OutcomeUnknown) as info:
        provider(scripted.url, timeout=0.3).send(email())
    assert info.value.code == "timeout"


def test_an_unreachable_api_is_transient() -> None:
    with pytest.raises(TransientError) as info:
        provider(f"http://127.0.0.1:{free_port()}").send(email())
    assert info.value.code == "connection"
