"""What the send-time checks need to know about a claimed batch, read in a few queries."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import Message, OptOut, Patient, TreatmentSession
from reminders.dispatch.checks import Facts
from reminders.outbox.consent import normalise_address


def read_facts(
    db: Session, messages: list[Message], patients: list[Patient], now: datetime
) -> Facts:
    """Opt-outs, superseded reminders and booked patients for a claimed batch, in three queries."""
    facts = Facts()
    addresses = {
        a for p in patients for a in (p.phone, normalise_address("email", p.email or "")) if a
    }
    if addresses:
        facts.opted_out = {
            (c, a)
            for c, a in db.execute(
                select(OptOut.channel, OptOut.address).where(
                    OptOut.active.is_(True), OptOut.address.in_(addresses)
                )
            )
        }
    reminders = [m for m in messages if m.kind == "reminder" and m.session_id]
    if reminders:
        siblings = db.execute(
            select(
                Message.id,
                Message.session_id,
                Message.channel,
                Message.session_starts_at,
                Message.due_at,
            ).where(
                Message.session_id.in_({m.session_id for m in reminders}),
                Message.kind == "reminder",
                Message.status.in_(("planned", "sending", "sent", "delivered")),
                Message.due_at <= now,
            )
        ).all()
        by_group: dict[tuple[Any, ...], list[tuple[datetime, int]]] = defaultdict(list)
        for mid, sid, ch, starts, due in siblings:
            by_group[(sid, ch, starts)].append((due, mid))
        for m in reminders:
            # Superseded when a later-due reminder of the same session, channel and start is due too.
            if any(
                (due, mid) > (m.due_at, m.id)
                for due, mid in by_group[(m.session_id, m.channel, m.session_starts_at)]
            ):
                facts.superseded.add(m.id)
    nudged = {m.patient_id for m in messages if m.kind == "nudge" and m.patient_id}
    if nudged:
        facts.booked_patients = set(
            db.scalars(
                select(TreatmentSession.patient_id).where(
                    TreatmentSession.patient_id.in_(nudged),
                    TreatmentSession.status.in_(ACTIVE_SESSION_STATUSES),
                    TreatmentSession.starts_at > now,
                )
            )
        )
    return facts
