"""Claim due messages, check them again, render, send, record.

A claim is a lease on the row (``lease_owner``, ``lease_until``): PostgreSQL uses
``FOR UPDATE SKIP LOCKED`` so several workers share the outbox; SQLite relies on
``BEGIN IMMEDIATE`` (one host). A claimed message is marked ``sending`` (committed)
just before the provider is called, and ``sent`` after; a crash in between leaves it
``sending`` with an expired lease, visible and never silently re-sent. A claimed
message not yet marked ``sending`` is simply re-claimed when its lease expires.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.engine import make_read_session_factory
from reminders.db.models import Location, Message, OptOut, Patient, TreatmentSession
from reminders.db.types import UtcDateTime, utcnow
from reminders.dispatch.compose import render_outgoing
from reminders.logs import event
from reminders.metrics import MESSAGES_SENT, PROVIDER_ERRORS
from reminders.outbox.consent import normalise_address, set_opt_out
from reminders.outbox.status import PATIENT_KINDS
from reminders.planning.policy import Policy
from reminders.planning.timecalc import place_outside_quiet, quiet_period, recipient_zone
from reminders.providers.base import OutcomeUnknown, OutgoingMessage, Provider, ProviderError
from reminders.settings import Settings
from reminders.templates.render import resolve_template

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Verdict:
    """What to do with a claimed message. ``action``: send | skip | cancel | defer | fallback."""

    action: str
    reason: str | None = None
    defer_until: datetime | None = None


SEND = Verdict("send")


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


# --- claiming --------------------------------------------------------------------------------


_CLAIM_SQL = {
    # Several workers: SKIP LOCKED lets each take different rows without waiting.
    "postgresql": """
        WITH due AS (
            SELECT id FROM messages
            WHERE status = 'planned' AND due_at <= :now
              AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
              AND (lease_until IS NULL OR lease_until < :now)
            ORDER BY due_at, id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        UPDATE messages m SET lease_owner = :owner, lease_until = :until
        FROM due WHERE m.id = due.id
        RETURNING m.id
    """,
    # One host: the transaction began with BEGIN IMMEDIATE, so it already holds the write lock.
    "sqlite": """
        UPDATE messages SET lease_owner = :owner, lease_until = :until
        WHERE id IN (
            SELECT id FROM messages
            WHERE status = 'planned' AND due_at <= :now
              AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
              AND (lease_until IS NULL OR lease_until < :now)
            ORDER BY due_at, id
            LIMIT :limit
        )
        RETURNING id
    """,
}


def claim_due(db: Session, *, now: datetime, owner: str, limit: int, lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due messages to ``owner``; returns their ids (committed)."""
    dialect = db.get_bind().dialect.name
    stmt = text(_CLAIM_SQL["postgresql" if dialect == "postgresql" else "sqlite"]).bindparams(
        # Typed, so times are written exactly as the columns store them (SQLite compares text).
        bindparam("now", type_=UtcDateTime()),
        bindparam("until", type_=UtcDateTime()),
    )
    rows = db.execute(stmt, {"now": now, "until": now + lease, "limit": limit, "owner": owner}).scalars().all()
    db.commit()
    return sorted(int(r) for r in rows)


# The two statements every send runs, built once (statement construction costs more than
# SQLite's execution of them).
_messages = cast(Table, Message.__table__)
_MARK_SENDING = (
    update(_messages)
    .where(_messages.c.id == bindparam("b_id"), _messages.c.status == "planned",
           _messages.c.lease_owner == bindparam("b_owner"))
    .values(status="sending", attempts=_messages.c.attempts + 1, provider=bindparam("b_provider"),
            subject=bindparam("b_subject"), body=bindparam("b_body"), language=bindparam("b_language"),
            updated_at=bindparam("b_updated", type_=UtcDateTime()))
)
# A delivery callback may already have moved the row on (delivered): never move it back.
_MARK_SENT = (
    update(_messages)
    .where(_messages.c.id == bindparam("b_id"))
    .values(provider_message_id=bindparam("b_provider_id"), sent_at=bindparam("b_sent_at", type_=UtcDateTime()),
            lease_owner=None, lease_until=None, updated_at=bindparam("b_updated", type_=UtcDateTime()),
            status=case((_messages.c.status == "sending", "sent"), else_=_messages.c.status),
            reason=case((_messages.c.status == "sending", None), else_=_messages.c.reason))
)


# --- the checks at send time (pure given the facts) ------------------------------------------


def session_verdict(msg: Message, session: TreatmentSession | None, now: datetime) -> Verdict | None:
    if msg.session_id is None:
        return None
    if session is None:
        return Verdict("cancel", "session_deleted")
    if session.status == "cancelled":
        return Verdict("cancel", "session_cancelled")
    if msg.kind == "reminder":
        if msg.session_starts_at is not None and session.starts_at != msg.session_starts_at:
            return Verdict("cancel", "rescheduled")
        if session.status not in ACTIVE_SESSION_STATUSES:
            return Verdict("cancel", f"session_{session.status}")
        if now >= session.starts_at:
            return Verdict("skip", "session_started")
    if msg.kind == "checkin" and session.status == "no_show":
        return Verdict("cancel", "session_no_show")
    return None


def contact_problem(channel: str, patient: Patient, opted_out: bool) -> str | None:
    """Why this patient cannot get a message on this channel now, or None."""
    if channel == "sms":
        if not patient.phone:
            return f"no_phone: {patient.phone_problem}" if patient.phone_problem else "no_phone"
        if patient.phone_problem:
            return f"phone_unusable: {patient.phone_problem}"
        if not patient.sms_consent:
            return "no_sms_consent"
        if opted_out:
            return "sms_opted_out"
        return None
    if not patient.email:
        return "no_email"
    if patient.email_problem:
        return f"email_unusable: {patient.email_problem}"
    if not patient.email_consent:
        return "no_email_consent"
    if opted_out:
        return "email_opted_out"
    return None


def quiet_verdict(msg: Message, *, now: datetime, policy: Policy, tz: Any, session_start: datetime | None) -> Verdict | None:
    """Re-check quiet hours at send time (a late pass must not text at 2 a.m.)."""
    quiet = policy.quiet(msg.channel)
    if quiet is None or quiet_period(now, quiet, tz) is None:
        return None
    pre_session = msg.kind == "reminder"
    placement = place_outside_quiet(
        now, pre_session=pre_session, session_start=session_start, quiet=quiet, tz=tz,
        min_lead=policy.min_lead, margin=policy.quiet_margin,
    )
    limit = session_start if pre_session else msg.not_after
    if placement.due_at > now and (limit is None or placement.due_at < limit):
        return Verdict("defer", "quiet_hours", defer_until=placement.due_at)
    return Verdict("skip", "quiet_hours")


# --- the dispatcher --------------------------------------------------------------------------


@dataclass
class Facts:
    """What the send-time checks need about a batch, read in a few queries."""

    opted_out: set[tuple[str, str]] = field(default_factory=set)
    superseded: set[int] = field(default_factory=set)
    booked_patients: set[str] = field(default_factory=set)


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
        self._pool = ThreadPoolExecutor(max_workers=self.settings.send_concurrency, thread_name_prefix="send")
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
                ids = claim_due(db, now=at, owner=self.owner, limit=self.settings.dispatch_batch_size,
                                lease=timedelta(seconds=self.settings.lease_seconds))
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

    def _prepare(self, ids: list[int], now: datetime, templates: TemplateCache,
                 report: DispatchReport) -> list[Job]:
        with self._reader() as db:
            rows = db.execute(
                select(Message, Patient, TreatmentSession, Location)
                .outerjoin(Patient, Patient.id == Message.patient_id)
                .outerjoin(TreatmentSession, TreatmentSession.id == Message.session_id)
                .outerjoin(Location, Location.id == TreatmentSession.location_id)
                .where(Message.id.in_(ids))
                .order_by(Message.id)
            ).all()
            facts = self._facts(db, [r[0] for r in rows], [r[1] for r in rows if r[1] is not None], now)
            db.expunge_all()
        verdicts: list[tuple[Message, Verdict]] = []
        sendable: list[tuple[Message, Patient | None, TreatmentSession | None, Location | None, str]] = []
        for msg, patient, session, location in rows:
            if msg.lease_owner != self.owner or msg.status != "planned":
                report.add("lost_lease")
                continue
            if self.stopping.is_set():
                verdicts.append((msg, Verdict("release")))
                continue
            verdict, address = self._verdict(msg, patient, session, location, facts, now)
            if verdict.action == "send" and address is not None:
                sendable.append((msg, patient, session, location, address))
            else:
                verdicts.append((msg, verdict))
        jobs: list[Job] = []
        for msg, who, visit, place, address in sendable:
            try:
                outgoing, language = render_outgoing(templates.source, self.settings, msg=msg, patient=who,
                                                     session=visit, location=place, to_address=address)
            except Exception as exc:  # noqa: BLE001 - a broken template fails this message only
                event(log, "template error", level=logging.WARNING, id=msg.id, template=msg.template)
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

    def _facts(self, db: Session, messages: list[Message], patients: list[Patient], now: datetime) -> Facts:
        facts = Facts()
        addresses = {a for p in patients for a in (p.phone, normalise_address("email", p.email or "")) if a}
        if addresses:
            facts.opted_out = {(c, a) for c, a in db.execute(
                select(OptOut.channel, OptOut.address).where(OptOut.active.is_(True), OptOut.address.in_(addresses))
            )}
        reminders = [m for m in messages if m.kind == "reminder" and m.session_id]
        if reminders:
            siblings = db.execute(
                select(Message.id, Message.session_id, Message.channel, Message.session_starts_at, Message.due_at)
                .where(Message.session_id.in_({m.session_id for m in reminders}), Message.kind == "reminder",
                       Message.status.in_(("planned", "sending", "sent", "delivered")), Message.due_at <= now)
            ).all()
            by_group: dict[tuple[Any, ...], list[tuple[datetime, int]]] = defaultdict(list)
            for mid, sid, ch, starts, due in siblings:
                by_group[(sid, ch, starts)].append((due, mid))
            for m in reminders:
                # Superseded when a later-due reminder of the same session, channel and start is due too.
                if any((due, mid) > (m.due_at, m.id) for due, mid in by_group[(m.session_id, m.channel,
                                                                               m.session_starts_at)]):
                    facts.superseded.add(m.id)
        nudged = {m.patient_id for m in messages if m.kind == "nudge" and m.patient_id}
        if nudged:
            facts.booked_patients = set(db.scalars(
                select(TreatmentSession.patient_id).where(
                    TreatmentSession.patient_id.in_(nudged), TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
                    TreatmentSession.starts_at > now)
            ))
        return facts

    # -- verdicts -------------------------------------------------------------------------------

    def _verdict(self, msg: Message, patient: Patient | None, session: TreatmentSession | None,
                 location: Location | None, facts: Facts, now: datetime) -> tuple[Verdict, str | None]:
        if msg.not_after is not None and now >= msg.not_after:
            return Verdict("skip", "session_started" if msg.kind == "reminder" else "expired"), None
        if msg.kind not in PATIENT_KINDS:
            # Staff alerts and replies: explicit recipient, no consent or quiet-hours gate.
            return (SEND, msg.to_address) if msg.to_address else (Verdict("skip", "no_recipient"), None)
        if patient is None:
            return Verdict("cancel", "patient_deleted"), None
        found = session_verdict(msg, session, now)
        if found is not None:
            return found, None
        if msg.id in facts.superseded:
            return Verdict("skip", "superseded"), None
        if msg.kind == "nudge" and msg.patient_id in facts.booked_patients:
            return Verdict("cancel", "session_booked"), None

        def problem_on(channel: str) -> str | None:
            address = patient.phone if channel == "sms" else patient.email
            opted = bool(address) and (channel, normalise_address(channel, address or "")) in facts.opted_out
            return contact_problem(channel, patient, opted)

        problem = problem_on(msg.channel)
        if problem is not None:
            rule = self.policy.rule(msg.rule)
            if rule is not None and rule.fallback and rule.fallback != msg.channel:
                other_problem = problem_on(rule.fallback)
                if other_problem is None:
                    return Verdict("fallback", problem), None
                return Verdict("skip", f"{problem}; {rule.fallback} fallback impossible: {other_problem}"), None
            return Verdict("skip", problem), None
        tz = recipient_zone(patient_tz=patient.timezone, location_tz=location.timezone if location else None,
                            default=self.settings.zone)
        quiet = quiet_verdict(msg, now=now, policy=self.policy, tz=tz,
                              session_start=session.starts_at if session else None)
        if quiet is not None:
            return quiet, None
        return SEND, patient.phone if msg.channel == "sms" else patient.email

    def _apply_verdict(self, db: Session, msg: Message, verdict: Verdict, now: datetime) -> str | None:
        if verdict.action == "release":
            db.execute(update(Message).where(Message.id == msg.id, Message.lease_owner == self.owner,
                                             Message.status == "planned")
                       .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
            return None
        if verdict.action == "defer":
            assert verdict.defer_until is not None
            db.execute(
                update(Message).where(Message.id == msg.id, Message.lease_owner == self.owner)
                .values(due_at=verdict.defer_until, reason=f"deferred: {verdict.reason}", lease_owner=None,
                        lease_until=None, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return "deferred"
        if verdict.action == "fallback":
            rule = self.policy.rule(msg.rule)
            assert rule is not None and rule.fallback is not None
            self._finish(db, msg.id, status="skipped", reason=f"{verdict.reason}; fell back to {rule.fallback}")
            add_fallback(db, msg, rule.fallback, now)
            return "skipped"
        status = {"cancel": "cancelled", "fail": "failed"}.get(verdict.action, "skipped")
        self._finish(db, msg.id, status=status, reason=verdict.reason)
        return status

    def _finish(self, db: Session, message_id: int, *, status: str, reason: str | None,
                error_code: str | None = None, from_status: str = "planned") -> None:
        values: dict[str, Any] = {"status": status, "reason": reason, "lease_owner": None, "lease_until": None,
                                  "updated_at": utcnow()}
        if error_code is not None:
            values["error_code"] = error_code
        db.execute(update(Message).where(Message.id == message_id, Message.status == from_status)
                   .values(**values).execution_options(synchronize_session=False))

    def _release_all(self, ids: list[int]) -> None:
        with self.session_factory() as db:
            db.execute(update(Message).where(Message.id.in_(ids), Message.lease_owner == self.owner,
                                             Message.status == "planned")
                       .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
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
                marked = db.connection().execute(_MARK_SENDING, {
                    "b_id": msg.id, "b_owner": self.owner, "b_provider": job.provider.name,
                    "b_subject": job.outgoing.subject, "b_body": job.outgoing.body, "b_language": job.language,
                    "b_updated": utcnow(),
                }).rowcount
                db.commit()
            if marked != 1:
                return "lost_lease"  # cancelled or re-planned meanwhile: not ours to send
            return self._send(job.provider, msg, job.outgoing, msg.attempts + 1, now)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
            log.exception("dispatch error", extra={"fields": {"id": msg.id}})
            with self.session_factory() as db:
                self._finish(db, msg.id, status="failed", reason=f"internal_error: {type(exc).__name__}")
                db.commit()
            return "failed"

    def _send(self, provider: Provider, msg: Message, outgoing: OutgoingMessage, attempts: int, now: datetime) -> str:
        try:
            provider.throttle()
            provider_id = provider.send(outgoing)
        except OutcomeUnknown as exc:
            PROVIDER_ERRORS.labels(provider.name, exc.code or "none", "unknown").inc()
            return self._record_in_doubt(msg, exc, now)
        except ProviderError as exc:
            PROVIDER_ERRORS.labels(provider.name, exc.code or "none", str(exc.permanent).lower()).inc()
            return self._record_error(msg, exc, attempts, now)
        except Exception as exc:  # noqa: BLE001 - an adapter bug: outcome unknown, do not resend blindly
            PROVIDER_ERRORS.labels(provider.name, "exception", "unknown").inc()
            log.exception("provider raised", extra={"fields": {"id": msg.id}})
            with self.session_factory() as db:
                self._finish(db, msg.id, status="failed", reason=f"provider_exception: {type(exc).__name__}",
                             from_status="sending")
                db.commit()
            return "failed"
        MESSAGES_SENT.labels(msg.channel, provider.name).inc()
        sent_at = max(now, self.clock())  # when the provider accepted it (the pass's clock under tick --now)
        with self.session_factory() as db:
            db.connection().execute(_MARK_SENT, {"b_id": msg.id, "b_provider_id": provider_id,
                                                 "b_sent_at": sent_at, "b_updated": utcnow()})
            db.commit()
        event(log, "message sent", id=msg.id, channel=msg.channel, rule=msg.rule, provider=provider.name)
        return "sent"

    def _record_in_doubt(self, msg: Message, exc: ProviderError, now: datetime) -> str:
        """Left ``sending`` with an expired lease: visible as in doubt, never re-sent blindly.
        A delivery callback (it carries the outbox id) settles it either way."""
        with self.session_factory() as db:
            db.execute(
                update(Message).where(Message.id == msg.id, Message.status == "sending")
                .values(reason=f"in doubt: {exc} ({exc.code}); not re-sent", error_code=exc.code,
                        lease_owner=None, lease_until=now, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            db.commit()
        event(log, "send outcome unknown", level=logging.WARNING, id=msg.id, code=exc.code)
        return "in_doubt"

    def _record_error(self, msg: Message, exc: ProviderError, attempts: int, now: datetime) -> str:
        code = exc.code or "none"
        with self.session_factory() as db:
            if not exc.permanent and attempts < self.settings.max_attempts:
                backoff = min(self.settings.retry_base_seconds * 2 ** (attempts - 1), self.settings.retry_max_seconds)
                backoff *= 0.5 + self._rng.random()  # jitter
                if exc.retry_after is not None:
                    backoff = max(backoff, exc.retry_after)
                next_at = now + timedelta(seconds=backoff)
                if msg.not_after is None or next_at < msg.not_after:
                    db.execute(
                        update(Message).where(Message.id == msg.id, Message.status == "sending")
                        .values(status="planned", next_attempt_at=next_at, error_code=code,
                                reason=f"retrying after transient error {code}", lease_owner=None,
                                lease_until=None, updated_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
                    db.commit()
                    event(log, "transient error, will retry", id=msg.id, code=code, attempt=attempts)
                    return "retrying"
                reason = f"gave_up: transient error {code}; a retry would be too late"
            elif not exc.permanent:
                reason = f"gave_up: transient error {code} after {attempts} attempts"
            else:
                reason = f"provider_error {code}: {exc}"[:500]
            self._finish(db, msg.id, status="failed", reason=reason, error_code=code, from_status="sending")
            fallback = self._apply_effect(db, msg, exc)
            db.commit()
        event(log, "send failed", level=logging.WARNING, id=msg.id, code=code, permanent=exc.permanent)
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
            add_fallback(db, msg, rule.fallback, now)
            db.commit()


class TemplateCache:
    """Template sources for one pass: one lookup per (name, channel, language), not per message.
    A staff edit is picked up by the next pass."""

    def __init__(self, settings: Settings, reader: sessionmaker[Session]) -> None:
        self.settings = settings
        self.reader = reader
        self._sources: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()

    def source(self, name: str, channel: str, language: str | None) -> Any:
        key = (name, channel, language)
        with self._lock:
            if key not in self._sources:
                with self.reader() as db:
                    self._sources[key] = resolve_template(db, self.settings, name=name, channel=channel,
                                                          language=language)
            return self._sources[key]


def add_fallback(db: Session, msg: Message, channel: str, now: datetime) -> None:
    """Queue the same message on the rule's fallback channel (once)."""
    from reminders.planning.planner import _insert_ignore

    _insert_ignore(db, [{
        "dedupe_key": f"{msg.dedupe_key}|fallback:{channel}"[:255],
        "patient_id": msg.patient_id, "session_id": msg.session_id, "session_starts_at": msg.session_starts_at,
        "rule": msg.rule, "kind": msg.kind, "channel": channel, "template": msg.template,
        "due_at": now, "not_after": msg.not_after, "status": "planned", "attempts": 0,
        "data": {**(msg.data or {}), "fallback_from": msg.id}, "created_at": utcnow(), "updated_at": utcnow(),
    }])


def count_in_doubt(db: Session, now: datetime) -> int:
    return int(db.scalar(select(func.count()).select_from(Message).where(
        Message.status == "sending", Message.lease_until < now)) or 0)
