"""The reconcile pass: every in-doubt send is settled without an operator.

A send is in doubt when its provider call began and no outcome was recorded: the process died
during the call, or the connection was lost after the request went out (a reset, a read
timeout). A provider report (Twilio's status callback, SendGrid's ``processed`` event) settles
it on arrival (:mod:`reminders.outbox.delivery`); this pass settles the rest:

- **Providers that can be asked** (Twilio's Messages list, the dry-run file): the provider's
  messages to the same address since the day before are read, and one with exactly the same
  text that no other outbox row claims settles the row as ``sent`` with its id. When the
  provider has none once ``REMINDERS_RECONCILE_RESEND_AFTER_SECONDS`` have passed since the
  call began (so a request still on its way cannot be missed), the message is sent again.
  When the provider cannot be asked now, it is asked again next time.
- **Providers with no listing** (SendGrid, SMTP): events settle them; with no event within
  ``REMINDERS_EMAIL_IN_DOUBT_WINDOW_SECONDS``, ``REMINDERS_EMAIL_IN_DOUBT_RULE`` applies:
  ``resend`` (the default) sends it once more, because a missed preparation email is worse than
  a duplicate (once per send whose answer was lost: a re-send that is lost too is re-sent in
  turn, up to ``REMINDERS_MAX_ATTEMPTS`` sends); ``task`` only asks staff.
- Anything still unresolved after ``REMINDERS_IN_DOUBT_TASK_AFTER_SECONDS`` (or a message that
  reached ``REMINDERS_MAX_ATTEMPTS``) ends ``failed`` with the reason, and a staff task names the
  patient and session so a person checks that the patient got it.

Rows are leased to one reconciler (:func:`reminders.outbox.settle.claim_in_doubt`), so two
workers never ask about, or re-send, the same message. Each outcome is counted in the pass's
report and in ``reminders_reconciled_total``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import Message, StaffTask
from reminders.logs import event
from reminders.metrics import REGISTRY
from reminders.outbox import settle, store
from reminders.outbox.status import Status
from reminders.providers.base import Provider, SentRequest
from reminders.settings import Settings

log = logging.getLogger(__name__)

BATCH = 50
RECONCILED = Counter(
    "reminders_reconciled_total",
    "In-doubt sends looked at by the reconcile pass, by outcome",
    ["outcome"],
    registry=REGISTRY,
)


def duration(seconds: float) -> str:
    """``45 s``, ``15 min``, ``2 h`` (for reasons staff read)."""
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


@dataclass
class ReconcileReport:
    found: int = 0  # the provider has it: settled as sent
    resent: int = 0  # the provider does not have it, or the in-doubt rule: sent again
    waiting: int = 0  # not decidable yet: looked at again later
    unresolved: int = 0  # given up: failed, with a staff task

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        RECONCILED.labels(outcome).inc()

    @property
    def handled(self) -> int:
        return self.found + self.resent + self.waiting + self.unresolved

    def line(self) -> str:
        return (
            f"in doubt: {self.found} found at the provider, {self.resent} sent again, "
            f"{self.waiting} waiting, {self.unresolved} unresolved"
        )


@dataclass
class Reconciler:
    settings: Settings
    session_factory: sessionmaker[Session]
    providers: dict[str, Provider]
    owner: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def run_pass(self, now: datetime | None = None) -> ReconcileReport:
        """Settle every in-doubt message whose next check has come."""
        now = now or self.clock()
        report = ReconcileReport()
        lease = timedelta(seconds=max(60.0, 4 * self.settings.provider_timeout_seconds))
        while True:
            with self.session_factory() as db:
                ids = settle.claim_in_doubt(db, now=now, owner=self.owner, limit=BATCH, lease=lease)
            for message_id in ids:
                outcome = self._resolve(message_id, now)
                if outcome:
                    report.add(outcome)
            if len(ids) < BATCH:
                return report

    # -- one message ----------------------------------------------------------------------------

    def _resolve(self, message_id: int, now: datetime) -> str | None:
        with self.session_factory() as db:
            msg = db.get(Message, message_id)
            if msg is None or msg.status != Status.SENDING or msg.lease_owner != self.owner:
                return None  # settled by a report meanwhile
            db.expunge(msg)
        began = msg.sending_at or msg.updated_at
        age = (now - began).total_seconds()
        s = self.settings
        provider = self.providers.get(msg.channel)
        if provider is not None and provider.name != msg.provider:
            provider = None  # sent through a provider no longer configured: cannot ask it
        if provider is not None and provider.lookup_supported and msg.sent_to and msg.body:
            held = provider.lookup(
                SentRequest(
                    message_id=msg.id,
                    to=msg.sent_to,
                    body=msg.body,
                    subject=msg.subject,
                    began_at=began,
                )
            )
            if held:
                provider_id = self._unclaimed(held, msg.id)
                if provider_id is not None:
                    return self._found(msg, provider_id, provider.name)
                held = []  # every match is another row's message
            if held == []:
                if age >= s.reconcile_resend_after_seconds:
                    return self._resend(
                        msg, f"reconciled: {provider.name} has no such message; sent again", now
                    )
                resend_at = began + timedelta(seconds=s.reconcile_resend_after_seconds)
                return self._later(msg, resend_at, now)
            # The provider could not be asked now (it failed): ask again next time.
            if age < s.in_doubt_task_after_seconds:
                return self._later(msg, now + timedelta(seconds=s.reconcile_interval_seconds), now)
            return self._unresolved(msg, f"{provider.name} could not be asked", age, now)
        # No way to ask: the in-doubt rule, once its window has passed with no provider event.
        window = s.email_in_doubt_window_seconds
        if age < window:
            return self._later(msg, began + timedelta(seconds=window), now)
        name = msg.provider or "the provider"
        silence = f"no word from {name} in {duration(window)}"
        if s.email_in_doubt_rule == "resend":
            return self._resend(
                msg,
                f"in doubt: {silence}; sent again once (REMINDERS_EMAIL_IN_DOUBT_RULE=resend)",
                now,
            )
        return self._unresolved(msg, silence, age, now)

    def _unclaimed(self, held: list[str], message_id: int) -> str | None:
        """The first of the provider's ids that no other outbox row already has."""
        with self.session_factory() as db:
            taken = set(
                db.scalars(
                    select(Message.provider_message_id).where(
                        Message.provider_message_id.in_(held), Message.id != message_id
                    )
                )
            )
        return next((pid for pid in held if pid not in taken), None)

    def _found(self, msg: Message, provider_id: str, provider: str) -> str:
        with self.session_factory() as db:
            settle.settle_found(
                db,
                msg.id,
                owner=self.owner,
                provider_message_id=provider_id,
                reason=f"reconciled: {provider} has it",
            )
            db.commit()
        event(log, "in-doubt send found at the provider", id=msg.id, provider=provider)
        return "found"

    def _resend(self, msg: Message, reason: str, now: datetime) -> str:
        if msg.attempts >= self.settings.max_attempts:
            return self._unresolved(msg, f"not accepted after {msg.attempts} attempts", None, now)
        with self.session_factory() as db:
            settle.requeue_absent(db, msg.id, owner=self.owner, reason=reason)
            db.commit()
        event(log, "in-doubt send sent again", id=msg.id, attempts=msg.attempts)
        return "resent"

    def _later(self, msg: Message, at: datetime, now: datetime) -> str:
        with self.session_factory() as db:
            settle.check_later(db, msg.id, owner=self.owner, at=at, now=now)
            db.commit()
        return "waiting"

    def _unresolved(self, msg: Message, why: str, age: float | None, now: datetime) -> str:
        after = f" after {duration(age)}" if age is not None else ""
        reason = f"in doubt, unresolved{after}: {why}; may or may not have reached the patient"
        with self.session_factory() as db:
            store.finish(db, msg.id, event="unresolved", reason=reason[:500])
            who = "on-call staff" if msg.kind == "alert" else "the patient"
            db.add(
                StaffTask(
                    kind="delivery_failed",
                    patient_id=msg.patient_id,
                    session_id=msg.session_id,
                    summary=(
                        f"A {msg.channel.upper()} {msg.kind} ({msg.template}) may not have "
                        f"reached {who}: {why}. Please check with them."
                    )[:500],
                    dedupe_key=f"message:{msg.id}:unresolved",
                    created_at=now,
                    message_count=0,
                )
            )
            db.commit()
        event(log, "in-doubt send unresolved", logging.WARNING, id=msg.id, kind=msg.kind)
        return "unresolved"
