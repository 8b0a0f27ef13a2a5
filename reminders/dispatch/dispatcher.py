"""The dispatcher pass: claim due messages, check them again, render, send, record.

Claims, leases and every status change are in :mod:`reminders.outbox.store`; the checks
at send time in :mod:`reminders.dispatch.checks`; rendering in
:mod:`reminders.dispatch.compose`; what to do after a provider error in
:mod:`reminders.dispatch.retry`. A claimed message not yet marked ``sending`` is simply
re-claimed when its lease expires; one marked ``sending`` whose outcome was never
recorded stays in doubt, visible and never silently re-sent.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import make_read_session_factory
from reminders.db.models import Location, Message, Patient, TreatmentSession
from reminders.dispatch import retry
from reminders.dispatch.checks import Verdict, verdict_for
from reminders.dispatch.compose import TemplateCache, render_outgoing
from reminders.dispatch.facts import read_facts
from reminders.logs import event
from reminders.metrics import MESSAGES_SENT, PROVIDER_ERRORS
from reminders.outbox import store
from reminders.outbox.consent import set_opt_out
from reminders.outbox.status import PATIENT_KINDS
from reminders.planning.policy import Policy
from reminders.providers.base import OutcomeUnknown, OutgoingMessage, Provider, ProviderError
from reminders.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0
    retrying: int = 0
    in_doubt: int = 0
    lost_lease: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def merge(self, other: DispatchReport) -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        return sum(vars(self).values())

    def line(self) -> str:
        return (
            f"sent {self.sent}, failed {self.failed}, skipped {self.skipped}, cancelled {self.cancelled}, "
            f"deferred {self.deferred}, retrying {self.retrying}"
            + (f", in doubt {self.in_doubt}" if self.in_doubt else "")
        )


@dataclass
class Job:
    """A message cleared to go: rendered, and the row's state when it was claimed."""

    msg: Message
    outgoing: OutgoingMessage
    language: str
    provider: Provider


@dataclass
class Dispatcher:
    """Sends due messages. A pass claims a batch, reads everything the checks need in a
    few queries, applies the non-send outcomes together, renders, then sends each message
    with its own two small commits (``sending`` before the provider call, the outcome
    after), on a bounded pool of threads that overlaps the providers' network time."""

    settings: Settings
    policy: Policy
    session_factory: sessionmaker[Session]
    providers: dict[str, Provider]
    owner: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.send_concurrency, thread_name_prefix="send"
        )
        self._rng = random.Random()
        bind = self.session_factory.kw.get("bind")
        self._reader = make_read_session_factory(bind) if bind is not None else self.session_factory

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # A pass: claim and process batches until nothing is due (or we are stopping).
    def run_pass(self, now: datetime | None = None) -> DispatchReport:
        report = DispatchReport()
        templates = TemplateCache(self.settings, self._reader)
        while not self.stopping.is_set():
            at = now or self.clock()
            with self.session_factory() as db:
                ids = store.claim_due(
                    db,
                    now=at,
                    owner=self.owner,
                    limit=self.settings.dispatch_batch_size,
                    lease=timedelta(seconds=self.settings.lease_seconds),
                )
            if not ids:
                break
            try:
                jobs = self._prepare(ids, at, templates, report)
            except Exception:  # noqa: BLE001 - leases expire and the batch is tried again
                log.exception("dispatch batch failed", extra={"fields": {"messages": len(ids)}})
                self._release_all(ids)
                break
            for outcome in self._pool.map(self._deliver, jobs, [at] * len(jobs)):
                report.add(outcome)
        return report

    # -- preparing a batch ----------------------------------------------------------------------

    def _prepare(
        self, ids: list[int], now: datetime, templates: TemplateCache, report: DispatchReport
    ) -> list[Job]:
        with self._reader() as db:
            rows = db.execute(
                select(Message, Patient, TreatmentSession, Location)
                .outerjoin(Patient, Patient.id == Message.patient_id)
                .outerjoin(TreatmentSession, TreatmentSession.id == Message.session_id)
                .outerjoin(Location, Location.id == TreatmentSession.location_id)
                .where(Message.id.in_(ids))
                .order_by(Message.id)
            ).all()
            facts = read_facts(
                db, [r[0] for r in rows], [r[1] for r in rows if r[1] is not None], now
            )
            db.expunge_all()
        verdicts: list[tuple[Message, Verdict]] = []
        sendable: list[
            tuple[Message, Patient | None, TreatmentSession | None, Location | None, str]
        ] = []
        for msg, patient, session, location in rows:
            if msg.lease_owner != self.owner or msg.status != "planned":
                report.add("lost_lease")
                continue
            if self.stopping.is_set():
                verdicts.append((msg, Verdict("release")))
                continue
            verdict, address = verdict_for(
                msg,
                patient,
                session,
                location,
                facts,
                now,
                policy=self.policy,
                default_zone=self.settings.zone,
            )
            if verdict.action == "send" and address is not None:
                sendable.append((msg, patient, session, location, address))
            else:
                verdicts.append((msg, verdict))
        jobs: list[Job] = []
        for msg, who, visit, place, address in sendable:
            try:
                outgoing, language = render_outgoing(
                    templates.source,
                    self.settings,
                    msg=msg,
                    patient=who,
                    session=visit,
                    location=place,
                    to_address=address,
                )
            except Exception as exc:  # noqa: BLE001 - a broken template fails this message only
                event(
                    log, "template error", level=logging.WARNING, id=msg.id, template=msg.template
                )
                verdicts.append((msg, Verdict("fail", f"template_error: {exc}"[:500])))
                continue
            jobs.append(Job(msg, outgoing, language, self.providers[msg.channel]))
        if verdicts:
            with self.session_factory() as db:
                for msg, verdict in verdicts:
                    outcome = self._apply_verdict(db, msg, verdict, now)
                    if outcome:
                        report.add(outcome)
                db.commit()
        return jobs

    # -- verdicts -------------------------------------------------------------------------------

    def _apply_verdict(
        self, db: Session, msg: Message, verdict: Verdict, now: datetime
    ) -> str | None:
        if verdict.action == "release":
            store.release(db, [msg.id], owner=self.owner)
            return None
        if verdict.action == "defer":
            assert verdict.defer_until is not None
            store.defer(
                db, msg.id, owner=self.owner, until=verdict.defer_until, reason=verdict.reason or ""
            )
            return "deferred"
        if verdict.action == "fallback":
            rule = self.policy.rule(msg.rule)
            assert rule is not None and rule.fallback is not None
            store.finish(
                db,
                msg.id,
                status="skipped",
                reason=f"{verdict.reason}; fell back to {rule.fallback}",
            )
            store.add_fallback(db, msg, rule.fallback, now)
            return "skipped"
        status = {"cancel": "cancelled", "fail": "failed"}.get(verdict.action, "skipped")
        store.finish(db, msg.id, status=status, reason=verdict.reason)
        return status

    def _release_all(self, ids: list[int]) -> None:
        with self.session_factory() as db:
            store.release(db, ids, owner=self.owner)
            db.commit()

    # -- sending --------------------------------------------------------------------------------

    def _deliver(self, job: Job, now: datetime) -> str:
        """Mark ``sending`` (committed), call the provider, record the outcome."""
        msg = job.msg
        try:
            if self.stopping.is_set():
                self._release_all([msg.id])
                return "lost_lease"
            with self.session_factory() as db:
                marked = store.mark_sending(
                    db,
                    msg.id,
                    owner=self.owner,
                    provider=job.provider.name,
                    subject=job.outgoing.subject,
                    body=job.outgoing.body,
                    language=job.language,
                )
                db.commit()
            if not marked:
                return "lost_lease"  # cancelled or re-planned meanwhile: not ours to send
            return self._send(job.provider, msg, job.outgoing, msg.attempts + 1, now)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
            log.exception("dispatch error", extra={"fields": {"id": msg.id}})
            with self.session_factory() as db:
                store.finish(
                    db, msg.id, status="failed", reason=f"internal_error: {type(exc).__name__}"
                )
                db.commit()
            return "failed"

    def _send(
        self,
        provider: Provider,
        msg: Message,
        outgoing: OutgoingMessage,
        attempts: int,
        now: datetime,
    ) -> str:
        try:
            provider.throttle()
            provider_id = provider.send(outgoing)
        except OutcomeUnknown as exc:
            PROVIDER_ERRORS.labels(provider.name, exc.code or "none", "unknown").inc()
            return self._record_in_doubt(msg, exc, now)
        except ProviderError as exc:
            PROVIDER_ERRORS.labels(
                provider.name, exc.code or "none", str(exc.permanent).lower()
            ).inc()
            return self._record_error(msg, exc, attempts, now)
        except Exception as exc:  # noqa: BLE001 - an adapter bug: outcome unknown, do not resend blindly
            PROVIDER_ERRORS.labels(provider.name, "exception", "unknown").inc()
            log.exception("provider raised", extra={"fields": {"id": msg.id}})
            with self.session_factory() as db:
                store.finish(
                    db,
                    msg.id,
                    status="failed",
                    reason=f"provider_exception: {type(exc).__name__}",
                    from_status="sending",
                )
                db.commit()
            return "failed"
        MESSAGES_SENT.labels(msg.channel, provider.name).inc()
        sent_at = max(
            now, self.clock()
        )  # when the provider accepted it (the pass's clock under tick --now)
        with self.session_factory() as db:
            store.mark_sent(db, msg.id, provider_message_id=provider_id, sent_at=sent_at)
            db.commit()
        event(
            log,
            "message sent",
            id=msg.id,
            channel=msg.channel,
            rule=msg.rule,
            provider=provider.name,
        )
        return "sent"

    def _record_in_doubt(self, msg: Message, exc: ProviderError, now: datetime) -> str:
        """Left ``sending`` with an expired lease: visible as in doubt, never re-sent blindly.
        A delivery callback (it carries the outbox id) settles it either way."""
        with self.session_factory() as db:
            store.mark_in_doubt(
                db,
                msg.id,
                reason=f"in doubt: {exc} ({exc.code}); not re-sent",
                error_code=exc.code,
                now=now,
            )
            db.commit()
        event(log, "send outcome unknown", level=logging.WARNING, id=msg.id, code=exc.code)
        return "in_doubt"

    def _record_error(self, msg: Message, exc: ProviderError, attempts: int, now: datetime) -> str:
        code = exc.code or "none"
        s = self.settings
        decision = retry.decide(
            exc,
            attempts=attempts,
            now=now,
            not_after=msg.not_after,
            max_attempts=s.max_attempts,
            base_seconds=s.retry_base_seconds,
            max_seconds=s.retry_max_seconds,
            rng=self._rng,
        )
        with self.session_factory() as db:
            if decision.retry_at is not None:
                store.schedule_retry(db, msg.id, at=decision.retry_at, error_code=code)
                db.commit()
                event(log, "transient error, will retry", id=msg.id, code=code, attempt=attempts)
                return "retrying"
            store.finish(
                db,
                msg.id,
                status="failed",
                reason=decision.reason,
                error_code=code,
                from_status="sending",
            )
            fallback = self._apply_effect(db, msg, exc)
            db.commit()
        event(
            log, "send failed", level=logging.WARNING, id=msg.id, code=code, permanent=exc.permanent
        )
        if fallback:
            self._queue_fallback(msg, now)
        return "failed"

    def _apply_effect(self, db: Session, msg: Message, exc: ProviderError) -> bool:
        """What a permanent error says about the recipient; True when a fallback may help."""
        if not exc.permanent or msg.patient_id is None or msg.kind not in PATIENT_KINDS:
            return False
        patient = db.get(Patient, msg.patient_id)
        if patient is None:
            return False
        if exc.effect == "opted_out" and msg.channel == "sms" and patient.phone:
            set_opt_out(db, channel="sms", address=patient.phone, source=f"provider:{exc.code}")
            return True
        if exc.effect == "invalid_address":
            if msg.channel == "sms":
                patient.phone_problem = f"carrier rejected the number ({exc.code})"
            else:
                patient.email_problem = f"address rejected ({exc.code})"
            return True
        return False

    def _queue_fallback(self, msg: Message, now: datetime) -> None:
        rule = self.policy.rule(msg.rule)
        if rule is None or rule.fallback is None or rule.fallback == msg.channel:
            return
        with self.session_factory() as db:
            store.add_fallback(db, msg, rule.fallback, now)
            db.commit()
