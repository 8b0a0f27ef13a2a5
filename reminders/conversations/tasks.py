"""What handling an inbound message queues: staff tasks, the on-call alerts they send,
replies to the patient, and opt-outs (with their audit entry). Alerts and replies are outbox rows (``messages``: kind ``alert`` /
``reply``, status ``planned``, due now); the dispatcher sends them without consent,
opt-out or quiet-hours checks.

A patient's messages that a person must read are filed on one **inbox item** per patient (or
per unknown sender address) while it is open: the first opens it, later ones join it
(``inbound_messages.task_id``) instead of opening new items and new pages. A partial unique
index on ``staff_tasks.open_key`` (among unacknowledged tasks) keeps it to one even when two
messages from one number are processed at once on PostgreSQL: the loser of the insert joins the
winner's item. A crisis pages at once (and again every ``realert_minutes`` until acknowledged,
:mod:`reminders.conversations.safety`); a crisis joining a non-urgent item makes it urgent and
pages; anything else pages once if still unacknowledged at ``page_due_at`` (docs/design.md
section 9).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.conversations.matching import normalise_address
from reminders.db.engine import rowcount
from reminders.db.models import (
    AuditLog,
    InboundMessage,
    Message,
    StaffTask,
)
from reminders.logs import event
from reminders.outbox.consent import set_opt_out
from reminders.settings import Settings

log = logging.getLogger(__name__)

EXCERPT = 200

# What a page calls a task when nothing more precise is known (a page never quotes the message).
KIND_CATEGORIES = {
    "crisis": "possible crisis in a reply",
    "low_score": "low or falling check-in score",
}


def _oncall_phone(raw: str, region: str) -> str:
    return normalise_address("sms", raw, region)


def oncall_count(settings: Settings) -> int:
    """How many on-call recipients an alert goes to (0: alerts go nowhere)."""
    return len(settings.oncall_phone_list) + len(settings.oncall_email_list)


def create_alerts(
    db: Session, settings: Settings, task: StaffTask, now: datetime, *, reason: str | None = None
) -> int:
    """Alert every on-call phone (SMS) and email for ``task``; returns the number of messages.

    The alert names the category ("suicide risk", "possible overdose", "unread message for 15
    minutes"), never the message text (it goes to personal phones): the inbox link carries the
    details.
    """
    number = task.alert_count + 1
    link = f"{settings.public_url.rstrip('/')}/staff/tasks/{task.id}"
    what = reason or task.category or KIND_CATEGORIES.get(task.kind, task.kind.replace("_", " "))
    again = f" (alert {number}, not yet acknowledged)" if number > 1 else ""
    # The staff_alert template adds "URGENT", the patient id and the link around the summary.
    data: dict[str, Any] = {
        "summary": f"{what}{again}",
        "kind": task.kind,
        "patient_id": task.patient_id or "unknown",
        "link": link,
        "task_id": task.id,
        "alert_number": number,
    }
    recipients = [
        ("sms", i, _oncall_phone(p, settings.default_region))
        for i, p in enumerate(settings.oncall_phone_list)
    ]
    recipients += [("email", i, e.lower()) for i, e in enumerate(settings.oncall_email_list)]
    for channel, index, address in recipients:
        db.add(
            Message(
                dedupe_key=f"alert:{task.id}:{number}:{channel}:{index}",
                patient_id=task.patient_id,
                session_id=task.session_id,
                rule=f"alert:{task.kind}",
                kind="alert",
                channel=channel,
                template="staff_alert",
                due_at=now,
                status="planned",
                to_address=address,
                language="en",
                data=dict(data),
            )
        )
    task.alert_count = number
    task.last_alert_at = now
    if not recipients:
        event(
            log,
            "urgent task has no on-call recipients configured",
            logging.WARNING,
            task_id=task.id,
        )
    return len(recipients)


def open_task(
    db: Session,
    *,
    kind: str,
    summary: str,
    inbound: InboundMessage | None,
    patient_id: str | None,
    session_id: str | None = None,
    urgent: bool = False,
    now: datetime,
) -> StaffTask:
    """A to-do of its own (reschedule, confirm without a session): not an inbox item."""
    task = StaffTask(
        kind=kind,
        urgent=urgent,
        patient_id=patient_id,
        session_id=session_id,
        inbound_id=inbound.id if inbound else None,
        summary=summary[:500],
        dedupe_key=f"inbound:{inbound.id}:{kind}" if inbound else None,
        created_at=now,
    )
    db.add(task)
    db.flush()
    return task


# --- inbox items -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filed:
    task: StaffTask
    opened: bool  # False: the message joined the sender's open item
    alerts: int  # alert messages queued now


def open_key_for(inbound: InboundMessage, patient_id: str | None) -> str:
    if patient_id:
        return f"patient:{patient_id}"
    return f"{inbound.channel}:{inbound.from_address}"[:400]


def file_inbox_item(
    db: Session,
    settings: Settings,
    inbound: InboundMessage,
    *,
    patient_id: str | None,
    kind: str,
    summary: str,
    now: datetime,
    page_due_at: datetime | None,
    urgent: bool = False,
    category: str | None = None,
    review: bool = False,
    session_id: str | None = None,
) -> Filed:
    """File ``inbound`` on the sender's open inbox item, or open one (see the module doc)."""
    key = open_key_for(inbound, patient_id)
    for _attempt in range(5):
        task = db.scalars(
            select(StaffTask)
            .where(StaffTask.open_key == key, StaffTask.acknowledged_at.is_(None))
            .limit(1)
        ).first()
        if task is not None:
            filed = _join(
                db,
                settings,
                task,
                inbound,
                kind=kind,
                summary=summary,
                now=now,
                page_due_at=page_due_at,
                urgent=urgent,
                category=category,
                review=review,
            )
            if filed is not None:
                return filed
            continue  # acknowledged in the meantime: open a new one
        task = StaffTask(
            kind=kind,
            urgent=urgent,
            urgent_review=review and not urgent,
            category=category,
            patient_id=patient_id,
            session_id=session_id,
            inbound_id=inbound.id,
            summary=summary[:500],
            dedupe_key=f"inbound:{inbound.id}:{kind}",
            open_key=key,
            created_at=now,
            page_due_at=None if urgent else page_due_at,
            message_count=1,
            alert_count=0,
        )
        try:
            with db.begin_nested():
                db.add(task)
        except IntegrityError:
            # Another message from this sender opened an item at the same moment: join it.
            event(log, "inbox item opened concurrently; joining it", inbound_id=inbound.id)
            continue
        inbound.task_id = task.id
        alerts = create_alerts(db, settings, task, now) if urgent else 0
        return Filed(task, True, alerts)
    raise RuntimeError("could not file the message on an inbox item")


def _join(
    db: Session,
    settings: Settings,
    task: StaffTask,
    inbound: InboundMessage,
    *,
    kind: str,
    summary: str,
    now: datetime,
    page_due_at: datetime | None,
    urgent: bool,
    category: str | None,
    review: bool,
) -> Filed | None:
    # Count the message in with an UPDATE: it must find the item still open, and (PostgreSQL)
    # locks it until commit, so an acknowledgement or an unread page waits for this message.
    bumped = rowcount(
        db.execute(
            update(StaffTask)
            .where(StaffTask.id == task.id, StaffTask.acknowledged_at.is_(None))
            .values(message_count=StaffTask.message_count + 1)
            .execution_options(synchronize_session=False)
        )
    )
    if bumped != 1:
        return None
    db.refresh(task)
    inbound.task_id = task.id
    alerts = 0
    if urgent and not task.urgent:
        # A crisis on an open non-urgent item: it becomes urgent and pages now.
        task.urgent, task.kind, task.urgent_review = True, kind, False
        task.category = category
        task.summary = summary[:500]
        task.page_due_at = None
        db.flush()
        alerts = create_alerts(db, settings, task, now)
        event(log, "inbox item became urgent", task_id=task.id, inbound_id=inbound.id)
    elif urgent:
        # Already paging: the next re-alert names the latest finding.
        if kind == "crisis":
            task.kind = kind
        task.category = category or task.category
    elif not task.urgent:
        if review and not task.urgent_review:
            task.urgent_review = True
            task.category = category
        if task.page_due_at is None and task.alert_count == 0:
            task.page_due_at = page_due_at
    return Filed(task, False, alerts)


def excerpt(body: str) -> str:
    text = " ".join(body.split())
    return f'"{text[:EXCERPT]}{"..." if len(text) > EXCERPT else ""}"'


def queue_reply(
    db: Session,
    inbound: InboundMessage,
    *,
    cls: str,
    text: str,
    language: str,
    patient_id: str | None,
    settings: Settings,
    now: datetime,
    rule: str | None = None,
) -> None:
    data: dict[str, Any] = {"text": text, "inbound_id": inbound.id}
    if inbound.channel == "email":
        data["subject"] = settings.clinic_name
    db.add(
        Message(
            dedupe_key=f"reply:{inbound.id}",
            patient_id=patient_id,
            rule=rule or f"reply:{cls}",
            kind="reply",
            channel=inbound.channel,
            template="reply_text",
            due_at=now,
            status="planned",
            to_address=inbound.from_address,
            language=language,
            data=data,
        )
    )


AFTER_HOURS_RULE = "reply:after_hours"


def record_opt_out(
    db: Session, inbound: InboundMessage, *, active: bool, actor: str, now: datetime
) -> bool:
    """Record STOP (active) or START (inactive) for this channel and address; True if it changed."""
    source = f"{inbound.channel}_{'stop' if active else 'start'}"
    if not set_opt_out(
        db,
        channel=inbound.channel,
        address=inbound.from_address,
        source=source,
        active=active,
        at=now,
    ):
        return False
    db.add(
        AuditLog(
            at=now,
            actor=actor,
            action="opt_out" if active else "opt_in",
            entity="opt_out",
            entity_id=f"{inbound.channel}",
            detail={"inbound_id": inbound.id},
        )
    )
    return True
