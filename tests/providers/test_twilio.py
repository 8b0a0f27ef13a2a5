"""The Twilio adapter through the real SDK: against Prism (the official spec) and a scripted server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from reminders.providers.base import OutcomeUnknown, OutgoingMessage, PermanentError, TransientError
from reminders.providers.twilio.send import TwilioProvider, validity_seconds
from tests.providers.conftest import PrismServer, Reply, ScriptedServer

ACCOUNT = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "fedcba9876543210" * 2
TOKEN = "test-auth-token"
PHONE = "+14105550101"


def provider(base_url: str, *, service: bool = False, timeout: float = 10.0) -> TwilioProvider:
    return TwilioProvider(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        public_url="https://clinic.example.org/reminders",
        from_number=None if service else "+14105550100",
        messaging_service_sid=SERVICE if service else None,
        base_url=base_url,
        rate_per_second=0,
        timeout=timeout,
    )


def sms(message_id: int = 42, *, not_after: datetime | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        channel="sms",
        to=PHONE,
        body="See you tomorrow at 9:00. Reply C to confirm.",
        rule="reminder-1d",
        kind="reminder",
        not_after=not_after,
    )


def twilio_message(sid: str = "SM" + "a" * 32) -> dict[str, object]:
    return {
        "sid": sid,
        "status": "queued",
        "account_sid": ACCOUNT,
        "to": PHONE,
        "body": "x",
        "num_segments": "1",
    }


def form(server: ScriptedServer, index: int = -1) -> dict[str, list[str]]:
    return parse_qs(server.requests[index].body.decode())


# --- Prism: every request the SDK sends validates against the official spec -------------------


@pytest.mark.parametrize("service", [False, True], ids=["from_number", "messaging_service"])
def test_create_message_validates_against_the_spec(
    twilio_prism: PrismServer, service: bool
) -> None:
    mark = twilio_prism.checkpoint()
    not_after = datetime.now(UTC) + timedelta(hours=3)
    sid = provider(twilio_prism.url, service=service).send(sms(not_after=not_after))
    assert sid  # Prism answered 201 with an example body: the request was valid
    assert twilio_prism.validation_errors(since=mark) == []


def test_an_invalid_request_is_refused_by_prism(twilio_prism: PrismServer) -> None:
    """The check has teeth: a malformed Messaging Service SID is a 422 from Prism."""
    bad = TwilioProvider(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        public_url="https://x.example",
        messaging_service_sid="MGnot-a-sid",
        base_url=twilio_prism.url,
        rate_per_second=0,
    )
    with pytest.raises(PermanentError) as info:
        bad.send(sms())
    assert info.value.code == "422"


# --- the scripted stand-in: what we send and how answers map to errors ----------------------


def test_request_carries_sender_callback_and_validity(scripted: ScriptedServer) -> None:
    scripted.script(Reply(201, twilio_message()))
    not_after = datetime.now(UTC) + timedelta(minutes=30)
    assert provider(scripted.url).send(sms(not_after=not_after)) == "SM" + "a" * 32
    sent = form(scripted)
    assert scripted.requests[0].path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert sent["To"] == [PHONE]
    assert sent["From"] == ["+14105550100"]
    assert "MessagingServiceSid" not in sent
    assert sent["StatusCallback"] == [
        "https://clinic.example.org/reminders/webhooks/twilio/status?mid=42"
    ]
    assert 1790 <= int(sent["ValidityPeriod"][0]) <= 1800


def test_base_url_with_a_path_prefix_is_honoured(scripted: ScriptedServer) -> None:
    scripted.script(Reply(201, twilio_message()))
    provider(scripted.url + "/edge").send(sms())
    assert scripted.requests[0].path.startswith("/edge/2010-04-01/Accounts/")


def test_messaging_service_is_the_sender_when_configured(scripted: ScriptedServer) -> None:
    scripted.script(Reply(201, twilio_message()))
    provider(scripted.url, service=True).send(sms())
    sent = form(scripted)
    assert sent["MessagingServiceSid"] == [SERVICE]
    assert "From" not in sent
    assert "ValidityPeriod" not in sent  # no not_after: Twilio's default


def test_a_message_past_its_time_is_not_sent(scripted: ScriptedServer) -> None:
    with pytest.raises(PermanentError) as info:
        provider(scripted.url).send(sms(not_after=datetime.now(UTC) - timedelta(seconds=1)))
    assert info.value.code == "stale"
    assert scripted.requests == []


def test_validity_period_is_clamped_to_twilios_range() -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert validity_seconds(None, now=now) is None
    assert validity_seconds(now + timedelta(days=3), now=now) == 36000
    assert validity_seconds(now + timedelta(seconds=1.5), now=now) == 1
    assert validity_seconds(now, now=now) == 0
    assert (validity_seconds(now - timedelta(hours=1), now=now) or 0) < 0


@pytest.mark.parametrize(
    ("code", "effect"),
    [
        (21610, "opted_out"),
        (21211, "invalid_address"),
        (21614, "invalid_address"),
        (21612, "invalid_address"),
        (21408, "invalid_address"),
        (21606, None),
    ],
)
def test_permanent_errors_keep_the_code_and_effect(
    scripted: ScriptedServer, code: int, effect: str | None
) -> None:
    scripted.script(
        Reply(400, {"code": code, "message": f"error {code} about {PHONE}", "status": 400})
    )
    with pytest.raises(PermanentError) as info:
        provider(scripted.url).send(sms())
    assert (info.value.code, info.value.effect, info.value.permanent) == (str(code), effect, True)
    assert PHONE not in str(info.value)
    assert len(scripted.requests) == 1  # never retried by the adapter


@pytest.mark.parametrize(
    ("reply", "code", "retry_after"),
    [
        (
            Reply(
                429,
                {"code": 20429, "message": "Too Many Requests", "status": 429},
                {"Retry-After": "7"},
            ),
            "20429",
            7.0,
        ),
        (Reply(429, {"message": "slow down"}, {"Retry-After": "12"}), "429", 12.0),
        (Reply(500, {"message": "oops"}), "500", None),
        (
            Reply(
                503, {"code": 20503, "message": "unavailable", "status": 503}, {"Retry-After": "2"}
            ),
            "20503",
            2.0,
        ),
    ],
)
def test_rate_limits_and_server_errors_are_transient(
    scripted: ScriptedServer, reply: Reply, code: str, retry_after: float | None
) -> None:
    scripted.script(reply)
    with pytest.raises(TransientError) as info:
        provider(scripted.url).send(sms())
    assert (info.value.code, info.value.retry_after, info.value.permanent) == (
        code,
        retry_after,
        False,
    )


def test_a_slow_answer_is_an_outcome_unknown(scripted: ScriptedServer) -> None:
    # Twilio may have accepted it: the dispatcher must not retry (a second SMS), so not merely transient.
    scripted.script(Reply(201, twilio_message(), delay=2.0))
    with pytest.raises(OutcomeUnknown) as info:
        provider(scripted.url, timeout=0.3).send(sms())
    assert info.value.code == "timeout"


def test_an_unreachable_api_is_transient() -> None:
    from tests.providers.conftest import free_port

    with pytest.raises(TransientError) as info:
        provider(f"http://127.0.0.1:{free_port()}").send(sms())
    assert info.value.code == "connection"


def test_from_settings_uses_the_configured_rate(tmp_path: object) -> None:
    from reminders.settings import load_settings

    settings = load_settings(
        _env_file=None,
        sms_provider="twilio",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14105550100",
        sms_rate_per_second=3.5,
        twilio_base_url="http://127.0.0.1:9",
    )
    p = TwilioProvider.from_settings(settings)
    assert p.limiter.rate == 3.5
    assert p.http.base_url == "http://127.0.0.1:9"
    assert p.http.timeout == 10.0
