"""Is an emailed reply from the address its ``From:`` shows? SendGrid Inbound Parse's SPF and
DKIM results decide (docs/design.md section 9).

Anyone can write a patient's address in ``From:``; the Inbound Parse secret only proves that
SendGrid posted the email, not who wrote it. An emailed reply is *verified* only when

- DKIM passes for a domain aligned with the ``From:`` address's domain (the same domain, or
  one a subdomain of the other), or
- SPF passes and the envelope sender's (``MAIL FROM``) domain is aligned with it: SPF speaks
  for the envelope domain only, never for ``From:``.

Everything else is *not verified*: a fail, softfail, neutral, none, temperror or permerror; a
missing or unreadable field; DKIM passing for another domain; SPF passing for an envelope
sender of another domain, or with no envelope sender (a bounce). The ``Authentication-Results``
lines in ``headers`` are not read: the sender can write them too.

Alignment is approximate (there is no Public Suffix List here): sibling subdomains
(``a.example.com`` and ``b.example.com``) are not aligned, which only errs towards "not
verified"; neither is a domain of a single label.

The verdict is stored with the message before it is processed (``inbound_messages.match_note``,
see :mod:`reminders.conversations.matching`). A message not verified is still stored, screened
for crisis language (a crisis pages on-call staff) and filed for a person to read, saying why;
it never confirms, reschedules, opts out or in, or records a check-in score by itself
(:func:`reminders.conversations.classify.for_sender`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import partial

import anyio.to_thread
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from reminders.conversations.inbound import store_inbound
from reminders.conversations.matching import verdict_note
from reminders.db.engine import LOCK_WAIT_MS
from reminders.db.models import InboundMessage
from reminders.logs import event
from reminders.metrics import count_webhook
from reminders.providers.twilio.webhooks import _inbound_limiter
from reminders.runtime import Runtime

log = logging.getLogger(__name__)

# RFC 8601 result values (SPF's and DKIM's); anything else reads as "unreadable".
RESULTS = frozenset(
    {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy"}
)
_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# One signature in SendGrid's ``dkim`` field: "{@a.com : pass, @b.com : fail}".
_DKIM_ITEM = re.compile(r"@?\s*([^\s@:{},]+)\s*:\s*([A-Za-z]+)")


@dataclass(frozen=True)
class SenderVerdict:
    authenticated: bool
    reason: str  # "dkim pass; spf none", "dkim none; spf softfail": results, never addresses

    @property
    def note(self) -> str:
        """As ``inbound_messages.match_note`` keeps it."""
        return verdict_note(self.authenticated, self.reason)


def domain_of(address: str) -> str:
    """The lower-cased (IDNA) domain of an address; "" when there is no usable one."""
    address = parseaddr(address)[1] if "<" in address else address.strip()
    local, at, domain = address.rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not (local and at and domain):
        return ""
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return ""
    return domain if len(domain) <= 253 and _DOMAIN.fullmatch(domain) else ""


def aligned(domain: str, from_domain: str) -> bool:
    """The same domain, or one a subdomain of the other (relaxed alignment, roughly)."""
    if "." not in domain or "." not in from_domain:
        return False
    return (
        domain == from_domain
        or domain.endswith("." + from_domain)
        or from_domain.endswith("." + domain)
    )


def result_of(value: str) -> str:
    """The result word of an SPF field ("pass", "softfail (...)"); "none" when empty."""
    found = re.match(r"\s*([A-Za-z]+)", value)
    if found is None:
        return "none" if not value.strip() else "unreadable"
    word = found.group(1).lower()
    return word if word in RESULTS else "unreadable"


def dkim_results(value: str) -> list[tuple[str, str]] | None:
    """(domain, result) per signature; [] for "none" or nothing; None when unreadable."""
    text = value.strip()
    if text.strip("{} ").lower() in ("", "none"):
        return []
    items = [
        (domain.lower().rstrip("."), result.lower()) for domain, result in _DKIM_ITEM.findall(text)
    ]
    return items or None


def envelope_sender(value: str) -> str:
    """The envelope's ``from`` (``{"to": [...], "from": "..."}``); "" if none or unreadable."""
    try:
        envelope = json.loads(value) if value.strip() else {}
    except ValueError:
        return ""
    sender = envelope.get("from") if isinstance(envelope, dict) else None
    return sender if isinstance(sender, str) else ""


def _dkim_reason(results: list[tuple[str, str]] | None, from_domain: str) -> tuple[bool, str]:
    if results is None:
        return False, "dkim unreadable"
    if not results:
        return False, "dkim none"
    if any(result == "pass" and aligned(domain, from_domain) for domain, result in results):
        return True, "dkim pass"
    if any(result == "pass" for _, result in results):
        return False, "dkim pass for another domain"
    words = dict.fromkeys(result if result in RESULTS else "unreadable" for _, result in results)
    return False, "dkim " + "/".join(words)


def _spf_reason(spf: str, envelope_domain: str, from_domain: str) -> tuple[bool, str]:
    if spf != "pass":
        return False, f"spf {spf}"
    if not envelope_domain:
        return False, "spf pass without an envelope sender"
    if not aligned(envelope_domain, from_domain):
        return False, "spf pass for another domain"
    return True, "spf pass"


def sender_verdict(fields: Mapping[str, str], sender: str) -> SenderVerdict:
    """The verdict on ``sender`` (the ``From:`` address the reply is matched on) from Inbound
    Parse's form fields: ``dkim``, ``SPF``, ``envelope``."""
    lowered = {key.lower(): value for key, value in fields.items()}
    from_domain = domain_of(sender)
    dkim_ok, dkim = _dkim_reason(dkim_results(lowered.get("dkim", "")), from_domain)
    spf_ok, spf = _spf_reason(
        result_of(lowered.get("spf", "")),
        domain_of(envelope_sender(lowered.get("envelope", ""))),
        from_domain,
    )
    reason = f"{dkim}; {spf}"
    if not from_domain:
        return SenderVerdict(False, f"no sender domain; {reason}")
    return SenderVerdict(dkim_ok or spf_ok, reason)


def store_with_verdict(
    factory: sessionmaker[Session],
    *,
    from_address: str,
    body: str,
    provider_message_id: str,
    note: str,
    authenticated: bool,
    received_at: datetime,
    region: str,
) -> None:
    """Store the emailed reply (committed, as ``accept_inbound`` does) and its verdict.

    A verdict only ever replaces a verified one with a not-verified one: a second post with the
    same Message-ID cannot vouch for a body stored earlier. A message already processed keeps
    its note. Raises when it could not be stored (the webhook then answers 503)."""
    inbound_id, processed = store_inbound(
        factory,
        channel="email",
        from_address=from_address,
        body=body,
        provider_message_id=provider_message_id,
        received_at=received_at,
        region=region,
    )
    if processed:
        return
    conditions = [InboundMessage.id == inbound_id, InboundMessage.processed_at.is_(None)]
    if authenticated:
        conditions.append(InboundMessage.match_note.is_(None))
    with factory() as db:
        db.connection(execution_options={LOCK_WAIT_MS: 500})
        db.execute(update(InboundMessage).where(*conditions).values(match_note=note))
        db.commit()


async def store_email(
    runtime: Runtime,
    hook: str,
    fields: Mapping[str, str],
    *,
    from_address: str,
    body: str,
    provider_message_id: str,
) -> bool:
    """Store an emailed reply with the verdict on its sender, before
    :func:`~reminders.providers.twilio.webhooks.accept_inbound` (which then finds it stored by
    its provider id and processes it once). False: not stored, the webhook answers 503."""
    verdict = sender_verdict(fields, from_address)
    event(log, "emailed reply", sender_verified=verdict.authenticated, auth=verdict.reason)
    store = partial(
        store_with_verdict,
        runtime.session_factory,
        from_address=from_address,
        body=body,
        provider_message_id=provider_message_id,
        note=verdict.note,
        authenticated=verdict.authenticated,
        received_at=datetime.now(UTC),
        region=runtime.settings.default_region,
    )
    try:
        await anyio.to_thread.run_sync(store, limiter=_inbound_limiter())
    except Exception as exc:  # noqa: BLE001 - not stored: 5xx, so SendGrid tries again
        count_webhook(hook, "store_failed")
        event(log, "inbound email not stored: 503", logging.ERROR, error=type(exc).__name__)
        return False
    return True
