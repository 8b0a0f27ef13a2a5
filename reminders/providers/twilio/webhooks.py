"""Twilio's webhooks: inbound SMS (docs/design.md sections 8 and 9) and delivery status callbacks.

Both check the signature (:mod:`reminders.providers.twilio.signature`): no auth token
configured, or a bad signature, is 403 and changes nothing. Every outcome is counted in
``reminders_webhooks_total``.

Inbound SMS (issue 9: no patient message lost or late), in :func:`accept_inbound`, which
SendGrid's Inbound Parse shares:

1. The message is stored and committed first (:func:`~reminders.conversations.inbound.store_inbound`,
   a few short attempts within about 2 s). If it cannot be stored (SQLite's write lock held
   too long, the database down) the answer is 503, never 200: Twilio then retries (or calls
   the fallback URL), and nothing was acknowledged that is not stored.
2. Once stored it is processed; the answer is then always an empty TwiML ``<Response>``
   (replies go through the outbox, so they carry a delivery status), even when processing
   failed, because the row is kept with its error and a staff task. Processing that takes
   longer than ``PROCESS_WAIT_SECONDS`` goes on after the answer, so the request stays well
   within Twilio's 15 s timeout.

Both run on threads of their own (``INBOUND_THREADS`` per event loop), so a busy console
(its pages use the shared thread pool) never makes a webhook wait for a thread.

A signed request is not necessarily an intact one: Twilio's signature is an HMAC over the
sorted keys and values concatenated, so ``MessageSid=SMx`` re-signs as ``MessageSi=dSMx``, and
a ``MessageSid`` can swallow the key after it. An inbound SMS therefore needs a well-formed
``MessageSid`` (two letters and 32 hex digits; ``SmsSid`` and ``SmsMessageSid`` equal to it when
present), the de-duplication key, and an ``AccountSid`` equal to
``REMINDERS_TWILIO_ACCOUNT_SID`` (or, when that is not set, a well-formed one); otherwise
400 or 403, counted as ``refused``, and nothing is stored.

Status callbacks carry our outbox id in the callback URL (``?mid=``); unknown ids answer
200 so Twilio stops retrying. A callback changes only its own message: an opt-out (21610) or
an invalid number is recorded for the address that message went to
(:func:`message_recipient`), never for the ``To`` the callback names; when the two differ
a warning is logged (ids only) and ``To`` is ignored.

Bodies: the route's limit (:data:`~reminders.bodylimits.TWILIO_BODY_LIMIT`, 64 KiB) holds
before the body is read (413); a request without a signature header is refused before it is
read at all. The form is parsed and its signature checked in a thread, never on the event
loop (Twilio's signature covers the parsed fields, so the parsing comes first).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import weakref
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict

from reminders.bodylimits import TWILIO_BODY_LIMIT, read_body
from reminders.conversations.inbound import InboundResult, process_inbound, store_inbound
from reminders.db.models import Message, Patient
from reminders.logs import event
from reminders.metrics import count_webhook
from reminders.outbox import delivery
from reminders.outbox.consent import normalise_address, set_opt_out
from reminders.providers.http import outbox_id
from reminders.providers.twilio.codes import CALLBACK_INVALID_NUMBER_CODES, OPTED_OUT_CODES
from reminders.providers.twilio.send import STATUS_CALLBACK_PATH
from reminders.providers.twilio.signature import SIGNATURE_HEADER, auth_token, signed_form
from reminders.runtime import Runtime
from reminders.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()

TWILIO_SMS_PATH = "/webhooks/twilio/sms"
TWILIO_HOOK = "twilio_status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BODY_BYTES = TWILIO_BODY_LIMIT  # an SMS webhook is a few hundred bytes
MESSAGE_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")  # SM... or MM...: fixed length
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Twilio waits 15 s: storing takes at most ~2 s; processing is waited for this long.
PROCESS_WAIT_SECONDS = 8.0
INBOUND_THREADS = 16
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _twiml(status_code: int = 200) -> Response:
    return Response(
        EMPTY_TWIML if status_code == 200 else "",
        status_code=status_code,
        media_type="text/xml" if status_code == 200 else None,
    )


# --- inbound messages: store, then process -----------------------------------------------------


def _inbound_limiter() -> anyio.CapacityLimiter:
    """The inbound webhooks' own threads (one limiter per event loop)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(INBOUND_THREADS)
    return limiter


async def accept_inbound(
    runtime: Runtime,
    hook: str,
    *,
    channel: str,
    from_address: str,
    body: str,
    provider_message_id: str,
) -> int:
    """Store one inbound message (committed), then process it; the HTTP status to answer:
    503 when it could not be stored (the provider retries), else 200."""
    now = datetime.now(UTC)
    limiter = _inbound_limiter()
    store = partial(
        store_inbound,
        runtime.session_factory,
        channel=channel,
        from_address=from_address,
        body=body,
        provider_message_id=provider_message_id,
        received_at=now,
        region=runtime.settings.default_region,
    )
    try:
        inbound_id, processed = await anyio.to_thread.run_sync(store, limiter=limiter)
    except Exception as exc:  # noqa: BLE001 - not stored: 5xx, so the provider tries again
        count_webhook(hook, "store_failed")
        event(log, "inbound message not stored: 503", logging.ERROR, error=type(exc).__name__)
        return 503
    if processed:
        count_webhook(hook, "duplicate")
        return 200
    process = partial(
        process_inbound, runtime.session_factory, runtime.settings, inbound_id, now=now
    )
    result: InboundResult | None = None
    try:
        with anyio.move_on_after(PROCESS_WAIT_SECONDS):
            result = await anyio.to_thread.run_sync(
                process, limiter=limiter, abandon_on_cancel=True
            )
    except Exception as exc:  # noqa: BLE001 - stored: the row keeps what happened
        count_webhook(hook, "error")
        event(log, "inbound processing failed", logging.ERROR, error=type(exc).__name__)
        return 200
    if result is None:  # still running: it finishes after the answer
        count_webhook(hook, "processing_late")
        event(log, "inbound stored; processing goes on", logging.WARNING, inbound_id=inbound_id)
        return 200
    count_webhook(hook, "duplicate" if result.duplicate else ("error" if result.error else "ok"))
    return 200


def _sids_refused(settings: Settings, params: ImmutableMultiDict[str, str]) -> int | None:
    """400 or 403 when the identifying fields could have been re-cut from a signed request."""
    sid = params.get("MessageSid", "")
    if not MESSAGE_SID.fullmatch(sid) or any(
        params.get(key, sid) != sid for key in ("SmsMessageSid", "SmsSid")
    ):
        return 400
    account = params.get("AccountSid", "")
    expected = settings.twilio_account_sid
    if expected:
        return None if hmac.compare_digest(account.encode(), expected.encode()) else 403
    return None if ACCOUNT_SID.fullmatch(account) else 403


# --- inbound SMS ------------------------------------------------------------------------------


@router.post(TWILIO_SMS_PATH, include_in_schema=False)
async def twilio_sms(request: Request) -> Response:
    hook = "twilio_sms"
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    if not auth_token(settings):
        count_webhook(hook, "refused")
        return _twiml(403)
    if not request.headers.get(SIGNATURE_HEADER, ""):
        count_webhook(hook, "refused")
        return _twiml(403)
    raw = await read_body(request, MAX_BODY_BYTES)
    if raw is None:
        count_webhook(hook, "refused")
        return _twiml(413)
    check = partial(
        signed_form,
        settings,
        raw=raw,
        path=TWILIO_SMS_PATH,
        query=request.url.query,
        headers=request.headers,
    )
    params = await anyio.to_thread.run_sync(check, limiter=_inbound_limiter())
    if isinstance(params, str):
        count_webhook(hook, "refused" if params == "malformed" else "bad_signature")
        return _twiml(403)

    refused = _sids_refused(settings, params)
    if refused is not None:
        count_webhook(hook, "refused")
        event(log, "signed inbound SMS refused: message or account id", logging.WARNING)
        return _twiml(refused)
    sender = params.get("From", "")
    if not sender.strip():
        count_webhook(hook, "ignored")
        event(log, "signed inbound SMS without a sender ignored")
        return _twiml()
    status = await accept_inbound(
        runtime,
        hook,
        channel="sms",
        from_address=sender,
        body=params.get("Body", ""),
        provider_message_id=params["MessageSid"],
    )
    return _twiml(status)


# --- delivery status callbacks ----------------------------------------------------------------


# Statuses that prove Twilio has the message: they settle a send whose answer was lost.
TWILIO_ACCEPTED = frozenset({"accepted", "scheduled", "queued", "sending", "sent"})


@router.post(STATUS_CALLBACK_PATH)
async def twilio_status(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    if not auth_token(settings):
        count_webhook(TWILIO_HOOK, "refused")
        return Response(status_code=403)
    if not request.headers.get(SIGNATURE_HEADER, ""):  # refused before its body is read
        count_webhook(TWILIO_HOOK, "forbidden")
        event(log, "twilio status callback without a signature", logging.WARNING)
        return Response(status_code=403)
    raw = await read_body(request, MAX_BODY_BYTES)
    if raw is None:
        count_webhook(TWILIO_HOOK, "refused")
        return Response(status_code=413)
    params = await run_in_threadpool(
        signed_form,
        settings,
        raw=raw,
        path=request.url.path,
        query=request.url.query,
        headers=request.headers,
    )
    if isinstance(params, str):
        count_webhook(TWILIO_HOOK, "forbidden")
        event(log, "twilio status callback with a bad signature", logging.WARNING)
        return Response(status_code=403)
    outcome = await run_in_threadpool(
        apply_twilio_status,
        runtime.session_factory,
        message_id=outbox_id(request.query_params.get("mid")),
        status=params.get("MessageStatus") or params.get("SmsStatus") or "",
        error_code=str(params.get("ErrorCode") or "") or None,
        to=str(params.get("To") or "") or None,
        sid=str(params.get("MessageSid") or params.get("SmsSid") or "") or None,
    )
    count_webhook(TWILIO_HOOK, outcome)
    return Response(status_code=200)


def apply_twilio_status(
    session_factory: sessionmaker[Session],
    *,
    message_id: int | None,
    status: Any,
    error_code: str | None,
    to: str | None,
    sid: str | None = None,
    now: datetime | None = None,
) -> str:
    """Apply one status callback; returns the outcome label.

    ``to`` is the address the callback names: it is never acted on. An opt-out or an invalid
    number is recorded for the address the message went to (:func:`message_recipient`); a
    ``to`` that differs from it is logged (ids only) and otherwise ignored."""
    status = str(status).lower()
    now = now or datetime.now(UTC)
    with session_factory() as db:
        message = db.get(Message, message_id) if message_id else None
        if message is None or message.channel != "sms":
            event(log, "twilio status for an unknown message", mid=message_id, status=status)
            return "unknown"
        changed = False
        if status in ("delivered", "read"):
            changed = delivery.apply_delivered(message, at=now)
        elif status in TWILIO_ACCEPTED:
            changed = delivery.apply_accepted(message, provider_message_id=sid, at=now)
        elif status in ("undelivered", "failed"):
            code = error_code or status
            changed = delivery.apply_failed(
                message, error_code=error_code, reason=f"twilio {status} ({code})"
            )
            if error_code in OPTED_OUT_CODES or error_code in CALLBACK_INVALID_NUMBER_CODES:
                address = message_recipient(db, message)
                warn_if_other_address(message, named=to, actual=address, report=str(error_code))
                if error_code in OPTED_OUT_CODES:
                    if address:
                        changed |= set_opt_out(
                            db, channel="sms", address=address, source="twilio_21610"
                        )
                else:
                    changed |= delivery.mark_address_unusable(
                        db,
                        message,
                        channel="sms",
                        address=address,
                        problem=f"carrier reported invalid number ({error_code})",
                    )
        db.commit()
        event(
            log,
            "twilio status",
            id=message.id,
            status=status,
            code=error_code,
            changed=changed,
            message_status=message.status,
        )
        return "applied" if changed else "unchanged"


# --- the address a callback may act on -----------------------------------------------------


def message_recipient(db: Session, message: Message) -> str | None:
    """The address ``message`` went to, the only one a provider's report about it may change:
    ``sent_to`` (recorded with each provider call), else its explicit ``to_address`` (staff
    alerts, replies), else its patient's current phone or email (rows sent before ``sent_to``
    was recorded); None when there is none."""
    if message.sent_to:
        return message.sent_to
    if message.to_address:
        return message.to_address
    if message.patient_id is None:
        return None
    patient = db.get(Patient, message.patient_id)
    if patient is None:
        return None
    return (patient.phone if message.channel == "sms" else patient.email) or None


def warn_if_other_address(
    message: Message, *, named: str | None, actual: str | None, report: str
) -> bool:
    """Log (ids, never addresses) a provider report naming an address other than the one its
    message went to; True when it did. The named address is never acted on."""
    if not named or not named.strip():
        return False
    if actual is not None and normalise_address(message.channel, named) == normalise_address(
        message.channel, actual
    ):
        return False
    event(
        log,
        "provider report names another address than its message's: ignored",
        logging.WARNING,
        id=message.id,
        channel=message.channel,
        report=report,
    )
    return True
