"""Safety checks the worker runs on every pass (small, idempotent, callable from tests).

``run_safety_checks(db, settings, now)`` pages on-call once about inbox items nobody read in
time (at 3 a.m. too, unless the policy turns out-of-hours paging off), re-alerts urgent staff
tasks nobody acknowledged and flags infusions starting soon that the patient has not
confirmed. (Sessions whose patient could not be told a preparation cut-off in time are flagged
by :mod:`reminders.conversations.prep_flags`, after planning.) It commits its own work (pass a plain Session, not one inside ``with db.begin()``)
and returns how many things it did. Every page is claimed with an UPDATE that must change
exactly one row, so two workers never page twice.

Also here, because the checks need them too: the clinic's hours as they apply to a sender
(:func:`inbox_clock`: their location's hours, when an unread message pages, when the clinic
next opens), the out-of-hours notice, and the safety net for a message whose processing failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reminders import defaults
from reminders.conversations.matching import patient_location
from reminders.conversations.replies import describe_hours, format_opening, format_when
from reminders.conversations.risk import risk_screen_for
from reminders.conversations.tasks import AFTER_HOURS_RULE, create_alerts, excerpt
from reminders.db.engine import rowcount
from reminders.db.models import (
    InboundMessage,
    Location,
    Message,
    StaffTask,
    TreatmentSession,
)
from reminders.errors import PolicyError
from reminders.logs import event
from reminders.outbox.consent import is_opted_out
from reminders.planning.policy import InboxPolicy, OpeningHours, Policy, load_policy
from reminders.settings import Settings

log = logging.getLogger(__name__)

INFUSION_KINDS = ("infusion",)


# --- the clinic's hours, the unread page and the out-of-hours notice ---------------------------

_POLICIES: dict[Path, tuple[tuple[float, int] | None, Policy]] = {}


def policy_for(settings: Settings) -> Policy:
    """The policy in force (re-read when the file changes). An edit that does not validate
    keeps the last good one; with none, the built-in hours and limits: paging never stops
    because of a policy file."""
    path = settings.policy_path
    try:
        stat = path.stat()
        stamp: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
    except OSError:
        stamp = None
    cached = _POLICIES.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        policy = load_policy(path)
    except PolicyError:
        event(log, "policy file invalid; the inbox keeps its last good hours", logging.ERROR)
        if cached is not None:
            return cached[1]
        policy = load_policy(defaults.POLICY_FILE)
    _POLICIES[path] = (stamp, policy)
    return policy


@dataclass(frozen=True)
class InboxClock:
    """The clinic's hours as they apply to one sender at one moment."""

    hours: OpeningHours
    zone: ZoneInfo
    open_now: bool
    next_opening: datetime  # local; the next time the clinic opens (after now)
    page_due_at: datetime  # when a message unread from now on pages on-call


def inbox_clock(
    db: Session, settings: Settings, policy: Policy, patient_id: str | None, now: datetime
) -> InboxClock:
    """The hours of the patient's location (next session, else the most recent one), in its
    zone; the clinic's default hours in the clinic's zone otherwise (and for unknown senders)."""
    hours, zone = policy.clinic_hours.default, settings.zone
    location_id = patient_location(db, patient_id, now) if patient_id else None
    if location_id is not None and location_id in policy.clinic_hours.locations:
        hours = policy.clinic_hours.locations[location_id]
        location = db.get(Location, location_id)
        if location is not None and location.timezone:
            try:
                zone = ZoneInfo(location.timezone)
            except (KeyError, ValueError):
                zone = settings.zone
    local = now.astimezone(zone)
    return InboxClock(
        hours=hours,
        zone=zone,
        open_now=hours.is_open(local),
        next_opening=hours.next_opening(local),
        page_due_at=unread_page_due(policy.inbox, hours, zone, now),
    )


def unread_page_due(
    inbox: InboxPolicy, hours: OpeningHours, zone: ZoneInfo, received: datetime
) -> datetime:
    """When a message received at ``received`` pages if still unread: the in-hours limit in
    hours, the out-of-hours one outside them; with out-of-hours paging off, a page that would
    fall outside hours waits for the in-hours limit after the next opening."""
    local = received.astimezone(zone)
    open_now = hours.is_open(local)
    minutes = inbox.review_minutes_in_hours if open_now else inbox.review_minutes_out_of_hours
    due = received + timedelta(minutes=minutes)
    if inbox.page_out_of_hours or hours.is_open(due.astimezone(zone)):
        return due
    start = due if open_now else received
    opening = hours.next_opening(start.astimezone(zone))
    return opening + timedelta(minutes=inbox.review_minutes_in_hours)


def after_hours_notice(
    db: Session, inbound: InboundMessage, task: StaffTask, clock: InboxClock, language: str
) -> dict[str, str] | None:
    """The fields of the ``after_hours`` reply when the sender should get it now: out of hours,
    not opted out of this channel, and once per open item."""
    if clock.open_now or told_after_hours(db, inbound, task):
        return None
    if is_opted_out(db, inbound.channel, inbound.from_address):
        return None
    return {
        "when": format_opening(clock.next_opening, language),
        "hours": describe_hours(clock.hours, language),
    }


def told_after_hours(db: Session, inbound: InboundMessage, task: StaffTask) -> bool:
    """Whether the sender already got the out-of-hours notice for this open item (one is
    enough; it also keeps two auto-responders from answering each other forever)."""
    return (
        db.scalar(
            select(Message.id)
            .where(
                Message.rule == AFTER_HOURS_RULE,
                Message.channel == inbound.channel,
                Message.to_address == inbound.from_address,
                Message.due_at >= task.created_at,
            )
            .limit(1)
        )
        is not None
    )


# --- a message that could not be processed ------------------------------------------------------


def record_failure(
    factory: sessionmaker[Session],
    settings: Settings,
    inbound_id: int,
    exc: Exception,
    *,
    now: datetime,
) -> tuple[str, list[int], int]:
    """A message whose processing failed: keep the row with its error and put it in front of
    staff, urgent (paging now) if it reads as a crisis, else paged if unread in time. Returns
    the error, the task ids and the number of alerts queued."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    task_ids: list[int] = []
    alerts = 0
    try:
        with factory() as db:
            row = db.get(InboundMessage, inbound_id)
            if row is None:
                return error, task_ids, alerts
            row.error = error
            row.processed_at = None
            crisis = False
            try:
                finding = risk_screen_for(settings).assess(row.body)
                crisis = finding is not None and finding.tier == "crisis"
            except Exception:  # noqa: BLE001 - unreadable phrase list: treat as possibly urgent
                crisis = True
            task = StaffTask(
                kind="crisis" if crisis else "free_text",
                urgent=crisis,
                inbound_id=row.id,
                summary=f"Could not process a reply automatically ({type(exc).__name__}); please read it: {excerpt(row.body)}"[
                    :500
                ],
                dedupe_key=f"inbound:{row.id}:failed",
                created_at=now,
                category="possible crisis in a message that could not be processed"
                if crisis
                else None,
                page_due_at=None if crisis else _failure_page_due(db, settings, now),
                message_count=1,
            )
            db.add(task)
            db.flush()
            row.task_id = task.id
            if crisis:
                alerts = create_alerts(db, settings, task, now)
            db.commit()
            task_ids.append(task.id)
    except Exception as inner:  # noqa: BLE001
        event(
            log,
            "could not record inbound failure",
            logging.ERROR,
            inbound_id=inbound_id,
            error=type(inner).__name__,
        )
    return error, task_ids, alerts


def _failure_page_due(db: Session, settings: Settings, now: datetime) -> datetime:
    """When an unprocessed message pages if unread: the clinic's default hours, or the shorter
    limit if even those cannot be read."""
    try:
        return inbox_clock(db, settings, policy_for(settings), None, now).page_due_at
    except Exception:  # noqa: BLE001 - whatever broke processing must not stop the page
        return now + timedelta(minutes=10)


def realert_unacknowledged(db: Session, settings: Settings, now: datetime) -> int:
    """Alert on-call staff again for urgent tasks unacknowledged for ``realert_minutes``."""
    cutoff = now - timedelta(minutes=settings.realert_minutes)
    due = list(
        db.scalars(
            select(StaffTask)
            .where(
                StaffTask.urgent.is_(True),
                StaffTask.acknowledged_at.is_(None),
                (StaffTask.last_alert_at.is_(None)) | (StaffTask.last_alert_at <= cutoff),
            )
            .order_by(StaffTask.id)
        )
    )
    done = 0
    for task in due:
        # Claim this round: only one worker moves alert_count from n to n+1.
        claimed = rowcount(
            db.execute(
                update(StaffTask)
                .where(
                    StaffTask.id == task.id,
                    StaffTask.alert_count == task.alert_count,
                    StaffTask.acknowledged_at.is_(None),
                )
                .values(last_alert_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if claimed != 1:
            continue
        create_alerts(db, settings, task, now)
        done += 1
        event(log, "urgent task re-alerted", task_id=task.id, alert_number=task.alert_count)
    db.commit()
    return done


def page_unread(db: Session, settings: Settings, now: datetime, policy: Policy) -> int:
    """Page on-call, once, about each non-urgent inbox item still unacknowledged at its
    ``page_due_at`` (a message nobody read: free text, a review finding, an unknown sender)."""
    due = list(
        db.scalars(
            select(StaffTask)
            .where(
                StaffTask.page_due_at.is_not(None),
                StaffTask.page_due_at <= now,
                StaffTask.acknowledged_at.is_(None),
                StaffTask.urgent.is_(False),
            )
            .order_by(StaffTask.page_due_at, StaffTask.id)
        )
    )
    done = 0
    for task in due:
        clock = inbox_clock(db, settings, policy, task.patient_id, now)
        if not clock.open_now and not policy.inbox.page_out_of_hours:
            # Out-of-hours paging is off (perhaps since the message came): wait for the opening.
            db.execute(
                update(StaffTask)
                .where(StaffTask.id == task.id, StaffTask.page_due_at == task.page_due_at)
                .values(page_due_at=clock.page_due_at)
                .execution_options(synchronize_session=False)
            )
            continue
        claimed = rowcount(
            db.execute(
                update(StaffTask)
                .where(
                    StaffTask.id == task.id,
                    StaffTask.page_due_at == task.page_due_at,
                    StaffTask.acknowledged_at.is_(None),
                    StaffTask.urgent.is_(False),
                )
                .values(page_due_at=None)
                .execution_options(synchronize_session=False)
            )
        )
        if claimed != 1:
            continue
        db.refresh(task)
        create_alerts(db, settings, task, now, reason=_unread_reason(task, now))
        done += 1
        event(log, "unread inbox item paged", task_id=task.id, patient_id=task.patient_id)
    db.commit()
    return done


def _unread_reason(task: StaffTask, now: datetime) -> str:
    minutes = max(int((now - task.created_at).total_seconds() // 60), 1)
    waited = f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"
    what = "message" if task.message_count <= 1 else f"{task.message_count} messages"
    if task.urgent_review and task.category:
        return f"urgent review: {task.category}, unread for {waited}"
    sender = " from an unknown sender" if task.patient_id is None else ""
    return f"unread {what}{sender} for {waited}"


def flag_unconfirmed(db: Session, settings: Settings, now: datetime) -> int:
    """One inbox item per infusion starting within ``unconfirmed_hours`` and still unconfirmed."""
    horizon = now + timedelta(hours=settings.unconfirmed_hours)
    sessions = list(
        db.scalars(
            select(TreatmentSession)
            .where(
                TreatmentSession.status == "scheduled",
                TreatmentSession.kind.in_(INFUSION_KINDS),
                TreatmentSession.starts_at > now,
                TreatmentSession.starts_at <= horizon,
            )
            .order_by(TreatmentSession.starts_at)
        )
    )
    if not sessions:
        return 0
    keys = {s.id: f"unconfirmed:{s.id}:{s.starts_at.isoformat()}" for s in sessions}
    existing = set(
        db.scalars(select(StaffTask.dedupe_key).where(StaffTask.dedupe_key.in_(keys.values())))
    )
    done = 0
    for session in sessions:
        key = keys[session.id]
        if key in existing:
            continue
        when = format_when(session.starts_at, settings.zone, "en")
        task = StaffTask(
            kind="unconfirmed",
            urgent=False,
            patient_id=session.patient_id,
            session_id=session.id,
            summary=(
                f"Infusion {session.id} for patient {session.patient_id} on {when} is not confirmed: "
                "please call about fasting, medications and the ride home."
            ),
            dedupe_key=key,
            created_at=now,
        )
        try:
            with db.begin_nested():  # another worker may have just flagged it
                db.add(task)
        except IntegrityError:
            continue
        if settings.unconfirmed_alert:
            create_alerts(db, settings, task, now)
        done += 1
        event(
            log,
            "unconfirmed infusion flagged",
            session_id=session.id,
            patient_id=session.patient_id,
        )
    db.commit()
    return done


def run_safety_checks(
    db: Session, settings: Settings, now: datetime, policy: Policy | None = None
) -> int:
    policy = policy or policy_for(settings)
    return (
        page_unread(db, settings, now, policy)
        + realert_unacknowledged(db, settings, now)
        + flag_unconfirmed(db, settings, now)
    )
