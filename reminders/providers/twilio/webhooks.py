"""Inbound replies: Twilio's incoming-SMS webhook and SendGrid Inbound Parse (DESIGN 8 and 9).

Twilio: the ``X-Twilio-Signature`` is checked with the SDK's ``RequestValidator`` against
``REMINDERS_PUBLIC_URL`` + the path (never the request's Host, which a proxy or an attacker
sets). No auth token configured, or a bad signature: 403 and nothing stored. An authenticated
message is stored, then processed; the answer is always an empty TwiML ``<Response>`` (replies
go through the outbox, so they carry a delivery status), even when processing failed, because
the row is kept with its error and Twilio would otherwise retry.

SendGrid Inbound Parse has no signature: the URL carries a secret
(``/webhooks/sendgrid/inbound/{secret}``), or HTTP basic auth with that secret as password
on ``/webhooks/sendgrid/inbound``; compared in constant time. No secret configured: 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from datetime import UTC, datetime
from email.utils import parseaddr
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from reminders.conversations.inbound import receive
from reminders.logs import event
from reminders.metrics import WEBHOOKS
from reminders.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter()

TWILIO_SMS_PATH = "/webhooks/twilio/sms"
SENDGRID_INBOUND_PATH = "/webhooks/sendgrid/inbound"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BODY_BYTES = 64 * 1024  # an SMS webhook is a few hundred bytes
MAX_EMAIL_BYTES = 30 * 1024 * 1024  # SendGrid's own limit


def _twiml(status_code: int = 200) -> Response:
    return Response(EMPTY_TWIML if status_code == 200 else "", status_code=status_code,
                    media_type="text/xml" if status_code == 200 else None)


def _count(hook: str, outcome: str) -> None:
    WEBHOOKS.labels(hook=hook, outcome=outcome).inc()


def twilio_signature_ok(settings_token: str, url: str, params: ImmutableMultiDict[str, str],
                        signature: str, settings_header: str | None) -> bool:
    try:
        return RequestValidator(settings_token).validate(
            url, params, signature, algorithm=get_signature_algorithm(settings_header)
        )
    except (TypeError, ValueError):
        return False


@router.post(TWILIO_SMS_PATH, include_in_schema=False)
async def twilio_sms(request: Request) -> Response:
    hook = "twilio_sms"
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token:
        _count(hook, "refused")
        return _twiml(403)
    signature = request.headers.get("x-twilio-signature", "")
    if not signature:
        _count(hook, "refused")
        return _twiml(403)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        _count(hook, "refused")
        return _twiml(413)
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        _count(hook, "refused")
        return _twiml(403)
    params: ImmutableMultiDict[str, str] = ImmutableMultiDict(pairs)
    url = settings.public_url.rstrip("/") + TWILIO_SMS_PATH
    if request.url.query:
        url += "?" + request.url.query
    if not twilio_signature_ok(token, url, params, signature, request.headers.get(SIGNATURE_SETTINGS_HEADER)):
        _count(hook, "bad_signature")
        return _twiml(403)

    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    sender = params.get("From", "")
    if not sender.strip():
        _count(hook, "ignored")
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
        _count(hook, "error")
        event(log, "inbound SMS could not be handled", logging.ERROR, error=type(exc).__name__)
        return _twiml()
    _count(hook, "duplicate" if result.duplicate else ("error" if result.error else "ok"))
    return _twiml()


# --- SendGrid Inbound Parse -------------------------------------------------------------------

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
        _count("sendgrid_inbound", "refused")
        return Response(status_code=404)
    if not _same(secret, expected):
        _count("sendgrid_inbound", "bad_secret")
        return Response(status_code=403)
    return await _sendgrid_inbound(request)


@router.post(SENDGRID_INBOUND_PATH, include_in_schema=False)
async def sendgrid_inbound_basic_auth(request: Request) -> Response:
    expected = _secret(request.app.state.runtime)
    if not expected:
        _count("sendgrid_inbound", "refused")
        return Response(status_code=404)
    if not _same(_basic_password(request), expected):
        _count("sendgrid_inbound", "bad_secret")
        return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="inbound"'})
    return await _sendgrid_inbound(request)


async def _sendgrid_inbound(request: Request) -> Response:
    hook = "sendgrid_inbound"
    runtime: Runtime = request.app.state.runtime
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_EMAIL_BYTES:
        _count(hook, "refused")
        return Response(status_code=413)
    try:
        form = await request.form(max_files=50, max_fields=200)
    except Exception:  # noqa: BLE001 - malformed multipart: tell SendGrid, no retry storm from a 500
        _count(hook, "bad_request")
        return Response(status_code=400)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    sender = parseaddr(fields.get("from", ""))[1].strip().lower()
    if "@" not in sender:
        _count(hook, "ignored")
        return Response(status_code=200)
    subject = fields.get("subject", "")
    body = email_reply_text(fields.get("text", ""), subject)
    # No provider id in Inbound Parse: the Message-ID header, else a digest of the content,
    # makes SendGrid's retries idempotent.
    message_id = ""
    match = re.search(r"^Message-ID:\s*(\S+)", fields.get("headers", ""), re.IGNORECASE | re.MULTILINE)
    if match:
        message_id = match.group(1)
    if not message_id:
        digest = hashlib.sha256("\x1f".join((sender, subject, fields.get("text", ""), fields.get("headers", ""))).encode()).hexdigest()
        message_id = f"sha256:{digest}"
    try:
        result = await run_in_threadpool(
            receive,
            runtime.session_factory,
            runtime.settings,
            channel="email",
            from_address=sender,
            body=body,
            provider_message_id=f"email:{message_id}",
            now=datetime.now(UTC),
        )
    except Exception as exc:  # noqa: BLE001
        _count(hook, "error")
        event(log, "inbound email could not be handled", logging.ERROR, error=type(exc).__name__)
        return Response(status_code=200)
    _count(hook, "duplicate" if result.duplicate else ("error" if result.error else "ok"))
    return Response(status_code=200)
