"""SendGrid's webhooks: the signed event webhook (delivery reports) and Inbound Parse
(emailed replies, docs/design.md sections 8 and 9).

Events: an ECDSA signature over the timestamp and the raw body, checked with the key
``REMINDERS_SENDGRID_WEBHOOK_PUBLIC_KEY``; no key configured is 403 for everything (there
is no unsigned mode), a bad signature changes nothing, events for unknown message ids
answer 200 so SendGrid stops retrying.

Inbound Parse has no signature: the URL carries a secret
(``/webhooks/sendgrid/inbound/{secret}``), or HTTP basic auth with that secret as password
on ``/webhooks/sendgrid/inbound``; compared in constant time. No secret configured: 404.
An emailed reply is stored before it is processed, as an SMS is (the same
:func:`~reminders.providers.twilio.webhooks.accept_inbound`): 503 when it could not be
stored, so SendGrid retries; 200 once it is stored.

Every outcome is counted in ``reminders_webhooks_total``.

Bodies (:mod:`reminders.bodylimits`): events are at most 5 MiB and Inbound Parse posts 32 MiB
(413 before they are read). An event post without signature headers, or with a timestamp
out of the allowed skew, is refused before its body is read; the signature is checked over
the raw body before it is parsed, and both run in a thread, never on the event loop.

An event changes only its own message: an opt-out, a bounce or a drop is recorded for the
address that message went to (:func:`~reminders.providers.twilio.webhooks.message_recipient`),
never for the ``email`` the event names; when the two differ a warning is logged (ids only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from reminders.bodylimits import (
    SENDGRID_EVENTS_BODY_LIMIT,
    SENDGRID_INBOUND_BODY_LIMIT,
    read_body,
)
from reminders.db.models import Message, ProviderEvent
from reminders.logs import event
from reminders.metrics import count_webhook
from reminders.outbox import delivery
from reminders.outbox.consent import set_opt_out
from reminders.providers.http import outbox_id
from reminders.providers.twilio.webhooks import (
    accept_inbound,
    message_recipient,
    warn_if_other_address,
)
from reminders.runtime import Runtime
from reminders.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()

SENDGRID_HOOK = "sendgrid_events"
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Signed events older (or newer) than this are refused, so a captured request cannot be replayed later.
MAX_CLOCK_SKEW_SECONDS = 600
SENDGRID_INBOUND_PATH = "/webhooks/sendgrid/inbound"
MAX_EVENTS_BYTES = SENDGRID_EVENTS_BODY_LIMIT
MAX_EMAIL_BYTES = SENDGRID_INBOUND_BODY_LIMIT  # SendGrid's own 30 MB, and the form's framing


# --- the signed event webhook -----------------------------------------------------------------


def load_sendgrid_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or PEM."""
    value = value.strip()
    key = (
        load_pem_public_key(value.encode())
        if "BEGIN PUBLIC KEY" in value
        else load_der_public_key(base64.b64decode(value))
    )
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid webhook key is not an elliptic-curve public key")
    return key


def signature_headers_plausible(
    signature: str, timestamp: str, *, now: float | None = None
) -> bool:
    """What can be checked before the body is read: both headers there, and the timestamp a
    number within the allowed clock skew."""
    if not signature or not timestamp.isdigit():
        return False
    return abs((now if now is not None else time.time()) - int(timestamp)) <= MAX_CLOCK_SKEW_SECONDS


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
        count_webhook(SENDGRID_HOOK, "refused")
        return Response(status_code=403)
    signature = request.headers.get(SENDGRID_SIGNATURE_HEADER, "")
    timestamp = request.headers.get(SENDGRID_TIMESTAMP_HEADER, "")
    if not signature_headers_plausible(signature, timestamp):  # refused unread
        count_webhook(SENDGRID_HOOK, "forbidden")
        event(log, "sendgrid events with a bad signature", logging.WARNING)
        return Response(status_code=403)
    body = await read_body(request, MAX_EVENTS_BYTES)
    if body is None:
        count_webhook(SENDGRID_HOOK, "refused")
        return Response(status_code=413)
    signed, events = await run_in_threadpool(
        verified_events,
        settings.sendgrid_webhook_public_key,
        signature=signature,
        timestamp=timestamp,
        body=body,
    )
    if not signed:
        count_webhook(SENDGRID_HOOK, "forbidden")
        event(log, "sendgrid events with a bad signature", logging.WARNING)
        return Response(status_code=403)
    if not isinstance(events, list):
        count_webhook(SENDGRID_HOOK, "invalid")
        return Response(status_code=400)
    outcomes = await run_in_threadpool(apply_sendgrid_events, runtime.session_factory, events)
    for outcome in outcomes:
        count_webhook(SENDGRID_HOOK, outcome)
    # An event that failed on our side (database down...) makes SendGrid retry the batch;
    # events already applied are skipped then by their sg_event_id.
    return Response(status_code=500 if "error" in outcomes else 200)


def verified_events(
    public_key: str, *, signature: str, timestamp: str, body: bytes
) -> tuple[bool, Any]:
    """Whether the signature is good, and then the parsed body (None when it is not JSON).
    The signature is checked first: nothing unsigned is parsed. CPU work over up to 5 MiB:
    run it in a thread."""
    if not verify_sendgrid_signature(
        public_key, signature=signature, timestamp=timestamp, body=body
    ):
        return False, None
    try:
        return True, json.loads(body)
    except ValueError:
        return True, None


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
    changed = delivery.apply_failed(
        message, error_code=code or kind, reason=f"sendgrid {kind}: {detail}"
    )
    address = message_recipient(db, message)  # never the event's "email"
    lowered = detail.lower()
    if kind == "dropped" and ("unsubscribe" in lowered or "spam" in lowered):
        # Dropped because the address is on SendGrid's suppression list: the person said no.
        return (
            set_opt_out(db, channel="email", address=address or "", source="sendgrid_dropped")
            or changed
        )
    if kind == "bounce" and str(item.get("type") or "") == "blocked":
        return changed  # a block is about our sending reputation, not the address
    problem = f"email {kind} ({code or detail})"
    return (
        delivery.mark_address_unusable(
            db, message, channel="email", address=address, problem=problem
        )
        or changed
    )


_OPT_OUT_SOURCES = {
    "spamreport": "sendgrid_spamreport",
    "unsubscribe": "sendgrid_unsubscribe",
    "group_unsubscribe": "sendgrid_group_unsubscribe",
}


HANDLED_SENDGRID_EVENTS = frozenset(
    {"processed", "delivered", "deferred", "bounce", "dropped", *_OPT_OUT_SOURCES}
)


def _handle_sendgrid_event(
    db: Session, message: Message, item: dict[str, Any], *, now: datetime
) -> bool:
    kind = item["event"]
    if kind == "processed":
        # SendGrid has the mail: settles a send whose answer was lost (in doubt).
        sg_id = str(item.get("sg_message_id") or "").split(".", 1)[0] or None
        return delivery.apply_accepted(message, provider_message_id=sg_id, at=now)
    if kind == "delivered":
        return delivery.apply_delivered(message, at=now)
    if kind == "deferred":
        return delivery.note_deferred(
            message, f"deferred by the receiving server (attempt {item.get('attempt') or '?'})"
        )
    # The rest act on the address the message went to, never on the event's "email".
    address = message_recipient(db, message)
    warn_if_other_address(
        message, named=str(item.get("email") or "") or None, actual=address, report=kind
    )
    if kind in ("bounce", "dropped"):
        return _email_failure(db, message, item, kind=kind)
    # spamreport, unsubscribe, group_unsubscribe: the person does not want our email.
    return set_opt_out(db, channel="email", address=address or "", source=_OPT_OUT_SOURCES[kind])


def _apply_sendgrid_event(
    session_factory: sessionmaker[Session], item: Any, *, now: datetime
) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("event"), str):
        return "invalid"
    kind: str = item["event"]
    if kind not in HANDLED_SENDGRID_EVENTS:
        return "ignored"  # open, click...
    with session_factory() as db:
        message_id = outbox_id(item.get("message_id"))
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
        event(
            log,
            "sendgrid event",
            id=message.id,
            event=kind,
            changed=changed,
            message_status=message.status,
        )
        return "applied" if changed else "unchanged"


# --- Inbound Parse (emailed replies) ------------------------------------------------------

_QUOTE_START = re.compile(
    r"^\s*(>|On .{0,200} wrote:\s*$|El .{0,200} escribi[oó]:\s*$|-{2,}\s*Original Message\s*-{2,}|"
    r"-{2,}\s*Mensaje original\s*-{2,}|From: |De: |Sent from my |Enviado desde mi )",
    re.IGNORECASE,
)


def email_reply_text(text: str, subject: str) -> str:
    """The new part of an emailed reply: lines before the quoted message; the subject if empty.

    Our own quoted reminder is left out so that its wording is not screened as the patient's.
    """
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_START.match(line):
            break
        lines.append(line)
    new = "\n".join(lines).strip()
    if new:
        return new
    return re.sub(r"^\s*((re|fw|fwd|rv)\s*:\s*)+", "", subject, flags=re.IGNORECASE).strip()


def _secret(runtime: Runtime) -> str:
    value = runtime.settings.sendgrid_inbound_secret
    return value.get_secret_value() if value else ""


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _basic_password(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    return decoded.partition(":")[2]


@router.post(SENDGRID_INBOUND_PATH + "/{secret}", include_in_schema=False)
async def sendgrid_inbound_with_secret(secret: str, request: Request) -> Response:
    expected = _secret(request.app.state.runtime)
    if not expected:
        count_webhook("sendgrid_inbound", "refused")
        return Response(status_code=404)
    if not _same(secret, expected):
        count_webhook("sendgrid_inbound", "bad_secret")
        return Response(status_code=403)
    return await _sendgrid_inbound(request)


@router.post(SENDGRID_INBOUND_PATH, include_in_schema=False)
async def sendgrid_inbound_basic_auth(request: Request) -> Response:
    expected = _secret(request.app.state.runtime)
    if not expected:
        count_webhook("sendgrid_inbound", "refused")
        return Response(status_code=404)
    if not _same(_basic_password(request), expected):
        count_webhook("sendgrid_inbound", "bad_secret")
        return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="inbound"'})
    return await _sendgrid_inbound(request)


async def _sendgrid_inbound(request: Request) -> Response:
    from reminders.providers.sendgrid.inbound_auth import store_email

    hook = "sendgrid_inbound"
    runtime: Runtime = request.app.state.runtime
    # Bounded before it is read; without a Content-Length the app's middleware counts
    # (reminders.bodylimits).
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_EMAIL_BYTES:
        count_webhook(hook, "refused")
        return Response(status_code=413)
    try:
        form = await request.form(max_files=50, max_fields=200)
    except Exception:  # noqa: BLE001 - malformed multipart: tell SendGrid, no retry storm from a 500
        count_webhook(hook, "bad_request")
        return Response(status_code=400)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    await form.close()  # attachments are not used: their temporary files go now
    sender = parseaddr(fields.get("from", ""))[1].strip().lower()
    if "@" not in sender:
        count_webhook(hook, "ignored")
        return Response(status_code=200)
    subject = fields.get("subject", "")
    body = email_reply_text(fields.get("text", ""), subject)
    # No provider id in Inbound Parse: the Message-ID header, else a digest of the content,
    # makes SendGrid's retries idempotent.
    message_id = ""
    match = re.search(
        r"^Message-ID:\s*(\S+)", fields.get("headers", ""), re.IGNORECASE | re.MULTILINE
    )
    if match:
        message_id = match.group(1)
    if not message_id:
        digest = hashlib.sha256(
            "\x1f".join(
                (sender, subject, fields.get("text", ""), fields.get("headers", ""))
            ).encode()
        ).hexdigest()
        message_id = f"sha256:{digest}"
    # Stored (committed) before anything else, else 503 and SendGrid retries; then processed.
    # Stored first with the verdict on its sender (SPF/DKIM, inbound_auth): a reply whose sender
    # is not verified is filed for staff to read and never acted on automatically.
    stored = dict(from_address=sender, body=body, provider_message_id=f"email:{message_id}")
    if not await store_email(runtime, hook, fields, **stored):
        return Response(status_code=503)
    status = await accept_inbound(runtime, hook, channel="email", **stored)
    return Response(status_code=status)
