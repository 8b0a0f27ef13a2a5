"""Handling of one inbound message: store it, then apply its effects in one transaction.

The webhooks (``providers.twilio.webhooks.accept_inbound``) call the two steps themselves and
answer the provider 200 only once step 1 committed (5xx if it failed, so the provider
retries); ``reminders inbound`` calls :func:`receive`, which does both:

1. :func:`store_inbound` commits the row on its own (nothing is lost if processing fails);
   a repeated provider id (Twilio retries with the same MessageSid) finds the stored row.
   A row stored but never processed (the process died in between) is picked up by the
   worker's next pass (:mod:`reminders.conversations.sweep`).
2. :func:`process_inbound` claims the row with an UPDATE that must change exactly one row
   (``processed_at IS NULL``), so concurrent deliveries are processed once, and applies every
   effect (opt-out, confirmation, score, staff task, alert and reply outbox rows) in the same
   transaction. A failure rolls all of that back, keeps the stored row with ``error`` set and
   opens a staff task (urgent, with alerts, when the text reads as a crisis).

A message no keyword or score fully answers joins the sender's open inbox item (``tasks``):
a crisis pages at once, anything else if unread in time (``safety``); out of clinic hours the
sender is told when it will be read (docs/design.md section 9).

Replies and staff alerts are outbox rows (``messages``: kind ``reply`` / ``alert``, status
``planned``, due now); the dispatcher sends them without consent, opt-out or quiet-hours checks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reminders.conversations.classify import Classification, classify, for_sender
from reminders.conversations.matching import (
    match_inbound,
    next_session,
    normalise_address,
    outstanding_checkin,
    record_score,
)
from reminders.conversations.replies import crisis_reply, format_when, language_of, reply_text
from reminders.conversations.risk import RiskScreen, risk_screen_for
from reminders.conversations.safety import (
    after_hours_notice,
    inbox_clock,
    policy_for,
    record_failure,
)
from reminders.conversations.tasks import (
    AFTER_HOURS_RULE,
    Filed,
    excerpt,
    file_inbox_item,
    oncall_count,
    open_task,
    queue_reply,
    record_opt_out,
)
from reminders.db.engine import rowcount
from reminders.db.models import (
    AuditLog,
    InboundMessage,
    Message,
    Patient,
    StaffTask,
)
from reminders.logs import event
from reminders.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class InboundResult:
    inbound_id: int | None
    duplicate: bool = False
    classification: str | None = None
    patient_id: str | None = None
    match_note: str | None = None
    reply_text: str | None = None
    task_ids: list[int] = field(default_factory=list)
    alert_count: int = 0
    error: str | None = None


# --- store and process ---------------------------------------------------------------------------


def store_inbound(
    factory: sessionmaker[Session],
    *,
    channel: str,
    from_address: str,
    body: str,
    provider_message_id: str | None,
    received_at: datetime,
    region: str,
    attempts: int = 3,
    lock_wait: float | None = 0.5,
) -> tuple[int, bool]:
    """Commit the inbound row; returns (id, already processed). Idempotent per provider id.

    A transient database error (SQLite's write lock still busy after ``lock_wait`` seconds, a
    dropped connection) is tried again, ``attempts`` times in all with a short pause between,
    then raised: a webhook then answers 5xx and the provider retries. With the defaults that
    is 2 s at most; ``lock_wait=None`` waits up to the engine's busy timeout (30 s) instead.
    """
    import time

    from sqlalchemy.exc import OperationalError

    from reminders.db.engine import LOCK_WAIT_MS

    body = body.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    address = normalise_address(channel, from_address.replace("\x00", ""), region)[:320]
    sid = provider_message_id.replace("\x00", "")[:255] if provider_message_id else None
    options = {LOCK_WAIT_MS: round(lock_wait * 1000)} if lock_wait is not None else {}

    def stored(db: Session) -> tuple[int, bool] | None:
        db.connection(execution_options=options)  # begins the transaction: lock_wait at most
        if sid is None:
            return None
        found = db.scalars(
            select(InboundMessage).where(InboundMessage.provider_message_id == sid)
        ).first()
        return None if found is None else (found.id, found.processed_at is not None)

    def once() -> tuple[int, bool]:
        with factory() as db:
            existing = stored(db)
            if existing is not None:
                return existing
            row = InboundMessage(
                channel=channel,
                provider_message_id=sid,
                from_address=address,
                body=body,
                received_at=received_at,
            )
            db.add(row)
            try:
                db.commit()
            except IntegrityError:  # the same id stored concurrently
                db.rollback()
                existing = stored(db)
                assert existing is not None
                return existing
            return row.id, False

    for attempt in range(1, attempts + 1):
        try:
            return once()
        except OperationalError:
            if attempt >= attempts:
                raise
            time.sleep(0.1 * 3 ** (attempt - 1))  # 0.1 s, then 0.3 s
    raise AssertionError("unreachable")  # attempts >= 1


def command_of(inbound: InboundMessage) -> str:
    """What keywords are read from: the whole SMS, the first non-empty line of an email."""
    if inbound.channel != "email":
        return inbound.body
    return next((line for line in inbound.body.splitlines() if line.strip()), "")


def process_inbound(
    factory: sessionmaker[Session],
    settings: Settings,
    inbound_id: int,
    *,
    now: datetime,
    screen: RiskScreen | None = None,
) -> InboundResult:
    try:
        screen = screen or risk_screen_for(settings)
        with factory() as db:
            claimed = rowcount(
                db.execute(
                    update(InboundMessage)
                    .where(InboundMessage.id == inbound_id, InboundMessage.processed_at.is_(None))
                    .values(processed_at=now, error=None)
                )
            )
            if claimed != 1:
                db.rollback()
                return _stored_result(factory, inbound_id, duplicate=True)
            inbound = db.get(InboundMessage, inbound_id)
            assert inbound is not None
            result = _apply(db, settings, inbound, screen, now=now)
            db.commit()
    except Exception as exc:  # noqa: BLE001 - keep the row, tell staff, answer the provider
        event(
            log,
            "inbound processing failed",
            logging.ERROR,
            inbound_id=inbound_id,
            error=type(exc).__name__,
        )
        log.debug("inbound processing failure detail", exc_info=True)
        return _record_failure(factory, settings, inbound_id, exc, now=now)
    event(
        log,
        "inbound processed",
        inbound_id=inbound_id,
        classification=result.classification,
        patient_id=result.patient_id,
        tasks=len(result.task_ids),
        alerts=result.alert_count,
    )
    return result


def _stored_result(
    factory: sessionmaker[Session], inbound_id: int, *, duplicate: bool
) -> InboundResult:
    with factory() as db:
        row = db.get(InboundMessage, inbound_id)
        if row is None:
            return InboundResult(inbound_id, duplicate=duplicate)
        reply = db.scalars(
            select(Message).where(Message.dedupe_key == f"reply:{inbound_id}")
        ).first()
        linked = (StaffTask.inbound_id == inbound_id) | (StaffTask.id == row.task_id)
        tasks = list(db.scalars(select(StaffTask.id).where(linked).order_by(StaffTask.id)))
        return InboundResult(
            inbound_id,
            duplicate=duplicate,
            classification=row.classification,
            patient_id=row.patient_id,
            match_note=row.match_note,
            reply_text=(reply.data or {}).get("text") if reply else None,
            task_ids=tasks,
            error=row.error,
        )


def _apply(
    db: Session, settings: Settings, inbound: InboundMessage, screen: RiskScreen, *, now: datetime
) -> InboundResult:
    patient, note = match_inbound(db, inbound)  # an email's note: its sender's verdict first
    inbound.patient_id = patient.id if patient else None
    inbound.match_note = note
    checkin = outstanding_checkin(db, patient.id, now) if patient else None
    cls: Classification = classify(
        inbound.body,
        screen=screen,
        confirm_keyword=settings.confirm_keyword,
        reschedule_keyword=settings.reschedule_keyword,
        checkin_outstanding=checkin is not None,
        command=command_of(inbound),
    )
    cls = for_sender(cls, note)  # a sender not verified: read by a person, never acted on
    inbound.classification = cls.kind
    result = InboundResult(
        inbound.id, classification=cls.kind, patient_id=inbound.patient_id, match_note=note
    )
    language = language_of(
        patient.language if patient else (cls.risk.language if cls.risk else None)
    )
    clinic, phone = settings.clinic_name, settings.clinic_phone
    pid = inbound.patient_id
    review = cls.risk is not None and cls.risk.tier == "review"
    filed: list[Filed] = []
    clock = functools.cache(lambda: inbox_clock(db, settings, policy_for(settings), pid, now))

    def reply(kind: str, when: str = "", hours: str = "", rule: str | None = None) -> None:
        text = reply_text(kind, language, clinic=clinic, phone=phone, when=when, hours=hours)
        queue_reply(
            db,
            inbound,
            cls=cls.kind,
            text=text,
            language=language,
            patient_id=pid,
            settings=settings,
            now=now,
            rule=rule,
        )
        result.reply_text = text

    def item(
        kind: str,
        summary: str,
        *,
        urgent: bool = False,
        category: str | None = None,
        session_id: str | None = None,
    ) -> Filed:
        """File the message on the sender's inbox item (it must be read by a person)."""
        done = file_inbox_item(
            db,
            settings,
            inbound,
            patient_id=pid,
            kind=kind,
            summary=summary,
            now=now,
            page_due_at=None if urgent else clock().page_due_at,
            urgent=urgent,
            category=category or (cls.risk.label if review and cls.risk else None),
            review=review,
            session_id=session_id,
        )
        filed.append(done)
        result.task_ids.append(done.task.id)
        result.alert_count += done.alerts
        return done

    def after_hours(done: Filed) -> bool:
        """Out of hours: tell the sender when the clinic will read it. True if queued."""
        notice = after_hours_notice(db, inbound, done.task, clock(), language)
        if notice is not None:
            reply("after_hours", rule=AFTER_HOURS_RULE, **notice)
        return notice is not None

    def task(kind: str, summary: str, *, session_id: str | None = None) -> StaffTask:
        """A to-do of its own (call to reschedule, a confirmation without a session)."""
        t = open_task(
            db,
            kind=kind,
            summary=summary,
            inbound=inbound,
            patient_id=pid,
            session_id=session_id,
            now=now,
        )
        result.task_ids.append(t.id)
        return t

    who = f"patient {pid}" if pid else "an unknown sender"
    if cls.kind == "crisis":
        assert cls.risk is not None
        if patient and checkin and cls.score is not None:
            record_score(db, settings, inbound, patient, checkin, cls.score, now)
        done = item(
            "crisis",
            f"{cls.risk.label.capitalize()} from {who}: {excerpt(inbound.body)}",
            urgent=True,
            category=cls.risk.label,
        )
        # Say the care team was alerted only if an alert went (or is going) to someone.
        alerted = oncall_count(settings) > 0 and done.task.alert_count > 0
        reply(crisis_reply(emergency=cls.risk.emergency, alerted=alerted))
    elif cls.kind in ("opt_out", "opt_in"):
        changed = record_opt_out(
            db,
            inbound,
            active=cls.kind == "opt_out",
            actor=f"patient:{pid}" if pid else "sender",
            now=now,
        )
        if changed or cls.kind == "opt_in":
            reply(cls.kind)
    elif cls.kind == "help":
        reply("help")
    elif patient is None:
        after_hours(
            item(
                "review" if review else "unknown_sender",
                f"Message from an unknown sender ({inbound.match_note}): {excerpt(inbound.body)}",
            )
        )
    elif cls.kind == "confirm":
        _confirm(db, settings, inbound, patient, now, reply, task)
    elif cls.kind == "reschedule":
        session = next_session(db, patient.id, now)
        what = (
            f" session {session.id} ({format_when(session.starts_at, settings.zone, 'en')})"
            if session
            else ", but has no upcoming session"
        )
        summary = f"Patient {pid} asks to reschedule{what}; please call."
        task("reschedule", summary, session_id=session.id if session else None)
        reply("reschedule")
    elif cls.kind == "checkin":
        assert checkin is not None and cls.score is not None
        urgent_reason = record_score(db, settings, inbound, patient, checkin, cls.score, now)
        comment = f" with a comment: {excerpt(cls.comment)}" if cls.comment else ""
        if urgent_reason:
            item(
                "low_score",
                f"Check-in score {cls.score}/10 from patient {pid} ({urgent_reason}){comment}",
                urgent=True,
                category="low or falling check-in score",
                session_id=checkin.session_id,
            )
            reply("low_score")
        elif cls.comment or review:
            # A score with words: a person reads the words.
            done = item(
                "review" if review else "free_text",
                f"Check-in score {cls.score}/10 from patient {pid}{comment}",
                session_id=checkin.session_id,
            )
            if not after_hours(done):
                reply("checkin_thanks")
        else:
            reply("checkin_thanks")
    else:
        summary = f"Reply from patient {pid}: {excerpt(inbound.body)}"
        if note:
            summary += f" [{note}]"
        after_hours(item("review" if review else "free_text", summary))
    if review and not filed:
        # A keyword or confirmation that also reads as a risk: a person reads it soon.
        item("review", f"Message from {who} to review: {excerpt(inbound.body)}")
    return result


def _confirm(
    db: Session,
    settings: Settings,
    inbound: InboundMessage,
    patient: Patient,
    now: datetime,
    reply: Any,
    task: Any,
) -> None:
    session = next_session(db, patient.id, now)
    if session is None:
        task("free_text", f"Patient {patient.id} replied to confirm but has no upcoming session.")
        reply("no_session")
        return
    zone = settings.zone
    if patient.timezone:
        from zoneinfo import ZoneInfo

        with contextlib.suppress(KeyError, ValueError):
            zone = ZoneInfo(patient.timezone)
    when = format_when(session.starts_at, zone, patient.language)
    if session.status == "confirmed":
        reply("already_confirmed", when)
        return
    session.status, session.confirmed_at, session.confirmed_via = "confirmed", now, inbound.channel
    # The planner re-renders the day-of messages ("your visit is confirmed").
    patient.needs_plan = True
    patient.change_seq = (patient.change_seq or 0) + 1
    db.add(
        AuditLog(
            at=now,
            actor=f"patient:{patient.id}",
            action="session_confirmed",
            entity="session",
            entity_id=session.id,
            detail={"inbound_id": inbound.id, "channel": inbound.channel},
        )
    )
    reply("confirmed", when)


def _record_failure(
    factory: sessionmaker[Session],
    settings: Settings,
    inbound_id: int,
    exc: Exception,
    *,
    now: datetime,
) -> InboundResult:
    """Keep the row with its error, and put it in front of staff (urgent if it reads as a crisis)."""
    error, task_ids, alerts = record_failure(factory, settings, inbound_id, exc, now=now)
    return InboundResult(inbound_id, error=error, task_ids=task_ids, alert_count=alerts)


def receive(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    channel: str,
    from_address: str,
    body: str,
    provider_message_id: str | None,
    now: datetime | None = None,
) -> InboundResult:
    """Store, then process, one inbound message (``reminders inbound``; the webhooks call the
    two steps themselves, to answer 5xx when storing fails). Raises when it cannot be stored."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    inbound_id, processed = store_inbound(
        factory,
        channel=channel,
        from_address=from_address,
        body=body,
        provider_message_id=provider_message_id,
        received_at=now,
        region=settings.default_region,
        lock_wait=None,  # a command line has no provider timeout to keep
    )
    if processed:
        return _stored_result(factory, inbound_id, duplicate=True)
    return process_inbound(factory, settings, inbound_id, now=now)
