"""What handling an inbound message queues: staff tasks, the on-call alerts they send, and
replies to the patient. Alerts and replies are outbox rows (``messages``: kind ``alert`` /
``reply``, status ``planned``, due now); the dispatcher sends them without consent,
opt-out or quiet-hours checks.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from reminders.conversations.matching import normalise_address
from reminders.db.models import (
    InboundMessage,
    Message,
    StaffTask,
)
from reminders.logs import event
from reminders.settings import Settings

log = logging.getLogger(__name__)

EXCERPT = 200


def _oncall_phone(raw: str, region: str) -> str:
    return normalise_address("sms", raw, region)


def create_alerts(db: Session, settings: Settings, task: StaffTask, now: datetime) -> int:
    """Alert every on-call phone (SMS) and email for ``task``; returns the number of messages.

    The alert names no symptom and quotes nothing (it goes to personal phones): the staff
    inbox link carries the details.
    """
    number = task.alert_count + 1
    link = f"{settings.public_url.rstrip('/')}/staff/tasks/{task.id}"
    what = {
        "crisis": "crisis language in a reply",
        "low_score": "low or falling check-in score",
    }.get(task.kind, task.kind.replace("_", " "))
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
) -> None:
    data: dict[str, Any] = {"text": text, "inbound_id": inbound.id}
    if inbound.channel == "email":
        data["subject"] = settings.clinic_name
    db.add(
        Message(
            dedupe_key=f"reply:{inbound.id}",
            patient_id=patient_id,
            rule=f"reply:{cls}",
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
