"""The inbox: staff tasks and replies, live (issue 14). Urgent items (crisis, urgent review, low
scores) stay pinned on top until someone acknowledges them with a note; routine ones can be
acknowledged several at a time; unconfirmed-visit flags are grouped by visit day. Opening an
item shows its messages (every one filed on it) and the patient's conversation, and marks it
read for this staff member. Acknowledging stops the item's pages; it is refused when a message
joined the item after the page was loaded (the person has not read it yet).

The open page asks ``GET /staff/inbox/updates`` every 2 s (polling; why, and the cursor, in
:mod:`reminders.web.staff.inbox_live`) and swaps in the list when it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.engine import LOCK_WAIT_MS
from reminders.db.models import AuditLog, InboundMessage, Message, Patient, StaffTask, TaskRead
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.web.deps import get_db, get_write_db, runtime_of, settings_of
from reminders.web.staff import inbox_live as live
from reminders.web.staff.common import (
    SECURITY_HEADERS,
    Staff,
    posted,
    render,
    safe_next,
    see_other,
    signed_in,
)
from reminders.web.staff.i18n import console_language, translator
from reminders.web.staff.labels import TASK_KIND, label

log = logging.getLogger(__name__)
router = APIRouter()

# Marking an item read waits at most this long for SQLite's write lock, else it is skipped
# (the next opening marks it): a page never waits behind a webhook for it.
READ_MARK_LOCK_WAIT_MS = 200
BULK_LIMIT = 1000
BULK_NOTE = "bulk"


@dataclass(frozen=True)
class ThreadItem:
    at: datetime
    direction: str  # "in" | "out"
    channel: str
    text: str  # "" when the message's text was not kept
    status: str
    rule: str = ""


def conversation(db: Session, patient_id: str, limit: int = 100) -> list[ThreadItem]:
    """A patient's messages both ways, oldest first (the latest ``limit``)."""
    outgoing = db.scalars(
        select(Message)
        .where(
            Message.patient_id == patient_id, Message.status.in_(("sent", "delivered", "failed"))
        )
        .order_by(Message.updated_at.desc())
        .limit(limit)
    ).all()
    incoming = db.scalars(
        select(InboundMessage)
        .where(InboundMessage.patient_id == patient_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(limit)
    ).all()
    items = [
        ThreadItem(m.sent_at or m.updated_at, "out", m.channel, m.body or "", m.status, m.rule)
        for m in outgoing
    ] + [
        ThreadItem(i.received_at, "in", i.channel, i.body, i.classification or "") for i in incoming
    ]
    return sorted(items, key=lambda item: item.at)[-limit:]


def _language(request: Request, staff: Staff) -> str:
    return console_language(request, staff.user.language)


def _words(request: Request, staff: Staff) -> live.Translate:
    return translator(_language(request, staff))


def _helpers(request: Request, staff: Staff, filters: live.Filters) -> dict[str, Any]:
    """What the list and detail partials call: names, times, plain summaries, links."""
    language = _language(request, staff)
    t, zone, now = translator(language), settings_of(request).zone, utcnow()
    return {
        "filters": filters,
        "q": filters.query,
        "name": partial(live.full_name, t=t),
        "plain": partial(live.plain_summary, t=t),
        "when": partial(live.short_when, zone=zone, t=t, now=now, language=language),
        "clock": lambda at: at.astimezone(zone).strftime("%H:%M") if at else "",
        "day_title": partial(live.day_title, language=language),
    }


@router.get("/inbox")
def inbox(
    request: Request,
    task: int | None = None,
    urgent: str | None = None,
    unread: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    bulk: int | None = None,
    kept: int | None = None,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    filters = live.Filters.of(urgent, unread, kind, status)
    settings, user_id = settings_of(request), staff.user.id
    selected = db.get(StaffTask, task) if task is not None else None
    selected_id = selected.id if selected else None
    was_read = selected is not None and db.get(TaskRead, (selected.id, user_id)) is not None
    view = live.build(db, user_id, filters, settings.zone, selected=selected_id)
    counts = live.state(db, user_id, read_now=selected_id)
    inbound = (
        db.get(InboundMessage, selected.inbound_id) if selected and selected.inbound_id else None
    )
    filed = (
        list(
            db.scalars(
                select(InboundMessage)
                .where(InboundMessage.task_id == selected.id)
                .order_by(InboundMessage.received_at, InboundMessage.id)
            )
        )
        if selected
        else []
    )
    patient = db.get(Patient, selected.patient_id) if selected and selected.patient_id else None
    replies = db.execute(
        select(InboundMessage, Patient)
        .outerjoin(Patient, Patient.id == InboundMessage.patient_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(50)
    ).all()
    t = _words(request, staff)
    context = {
        "view": view,
        "counts": counts,
        "unread_text": live.unread_text(counts.unread, t),
        "selected": selected,
        "selected_id": selected_id,
        "inbound": inbound,
        "filed": filed,
        "patient": patient,
        "thread": conversation(db, patient.id) if patient else [],
        "replies": replies,
        "kinds": list(TASK_KIND),
        "bulk": bulk,
        "kept": kept,
        **_helpers(request, staff, filters),
    }
    response = render(request, "inbox.html", context, staff=staff)
    if selected is not None and not was_read:
        db.rollback()  # end the read transaction before the write
        _mark_read(request, selected.id, user_id)
    return response


def _mark_read(request: Request, task_id: int, user_id: int) -> None:
    """Record that this person opened the item: a short write of its own, skipped when
    SQLite's write lock is busy (the next opening marks it)."""
    try:
        with runtime_of(request).session_factory() as db:
            db.connection(execution_options={LOCK_WAIT_MS: READ_MARK_LOCK_WAIT_MS})
            if db.get(TaskRead, (task_id, user_id)) is None:
                db.add(TaskRead(task_id=task_id, user_id=user_id, read_at=utcnow()))
            db.commit()
    except (OperationalError, IntegrityError):
        event(log, "inbox item not marked read", logging.WARNING, task=task_id, user=user_id)


@router.get("/inbox/updates")
def updates(
    request: Request,
    since: str | None = None,
    task: int | None = None,
    urgent: str | None = None,
    unread: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    staff: Staff = Depends(live.watching),
    db: Session = Depends(get_db),
) -> Response:
    """What changed since ``since`` (a cursor): the cursor and counts always; when anything
    changed, the list rendered again (``list_html``), the items created after the cursor that
    the filters show (``new``) and the open urgent items (``urgent``, for the notice)."""
    filters = live.Filters.of(urgent, unread, kind, status)
    t, user_id = _words(request, staff), staff.user.id
    counts = live.state(db, user_id)
    selected = db.get(StaffTask, task) if task is not None else None
    payload: dict[str, Any] = {
        "cursor": counts.cursor,
        "changed": since != counts.cursor,
        "unread": counts.unread,
        "unread_urgent": counts.unread_urgent,
        "count_text": live.unread_text(counts.unread, t),
        "title": live.title(counts.unread_urgent, settings_of(request).clinic_name, t),
        "selected": None
        if selected is None
        else {
            "id": selected.id,
            "messages": selected.message_count,
            "acknowledged": selected.acknowledged_at is not None,
        },
    }
    if payload["changed"]:
        view = live.build(db, user_id, filters, settings_of(request).zone, selected=task)
        helpers = _helpers(request, staff, filters)
        fragment = render(
            request,
            "inbox_list.html",
            {"view": view, "selected_id": task, **helpers},
            staff=staff,
        )
        after = live.since_id(since)
        rows = view.pinned + view.rows + [r for g in view.groups for r in g.rows]
        describe = _describer(_language(request, staff), helpers)
        payload["list_html"] = bytes(fragment.body).decode("utf-8")
        payload["new"] = [
            {"id": r.task.id, "urgent": live.is_pinned(r.task), "text": describe(r.task, r.patient)}
            for r in sorted(rows, key=lambda r: r.task.id)
            if after is not None and r.task.id > after
        ]
        payload["urgent"] = [
            {
                "id": item.id,
                "text": describe(item, patient),
                "href": f"/staff/inbox{filters.query(task=item.id)}",
            }
            for item, patient in live.urgent_items(db, counts.urgent_ids)
        ]
    return JSONResponse(payload, headers=SECURITY_HEADERS)


def _describer(
    language: str, helpers: dict[str, Any]
) -> Callable[[StaffTask, Patient | None], str]:
    """ "Possible crisis · Ana Rivera": an item in words (kind and patient)."""

    def describe(task: StaffTask, patient: Patient | None) -> str:
        return f"{label('task', task.kind, language)} · {helpers['name'](patient)}"

    return describe


@router.post("/inbox/{task_id}/ack")
def acknowledge(
    task_id: int,
    note: str = Form(""),
    seen: int | None = Form(None),
    next: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),  # a short write: no rendering here
) -> Response:
    task = db.get(StaffTask, task_id)
    if task is None:
        raise HTTPException(status_code=404, detail="There is no such inbox item.")
    note = note.strip()[:2000]
    if live.needs_note(task) and not note:
        raise HTTPException(status_code=400, detail="An urgent item needs a note: what was done?")
    now = utcnow()
    # Only the first acknowledgement counts: two people clicking at once do not overwrite each other.
    # ``seen``: how many messages the page showed; one that joined since keeps the item open.
    claim = update(StaffTask).where(StaffTask.id == task_id, StaffTask.acknowledged_at.is_(None))
    if seen is not None:
        claim = claim.where(StaffTask.message_count <= seen)
    result = db.execute(
        claim.values(
            acknowledged_at=now, acknowledged_by=staff.user.email, note=note or None
        ).execution_options(synchronize_session=False)
    )
    changed = getattr(result, "rowcount", 0)
    if not changed and _has_unseen(db, task_id, seen):
        db.rollback()
        raise HTTPException(
            status_code=409,
            detail="A new message arrived on this item: reload the page and read it first.",
        )
    if changed:
        db.add(_audit(staff, task))
    db.commit()
    event(log, "task acknowledged", task=task_id, user=staff.user.id, first=bool(changed))
    return see_other(safe_next(next) if next else f"/staff/inbox?task={task_id}")


def _audit(staff: Staff, task: StaffTask, **extra: Any) -> AuditLog:
    return AuditLog(
        actor=staff.user.email,
        action="task.acknowledge",
        entity="staff_task",
        entity_id=str(task.id),
        detail={"kind": task.kind, "urgent": task.urgent, "patient_id": task.patient_id, **extra},
    )


def _has_unseen(db: Session, task_id: int, seen: int | None) -> bool:
    if seen is None:
        return False
    db.expire_all()
    task = db.get(StaffTask, task_id)
    return task is not None and task.acknowledged_at is None and task.message_count > seen


def _picked(values: list[str]) -> dict[int, int | None]:
    """``["5:1", "7"]`` (item, messages the page showed) -> ``{5: 1, 7: None}``."""
    picked: dict[int, int | None] = {}
    for value in values:
        head, _, count = value.partition(":")
        if not head.isdigit() or (count and not count.isdigit()):
            raise HTTPException(status_code=400, detail="That selection could not be read.")
        picked[int(head)] = int(count) if count else None
    return picked


@router.post("/inbox/bulk-ack")
def bulk_acknowledge(
    task: list[str] = Form([]),
    next: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    """Acknowledge several routine items at once (note "bulk", audited one by one). Refused
    as a whole when one of them is urgent: each of those needs its own note. An item a
    message joined since the page was loaded stays open (``kept``)."""
    picked = _picked(task)
    if not picked:
        raise HTTPException(status_code=400, detail="Select at least one item to acknowledge.")
    if len(picked) > BULK_LIMIT:
        raise HTTPException(status_code=400, detail="Too many items at once.")
    tasks = list(db.scalars(select(StaffTask).where(StaffTask.id.in_(list(picked)))))
    if any(live.needs_note(t) and t.acknowledged_at is None for t in tasks):
        db.rollback()
        raise HTTPException(
            status_code=400,
            detail="Urgent items cannot be acknowledged together: "
            "open each one and write what was done.",
        )
    now, done, kept = utcnow(), 0, 0
    for item in tasks:
        claim = update(StaffTask).where(
            StaffTask.id == item.id,
            StaffTask.acknowledged_at.is_(None),
            StaffTask.urgent.is_(False),
            StaffTask.urgent_review.is_(False),
            StaffTask.kind.not_in(live.NEEDS_NOTE),
        )
        seen = picked[item.id]
        if seen is not None:
            claim = claim.where(StaffTask.message_count <= seen)
        result = db.execute(
            claim.values(
                acknowledged_at=now, acknowledged_by=staff.user.email, note=BULK_NOTE
            ).execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            db.add(_audit(staff, item, bulk=True))
            done += 1
        elif item.acknowledged_at is None:
            kept += 1
    db.commit()
    event(log, "tasks acknowledged in bulk", count=done, kept=kept, user=staff.user.id)
    return see_other(_with_params(safe_next(next), bulk=done, kept=kept or None))


def _with_params(url: str, **params: int | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))
