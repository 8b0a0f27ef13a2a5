"""Twilio's webhooks: inbound SMS (docs/design.md sections 8 and 9) and delivery status callbacks.

Both check the signature (:mod:`reminders.providers.twilio.signature`): no auth token
configured, or a bad signature, is 403 and changes nothing. Every outcome is counted in
``reminders_webhooks_total``.

Inbound SMS: an authenticated message is stored, then processed; the answer is always an
empty TwiML ``<Response>`` (replies go through the outbox, so they carry a delivery
status), even when processing failed, because the row is kept with its error and Twilio
would otherwise retry.

Status callbacks carry our outbox id in the callback URL (``?mid=``); unknown ids answer
200 so Twilio stops retrying.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict

from reminders.conversations.inbound import receive
from reminders.db.models import Message
from reminders.logs import event
from reminders.metrics import count_webhook
from reminders.outbox import delivery
from reminders.outbox.consent import set_opt_out
from reminders.providers.http import outbox_id
from reminders.providers.twilio.codes import CALLBACK_INVALID_NUMBER_CODES, OPTED_OUT_CODES
from reminders.providers.twilio.send import STATUS_CALLBACK_PATH
from reminders.providers.twilio.signature import SIGNATURE_HEADER, auth_token, request_signed
from reminders.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter()

TWILIO_SMS_PATH = "/webhooks/twilio/sms"
TWILIO_HOOK = "twilio_status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BODY_BYTES = 64 * 1024  # an SMS webhook is a few hundred bytes


def _twiml(status_code: int = 200) -> Response:
    return Response(
        EMPTY_TWIML if status_code == 200 else "",
        status_code=status_code,
        media_type="text/xml" if status_code == 200 else None,
    )


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
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        count_webhook(hook, "refused")
        return _twiml(413)
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        count_webhook(hook, "refused")
        return _twiml(403)
    params: ImmutableMultiDict[str, str] = ImmutableMultiDict(pairs)
    if not request_signed(
        settings,
        path=TWILIO_SMS_PATH,
        query=request.url.query,
        params=params,
        headers=request.headers,
    ):
        count_webhook(hook, "bad_signature")
        return _twiml(403)

    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    sender = params.get("From", "")
    if not sender.strip():
        count_webhook(hook, "ignored")
        event(log, "signed inbound SMS without a sender ignored")
        return _twiml()
    try:
        result = await run_in_threadpool(
            receive,
            runtime.session_factory,
            settings,
            channel="sms",
            from_address=sender,
            body=params.get("Body", ""),
            provider_message_id=sid or None,
            now=datetime.now(UTC),
        )
    except Exception as exc:  # noqa: BLE001 - never a 500: Twilio would retry, the row is kept
        count_webhook(hook, "error")
        event(log, "inbound SMS could not be handled", logging.ERROR, error=type(exc).__name__)
        return _twiml()
    count_webhook(hook, "duplicate" if result.duplicate else ("error" if result.error else "ok"))
    return _twiml()


# --- delivery status callbacks ----------------------------------------------------------------


@router.post(STATUS_CALLBACK_PATH)
async def twilio_status(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    if not auth_token(settings):
        count_webhook(TWILIO_HOOK, "refused")
        return Response(status_code=403)
    body = await request.body()
    try:
        params: ImmutableMultiDict[str, str] = ImmutableMultiDict(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        )
    except UnicodeDecodeError:
        count_webhook(TWILIO_HOOK, "forbidden")
        return Response(status_code=403)
    if not request_signed(
        settings,
        path=request.url.path,
        query=request.url.query,
        params=params,
        headers=request.headers,
    ):
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
            changed = delivery.apply_failed(
                message, error_code=error_code, reason=f"twilio {status} ({code})"
            )
            if error_code in OPTED_OUT_CODES and to:
                changed |= set_opt_out(db, channel="sms", address=to, source="twilio_21610")
            elif error_code in CALLBACK_INVALID_NUMBER_CODES:
                changed |= delivery.mark_address_unusable(
                    db,
                    message,
                    channel="sms",
                    address=to,
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
