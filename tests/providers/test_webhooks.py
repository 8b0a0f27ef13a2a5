"""Delivery status webhooks with real signatures, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from reminders.db.models import Message, OptOut, Patient, ProviderEvent
from reminders.metrics import WEBHOOKS
from reminders.settings import Settings
from tests.conftest import make_test_settings
from tests.providers.helpers import (
    AUTH_TOKEN,
    EMAIL,
    PHONE,
    PUBLIC_URL,
    SendGridSigner,
    add_message,
    add_patient,
    body_of,
    get_message,
    make_app,
    sg_event,
)

TWILIO_PATH = "/webhooks/twilio/status"
SENDGRID_PATH = "/webhooks/sendgrid/events"


@pytest.fixture
def client(
    hook_settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    add_patient(session_factory)
    # The test client's Host (testserver) differs from PUBLIC_URL on purpose: signatures use the latter.
    with TestClient(make_app(hook_settings, engine)) as test_client:
        yield test_client


def patient(db: Session) -> Patient:
    row = db.get(Patient, "p1")
    assert row is not None
    return row


def metric(hook: str, outcome: str) -> float:
    # prometheus_client leaves a counter's private value store untyped (Any).
    return cast(float, WEBHOOKS.labels(hook=hook, outcome=outcome)._value.get())


def twilio_post(
    client: TestClient,
    mid: int | str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signature: str | None = None,
) -> Any:
    query = urlencode({"mid": mid})
    url = f"{PUBLIC_URL}{TWILIO_PATH}?{query}"
    sig = (
        signature
        if signature is not None
        else RequestValidator(token).compute_signature(url, params)
    )
    return client.post(
        f"{TWILIO_PATH}?{query}",
        content=urlencode(params),
        headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
    )


def callback(status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "b" * 32,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": PHONE,
        "From": "+14105550100",
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        **extra,
    }


# --- Twilio ----------------------------------------------------------------------------------


def test_delivered_moves_the_row(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="sms")
    before = metric("twilio_status", "applied")
    assert twilio_post(client, mid, callback("delivered")).status_code == 200
    row = get_message(session_factory, mid)
    assert row.status == "delivered" and row.delivered_at is not None
    assert metric("twilio_status", "applied") == before + 1


def test_sent_after_delivered_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="sms")
    twilio_post(client, mid, callback("delivered"))
    for late in ("sent", "queued", "failed"):
        assert twilio_post(client, mid, callback(late, ErrorCode="30008")).status_code == 200
    row = get_message(session_factory, mid)
    assert row.status == "delivered" and row.error_code is None


def test_undelivered_records_the_code(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="sms")
    assert twilio_post(client, mid, callback("undelivered", ErrorCode="30003")).status_code == 200
    row = get_message(session_factory, mid)
    assert (row.status, row.error_code) == ("failed", "30003")
    assert row.reason and "30003" in row.reason
    with session_factory() as db:
        assert patient(db).phone_problem is None  # a switched-off phone is not a bad number


def test_21610_in_a_callback_records_an_opt_out(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="sms")
    twilio_post(client, mid, callback("failed", ErrorCode="21610"))
    with session_factory() as db:
        opt_out = db.scalar(select(OptOut).where(OptOut.channel == "sms"))
        assert opt_out is not None and (opt_out.address, opt_out.active) == (PHONE, True)


def test_invalid_number_marks_the_phone(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="sms")
    twilio_post(client, mid, callback("undelivered", ErrorCode="30006"))
    with session_factory() as db:
        assert patient(db).phone_problem and "30006" in (patient(db).phone_problem or "")


def test_unknown_message_is_200_and_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    assert twilio_post(client, 999999, callback("delivered")).status_code == 200
    assert twilio_post(client, "junk", callback("delivered")).status_code == 200
    email_mid = add_message(session_factory, channel="email")  # an sms status for an email row
    assert twilio_post(client, email_mid, callback("delivered")).status_code == 200
    assert get_message(session_factory, email_mid).status == "sent"


@pytest.mark.parametrize("tamper", ["signature", "param", "url", "missing", "other_token"])
def test_a_bad_signature_is_403_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session], tamper: str
) -> None:
    mid = add_message(session_factory, channel="sms")
    params = callback("delivered")
    url = f"{PUBLIC_URL}{TWILIO_PATH}?mid={mid}"
    good = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    before = metric("twilio_status", "forbidden")
    if tamper == "signature":
        response = twilio_post(
            client, mid, params, signature=("A" if good[0] != "A" else "B") + good[1:]
        )
    elif tamper == "param":
        response = twilio_post(client, mid, {**params, "MessageStatus": "delivere"}, signature=good)
    elif tamper == "url":  # signed for another message id
        response = twilio_post(client, mid + 1, params, signature=good)
    elif tamper == "missing":
        response = client.post(
            f"{TWILIO_PATH}?mid={mid}",
            content=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = twilio_post(client, mid, params, token="not-the-token")
    assert response.status_code == 403
    assert get_message(session_factory, mid).status == "sent"
    assert metric("twilio_status", "forbidden") == before + 1


def test_host_header_is_not_trusted(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    """A signature computed for the URL the request claims (Host) is not accepted."""
    mid = add_message(session_factory, channel="sms")
    params = callback("delivered")
    host_url = f"http://testserver{TWILIO_PATH}?mid={mid}"
    sig = RequestValidator(AUTH_TOKEN).compute_signature(host_url, params)
    assert twilio_post(client, mid, params, signature=sig).status_code == 403


def test_without_auth_token_everything_is_refused(
    db_url: str, tmp_path: Path, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    settings = make_test_settings(db_url, tmp_path, public_url=PUBLIC_URL)
    add_patient(session_factory)
    mid = add_message(session_factory, channel="sms")
    with TestClient(make_app(settings, engine)) as unconfigured:
        assert twilio_post(unconfigured, mid, callback("delivered"), token="").status_code == 403
        assert twilio_post(unconfigured, mid, callback("delivered"), token="x").status_code == 403
        assert unconfigured.post(SENDGRID_PATH, content=b"[]").status_code == 403
    assert get_message(session_factory, mid).status == "sent"


# --- SendGrid --------------------------------------------------------------------------------


def sg_post(
    client: TestClient, signer: SendGridSigner, events: list[dict[str, Any]], **kw: Any
) -> Any:
    body = body_of(events)
    return client.post(SENDGRID_PATH, content=body, headers=signer.headers(body, **kw))


def test_sendgrid_events_apply(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session]
) -> None:
    delivered = add_message(session_factory, channel="email")
    bounced = add_message(session_factory, channel="email")
    deferred = add_message(session_factory, channel="email")
    events = [
        sg_event("processed", delivered, "e0"),
        sg_event("delivered", delivered, "e1"),
        sg_event(
            "bounce", bounced, "e2", status="5.1.1", reason="550 5.1.1 user unknown", type="bounce"
        ),
        sg_event("deferred", deferred, "e3", attempt="2"),
    ]
    assert sg_post(client, signer, events).status_code == 200
    assert get_message(session_factory, delivered).status == "delivered"
    row = get_message(session_factory, bounced)
    assert (row.status, row.error_code) == ("failed", "5.1.1")
    row = get_message(session_factory, deferred)
    assert row.status == "sent" and row.reason and "deferred" in row.reason
    with session_factory() as db:
        assert "5.1.1" in (patient(db).email_problem or "")


@pytest.mark.parametrize("kind", ["spamreport", "unsubscribe", "group_unsubscribe"])
def test_sendgrid_opt_out_events(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session], kind: str
) -> None:
    mid = add_message(session_factory, channel="email", status="delivered")
    assert sg_post(client, signer, [sg_event(kind, mid, f"u-{kind}")]).status_code == 200
    with session_factory() as db:
        opt_out = db.scalar(select(OptOut).where(OptOut.channel == "email"))
        assert opt_out is not None and opt_out.address == EMAIL and opt_out.active
    assert get_message(session_factory, mid).status == "delivered"


def test_dropped_for_suppression_is_an_opt_out(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session]
) -> None:
    unsub = add_message(session_factory, channel="email")
    invalid = add_message(session_factory, channel="email")
    sg_post(
        client,
        signer,
        [
            sg_event("dropped", unsub, "d1", reason="Unsubscribed Address"),
            sg_event("dropped", invalid, "d2", reason="Invalid"),
        ],
    )
    assert get_message(session_factory, unsub).status == "failed"
    assert get_message(session_factory, invalid).status == "failed"
    with session_factory() as db:
        assert db.scalar(select(func.count()).select_from(OptOut)) == 1
        assert patient(db).email_problem is not None


def test_duplicate_events_apply_once(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="email")
    before = metric("sendgrid_events", "duplicate")
    events = [sg_event("deferred", mid, "dup-1", attempt="1")]
    sg_post(client, signer, events)
    sg_post(client, signer, events)
    assert metric("sendgrid_events", "duplicate") == before + 1
    with session_factory() as db:
        assert db.scalar(select(func.count()).select_from(ProviderEvent)) == 1


def test_one_bad_event_does_not_stop_the_batch(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session]
) -> None:
    first = add_message(session_factory, channel="email")
    last = add_message(session_factory, channel="email")
    events: list[Any] = [
        sg_event("delivered", first, "b1"),
        "not an object",
        {"event": 3},
        sg_event("delivered", 987654, "b2"),
        sg_event("delivered", "x", "b3"),
        sg_event("delivered", last, "b4"),
    ]
    assert sg_post(client, signer, events).status_code == 200
    assert get_message(session_factory, first).status == "delivered"
    assert get_message(session_factory, last).status == "delivered"


@pytest.mark.parametrize(
    "tamper", ["body", "signature", "timestamp", "old", "future", "missing", "other_key"]
)
def test_a_bad_sendgrid_signature_is_403_and_changes_nothing(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session], tamper: str
) -> None:
    import time

    mid = add_message(session_factory, channel="email")
    body = body_of([sg_event("delivered", mid, f"t-{tamper}")])
    headers = signer.headers(body)
    if tamper == "body":
        body = body.replace(b"delivered", b"delivereD")
    elif tamper == "signature":
        sig = headers["X-Twilio-Email-Event-Webhook-Signature"]
        headers["X-Twilio-Email-Event-Webhook-Signature"] = (
            sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        )
    elif tamper == "timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(
            int(headers["X-Twilio-Email-Event-Webhook-Timestamp"]) + 1
        )
    elif tamper == "old":  # a correctly signed but replayed request
        headers = signer.headers(body, timestamp=int(time.time()) - 3600)
    elif tamper == "future":
        headers = signer.headers(body, timestamp=int(time.time()) + 3600)
    elif tamper == "missing":
        headers = {"Content-Type": "application/json"}
    else:
        headers = SendGridSigner().headers(body)
    assert client.post(SENDGRID_PATH, content=body, headers=headers).status_code == 403
    assert get_message(session_factory, mid).status == "sent"
    with session_factory() as db:
        assert db.scalar(select(func.count()).select_from(ProviderEvent)) == 0


def test_a_signed_body_that_is_not_a_list_is_400(
    client: TestClient, signer: SendGridSigner
) -> None:
    body = b'{"event": "delivered"}'
    assert client.post(SENDGRID_PATH, content=body, headers=signer.headers(body)).status_code == 400


def test_create_app_serves_the_routes(hook_settings: Settings, engine: Engine) -> None:
    from reminders.runtime import Runtime
    from reminders.web.app import create_app

    with TestClient(create_app(Runtime(hook_settings, _engine=engine))) as app_client:
        assert app_client.post(f"{TWILIO_PATH}?mid=1", content=b"").status_code == 403
        assert app_client.post(SENDGRID_PATH, content=b"[]").status_code == 403
        assert app_client.get("/unsubscribe/forged").status_code == 404


def test_message_rows_untouched_by_unrelated_statuses(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    planned = add_message(session_factory, channel="sms", status="planned")
    cancelled = add_message(session_factory, channel="sms", status="cancelled")
    for mid in (planned, cancelled):
        twilio_post(client, mid, callback("delivered"))
    with session_factory() as db:
        statuses = {
            m.id: m.status
            for m in db.scalars(select(Message).where(Message.id.in_([planned, cancelled])))
        }
    assert statuses == {planned: "planned", cancelled: "cancelled"}


def test_status_callbacks_share_the_inbound_signature_check(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    """One check for every Twilio webhook: the status callback also honours the algorithm that
    X-Twilio-Webhooks-Signature-Settings names (HMAC-SHA256), and refuses a SHA-1 signature
    sent under that header."""
    settings_header = {
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_test,algorithm=HMAC_SHA256"
    }
    mid = add_message(session_factory, channel="sms")
    params = callback("delivered")
    url = f"{PUBLIC_URL}{TWILIO_PATH}?{urlencode({'mid': mid})}"
    for algorithm, expected in (("HMAC_SHA1", 403), ("HMAC_SHA256", 200)):
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params, algorithm=algorithm)
        response = client.post(
            f"{TWILIO_PATH}?{urlencode({'mid': mid})}",
            content=urlencode(params),
            headers={
                "X-Twilio-Signature": signature,
                **settings_header,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert response.status_code == expected, algorithm
    assert get_message(session_factory, mid).status == "delivered"
