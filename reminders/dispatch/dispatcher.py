"""The dispatcher pass: claim due messages, check them again, render, send, record.

Claims, leases and every status change are in :mod:`reminders.outbox.store`; the checks
at send time in :mod:`reminders.dispatch.checks`; rendering in
:mod:`reminders.dispatch.compose`; what to do after a provider error in
:mod:`reminders.dispatch.retry`.

The order of a send is what keeps a message from being lost or sent twice:

1. its provider's rate slot is taken while the row is still ``planned`` (a crash while
   waiting leaves it ``planned``, re-claimed when its lease expires);
2. the row becomes ``sending`` (committed) with the text, the address and a lease covering
   the call;
3. the provider is called: the only moment a message can be in doubt;
4. the outcome is written, retried until the database answers.

A database error is never the message's fault: before the call the row stays ``planned``;
after it the outcome write is retried, and if the process dies first the row is in doubt,
for a provider report or the reconcile pass (:mod:`reminders.dispatch.reconcile`). A lost
answer (reset, read timeout) is in doubt too, never retried blindly. Each channel is claimed
and sent by its own loop and threads, so a slow provider never holds another's messages.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import make_read_session_factory
from reminders.db.models import Location, Message, Patient, TreatmentSession
from reminders.dispatch import retry
from reminders.dispatch.checks import Verdict, verdict_for
from reminders.dispatch.compose import TemplateCache, render_outgoing
from reminders.dispatch.facts import read_facts
from reminders.dispatch.report import DispatchReport
from reminders.logs import event
from reminders.metrics import MESSAGES_SENT, PROVIDER_ERRORS
from reminders.outbox import settle, store
from reminders.outbox.consent import set_opt_out
from reminders.outbox.status import TO_PATIENT_KINDS, target
from reminders.planning.policy import Policy
from reminders.providers.base import OutcomeUnknown, OutgoingMessage, Provider, ProviderError
from reminders.settings import Settings

log = logging.getLogger(__name__)

# While stopping, an outcome write is retried this long before the row is left in doubt.
STOP_WRITE_SECONDS = 15.0


def _retryable(exc: DBAPIError) -> bool:
    """A database that is away (restarting, locked, the connection dropped), not a bad query."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


@dataclass
class Job:
    """A message cleared to go: rendered, and the row's state when it was claimed."""

    msg: Message
    outgoing: OutgoingMessage
    language: str
    provider: Provider


@dataclass
class Dispatcher:
    """Sends due messages. A pass runs one loop per channel at the same time; each claims a
    batch of its channel, reads everything the checks need in a few queries, applies the
    non-send outcomes together, renders, then sends each message with its own two small
    commits (``sending`` before the provider call, the outcome after), on the channel's
    bounded pool of threads that overlaps the provider's network time."""

    settings: Settings
    policy: Policy
    session_factory: sessionmaker[Session]
    providers: dict[str, Provider]
    owner: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._pools = {
            channel: ThreadPoolExecutor(
                max_workers=self.settings.send_concurrency, thread_name_prefix=f"send-{channel}"
            )
            for channel in self.providers
        }
        self._loops = ThreadPoolExecutor(
            max_workers=max(len(self.providers), 1), thread_name_prefix="dispatch"
        )
        self._rng = random.Random()
        self._fallbacks = threading.Event()
        bind = self.session_factory.kw.get("bind")
        self._reader = make_read_session_factory(bind) if bind is not None else self.session_factory

    def close(self) -> None:
        self._loops.shutdown(wait=True)
        for pool in self._pools.values():
            pool.shutdown(wait=True)

    # A pass: each channel claims and sends batches until nothing is due (or we are stopping).
    def run_pass(self, now: datetime | None = None) -> DispatchReport:
        report = DispatchReport()
        templates = TemplateCache(self.settings, self._reader)
        while True:
            self._fallbacks.clear()
            loops = [
                self._loops.submit(self._run_channel, channel, now, templates)
                for channel in self.providers
            ]
            for loop in loops:
                report.merge(loop.result())
            # A fallback queued on a channel whose loop had already finished goes out now.
            if not self._fallbacks.is_set() or self.stopping.is_set():
                return report

    def claim_limit(self, provider: Provider) -> int:
        """A batch small enough to go out well within its lease at the provider's rate (at
        1 message/s and a 120-s lease, 30 messages), so claimed rows do not sit past it."""
        batch = self.settings.dispatch_batch_size
        rate = provider.limiter.rate
        if rate <= 0:
            return batch
        return max(1, min(batch, int(rate * self.settings.lease_seconds / 4)))

    def _run_channel(
        self, channel: str, now: datetime | None, templates: TemplateCache
    ) -> DispatchReport:
        report = DispatchReport()
        limit = self.claim_limit(self.providers[channel])
        while not self.stopping.is_set():
            at = now or self.clock()
            with self.session_factory() as db:
                ids = store.claim_due(
                    db,
                    now=at,
                    owner=self.owner,
                    limit=limit,
                    lease=timedelta(seconds=self.settings.lease_seconds),
                    channel=channel,
                )
            if not ids:
                break
            try:
                jobs = self._prepare(ids, at, templates, report)
            except Exception:  # noqa: BLE001 - leases expire and the batch is tried again
                log.exception("dispatch batch failed", extra={"fields": {"messages": len(ids)}})
                self._release_all(ids)
                break
            batch = DispatchReport()
            for outcome in self._pools[channel].map(self._deliver, jobs, [at] * len(jobs)):
                batch.add(outcome)
            if batch.interrupted:
                # The database went away mid-batch: give back what was not sent (only rows
                # still planned and ours), so they need not wait for the lease to expire.
                self._release_all(ids)
            report.merge(batch)
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
                    now=now,
                    policy=self.policy,
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
                event="skip",
                reason=f"{verdict.reason}; fell back to {rule.fallback}",
            )
            store.add_fallback(db, msg, rule.fallback, now)
            return "skipped"
        move = {"cancel": "cancel", "fail": "fail_unsent"}.get(verdict.action, "skip")
        store.finish(db, msg.id, event=move, reason=verdict.reason)
        return target(move)

    def _release_all(self, ids: list[int]) -> None:
        try:
            with self.session_factory() as db:
                store.release(db, ids, owner=self.owner)
                db.commit()
        except DBAPIError:
            # The database is down: the leases expire and the rows are claimed again.
            event(log, "could not release claimed messages", logging.WARNING, messages=len(ids))

    def _write(self, what: str, message_id: int, change: Callable[[Session], object]) -> bool:
        """Run ``change`` and commit, retrying while the database does not answer: an outcome
        the provider gave must not be lost to a database restart. Gives up only when the worker
        is stopping and the database has not answered for a while (the row is then in doubt,
        for the reconcile pass)."""
        delay, waited = 0.1, 0.0
        while True:
            try:
                with self.session_factory() as db:
                    change(db)
                    db.commit()
                if waited:
                    event(log, "outcome written after a database outage", id=message_id, what=what)
                return True
            except DBAPIError as exc:
                if not _retryable(exc) or (self.stopping.is_set() and waited >= STOP_WRITE_SECONDS):
                    log.error(
                        "could not record a send outcome",
                        extra={"fields": {"id": message_id, "what": what}},
                    )
                    return False
                if not waited:
                    event(
                        log,
                        "database unavailable, retrying an outcome write",
                        logging.WARNING,
                        id=message_id,
                        what=what,
                        error=type(exc.orig).__name__,
                    )
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    # -- sending --------------------------------------------------------------------------------

    def _deliver(self, job: Job, now: datetime) -> str:
        """Take the rate slot, mark ``sending`` (committed), call the provider, record."""
        msg = job.msg
        try:
            while True:
                # The wait for the provider's slot happens while the row is still ``planned``.
                slot = job.provider.throttle(self.stopping)
                if slot is None:
                    self._release_all([msg.id])
                    return "lost_lease"
                if not self._mark_sending(job, now):
                    return "lost_lease"  # cancelled or re-planned meanwhile: not ours to send
                if slot.on_time():
                    break
                # Marking took it past its slot: sending now could crowd the next slots'
                # requests into one second. Give the row back and take another slot.
                with self.session_factory() as db:
                    store.unmark_sending(db, msg.id, owner=self.owner)
                    db.commit()
        except DBAPIError as exc:
            # Not sent: the row is still planned (or, if a commit landed unseen, in doubt
            # with no provider call, which the reconcile pass finds absent and re-sends).
            event(
                log,
                "database error before sending",
                logging.WARNING,
                id=msg.id,
                error=type(exc.orig).__name__,
            )
            return "interrupted"
        return self._send(job.provider, msg, job.outgoing, msg.attempts + 1, now)

    def _mark_sending(self, job: Job, now: datetime) -> bool:
        with self.session_factory() as db:
            marked = store.mark_sending(
                db,
                job.msg.id,
                owner=self.owner,
                provider=job.provider.name,
                to=job.outgoing.to,
                subject=job.outgoing.subject,
                body=job.outgoing.body,
                language=job.language,
                at=max(now, self.clock()),
                in_flight=timedelta(seconds=self.settings.provider_timeout_seconds + 10),
            )
            db.commit()
        return marked

    def _send(
        self,
        provider: Provider,
        msg: Message,
        outgoing: OutgoingMessage,
        attempts: int,
        now: datetime,
    ) -> str:
        try:
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
            unknown = OutcomeUnknown(f"provider raised {type(exc).__name__}", code="exception")
            return self._record_in_doubt(msg, unknown, now)
        MESSAGES_SENT.labels(msg.channel, provider.name).inc()
        # When the provider accepted it (the pass's clock under tick --now).
        sent_at = max(now, self.clock())
        self._write(
            "sent",
            msg.id,
            lambda db: store.mark_sent(
                db, msg.id, provider_message_id=provider_id, sent_at=sent_at
            ),
        )
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
        """Left ``sending`` with an expired lease: in doubt, for a provider report or the
        reconcile pass to settle; never re-sent blindly."""
        self._write(
            "in doubt",
            msg.id,
            lambda db: settle.mark_in_doubt(
                db,
                msg.id,
                reason=f"in doubt: {exc} ({exc.code}); being reconciled",
                error_code=exc.code,
                now=now,
            ),
        )
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
        if decision.retry_at is not None:
            retry_at = decision.retry_at
            self._write(
                "retry",
                msg.id,
                lambda db: store.schedule_retry(db, msg.id, at=retry_at, error_code=code),
            )
            event(log, "transient error, will retry", id=msg.id, code=code, attempt=attempts)
            return "retrying"
        fallback = False

        def failed(db: Session) -> None:
            nonlocal fallback
            store.finish(db, msg.id, event="refused", reason=decision.reason, error_code=code)
            fallback = self._apply_effect(db, msg, exc)

        self._write("failed", msg.id, failed)
        event(
            log, "send failed", level=logging.WARNING, id=msg.id, code=code, permanent=exc.permanent
        )
        if fallback:
            self._queue_fallback(msg, now)
        return "failed"

    def _apply_effect(self, db: Session, msg: Message, exc: ProviderError) -> bool:
        """What a permanent error says about the recipient; True when a fallback may help."""
        if not exc.permanent or msg.patient_id is None or msg.kind not in TO_PATIENT_KINDS:
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
        self._fallbacks.set()
