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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.logs import event
from reminders.metrics import MESSAGES_SENT, PROVIDER_ERRORS
from reminders.models import (
    Location,
    Message,
    Patient,
    TreatmentSession,
    UtcDateTime,
    utcnow,
)
from reminders.optouts import is_opted_out, set_opt_out
from reminders.planner import ACTIVE_STATUSES, recipient_zone
from reminders.policy import Policy, place_outside_quiet, quiet_period
from reminders.providers.base import OutcomeUnknown, OutgoingMessage, Provider, ProviderError
from reminders.settings import Settings

log = logging.getLogger(__name__)

PATIENT_KINDS = ("reminder", "checkin", "nudge")


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
        if session.status not in ACTIVE_STATUSES:
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
class Dispatcher:
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

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # A pass: claim and process batches until nothing is due (or we are stopping).
    def run_pass(self, now: datetime | None = None) -> DispatchReport:
        report = DispatchReport()
        while not self.stopping.is_set():
            at = now or self.clock()
            with self.session_factory() as db:
                ids = claim_due(db, now=at, owner=self.owner, limit=self.settings.dispatch_batch_size,
                                lease=timedelta(seconds=self.settings.lease_seconds))
            if not ids:
                break
            futures = [self._pool.submit(self.process, mid, at) for mid in ids]
            for fut in futures:
                report.add(fut.result())
        return report

    def process(self, message_id: int, now: datetime) -> str:
        """Handle one claimed message; returns the outcome name for the report."""
        try:
            return self._process(message_id, now)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
            log.exception("dispatch error", extra={"fields": {"id": message_id}})
            with self.session_factory() as db:
                self._finish(db, message_id, status="failed", reason=f"internal_error: {type(exc).__name__}")
                db.commit()
            return "failed"

    def _process(self, message_id: int, now: datetime) -> str:
        with self.session_factory() as db:
            msg = db.get(Message, message_id)
            if msg is None or msg.lease_owner != self.owner or msg.status != "planned":
                return "lost_lease"
            if self.stopping.is_set():
                self._release(db, msg)
                return "lost_lease"
            patient = db.get(Patient, msg.patient_id) if msg.patient_id else None
            session = db.get(TreatmentSession, msg.session_id) if msg.session_id else None
            location = db.get(Location, session.location_id) if session and session.location_id else None
            verdict, to_address = self._verdict(db, msg, patient, session, location, now)
            if verdict.action != "send":
                outcome = self._apply_verdict(db, msg, verdict, now)
                db.commit()
                return outcome
            assert to_address is not None
            try:
                outgoing, language = self._render(db, msg, patient, session, location, to_address)
            except Exception as exc:  # noqa: BLE001 - a broken template fails this message only
                self._finish(db, msg.id, status="failed", reason=f"template_error: {exc}"[:500])
                db.commit()
                event(log, "template error", level=logging.WARNING, id=msg.id, template=msg.template)
                return "failed"
            provider = self.providers[msg.channel]
            marked = db.execute(  # type: ignore[attr-defined]
                update(Message)
                .where(Message.id == msg.id, Message.status == "planned", Message.lease_owner == self.owner)
                .values(status="sending", attempts=Message.attempts + 1, provider=provider.name,
                        subject=outgoing.subject, body=outgoing.body, language=language,
                        updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            db.commit()
            if marked != 1:
                return "lost_lease"
            attempts = msg.attempts + 1
        return self._send(provider, msg, outgoing, attempts, now)

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
        with self.session_factory() as db:
            db.execute(
                update(Message).where(Message.id == msg.id)
                .values(provider_message_id=provider_id, sent_at=now, lease_owner=None, lease_until=None,
                        updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            # A delivery callback may already have moved it on; never move it back.
            db.execute(
                update(Message).where(Message.id == msg.id, Message.status == "sending")
                .values(status="sent", reason=None).execution_options(synchronize_session=False)
            )
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
            self._queue_fallback(msg, reason, now)
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

    def _queue_fallback(self, msg: Message, reason: str, now: datetime) -> None:
        rule = self.policy.rule(msg.rule)
        if rule is None or rule.fallback is None or rule.fallback == msg.channel:
            return
        with self.session_factory() as db:
            add_fallback(db, msg, rule.fallback, now)
            db.commit()

    # -- verdicts -------------------------------------------------------------------------------

    def _verdict(self, db: Session, msg: Message, patient: Patient | None, session: TreatmentSession | None,
                 location: Location | None, now: datetime) -> tuple[Verdict, str | None]:
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
        if msg.kind == "reminder" and self._superseded(db, msg, now):
            return Verdict("skip", "superseded"), None
        if msg.kind == "nudge" and self._has_future_session(db, msg.patient_id, now):
            return Verdict("cancel", "session_booked"), None
        address = patient.phone if msg.channel == "sms" else patient.email
        opted_out = bool(address) and is_opted_out(db, msg.channel, address or "")
        problem = contact_problem(msg.channel, patient, opted_out)
        if problem is not None:
            rule = self.policy.rule(msg.rule)
            if rule is not None and rule.fallback and rule.fallback != msg.channel:
                other = patient.phone if rule.fallback == "sms" else patient.email
                other_problem = contact_problem(
                    rule.fallback, patient, bool(other) and is_opted_out(db, rule.fallback, other or "")
                )
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
        return SEND, address

    def _superseded(self, db: Session, msg: Message, now: datetime) -> bool:
        """Another reminder of this session and channel, due later but already due, wins."""
        later = select(Message.id).where(
            Message.session_id == msg.session_id,
            Message.channel == msg.channel,
            Message.kind == "reminder",
            Message.session_starts_at == msg.session_starts_at,
            Message.id != msg.id,
            Message.status.in_(("planned", "sending", "sent", "delivered")),
            Message.due_at <= now,
            (Message.due_at > msg.due_at) | and_(Message.due_at == msg.due_at, Message.id > msg.id),
        )
        return bool(db.scalar(select(exists(later))))

    def _has_future_session(self, db: Session, patient_id: str | None, now: datetime) -> bool:
        q = select(TreatmentSession.id).where(
            TreatmentSession.patient_id == patient_id,
            TreatmentSession.status.in_(ACTIVE_STATUSES),
            TreatmentSession.starts_at > now,
        )
        return bool(db.scalar(select(exists(q))))

    def _apply_verdict(self, db: Session, msg: Message, verdict: Verdict, now: datetime) -> str:
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
        status = "cancelled" if verdict.action == "cancel" else "skipped"
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

    def _release(self, db: Session, msg: Message) -> None:
        db.execute(update(Message).where(Message.id == msg.id, Message.lease_owner == self.owner,
                                         Message.status == "planned")
                   .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
        db.commit()

    # -- rendering ------------------------------------------------------------------------------

    def _render(self, db: Session, msg: Message, patient: Patient | None, session: TreatmentSession | None,
                location: Location | None, to_address: str) -> tuple[OutgoingMessage, str]:
        from reminders.rendering import render_outgoing

        return render_outgoing(db, self.settings, msg=msg, patient=patient, session=session,
                               location=location, to_address=to_address)


def add_fallback(db: Session, msg: Message, channel: str, now: datetime) -> None:
    """Queue the same message on the rule's fallback channel (once)."""
    from reminders.planner import _insert_ignore

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
