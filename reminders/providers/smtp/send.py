"""Email over SMTP (smtplib) for clinics without SendGrid: STARTTLS, SSL or plain; AUTH.

One connection per message: clinic volumes are small and servers drop idle connections,
so keeping one open buys little and adds reconnect logic.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from typing import Any, ClassVar, Literal

from reminders.logs import event
from reminders.providers.base import (
    OutcomeUnknown,
    OutgoingMessage,
    PermanentError,
    Provider,
    TransientError,
)
from reminders.providers.smtp.mime import build_mime
from reminders.settings import Settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 30.0
Security = Literal["starttls", "ssl", "none"]


def _code_error(
    code: int, what: str, *, recipient: bool = False
) -> TransientError | PermanentError:
    if 400 <= code < 500:
        return TransientError(f"smtp {what} deferred ({code})", code=str(code))
    effect = "invalid_address" if recipient and code in (550, 551, 553) else None
    return PermanentError(f"smtp {what} refused ({code})", code=str(code), effect=effect)


class _SMTP(smtplib.SMTP):
    """Notes when the DATA command began: a connection lost after that may have delivered
    the mail (the server may have queued it before its answer was lost)."""

    data_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)


class _SMTPSSL(smtplib.SMTP_SSL, _SMTP):  # SMTP_SSL's connection, _SMTP's data()
    pass


class SmtpProvider(Provider):
    name: ClassVar[str] = "smtp"
    channel: ClassVar[str] = "email"

    def __init__(
        self,
        *,
        host: str,
        from_email: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        security: Security = "starttls",
        from_name: str | None = None,
        rate_per_second: float = 10.0,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(rate_per_second=rate_per_second)
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = security
        self.from_email = from_email
        self.from_name = from_name
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpProvider:
        assert settings.smtp_host and settings.email_from  # check_providers() ran
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            security=settings.smtp_security,
            from_email=settings.email_from,
            from_name=settings.clinic_name,
            rate_per_second=settings.email_rate_per_second,
        )

    def _connect(self) -> _SMTP | _SMTPSSL:
        if self.security == "ssl":
            return _SMTPSSL(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
        smtp = _SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            smtp.starttls(context=self.ssl_context)
        return smtp

    def send(self, message: OutgoingMessage) -> str:
        mime = build_mime(message, from_email=self.from_email, from_name=self.from_name)
        smtp: _SMTP | _SMTPSSL | None = None
        error: TransientError | PermanentError
        try:
            smtp = self._connect()
            with smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mime, from_addr=self.from_email, to_addrs=[message.to])
        except smtplib.SMTPRecipientsRefused as exc:
            smtp_code = next(iter(exc.recipients.values()))[0] if exc.recipients else 550
            error = _code_error(smtp_code, "recipient", recipient=True)
        except smtplib.SMTPNotSupportedError:
            # e.g. STARTTLS or AUTH not offered: configuration, not something a retry fixes.
            error = PermanentError(
                "smtp server lacks a required extension (STARTTLS/AUTH)", code="unsupported"
            )
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed...
            error = _code_error(exc.smtp_code, "message")
        except (
            smtplib.SMTPException,
            OSError,
        ) as exc:  # disconnects, refused connections, timeouts
            kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
            if smtp is not None and smtp.data_started:
                error = OutcomeUnknown(
                    f"smtp connection lost during DATA ({type(exc).__name__})", code=kind
                )
            else:
                error = TransientError(f"smtp server unreachable ({type(exc).__name__})", code=kind)
        else:
            provider_id = str(mime["Message-ID"])
            event(log, "smtp accepted", id=message.message_id)
            return provider_id
        event(
            log,
            "smtp send failed",
            logging.WARNING,
            id=message.message_id,
            code=error.code,
            permanent=error.permanent,
        )
        raise error

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(security=self.security, auth=bool(self.username))
        return info
