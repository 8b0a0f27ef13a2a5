"""Request body limits per route, enforced before a body is read in full.

:class:`BodyLimitMiddleware` (a pure ASGI middleware, added by
:func:`reminders.web.app.create_app`) answers 413 at once when a request's Content-Length
is over its route's limit, without reading any of the body; without a Content-Length
(chunked) it counts the bytes as the app reads them and answers 413 as soon as they go
over, and the app gets nothing more. A body within its limit is read as it arrives, on the
event loop but never blocking it; what is then done with it (parsing, signatures) runs in
threads (see the webhooks).

The limits, largest prefix first (:data:`ROUTE_LIMITS`):

- Twilio's webhooks (inbound SMS, status callbacks): form posts of a few hundred bytes to a
  few KB (an MMS names its media by URL); 64 KiB.
- SendGrid's event webhook: JSON batches. SendGrid posts a batch every 30 s or once it
  reaches about 768 KB; busy accounts see up to ~1,000 events a post. 5 MiB leaves a wide
  margin (events carrying long custom arguments) and still bounds what is parsed.
- SendGrid's Inbound Parse: multipart, with the email's attachments as file parts. SendGrid
  caps an email at 30 MB in all, so its post is at most that plus the multipart framing:
  32 MiB. Any lower would answer 413 to a real patient's reply that carries photos, and the
  reply (which may be an urgent one) would be lost, for attachments that are never used.
  Memory is not what this limit protects: Starlette keeps each text field within 1 MiB
  and writes file parts over 1 MiB to temporary files (closed, so deleted, once the text
  fields are taken); the limit bounds the disk and the time one request can take.
- The staff console's forms: 1 MiB (the largest is the policy editor, whose YAML is capped
  at 256 KiB, up to three times that once form-encoded).
- Anything else: 1 MiB.

:func:`read_body` is the same bound inside a handler, so that a handler mounted without the
middleware (tests' minimal apps) does not buffer an unbounded body either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB

TWILIO_BODY_LIMIT = 64 * KIB
SENDGRID_EVENTS_BODY_LIMIT = 5 * MIB
SENDGRID_INBOUND_BODY_LIMIT = 32 * MIB
CONSOLE_BODY_LIMIT = 1 * MIB
DEFAULT_BODY_LIMIT = 1 * MIB

# (path prefix, limit), the longest prefix first: the first that matches applies.
ROUTE_LIMITS: tuple[tuple[str, int], ...] = (
    ("/webhooks/sendgrid/inbound", SENDGRID_INBOUND_BODY_LIMIT),
    ("/webhooks/sendgrid/events", SENDGRID_EVENTS_BODY_LIMIT),
    ("/webhooks/twilio/", TWILIO_BODY_LIMIT),
    ("/staff/", CONSOLE_BODY_LIMIT),
)


def limit_for(path: str) -> int:
    """The body limit of the route at ``path``."""
    for prefix, limit in ROUTE_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_BODY_LIMIT


def declared_length(headers: list[tuple[bytes, bytes]] | Any) -> int | None:
    """The request's Content-Length, or None when absent or not a number."""
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyTooLarge(Exception):
    """Raised into the app by the middleware's ``receive`` once a body goes over its limit."""


async def send_413(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            # The rest of the body is not read: the connection cannot be reused.
            "headers": [(b"content-length", b"0"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class BodyLimitMiddleware:
    """413 for a request body over its route's limit (:func:`limit_for`), before it is read."""

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[str], int] = limit_for) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(str(scope.get("path", "")))
        declared = declared_length(scope.get("headers") or [])
        if declared is not None and declared > limit:
            await send_413(send)  # nothing of the body is read
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app answered after its body was cut short: the 413 is ours
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # BodyTooLarge itself, or whatever the app made of it (an exception group...).
            if not exceeded:
                raise
        if exceeded and not started:
            await send_413(send)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be over ``limit`` bytes (by its
    Content-Length, or while it is read: no more than that is read)."""
    declared = declared_length(request.scope.get("headers") or [])
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
