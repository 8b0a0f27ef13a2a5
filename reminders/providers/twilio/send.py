"""Twilio SMS on the official ``twilio`` SDK.

The SDK always builds ``https://api.twilio.com/...`` URLs (its edge/region settings only
rewrite the host name within twilio.com), so ``REMINDERS_TWILIO_BASE_URL`` is honoured by
an HTTP client subclass that swaps that prefix for the configured base just before the
request goes out. Everything else (auth, form encoding, error parsing) is the SDK's own.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import requests
import urllib3.exceptions
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from reminders.logs import event
from reminders.providers.base import (
    OutcomeUnknown,
    OutgoingMessage,
    PermanentError,
    Provider,
    SentRequest,
    TransientError,
)
from reminders.providers.http import parse_retry_after
from reminders.providers.twilio.codes import INVALID_ADDRESS_CODES, OPTED_OUT_CODES, TRANSIENT_CODES
from reminders.settings import Settings

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
REQUEST_TIMEOUT_SECONDS = 10.0
# Twilio accepts ValidityPeriod from 1 to 36000 seconds.
MAX_VALIDITY_SECONDS = 36000
# Looking up an in-doubt send: Twilio filters DateSent by GMT day, so ask from the day before
# the send began, and read at most this many of the recipient's messages (newest first).
LOOKUP_LIMIT = 200


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's HTTP client, sending to ``base_url`` instead of api.twilio.com.

    It also keeps the last response per thread, because ``TwilioRestException`` drops
    the response headers and we need ``Retry-After``.
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        # A logger of our own, kept quiet: the SDK logs URLs and response headers at INFO.
        quiet = logging.getLogger("reminders.providers.twilio.http")
        quiet.setLevel(logging.WARNING)
        super().__init__(timeout=timeout, logger=quiet)
        self.base_url = base_url.rstrip("/")
        self._local = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url != TWILIO_API and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        self._local.last = None
        response = super().request(method, url, *args, **kwargs)
        self._local.last = response
        return response

    @property
    def last_response(self) -> Response | None:
        return getattr(self._local, "last", None)


def status_callback_url(public_url: str, message_id: int) -> str:
    return f"{public_url.rstrip('/')}{STATUS_CALLBACK_PATH}?mid={message_id}"


def validity_seconds(not_after: datetime | None, *, now: datetime) -> int | None:
    """Seconds Twilio may keep the message queued; None = no limit; <= 0 means too late."""
    if not_after is None:
        return None
    remaining = math.floor((not_after - now).total_seconds())
    if remaining <= 0:
        return remaining
    return min(remaining, MAX_VALIDITY_SECONDS)


def classify_rest_error(
    exc: TwilioRestException, retry_after: float | None
) -> TransientError | PermanentError:
    code = str(exc.code) if exc.code is not None else str(exc.status)
    if exc.status == 429 or exc.status >= 500 or code in TRANSIENT_CODES:
        return TransientError(
            f"twilio HTTP {exc.status} (code {code})", code=code, retry_after=retry_after
        )
    if code in OPTED_OUT_CODES:
        return PermanentError(
            "recipient has opted out (twilio 21610)", code=code, effect="opted_out"
        )
    if code in INVALID_ADDRESS_CODES:
        return PermanentError(
            f"number unusable for SMS (twilio {code})", code=code, effect="invalid_address"
        )
    return PermanentError(f"twilio HTTP {exc.status} (code {code})", code=code)


def classify_transport(exc: requests.RequestException) -> TransientError:
    """A request that got no HTTP answer: safe to retry only when it never left.

    A refused or unresolvable connection, a connect timeout or a failed TLS handshake happen
    before Twilio could read the request (:class:`TransientError`). A reset or a read timeout
    after it was sent may follow Twilio's acceptance (:class:`OutcomeUnknown`): the message is
    in doubt and the reconcile pass asks Twilio, instead of sending it a second time.
    """
    name = type(exc).__name__
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return TransientError(f"twilio unreachable ({name})", code="connection")
    if isinstance(exc, requests.Timeout):
        return OutcomeUnknown("twilio did not answer in time", code="timeout")
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)  # urllib3 wraps it in MaxRetryError
        if isinstance(inner, urllib3.exceptions.NewConnectionError):
            return TransientError(f"twilio unreachable ({type(inner).__name__})", code="connection")
        return OutcomeUnknown(f"twilio connection lost after the request ({name})", code="reset")
    return TransientError(f"twilio request failed ({name})", code="connection")


class TwilioProvider(Provider):
    name: ClassVar[str] = "twilio"
    channel: ClassVar[str] = "sms"
    lookup_supported: ClassVar[bool] = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        public_url: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str = TWILIO_API,
        rate_per_second: float = 1.0,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(rate_per_second=rate_per_second)
        if not (from_number or messaging_service_sid):
            raise ValueError("a From number or a Messaging Service SID is required")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.public_url = public_url
        self.http = BaseUrlHttpClient(base_url, timeout=timeout)
        # environment={} so stray TWILIO_EDGE / TWILIO_REGION variables cannot redirect requests.
        self.client = Client(account_sid, auth_token, http_client=self.http, environment={})
        # The SDK imports its resource modules on first use; do it now, not in the first
        # send, where the delay would come between the rate slot and the request.
        _ = self.client.messages

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioProvider:
        assert settings.twilio_account_sid and settings.twilio_auth_token  # check_providers() ran
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            public_url=settings.public_url,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_base_url,
            rate_per_second=settings.sms_rate_per_second,
            timeout=settings.provider_timeout_seconds,
        )

    def send(self, message: OutgoingMessage) -> str:
        params: dict[str, Any] = {
            "to": message.to,
            "body": message.body,
            "status_callback": status_callback_url(self.public_url, message.message_id),
        }
        # The Messaging Service picks the sender from its pool; a From number is used otherwise.
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        validity = validity_seconds(message.not_after, now=datetime.now(UTC))
        if validity is not None:
            if validity <= 0:
                raise PermanentError("message is past its not_after time", code="stale")
            params["validity_period"] = validity
        try:
            created = self.client.messages.create(**params)
        except TwilioRestException as exc:
            last = self.http.last_response
            retry_after = parse_retry_after(
                last.headers.get("Retry-After") if last and last.headers else None
            )
            error = classify_rest_error(exc, retry_after)
            event(
                log,
                "twilio send failed",
                logging.WARNING,
                id=message.message_id,
                status=exc.status,
                code=error.code,
                permanent=error.permanent,
            )
            raise error from None
        except requests.RequestException as exc:
            error = classify_transport(exc)
            event(
                log,
                "twilio send outcome unknown"
                if isinstance(error, OutcomeUnknown)
                else "twilio unreachable",
                logging.WARNING,
                id=message.message_id,
                error=type(exc).__name__,
            )
            raise error from None
        sid = str(created.sid)
        event(log, "twilio accepted", id=message.message_id, provider_id=sid)
        return sid

    def lookup(self, sent: SentRequest) -> list[str] | None:
        """The SIDs of messages Twilio holds to ``sent.to`` with exactly ``sent.body``, sent
        since the day before the send began (the official Messages list, by To and DateSent).
        None when Twilio cannot be asked now."""
        day = (sent.began_at.astimezone(UTC) - timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        try:
            listed = self.client.messages.list(
                to=sent.to, date_sent_after=day, limit=LOOKUP_LIMIT, page_size=50
            )
        except (TwilioException, requests.RequestException) as exc:
            event(
                log,
                "twilio lookup failed",
                logging.WARNING,
                id=sent.message_id,
                error=type(exc).__name__,
            )
            return None
        wanted = sent.body.strip()
        return [
            str(m.sid)
            for m in listed
            if (m.body or "").strip() == wanted and not str(m.direction or "").startswith("inbound")
        ]

    def close(self) -> None:
        if self.http.session is not None:
            self.http.session.close()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["sender"] = "messaging_service" if self.messaging_service_sid else "from_number"
        return info
