"""The Today page (issue 14): the front desk's day, location by location.

``GET /staff/today?day=YYYY-MM-DD&location=ID``: every visit of the day (default: today in
the clinic's zone), grouped by location and ordered by time, each with the patient, the kind
of visit and where it stands in the series ("Infusion 3 of 6"), whether and how it was
confirmed, whether its preparation messages went out (and a warning when a preparation
cut-off was missed), the next message due to go out, and what the desk can do: mark it
confirmed by phone, call or text the patient. Cancelled, completed and missed visits of the
day are listed after each location's schedule.

The page reads a fixed handful of queries whatever the number of visits (locations; the
day's sessions with their patients; their messages; the patients' own planned messages; the
late-preparation flags; the series counts): :func:`build_day` is what ``bench/today_bench.py``
times. The clinic records no rides, so the page shows none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased
from starlette.responses import Response

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import Location, Message, Patient, StaffTask, TreatmentSession
from reminders.db.types import utcnow
from reminders.web.deps import get_db, settings_of
from reminders.web.staff.common import Staff, render, signed_in
from reminders.web.staff.i18n import console_language, translator
from reminders.web.staff.labels import label

router = APIRouter()

PREP_LATE = "prep_late"  # reminders.conversations.prep_flags.KIND
# What may go out next for a patient besides their visit's own messages (not staff alerts).
PATIENT_KINDS = ("reminder", "checkin", "nudge")
CONFIRMED_VIA = {
    "sms": "Confirmed by text",
    "email": "Confirmed by email",
    "phone": "Confirmed by phone",
    "clinic": "Confirmed (clinic)",
}
# Message statuses whose reason is worth showing, and how each line reads.
WITH_REASON = ("failed", "skipped", "cancelled")
TONES = {"sent": "ok", "delivered": "ok", "failed": "warn", "skipped": "warn"}
NO_LOCATION = "none"


@dataclass
class PrepLine:
    text: str
    tone: str  # ok | warn | muted | "" (words carry the state; the tone only colours it)


@dataclass
class Visit:
    anchor: str
    session_id: str
    patient_id: str
    patient_name: str
    phone: str | None
    starts_at: datetime
    time: str
    status: str
    status_words: str
    what: str
    confirmation: str
    confirmed: bool
    prep: list[PrepLine] = field(default_factory=list)
    flag: str | None = None  # the late-preparation flag's summary
    flag_open: bool = False
    next_message: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_SESSION_STATUSES


@dataclass
class Group:
    name: str
    visits: list[Visit] = field(default_factory=list)
    others: list[Visit] = field(default_factory=list)  # cancelled, completed, missed
    zone_note: str = ""


@dataclass
class DayView:
    day: date
    groups: list[Group]
    locations: list[tuple[str, str]]  # (id, name) for the filter
    visits: int = 0
    confirmed: int = 0
    warnings: int = 0


@dataclass
class _Words:
    """The staff member's language: ``t`` for page text, ``label`` for stored codes."""

    language: str
    t: Callable[[str], str]
    label: Callable[[str, str | None], str]

    @classmethod
    def of(cls, language: str) -> _Words:
        return cls(language, translator(language), partial(label, language=language))

    def clock(self, at: datetime) -> str:
        pattern = "H:mm" if self.language == "es" else "h:mm a"
        return format_datetime(at, pattern, locale=self.locale)

    def short_date(self, day: date) -> str:
        pattern = "EEE d MMM" if self.language == "es" else "EEE, MMM d"
        return format_date(day, pattern, locale=self.locale)

    def long_date(self, day: date) -> str:
        pattern = "EEEE d 'de' MMMM 'de' y" if self.language == "es" else "EEEE, MMMM d, y"
        return format_date(day, pattern, locale=self.locale)

    @property
    def locale(self) -> str:
        return "es" if self.language == "es" else "en_US"

    def count(self, n: int, one: str, many: str) -> str:
        return self.t(one) if n == 1 else self.t(many).format(n=n)


def _zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # a location's zone the clinic mistyped
        return default


def _window(day: date, zones: list[ZoneInfo]) -> tuple[datetime, datetime]:
    """From the earliest local midnight of ``day`` to the latest one after it, over ``zones``."""
    starts = [datetime.combine(day, time(0), tzinfo=z) for z in zones]
    ends = [datetime.combine(day + timedelta(days=1), time(0), tzinfo=z) for z in zones]
    return min(starts), max(ends)


def build_day(
    db: Session,
    *,
    day: date,
    zone: ZoneInfo,
    now: datetime,
    language: str = "en",
    location: str | None = None,
) -> DayView:
    """Everything the Today page shows for ``day`` (in each location's local time)."""
    words = _Words.of(language)
    places = db.execute(select(Location.id, Location.name, Location.timezone)).all()
    names = {lid: name for lid, name, _ in places}
    zones = {lid: _zone(tz, zone) for lid, _, tz in places}
    view = DayView(day, [], sorted(((lid, n) for lid, n in names.items()), key=lambda x: x[1]))
    rows = _sessions(db, day, location, [zone, *zones.values()])
    # Each location's own day: a session belongs to ``day`` in its location's zone.
    rows = [
        r
        for r in rows
        if r[0].starts_at.astimezone(zones.get(r[0].location_id, zone)).date() == day
    ]
    if not rows:
        return view
    ids = [r[0].id for r in rows]
    by_session = _session_messages(db, ids)
    by_patient = _patient_messages(db, list({r[0].patient_id for r in rows}), now)
    flags = _flags(db, ids)
    numbers = _series_numbers(db, [r[0] for r in rows])
    groups: dict[str | None, Group] = {}
    for n, (session, first, last, phone, series_size) in enumerate(rows):
        local_zone = zones.get(session.location_id, zone)
        local = session.starts_at.astimezone(local_zone)
        visit = Visit(
            anchor=f"visit-{n + 1}",
            session_id=session.id,
            patient_id=session.patient_id,
            patient_name=f"{first} {last}".strip(),
            phone=phone,
            starts_at=session.starts_at,
            time=words.clock(local),
            status=session.status,
            status_words=words.label("session_status", session.status),
            what=_what(words, session, numbers.get(session.id), series_size),
            confirmation=_confirmation(words, session),
            confirmed=session.status == "confirmed",
        )
        if visit.active:
            mine = [
                m
                for m in by_session.get(session.id, [])
                if m.session_starts_at == session.starts_at
            ]
            visit.prep = _prep_lines(words, mine, now)
            due = [m for m in mine if m.status == "planned" and m.due_at > now]
            due += by_patient.get(session.patient_id, [])
            visit.next_message = _next_message(words, due, local_zone, day)
            flag = _flag_for(flags.get(session.id, []), session.id, session.starts_at)
            if flag is not None:
                visit.flag, visit.flag_open = flag
        key = session.location_id if session.location_id in names else None
        if key not in groups:
            name = names[key] if key is not None else words.t("No location")
            note = ""
            if local_zone.key != zone.key:
                note = words.t("Times are this location's local time ({zone}).").format(
                    zone=local.tzname() or local_zone.key
                )
            groups[key] = Group(name, zone_note=note)
        (groups[key].visits if visit.active else groups[key].others).append(visit)
    view.groups = sorted(groups.values(), key=lambda g: (g is groups.get(None), g.name))
    active = [v for g in view.groups for v in g.visits]
    view.visits = len(active)
    view.confirmed = sum(v.confirmed for v in active)
    view.warnings = sum(v.flag_open for v in active)
    return view


def _sessions(db: Session, day: date, location: str | None, zones: list[ZoneInfo]) -> list[Any]:
    """The day's sessions (a little wider: zones differ) with their patients, by time."""
    start, end = _window(day, zones)
    query = (
        select(
            TreatmentSession,
            Patient.first_name,
            Patient.last_name,
            Patient.phone,
            Patient.initial_series_size,
        )
        .join(Patient, Patient.id == TreatmentSession.patient_id)
        .where(TreatmentSession.starts_at >= start, TreatmentSession.starts_at < end)
        .order_by(TreatmentSession.starts_at, Patient.last_name, TreatmentSession.id)
    )
    if location == NO_LOCATION:
        query = query.where(TreatmentSession.location_id.is_(None))
    elif location:
        query = query.where(TreatmentSession.location_id == location)
    return list(db.execute(query).all())


def _session_messages(db: Session, ids: list[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for row in db.execute(
        select(
            Message.session_id,
            Message.session_starts_at,
            Message.rule,
            Message.kind,
            Message.status,
            Message.reason,
            Message.due_at,
        )
        .where(Message.session_id.in_(ids), Message.kind != "alert")
        .order_by(Message.due_at, Message.id)
    ):
        found[row.session_id].append(row)
    return found


def _patient_messages(db: Session, patient_ids: list[str], now: datetime) -> dict[str, list[Any]]:
    """Planned messages of the patients that belong to no visit (check-ins, nudges)."""
    found: dict[str, list[Any]] = defaultdict(list)
    for row in db.execute(
        select(Message.patient_id, Message.rule, Message.due_at).where(
            Message.patient_id.in_(patient_ids),
            Message.session_id.is_(None),
            Message.status == "planned",
            Message.due_at > now,
            Message.kind.in_(PATIENT_KINDS),
        )
    ):
        found[row.patient_id].append(row)
    return found


def _flags(db: Session, ids: list[str]) -> dict[str, list[tuple[str, str, bool]]]:
    """Late-preparation flags per session: (dedupe key, summary, still open)."""
    found: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for sid, key, summary, acknowledged in db.execute(
        select(
            StaffTask.session_id, StaffTask.dedupe_key, StaffTask.summary, StaffTask.acknowledged_at
        ).where(StaffTask.kind == PREP_LATE, StaffTask.session_id.in_(ids))
    ):
        if sid is not None and key:
            found[sid].append((key, summary, acknowledged is None))
    return found


def _flag_for(
    flags: list[tuple[str, str, bool]], session_id: str, starts_at: datetime
) -> tuple[str, bool] | None:
    """The flag raised for this start time (``prep_late:{session}:{start}``), open first; one
    for an earlier start time of a visit since moved does not count."""
    current = []
    prefix = f"{PREP_LATE}:{session_id}:"
    for key, summary, is_open in flags:
        if not key.startswith(prefix):
            continue
        stamp = key.removeprefix(prefix)
        try:
            if datetime.fromisoformat(stamp) != starts_at:
                continue
        except ValueError:
            pass
        current.append((summary, is_open))
    return max(current, key=lambda f: f[1]) if current else None


def _series_numbers(db: Session, sessions: list[TreatmentSession]) -> dict[str, int]:
    """Each infusion's number among its patient's non-cancelled infusions, by start time (as
    :func:`reminders.planning.planner.derive_series` numbers them), where the clinic gave none."""
    wanted = [
        s.id
        for s in sessions
        if s.kind == "infusion" and s.status != "cancelled" and s.series_number is None
    ]
    if not wanted:
        return {}
    own, other = aliased(TreatmentSession), aliased(TreatmentSession)
    earlier = or_(
        other.starts_at < own.starts_at,
        and_(other.starts_at == own.starts_at, other.id <= own.id),
    )
    query = (
        select(own.id, func.count(other.id))
        .join(other, other.patient_id == own.patient_id)
        .where(own.id.in_(wanted), other.kind == "infusion", other.status != "cancelled", earlier)
        .group_by(own.id)
    )
    return {sid: int(count) for sid, count in db.execute(query)}


def _what(words: _Words, session: TreatmentSession, derived: int | None, size: int) -> str:
    """ "Infusion 3 of 6", "Infusion, maintenance", "Consultation"."""
    kind = words.label("session_kind", session.kind)
    if session.kind != "infusion" or session.status == "cancelled":
        return kind
    number = session.series_number if session.series_number is not None else derived
    phase = session.phase
    if phase not in ("initial", "maintenance"):
        phase = "initial" if number is not None and number <= size else "maintenance"
    if phase == "maintenance":
        return words.t("Infusion, maintenance")
    if number is None:
        return kind
    if number > size:
        return words.t("Infusion {number}").format(number=number)
    return words.t("Infusion {number} of {size}").format(number=number, size=size)


def _confirmation(words: _Words, session: TreatmentSession) -> str:
    if session.status == "confirmed":
        return words.t(CONFIRMED_VIA.get(session.confirmed_via or "clinic", "Confirmed (clinic)"))
    if session.status == "scheduled":
        return words.t("Not confirmed")
    return words.label("session_status", session.status)


def _prep_lines(words: _Words, messages: list[Any], now: datetime) -> list[PrepLine]:
    """What happened to each reminder of the visit (those still to come are "next")."""
    lines = []
    for m in messages:
        if m.kind != "reminder" or (m.status == "planned" and m.due_at > now):
            continue
        text = f"{words.label('rule', m.rule)} {words.label('status', m.status).lower()}"
        if m.status in WITH_REASON and m.reason:
            text += f": {words.label('reason', m.reason)}"
        lines.append(
            PrepLine(text, TONES.get(m.status, "muted" if m.status == "cancelled" else ""))
        )
    return lines


def _next_message(words: _Words, due: list[Any], zone: ZoneInfo, day: date) -> str | None:
    if not due:
        return None
    first = min(due, key=lambda m: m.due_at)
    local = first.due_at.astimezone(zone)
    what = words.label("rule", first.rule)
    if local.date() == day:
        return words.t("{what} at {time}").format(what=what, time=words.clock(local))
    return words.t("{what} on {date} at {time}").format(
        what=what, date=words.short_date(local.date()), time=words.clock(local)
    )


def today_url(day: date, location: str | None = None) -> str:
    query = {"day": day.isoformat(), **({"location": location} if location else {})}
    return "/staff/today?" + urlencode(query)


def parse_day(value: str, default: date) -> date:
    if not value:
        return default
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status_code=400, detail="That is not a day: choose one with the date picker."
        ) from None


@router.get("/today")
def today_page(
    request: Request,
    day: str = "",
    location: str = "",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    zone = settings_of(request).zone
    now = utcnow()
    today = now.astimezone(zone).date()
    shown = parse_day(day.strip(), today)
    place = location.strip()[:64] or None
    words = _Words.of(console_language(request, staff.user.language))
    view = build_day(db, day=shown, zone=zone, now=now, language=words.language, location=place)
    one_day = timedelta(days=1)
    context = {
        "view": view,
        "day_iso": shown.isoformat(),
        "day_words": words.long_date(shown),
        "is_today": shown == today,
        "location": place or "",
        "here": today_url(shown, place),
        "links": {
            "previous": today_url(shown - one_day, place),
            "today": today_url(today, place),
            "tomorrow": today_url(today + one_day, place),
            "next": today_url(shown + one_day, place),
        },
        "tomorrow": shown == today + one_day,
        "counts": [
            words.count(view.visits, "1 visit", "{n} visits"),
            words.count(view.confirmed, "1 confirmed", "{n} confirmed"),
            words.t("{n} not confirmed").format(n=view.visits - view.confirmed),
            words.count(view.warnings, "1 preparation warning", "{n} preparation warnings"),
        ],
    }
    return render(request, "today.html", context, staff=staff)
