"""The provider interface: one small class per provider, chosen by an explicit mapping.

A provider takes a rendered message and either returns the provider's id for it or
raises :class:`ProviderError` saying whether retrying can help, or :class:`OutcomeUnknown`
when the request may have reached it (the answer was lost). Each provider declares its rate
(messages per second); the dispatcher calls :meth:`Provider.throttle` before each send, so no
provider is ever sent to faster than its configured rate. A provider that can say whether it
holds a message (Twilio's message list, the dry-run file) implements :meth:`Provider.lookup`,
which the reconcile pass uses to settle sends whose outcome is unknown.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from reminders.providers.ratelimit import RateLimiter, Slot


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message ready to go. ``to`` is E.164 (SMS) or an email address."""

    message_id: int
    channel: str  # "sms" | "email"
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    rule: str = ""
    kind: str = ""
    session_id: str | None = None
    patient_id: str | None = None
    # Latest moment the message is still useful (providers that support it drop it after).
    not_after: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    unsubscribe_url: str | None = None


class ProviderError(Exception):
    """A send failed. ``permanent`` says retrying cannot help; ``code`` is the provider's own."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str | None = None,
        retry_after: float | None = None,
        effect: str | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after
        # What the failure says about the recipient: "opted_out" (SMS 21610),
        # "invalid_address" (bad number, bounced address), or None.
        self.effect = effect


class TransientError(ProviderError):
    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, permanent=False, code=code, retry_after=retry_after)


class OutcomeUnknown(TransientError):
    """The request may have reached the provider: the connection was reset or timed out after
    the request was sent, so the answer was lost.

    Retrying could send the message twice, so the dispatcher leaves it ``sending``, in doubt,
    for a provider report or the reconcile pass to settle."""


@dataclass(frozen=True)
class SentRequest:
    """What a provider is asked about when a send's outcome is unknown."""

    message_id: int
    to: str
    body: str
    subject: str | None
    began_at: datetime  # when the provider call began


class PermanentError(ProviderError):
    def __init__(self, message: str, *, code: str | None = None, effect: str | None = None) -> None:
        super().__init__(message, permanent=True, code=code, effect=effect)


class Provider(ABC):
    """Sends one channel's messages. Subclasses set ``name`` and ``channel``."""

    name: ClassVar[str]
    channel: ClassVar[str]
    # True when :meth:`lookup` can say whether the provider holds a message.
    lookup_supported: ClassVar[bool] = False

    def __init__(self, *, rate_per_second: float = 0.0) -> None:
        self.limiter = RateLimiter(rate_per_second)

    def throttle(self, stop: threading.Event | None = None) -> Slot | None:
        """Wait for this provider's next send slot; None if ``stop`` was set meanwhile."""
        return self.limiter.acquire(stop)

    def lookup(self, sent: SentRequest) -> list[str] | None:
        """The provider's ids of messages it holds that match ``sent`` (newest first; empty:
        it has none), or None when this provider cannot tell (no listing API, or it failed)."""
        return None

    @abstractmethod
    def send(self, message: OutgoingMessage) -> str:
        """Send one message; return the provider's id for it, or raise ProviderError."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called at shutdown."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "channel": self.channel, "rate_per_second": self.limiter.rate}
