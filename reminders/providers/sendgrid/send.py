"""SendGrid email on the official ``sendgrid`` SDK (v3 Mail Send)."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import urllib.error
from typing import Any, ClassVar

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Category,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Header,
    Mail,
    To,
)

from reminders.logs import event
from reminders.outbox.unsubscribe import unsubscribe_headers
from reminders.providers.base import (
    OutcomeUnknown,
    OutgoingMessage,
    PermanentError,
    Provider,
    TransientError,
)
from reminders.providers.http import parse_retry_after
from reminders.settings import Settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
# The custom arg SendGrid echoes back in every event webhook for this message.
MESSAGE_ID_ARG = "message_id"
# A 400 whose error points at the recipient's address means the address itself is bad.
_RECIPIENT_FIELD = re.compile(r"^personalizations\.\d+\.to(\.\d+\.email)?$")

# python_http_client logs whole request payloads (addresses, bodies) at DEBUG; keep it quiet
# whatever the root level is, since message bodies are patients' health information.
logging.getLogger("python_http_client").setLevel(logging.WARNING)


def build_mail(message: OutgoingMessage, *, from_email: str, from_name: str | None = None) -> Mail:
    mail = Mail(
        from_email=From(from_email, from_name),
        to_emails=To(message.to),
        subject=message.subject or "",
        plain_text_content=message.body,
        html_content=message.html,
    )
    # Per personalization (we have one recipient): the official spec types the top-level
    # custom_args as a string, while the personalization's is the object SendGrid echoes.
    mail.custom_arg = CustomArg(MESSAGE_ID_ARG, str(message.message_id), p=0)
    if message.rule:
        mail.category = Category(message.rule[:255])
    for name, value in {**message.headers, **unsubscribe_headers(message.unsubscribe_url)}.items():
        mail.header = Header(name, value)
    for item in message.attachments:
        mail.attachment = Attachment(
            FileContent(base64.b64encode(item.content).decode("ascii")),
            FileName(item.filename),
            # SendGrid wants the bare MIME type; parameters such as method= stay in the file.
            FileType(item.content_type.split(";", 1)[0].strip()),
            Disposition("attachment"),
        )
    return mail


def looks_like_address(address: str) -> bool:
    """A cheap sanity check (the SDK's own parser crashes on some malformed input)."""
    local, at, domain = address.strip().rpartition("@")
    return (
        bool(at and local and domain)
        and not any(c.isspace() for c in address.strip())
        and "<" not in address
    )


def _error_fields(body: bytes | str | None) -> list[str]:
    try:
        data = json.loads(body or b"")
    except (ValueError, TypeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [str(e.get("field") or "") for e in errors or [] if isinstance(e, dict)]


def classify_http_error(exc: HTTPError) -> TransientError | PermanentError:
    status = int(exc.status_code)
    code = str(status)
    if status == 429 or status >= 500:
        headers = exc.headers
        retry_after = parse_retry_after(headers.get("Retry-After") if headers is not None else None)
        return TransientError(f"sendgrid HTTP {status}", code=code, retry_after=retry_after)
    if status == 400 and any(_RECIPIENT_FIELD.match(f) for f in _error_fields(exc.body)):
        return PermanentError(
            "sendgrid rejected the recipient address", code=code, effect="invalid_address"
        )
    return PermanentError(f"sendgrid HTTP {status}", code=code)


def classify_transport(exc: Exception) -> TransientError:
    """A request that got no HTTP answer: safe to retry only when it never left.

    urllib wraps every socket error of the request and of reading the answer in ``URLError``:
    a refused or unresolvable connection never reached SendGrid (:class:`TransientError`);
    anything else (a reset, a timeout, a closed connection) may follow SendGrid's acceptance
    (:class:`OutcomeUnknown`): the mail is in doubt, settled by SendGrid's events or by the
    in-doubt rule, not sent again blindly.
    """
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError | socket.gaierror):
        return TransientError("sendgrid unreachable (connection)", code="connection")
    if isinstance(reason, TimeoutError):
        return OutcomeUnknown("sendgrid did not answer in time", code="timeout")
    if isinstance(reason, str):  # e.g. "unknown url type": nothing was sent
        return TransientError("sendgrid unreachable (connection)", code="connection")
    return OutcomeUnknown(
        f"sendgrid connection lost after the request ({type(reason).__name__})", code="reset"
    )


class SendGridProvider(Provider):
    name: ClassVar[str] = "sendgrid"
    channel: ClassVar[str] = "email"

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        base_url: str = "https://api.sendgrid.com",
        rate_per_second: float = 10.0,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(rate_per_second=rate_per_second)
        self.from_email = from_email
        self.from_name = from_name
        self.sg = SendGridAPIClient(api_key=api_key, host=base_url.rstrip("/"))
        # The SDK passes no timeout by default (urllib would wait forever); child clients
        # built for each path segment inherit this one.
        self.sg.client.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridProvider:
        assert settings.sendgrid_api_key and settings.email_from  # check_providers() ran
        return cls(
            api_key=settings.sendgrid_api_key.get_secret_value(),
            from_email=settings.email_from,
            from_name=settings.clinic_name,
            base_url=settings.sendgrid_base_url,
            rate_per_second=settings.email_rate_per_second,
            timeout=settings.provider_timeout_seconds,
        )

    def send(self, message: OutgoingMessage) -> str:
        if not looks_like_address(message.to):
            raise PermanentError(
                "not an email address", code="invalid_address", effect="invalid_address"
            )
        mail = build_mail(message, from_email=self.from_email, from_name=self.from_name)
        try:
            response = self.sg.send(mail)
        except HTTPError as exc:
            error = classify_http_error(exc)
            event(
                log,
                "sendgrid send failed",
                logging.WARNING,
                id=message.message_id,
                status=exc.status_code,
                permanent=error.permanent,
            )
            raise error from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            error = classify_transport(exc)
            event(
                log,
                "sendgrid send outcome unknown"
                if isinstance(error, OutcomeUnknown)
                else "sendgrid unreachable",
                logging.WARNING,
                id=message.message_id,
                error=error.code,
            )
            raise error from None
        # X-Message-Id identifies the request at SendGrid; events carry it as the prefix of
        # sg_message_id. Events are matched by our custom arg, so a missing header is not fatal.
        provider_id = str(response.headers.get("X-Message-Id") or "") if response.headers else ""
        event(
            log,
            "sendgrid accepted",
            id=message.message_id,
            status=response.status_code,
            provider_id=provider_id or None,
        )
        return provider_id

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["host"] = self.sg.host
        return info
