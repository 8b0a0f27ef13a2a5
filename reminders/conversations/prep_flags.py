"""Late preparation: an inbox flag for a session whose patient could not be told a
preparation cut-off in time (booked after it, or every reminder goes out after it).

A cut-off (policy ``preparation``: no food, clear liquids, alcohol, a medication to hold) is
*missed* when no reminder of the session reached the patient before it: none was sent by
then, and the earliest one planned (that the patient's consent and opt-outs let through) will
go out after it (when due, moved out of quiet hours as the dispatcher will move it).

The flag is raised as soon as that is known, which for a late booking is the first pass after
it is imported, before the cut-off itself. One flag per session and start time
(``dedupe_key``), never raised twice: a cut-off missed later is added to its summary while it
is open. The patient's messages meanwhile say to call the clinic if they have eaten (or
drunk...) since the cut-off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.conversations.replies import format_when
from reminders.db.models import Location, Message, OptOut, Patient, StaffTask, TreatmentSession
from reminders.logs import event
from reminders.outbox.consent import contact_problem, normalise_address
from reminders.planning.policy import Policy
from reminders.planning.prep import PREP_GRACE, CutoffTime, max_cutoff_lead, plan_preparation
from reminders.planning.timecalc import place_outside_quiet, recipient_zone
from reminders.settings import Settings

log = logging.getLogger(__name__)

KIND = "prep_late"
CUTOFF_NAMES = {"food": "fasting", "liquids": "clear-liquids", "alcohol": "alcohol", "hold": ""}
# Reminders that reach (or will reach) the patient, and from when.
_REACHING = ("planned", "sending", "sent", "delivered")


def flag_key(session_id: str, starts_at: datetime) -> str:
    return f"{KIND}:{session_id}:{starts_at.isoformat()}"


def missed_cutoffs(
    cutoffs: tuple[CutoffTime, ...], reaches: list[datetime], now: datetime
) -> list[CutoffTime]:
    """The cut-offs no reminder reached the patient before (``reaches``: when each reminder
    was or will be sent). A reminder within ``PREP_GRACE`` of a cut-off still counts: it says
    "from now on"."""
    first = min(reaches, default=None)
    if first is None:  # nothing will reach them: only what has already passed is known missed
        return [c for c in cutoffs if c.at + PREP_GRACE <= now]
    return [c for c in cutoffs if first > c.at + PREP_GRACE]


def _describe(cutoff: CutoffTime) -> str:
    if cutoff.what == "hold":
        item = cutoff.item or {}
        return f"stopping {item.get('en') or item.get('*') or next(iter(item.values()), 'a medication')}"
    return f"the {CUTOFF_NAMES[cutoff.what]} cut-off"


@dataclass
class _Upcoming:
    """A session with cut-offs, as the check needs it."""

    session: TreatmentSession
    patient: Patient
    zone: ZoneInfo
    cutoffs: tuple[CutoffTime, ...]
    key: str
    reaches: list[datetime] = field(default_factory=list)
    has_reminders: bool = False


def flag_late_preparation(db: Session, settings: Settings, policy: Policy, now: datetime) -> int:
    """Flag every upcoming session with a missed cut-off, and add newly missed ones to an
    open flag's summary; returns how many flags were raised."""
    upcoming = _upcoming(db, settings, policy, now)
    if not upcoming:
        return 0
    flags = {
        task.dedupe_key: task
        for task in db.scalars(
            select(StaffTask).where(StaffTask.dedupe_key.in_([u.key for u in upcoming.values()]))
        )
    }
    # An acknowledged flag is done with: staff have called the patient.
    todo = {
        sid: u
        for sid, u in upcoming.items()
        if u.key not in flags or flags[u.key].acknowledged_at is None
    }
    if not todo:
        return 0
    _read_reaches(db, policy, todo, now)
    raised = 0
    for item in todo.values():
        if not item.has_reminders:
            continue  # no reminder planned for it (yet): the planner runs first
        missed = missed_cutoffs(item.cutoffs, item.reaches, now)
        if not missed:
            continue
        summary = _summary(settings, item.session, missed)
        flag = flags.get(item.key)
        if flag is None:
            raised += _open_flag(db, item, summary, now)
        elif flag.summary != summary:
            flag.summary = summary  # more cut-offs missed since it was raised
    db.commit()
    return raised


def _upcoming(
    db: Session, settings: Settings, policy: Policy, now: datetime
) -> dict[str, _Upcoming]:
    """Sessions starting soon enough for a cut-off to be near, whose kind has cut-offs."""
    lead = max((max_cutoff_lead(p) for p in policy.preparation.all()), default=timedelta(0))
    if not lead:
        return {}
    rows = db.execute(
        select(TreatmentSession, Patient, Location.timezone)
        .join(Patient, Patient.id == TreatmentSession.patient_id)
        .outerjoin(Location, Location.id == TreatmentSession.location_id)
        .where(
            TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
            TreatmentSession.starts_at > now,
            TreatmentSession.starts_at <= now + lead,
        )
    ).all()
    found: dict[str, _Upcoming] = {}
    for session, patient, location_tz in rows:
        prep = policy.preparation.for_session(session.kind or "", session.location_id)
        if prep is None:
            continue
        zone = recipient_zone(
            patient_tz=patient.timezone, location_tz=location_tz, default=settings.zone
        )
        plan = plan_preparation(
            prep, starts_at=session.starts_at, duration_minutes=session.duration_minutes, tz=zone
        )
        if plan.cutoffs:
            key = flag_key(session.id, session.starts_at)
            found[session.id] = _Upcoming(session, patient, zone, plan.cutoffs, key)
    return found


def _read_reaches(db: Session, policy: Policy, todo: dict[str, _Upcoming], now: datetime) -> None:
    """When each session's reminders for its current start were or will be sent."""
    blocked = _opted_out(db, [u.patient for u in todo.values()])
    for sid, starts, channel, status, due, sending, sent in db.execute(
        select(
            Message.session_id,
            Message.session_starts_at,
            Message.channel,
            Message.status,
            Message.due_at,
            Message.sending_at,
            Message.sent_at,
        ).where(Message.session_id.in_(todo), Message.kind == "reminder")
    ):
        item = todo.get(sid or "")
        if item is None or starts != item.session.starts_at:
            continue
        item.has_reminders = True
        if status not in _REACHING:
            continue
        if status == "planned":
            # Consent is checked when it is sent: one that cannot reach the patient never will.
            patient = item.patient
            address = patient.phone if channel == "sms" else patient.email
            opted = (channel, normalise_address(channel, address or "")) in blocked
            if contact_problem(channel, patient, opted) is not None:
                continue
        reach = sent or sending or _send_time(policy, channel, due, now, item.session, item.zone)
        if reach is not None:
            item.reaches.append(reach)


def _send_time(
    policy: Policy,
    channel: str,
    due: datetime,
    now: datetime,
    session: TreatmentSession,
    zone: ZoneInfo,
) -> datetime | None:
    """When a planned reminder will go out: when due (now, if overdue), moved out of quiet
    hours as the dispatcher will move it; None when it never will (quiet hours last until too
    close to the session, and the evening before is past: the dispatcher skips it)."""
    placement = place_outside_quiet(
        max(due, now),
        pre_session=True,
        session_start=session.starts_at,
        quiet=policy.quiet(channel),
        tz=zone,
        min_lead=policy.min_lead,
        margin=policy.quiet_margin,
    )
    if placement.due_at < now or placement.due_at >= session.starts_at:
        return None
    return placement.due_at


def _opted_out(db: Session, patients: list[Patient]) -> set[tuple[str, str]]:
    addresses = {
        a for p in patients for a in (p.phone, normalise_address("email", p.email or "")) if a
    }
    if not addresses:
        return set()
    return {
        (channel, address)
        for channel, address in db.execute(
            select(OptOut.channel, OptOut.address).where(
                OptOut.active.is_(True), OptOut.address.in_(addresses)
            )
        )
    }


def _summary(settings: Settings, session: TreatmentSession, missed: list[CutoffTime]) -> str:
    names = [_describe(c) for c in missed]
    what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    times = "; ".join(
        f"{_describe(c).removeprefix('the ')} {format_when(c.at, settings.zone, 'en')}"
        for c in missed
    )
    return (
        f"Booked after {what}: {session.kind} on "
        f"{format_when(session.starts_at, settings.zone, 'en')}. No reminder reached the "
        f"patient before {times}. Please call about their preparation."
    )[:500]


def _open_flag(db: Session, item: _Upcoming, summary: str, now: datetime) -> int:
    task = StaffTask(
        kind=KIND,
        urgent=False,
        patient_id=item.session.patient_id,
        session_id=item.session.id,
        summary=summary,
        dedupe_key=item.key,
        created_at=now,
    )
    try:
        with db.begin_nested():  # another worker may have just flagged it
            db.add(task)
    except IntegrityError:
        return 0
    event(log, "late preparation flagged", session_id=item.session.id)
    return 1
