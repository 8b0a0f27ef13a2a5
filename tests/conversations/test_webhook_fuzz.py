"""Fuzz the inbound webhooks: no input gives a 500; unauthenticated requests store nothing."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from reminders.db.models import InboundMessage, Message, OptOut, StaffTask
from reminders.runtime import Runtime
from tests.conversations.helpers import INBOUND_SECRET, P1, sign

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
any_text = st.text(max_size=400)
field_names = st.sampled_from(
    ["MessageSid", "From", "To", "Body", "AccountSid", "NumMedia", "SmsSid"]
) | st.text(max_size=20)
forms = st.dictionaries(field_names, any_text, max_size=8)


def _stored(rt: Runtime) -> tuple[int, int, int, int]:
    with rt.session_factory() as db:
        inbound, messages, opt_outs, tasks = (
            db.scalar(select(func.count()).select_from(model)) or 0
            for model in (InboundMessage, Message, OptOut, StaffTask)
        )
        return inbound, messages, opt_outs, tasks


@FUZZ
@given(
    form=forms,
    signature=st.none() | header_text,
    extra=st.dictionaries(
        st.sampled_from(
            ["Content-Type", "X-Twilio-Webhooks-Signature-Settings", "Host", "X-Forwarded-Proto"]
        ),
        header_text,
        max_size=3,
    ),
)
def test_unauthenticated_sms_never_500_and_stores_nothing(
    client: TestClient,
    clinic: Runtime,
    form: dict[str, str],
    signature: str | None,
    extra: dict[str, str],
) -> None:
    headers = dict(extra)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = client.post("/webhooks/twilio/sms", data=form, headers=headers)
    assert response.status_code in (403, 413)
    assert _stored(clinic) == (0, 0, 0, 0)


@FUZZ
@given(body=st.binary(max_size=2000), content_type=header_text, signature=header_text)
def test_raw_bytes_never_500(
    client: TestClient, clinic: Runtime, body: bytes, content_type: str, signature: str
) -> None:
    response = client.post(
        "/webhooks/twilio/sms",
        content=body,
        headers={"Content-Type": content_type, "X-Twilio-Signature": signature},
    )
    assert response.status_code < 500
    assert _stored(clinic)[0] == 0


WELL_FORMED_SID = st.from_regex(r"\A(SM|MM)[0-9a-f]{32}\Z")
TWILIO_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")


@FUZZ
@given(
    form=forms,
    sender=st.sampled_from([P1, "+14105550199", "", "not a number", "+1"]) | any_text,
    body=any_text,
    sid=st.none() | any_text | WELL_FORMED_SID,
)
def test_signed_sms_never_500(
    client: TestClient,
    clinic: Runtime,
    form: dict[str, str],
    sender: str,
    body: str,
    sid: str | None,
) -> None:
    params = dict(form)
    params["From"] = sender
    params["Body"] = body
    params["AccountSid"] = "AC" + "0" * 32
    if sid is not None:
        params["MessageSid"] = sid
    # What the form encoder sends is what Twilio would have signed.
    response = client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": sign(_as_sent(params))}
    )
    # Signed but re-cuttable (odd keys, no well-formed MessageSid, an SmsSid naming another
    # message) is refused; everything else is answered with TwiML. Never a 5xx.
    intact = (
        all(TWILIO_KEY.fullmatch(key) for key in params)
        and re.fullmatch(r"(SM|MM)[0-9a-f]{32}", params.get("MessageSid", "")) is not None
        and params.get("SmsSid", params.get("MessageSid")) == params.get("MessageSid")
    )
    if intact:
        assert response.status_code == 200, response.text
        assert response.text.startswith("<?xml")
    else:
        assert response.status_code in (400, 403), response.text


def _as_sent(params: dict[str, str]) -> dict[str, str]:
    # Line breaks survive form encoding as-is; nothing else to normalise.
    return params


@FUZZ
@given(
    form=st.dictionaries(
        st.sampled_from(["from", "text", "subject", "headers", "to", "html"])
        | st.text(max_size=10),
        any_text,
        max_size=6,
    ),
    secret=st.sampled_from([INBOUND_SECRET, "wrong", ""]) | header_text,
)
def test_sendgrid_inbound_never_500(
    client: TestClient, clinic: Runtime, form: dict[str, str], secret: str
) -> None:
    before = _stored(clinic)[0]
    url = (
        "/webhooks/sendgrid/inbound/" + secret.replace("/", "").replace("?", "").replace("#", "")
        if secret
        else "/webhooks/sendgrid/inbound"
    )
    response = client.post(url, data=form, files={"attachment-info": (None, "{}")})
    assert response.status_code < 500
    if secret != INBOUND_SECRET:
        assert _stored(clinic)[0] == before


def _statuses(rt: Runtime) -> list[tuple[int, str]]:
    with rt.session_factory() as db:
        return [(m.id, m.status) for m in db.scalars(select(Message).order_by(Message.id))]


@FUZZ
@given(
    form=forms | st.dictionaries(st.sampled_from(["MessageStatus", "ErrorCode", "To"]), any_text),
    mid=st.none() | st.integers(-5, 10**12).map(str) | header_text,
    signature=st.none() | header_text,
)
def test_unsigned_status_callbacks_never_500_and_change_nothing(
    client: TestClient,
    clinic: Runtime,
    form: dict[str, str],
    mid: str | None,
    signature: str | None,
) -> None:
    before = (_stored(clinic), _statuses(clinic))
    url = "/webhooks/twilio/status" + (f"?mid={mid}" if mid is not None else "")
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    response = client.post(url, data=form, headers=headers)
    assert response.status_code in (403, 413)
    assert (_stored(clinic), _statuses(clinic)) == before


@FUZZ
@given(
    body=st.binary(max_size=2000) | any_text.map(str.encode),
    signature=header_text,
    timestamp=header_text,
)
def test_unsigned_sendgrid_events_never_500_and_change_nothing(
    client: TestClient, clinic: Runtime, body: bytes, signature: str, timestamp: str
) -> None:
    before = (_stored(clinic), _statuses(clinic))
    response = client.post(
        "/webhooks/sendgrid/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )
    assert response.status_code < 500
    assert (_stored(clinic), _statuses(clinic)) == before
