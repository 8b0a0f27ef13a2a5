"""What the inbox list shows a staff member, computed the same way for the page and for the
live updates the open page asks for (issue 14).

**Polling, not server-sent events.** The page's script asks ``GET /staff/inbox/updates`` every
2 s with its cursor. Crisis items are written by other processes (the webhooks, the worker) and
SQLite has no change notification, so a server-sent-events endpoint would poll the database
anyway, once per open page, and hold a connection (and, with our synchronous sessions, a
thread at each check) for as long as the page is open; it would also keep the server from
stopping promptly and be buffered by some proxies. A poll is one short read-only transaction:
when nothing changed, the answer is the same cursor and nothing else; when something did, the
list is rendered again on the server (the same partial as the page, so new items land where
they belong: urgent ones pinned on top) and the script swaps only the list, never the selected
item's note box. A poll does not count as activity for the idle sign-out (:func:`watching`).

**The cursor** is ``<highest item id>.<digest>``: the digest covers every open item's state
(kind, urgency, message count, visit time) and whether this person has read it, so an item
that changed (a crisis joining a routine item, an acknowledgement by someone else) refreshes
the list as well as a new one; items with an id above the cursor's are reported as ``new``.

**Unread** is per staff member: a ``task_reads`` row, written when the person opens the item.
Unconfirmed-visit flags are grouped by the visit's day (clinic time): a call list, with no
unread state of their own (they are not counted as unread).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from reminders.db.models import Patient, StaffTask, TaskRead, TreatmentSession
from reminders.templates.formats import babel_locale, format_day
from reminders.web.staff.common import signed_in_quietly
from reminders.web.staff.labels import TASK_KIND

OPEN_LIMIT = 500
DONE_LIMIT = 50
URGENT_LIMIT = 50
# Kinds whose acknowledgement always needs its own note (never acknowledged in bulk).
NEEDS_NOTE = frozenset({"crisis", "review", "low_score"})
GROUPED = "unconfirmed"
Translate = Callable[[str], str]


def needs_note(task: StaffTask) -> bool:
    """Urgent items (crisis, review, low score): acknowledged one at a time, with a note."""
    return bool(task.urgent or task.urgent_review or task.kind in NEEDS_NOTE)


def is_pinned(task: StaffTask) -> bool:
    return bool(task.urgent or task.urgent_review)


@dataclass(frozen=True)
class Filters:
    urgent: bool = False
    unread: bool = False
    kind: str = ""
    status: str = "open"  # open | done

    @classmethod
    def of(
        cls,
        urgent: str | None = None,
        unread: str | None = None,
        kind: str | None = None,
        status: str | None = None,
    ) -> Filters:
        return cls(
            urgent=bool(urgent),
            unread=bool(unread),
            kind=kind if kind in TASK_KIND else "",
            status="done" if status == "done" else "open",
        )

    def params(self) -> dict[str, str]:
        values = {"urgent": "1" if self.urgent else "", "unread": "1" if self.unread else ""}
        values |= {"kind": self.kind, "status": "done" if self.status == "done" else ""}
        return {key: value for key, value in values.items() if value}

    def query(self, **extra: object) -> str:
        """``?urgent=1&task=5``: these filters and ``extra`` (None values left out)."""
        values = self.params() | {k: str(v) for k, v in extra.items() if v is not None}
        return f"?{urlencode(values)}" if values else ""

    @property
    def active(self) -> bool:
        return bool(self.params())


@dataclass(frozen=True)
class Row:
    task: StaffTask
    patient: Patient | None
    unread: bool
    starts_at: datetime | None = None
    session_status: str | None = None

    @property
    def needs_note(self) -> bool:
        return needs_note(self.task)

    @property
    def grouped(self) -> bool:
        return self.task.kind == GROUPED and self.starts_at is not None

    @property
    def picked(self) -> str:
        """The bulk checkbox's value: the item and how many messages the page showed."""
        return f"{self.task.id}:{self.task.message_count}"


@dataclass(frozen=True)
class DayGroup:
    day: date
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class State:
    """The open items as this person sees them: the cursor and the unread counts."""

    cursor: str
    max_id: int
    unread: int
    unread_urgent: int
    urgent_ids: tuple[int, ...]


@dataclass(frozen=True)
class View:
    filters: Filters
    pinned: list[Row]
    groups: list[DayGroup]
    rows: list[Row]

    @property
    def ids(self) -> list[int]:
        return [r.task.id for r in self.pinned + self.rows] + [
            r.task.id for g in self.groups for r in g.rows
        ]

    @property
    def bulk_rows(self) -> list[Row]:
        return [r for r in self.rows if not r.needs_note and r.task.acknowledged_at is None]

    def find(self, task_id: int) -> Row | None:
        rows = self.pinned + self.rows + [r for g in self.groups for r in g.rows]
        return next((r for r in rows if r.task.id == task_id), None)


def _read_join(user_id: int) -> Any:
    return and_(TaskRead.task_id == StaffTask.id, TaskRead.user_id == user_id)


def state(db: Session, user_id: int, *, read_now: int | None = None) -> State:
    """Every open item's state in one light query (no patient data): the cursor and counts.
    ``read_now``: an item being opened by this request (counted as read)."""
    rows = db.execute(
        select(
            StaffTask.id,
            StaffTask.kind,
            StaffTask.urgent,
            StaffTask.urgent_review,
            StaffTask.message_count,
            TreatmentSession.starts_at,
            TaskRead.task_id,
        )
        .outerjoin(TreatmentSession, TreatmentSession.id == StaffTask.session_id)
        .outerjoin(TaskRead, _read_join(user_id))
        .where(StaffTask.acknowledged_at.is_(None))
        .order_by(StaffTask.id)
    ).all()
    max_id = db.scalar(select(func.max(StaffTask.id))) or 0
    unread = unread_urgent = 0
    urgent_ids: list[int] = []
    digest = hashlib.sha256()
    for task_id, kind, urgent, review, count, starts_at, read in rows:
        seen = read is not None or task_id == read_now
        digest.update(repr((task_id, kind, urgent, review, count, starts_at, seen)).encode())
        if urgent or review:
            urgent_ids.append(task_id)
        if not seen and not (kind == GROUPED and starts_at is not None):
            unread += 1
            unread_urgent += 1 if urgent or review else 0
    cursor = f"{max_id}.{digest.hexdigest()[:16]}"
    return State(cursor, max_id, unread, unread_urgent, tuple(urgent_ids))


def since_id(cursor: str | None) -> int | None:
    """The highest item id a cursor had seen (None: no or unreadable cursor)."""
    head = (cursor or "").partition(".")[0]
    return int(head) if head.isdigit() else None


def build(
    db: Session, user_id: int, filters: Filters, zone: ZoneInfo, *, selected: int | None = None
) -> View:
    """The list for ``filters``: pinned urgent items, unconfirmed visits by day, the rest.
    ``selected``: the item being read (shown read, and kept in an unread-only list)."""
    stmt = (
        select(StaffTask, Patient, TreatmentSession.starts_at, TreatmentSession.status, TaskRead)
        .outerjoin(Patient, Patient.id == StaffTask.patient_id)
        .outerjoin(TreatmentSession, TreatmentSession.id == StaffTask.session_id)
        .outerjoin(TaskRead, _read_join(user_id))
    )
    done = filters.status == "done"
    if done:
        stmt = stmt.where(StaffTask.acknowledged_at.is_not(None)).order_by(
            StaffTask.acknowledged_at.desc(), StaffTask.id.desc()
        )
    else:
        stmt = stmt.where(StaffTask.acknowledged_at.is_(None)).order_by(
            StaffTask.urgent.desc(),
            StaffTask.urgent_review.desc(),
            StaffTask.created_at.desc(),
            StaffTask.id.desc(),
        )
    if filters.urgent:
        stmt = stmt.where(or_(StaffTask.urgent.is_(True), StaffTask.urgent_review.is_(True)))
    if filters.kind:
        stmt = stmt.where(StaffTask.kind == filters.kind)
    if filters.unread:
        stmt = stmt.where(or_(TaskRead.task_id.is_(None), StaffTask.id == (selected or 0)))
    found = db.execute(stmt.limit(DONE_LIMIT if done else OPEN_LIMIT)).all()
    rows = [
        Row(task, patient, read is None and task.id != selected, starts_at, session_status)
        for task, patient, starts_at, session_status, read in found
    ]
    if done:
        return View(filters, [], [], rows)
    if filters.unread:
        rows = [r for r in rows if not r.grouped]
    days: dict[date, list[Row]] = {}
    for row in rows:
        if row.grouped and row.starts_at is not None:
            days.setdefault(row.starts_at.astimezone(zone).date(), []).append(row)
    groups = [DayGroup(day, tuple(sorted(days[day], key=_by_time))) for day in sorted(days)]
    pinned = [r for r in rows if is_pinned(r.task)]
    rest = [r for r in rows if not is_pinned(r.task) and not r.grouped]
    return View(filters, pinned, groups, rest)


def _by_time(row: Row) -> tuple[datetime, int]:
    return (row.starts_at or row.task.created_at, row.task.id)


def urgent_items(db: Session, ids: Sequence[int]) -> list[tuple[StaffTask, Patient | None]]:
    """The newest open urgent items (for the "New urgent item" notice)."""
    if not ids:
        return []
    newest = sorted(ids, reverse=True)[:URGENT_LIMIT]
    found = db.execute(
        select(StaffTask, Patient)
        .outerjoin(Patient, Patient.id == StaffTask.patient_id)
        .where(StaffTask.id.in_(newest))
        .order_by(StaffTask.id.desc())
    ).all()
    return [(task, patient) for task, patient in found]


# --- words -------------------------------------------------------------------------------------


def full_name(patient: Patient | None, t: Translate) -> str:
    if patient is None:
        return t("Unknown sender")
    return f"{patient.first_name} {patient.last_name}".strip()


def plain_summary(task: StaffTask, patient: Patient | None, t: Translate) -> str:
    """The item's summary without codes: the patient's name for their id, no visit ids, no
    risk category in front (that goes under "Why was this flagged?")."""
    text = task.summary or ""
    if task.category:
        prefix = f"{task.category.capitalize()} from "
        if text.startswith(prefix) and ": " in text:
            text = text.split(": ", 1)[1]
    if task.patient_id:
        name = full_name(patient, t) if patient else t("the patient")
        text = re.sub(rf"\b[Pp]atient {re.escape(task.patient_id)}(?![\w-])", name, text)
    if task.session_id:
        text = re.sub(rf"\s{re.escape(task.session_id)}(?![\w-])", "", text)
    return re.sub(r"(unknown sender) \([^)]*\)", r"\1", text)


def day_title(day: date, language: str) -> str:
    """ "Tuesday, December 1" (or "martes, 1 de diciembre"): the patients' messages' format."""
    return format_day(datetime.combine(day, time()), language)


def short_when(
    at: datetime | None, zone: ZoneInfo, t: Translate, now: datetime, language: str
) -> str:
    """ "15:04" today, else "Mar 12, 15:04" ("12 mar, 15:04"), with the year if not this one."""
    if at is None:
        return ""
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return clock
    month = format_date(local.date(), "MMM", locale=babel_locale(language)).rstrip(".")
    when = t("{month} {day}, {time}").format(month=month, day=local.day, time=clock)
    return when if local.year == today.year else f"{when} {local.year}"


def unread_text(count: int, t: Translate) -> str:
    if count == 0:
        return t("all read")
    return t("1 unread") if count == 1 else t("{n} unread").format(n=count)


def title(unread_urgent: int, clinic: str, t: Translate) -> str:
    """The browser tab's title: "(2) Inbox · Clinic" (2 unread urgent items)."""
    count = f"({unread_urgent}) " if unread_urgent else ""
    return f"{count}{t('Inbox')} · {clinic}"


# --- who is asking (without counting as activity): common.signed_in_quietly ------------------

watching = signed_in_quietly
