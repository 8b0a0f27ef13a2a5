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

from sqlalchemy import select, update
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
# How often the check runs when planning changed nothing (cut-offs passing, reminders failing);
# after a plan that changed something it runs at once.
PREP_CHECK_SECONDS = 60.0
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


@dataclass(frozen=True, slots=True)
class _Contact:
    phone: str | None
    phone_problem: str | None
    sms_consent: bool
    email: str | None
    email_problem: str | None
    email_consent: bool


@dataclass(slots=True)
class _Upcoming:
    """A session with cut-offs, as the check needs it (columns, not ORM objects: it runs over
    every session of the next day or so)."""

    session_id: str
    patient_id: str
    starts_at: datetime
    kind: str
    contact: _Contact
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
    # key -> (id, summary) of the open flags; an acknowledged one is done with: staff called.
    flags: dict[str, tuple[int, str]] = {}
    closed: set[str] = set()
    for key, task_id, summary, acknowledged in db.execute(
        select(
            StaffTask.dedupe_key, StaffTask.id, StaffTask.summary, StaffTask.acknowledged_at
        ).where(StaffTask.dedupe_key.in_([u.key for u in upcoming.values()]))
    ):
        if key is None:
            continue
        if acknowledged is None:
            flags[key] = (task_id, summary)
        else:
            closed.add(key)
    todo = {sid: u for sid, u in upcoming.items() if u.key not in closed}
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
        flag = flags.get(item.key)
        if flag is not None and all(_describe(c) in flag[1] for c in missed):
            continue  # already says so (formatting every open flag each run is the cost)
        summary = _summary(settings, item, missed)
        if flag is None:
            raised += _open_flag(db, item, summary, now)
        else:  # more cut-offs missed since it was raised
            db.execute(update(StaffTask).where(StaffTask.id == flag[0]).values(summary=summary))
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
        select(
            TreatmentSession.id,
            TreatmentSession.patient_id,
            TreatmentSession.starts_at,
            TreatmentSession.duration_minutes,
            TreatmentSession.kind,
            TreatmentSession.location_id,
            Patient.timezone,
            Location.timezone,
            Patient.phone,
            Patient.phone_problem,
            Patient.sms_consent,
            Patient.email,
            Patient.email_problem,
            Patient.email_consent,
        )
        .join(Patient, Patient.id == TreatmentSession.patient_id)
        .outerjoin(Location, Location.id == TreatmentSession.location_id)
        .where(
            TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
            TreatmentSession.starts_at > now,
            TreatmentSession.starts_at <= now + lead,
        )
    ).all()
    found: dict[str, _Upcoming] = {}
    for sid, pid, starts, minutes, kind, location_id, patient_tz, location_tz, *contact in rows:
        prep = policy.preparation.for_session(kind or "", location_id)
        if prep is None:
            continue
        zone = recipient_zone(patient_tz=patient_tz, location_tz=location_tz, default=settings.zone)
        plan = plan_preparation(prep, starts_at=starts, duration_minutes=minutes, tz=zone)
        if plan.cutoffs:
            found[sid] = _Upcoming(
                sid, pid, starts, kind or "", _Contact(*contact), zone, plan.cutoffs,
                flag_key(sid, starts),
            )  # fmt: skip
    return found


def _read_reaches(db: Session, policy: Policy, todo: dict[str, _Upcoming], now: datetime) -> None:
    """When each session's reminders for its current start were or will be sent."""
    blocked = _opted_out(db, [u.contact for u in todo.values()])
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
        if item is None or starts != item.starts_at:
            continue
        item.has_reminders = True
        if status not in _REACHING:
            continue
        if status == "planned":
            # Consent is checked when it is sent: one that cannot reach the patient never will.
            contact = item.contact
            address = contact.phone if channel == "sms" else contact.email
            opted = (channel, normalise_address(channel, address or "")) in blocked
            if contact_problem(channel, contact, opted) is not None:
                continue
        reach = sent or sending or _send_time(policy, channel, due, now, item)
        if reach is not None:
            item.reaches.append(reach)


def _send_time(
    policy: Policy, channel: str, due: datetime, now: datetime, item: _Upcoming
) -> datetime | None:
    """When a planned reminder will go out: when due (now, if overdue), moved out of quiet
    hours as the dispatcher will move it; None when it never will (quiet hours last until too
    close to the session, and the evening before is past: the dispatcher skips it)."""
    placement = place_outside_quiet(
        max(due, now),
        pre_session=True,
        session_start=item.starts_at,
        quiet=policy.quiet(channel),
        tz=item.zone,
        min_lead=policy.min_lead,
        margin=policy.quiet_margin,
    )
    if placement.due_at < now or placement.due_at >= item.starts_at:
        return None
    return placement.due_at


def _opted_out(db: Session, patients: list[_Contact]) -> set[tuple[str, str]]:
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


def _summary(settings: Settings, item: _Upcoming, missed: list[CutoffTime]) -> str:
    names = [_describe(c) for c in missed]
    what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    times = "; ".join(
        f"{_describe(c).removeprefix('the ')} {format_when(c.at, settings.zone, 'en')}"
        for c in missed
    )
    return (
        f"Booked after {what}: {item.kind} on "
        f"{format_when(item.starts_at, settings.zone, 'en')}. No reminder reached the "
        f"patient before {times}. Please call about their preparation."
    )[:500]


def _open_flag(db: Session, item: _Upcoming, summary: str, now: datetime) -> int:
    task = StaffTask(
        kind=KIND,
        urgent=False,
        patient_id=item.patient_id,
        session_id=item.session_id,
        summary=summary,
        dedupe_key=item.key,
        created_at=now,
    )
    try:
        with db.begin_nested():  # another worker may have just flagged it
            db.add(task)
    except IntegrityError:
        return 0
    event(log, "late preparation flagged", session_id=item.session_id)
    return 1
