"""Delivery status webhooks: Twilio status callbacks and SendGrid's signed event webhook.

Both refuse everything (403) when their secret is not configured: there is no unsigned
mode. A bad signature changes nothing. Unknown message ids answer 200 so the provider
stops retrying. Every outcome is counted in ``reminders_webhooks_total``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from twilio.request_validator import RequestValidator

from reminders.db.models import Message, ProviderEvent
from reminders.logs import event
from reminders.metrics import WEBHOOKS
from reminders.outbox import delivery
from reminders.outbox.consent import set_opt_out
from reminders.providers.twilio.send import INVALID_ADDRESS_CODES, OPTED_OUT_CODES
from reminders.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()

TWILIO_HOOK = "twilio_status"
SENDGRID_HOOK = "sendgrid_events"
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Signed events older (or newer) than this are refused, so a captured request cannot be replayed later.
MAX_CLOCK_SKEW_SECONDS = 600

# Delivery-failure codes (30xxx, reported in callbacks) meaning the number itself is no good.
# 30003 (handset unreachable) is left out on purpose: phones are switched off for a while.
CALLBACK_INVALID_NUMBER_CODES = frozenset({"30005", "30006"}) | INVALID_ADDRESS_CODES


def _empty(status_code: int) -> Response:
    return Response(status_code=status_code)


def _count(hook: str, outcome: str) -> None:
    WEBHOOKS.labels(hook=hook, outcome=outcome).inc()


def _message_id(raw: object) -> int | None:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


# --- Twilio ----------------------------------------------------------------------------------


@router.post("/webhooks/twilio/status")
async def twilio_status(request: Request) -> Response:
    runtime = request.app.state.runtime
    settings: Settings = runtime.settings
    if settings.twilio_auth_token is None or not settings.twilio_auth_token.get_secret_value():
        _count(TWILIO_HOOK, "refused")
        return _empty(403)
    body = await request.body()
    try:
        pairs: list[tuple[str, str | UploadFile]] = list(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        form = FormData(pairs)
    except UnicodeDecodeError:
        _count(TWILIO_HOOK, "forbidden")
        return _empty(403)
    # Twilio signs the URL it called: ours as configured, not whatever Host the proxy passed on.
    url = settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    if not signature or not validator.validate(url, form, signature):
        _count(TWILIO_HOOK, "forbidden")
        event(log, "twilio status callback with a bad signature", logging.WARNING)
        return _empty(403)
    outcome = await run_in_threadpool(
        apply_twilio_status,
        runtime.session_factory,
        message_id=_message_id(request.query_params.get("mid")),
        status=form.get("MessageStatus") or form.get("SmsStatus") or "",
        error_code=str(form.get("ErrorCode") or "") or None,
        to=str(form.get("To") or "") or None,
    )
    _count(TWILIO_HOOK, outcome)
    return _empty(200)


def apply_twilio_status(
    session_factory: sessionmaker[Session],
    *,
    message_id: int | None,
    status: Any,
    error_code: str | None,
    to: str | None,
    now: datetime | None = None,
) -> str:
    """Apply one status callback; returns the outcome label."""
    status = str(status).lower()
    now = now or datetime.now(UTC)
    with session_factory() as db:
        message = db.get(Message, message_id) if message_id else None
        if message is None or message.channel != "sms":
            event(log, "twilio status for an unknown message", mid=message_id, status=status)
            return "unknown"
        changed = False
        if status == "delivered":
            changed = delivery.apply_delivered(message, at=now)
        elif status in ("undelivered", "failed"):
            code = error_code or status
            changed = delivery.apply_failed(message, error_code=error_code, reason=f"twilio {status} ({code})")
            if error_code in OPTED_OUT_CODES and to:
                changed |= set_opt_out(db, channel="sms", address=to, source="twilio_21610")
            elif error_code in CALLBACK_INVALID_NUMBER_CODES:
                changed |= delivery.mark_address_unusable(
                    db, message, channel="sms", address=to, problem=f"carrier reported invalid number ({error_code})"
                )
        db.commit()
        event(log, "twilio status", id=message.id, status=status, code=error_code, changed=changed,
              message_status=message.status)
        return "applied" if changed else "unchanged"


# --- SendGrid --------------------------------------------------------------------------------


def load_sendgrid_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or PEM."""
    value = value.strip()
    key = load_pem_public_key(value.encode()) if "BEGIN PUBLIC KEY" in value else load_der_public_key(base64.b64decode(value))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid webhook key is not an elliptic-curve public key")
    return key


def verify_sendgrid_signature(
    public_key: str, *, signature: str, timestamp: str, body: bytes, now: float | None = None
) -> bool:
    """ECDSA P-256/SHA-256 over ``timestamp + raw body``, with a bounded clock skew."""
    try:
        sent_at = int(timestamp)
        raw_signature = base64.b64decode(signature, validate=True)
        key = load_sendgrid_key(public_key)
    except (ValueError, binascii.Error):
        return False
    if abs((now if now is not None else time.time()) - sent_at) > MAX_CLOCK_SKEW_SECONDS:
        return False
    try:
        key.verify(raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@router.post("/webhooks/sendgrid/events")
async def sendgrid_events(request: Request) -> Response:
    runtime = request.app.state.runtime
    settings: Settings = runtime.settings
    if not settings.sendgrid_webhook_public_key:
        _count(SENDGRID_HOOK, "refused")
        return _empty(403)
    body = await request.body()
    ok = verify_sendgrid_signature(
        settings.sendgrid_webhook_public_key,
        signature=request.headers.get(SENDGRID_SIGNATURE_HEADER, ""),
        timestamp=request.headers.get(SENDGRID_TIMESTAMP_HEADER, ""),
        body=body,
    )
    if not ok:
        _count(SENDGRID_HOOK, "forbidden")
        event(log, "sendgrid events with a bad signature", logging.WARNING)
        return _empty(403)
    try:
        events = json.loads(body)
    except ValueError:
        events = None
    if not isinstance(events, list):
        _count(SENDGRID_HOOK, "invalid")
        return _empty(400)
    outcomes = await run_in_threadpool(apply_sendgrid_events, runtime.session_factory, events)
    for outcome in outcomes:
        _count(SENDGRID_HOOK, outcome)
    # An event that failed on our side (database down...) makes SendGrid retry the batch;
    # events already applied are skipped then by their sg_event_id.
    return _empty(500 if "error" in outcomes else 200)


def apply_sendgrid_events(
    session_factory: sessionmaker[Session], events: list[Any], *, now: datetime | None = None
) -> list[str]:
    """Apply each event in its own transaction; one bad event never stops the others."""
    outcomes = []
    for item in events:
        try:
            outcome = _apply_sendgrid_event(session_factory, item, now=now or datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - counted and reported; the batch goes on
            event(log, "sendgrid event failed", logging.ERROR, error=type(exc).__name__)
            outcome = "error"
        outcomes.append(outcome)
    return outcomes


def _email_failure(db: Session, message: Message, item: dict[str, Any], *, kind: str) -> bool:
    code = str(item.get("status") or "") or None
    detail = str(item.get("reason") or item.get("type") or kind)
    changed = delivery.apply_failed(message, error_code=code or kind, reason=f"sendgrid {kind}: {detail}")
    address = str(item.get("email") or "") or None
    lowered = detail.lower()
    if kind == "dropped" and ("unsubscribe" in lowered or "spam" in lowered):
        # Dropped because the address is on SendGrid's suppression list: the person said no.
        return set_opt_out(db, channel="email", address=address or "", source="sendgrid_dropped") or changed
    if kind == "bounce" and str(item.get("type") or "") == "blocked":
        return changed  # a block is about our sending reputation, not the address
    problem = f"email {kind} ({code or detail})"
    return delivery.mark_address_unusable(db, message, channel="email", address=address, problem=problem) or changed


_OPT_OUT_SOURCES = {
    "spamreport": "sendgrid_spamreport",
    "unsubscribe": "sendgrid_unsubscribe",
    "group_unsubscribe": "sendgrid_group_unsubscribe",
}


HANDLED_SENDGRID_EVENTS = frozenset({"delivered", "deferred", "bounce", "dropped", *_OPT_OUT_SOURCES})


def _handle_sendgrid_event(db: Session, message: Message, item: dict[str, Any], *, now: datetime) -> bool:
    kind = item["event"]
    if kind == "delivered":
        return delivery.apply_delivered(message, at=now)
    if kind == "deferred":
        return delivery.note_deferred(message, f"deferred by the receiving server (attempt {item.get('attempt') or '?'})")
    if kind in ("bounce", "dropped"):
        return _email_failure(db, message, item, kind=kind)
    # spamreport, unsubscribe, group_unsubscribe: the person does not want our email.
    return set_opt_out(db, channel="email", address=str(item.get("email") or ""), source=_OPT_OUT_SOURCES[kind])


def _apply_sendgrid_event(session_factory: sessionmaker[Session], item: Any, *, now: datetime) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("event"), str):
        return "invalid"
    kind: str = item["event"]
    if kind not in HANDLED_SENDGRID_EVENTS:
        return "ignored"  # processed, open, click...
    with session_factory() as db:
        message_id = _message_id(item.get("message_id"))
        message = db.get(Message, message_id) if message_id else None
        if message is None or message.channel != "email":
            event(log, "sendgrid event for an unknown message", mid=message_id, event=kind)
            return "unknown"
        event_id = item.get("sg_event_id")
        if isinstance(event_id, str) and event_id:
            try:
                with db.begin_nested():
                    db.add(ProviderEvent(provider="sendgrid", event_id=event_id[:255]))
            except IntegrityError:
                db.rollback()
                return "duplicate"
        changed = _handle_sendgrid_event(db, message, item, now=now)
        db.commit()
        event(log, "sendgrid event", id=message.id, event=kind, changed=changed, message_status=message.status)
        return "applied" if changed else "unchanged"
