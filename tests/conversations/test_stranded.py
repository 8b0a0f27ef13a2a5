"""A message stored but never processed (the process died after answering the provider) is
processed by the next worker pass, once, and lands in front of staff."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from reminders.conversations.inbound import store_inbound
from reminders.conversations.sweep import STRANDED_AFTER
from reminders.db.models import InboundMessage, Message, StaffTask
from reminders.runtime import Runtime
from reminders.worker import Worker
from tests.conversations.helpers import P1


def _store(rt: Runtime, body: str, sid: str, at: datetime) -> int:
    inbound_id, processed = store_inbound(
        rt.session_factory,
        channel="sms",
        from_address=P1,
        body=body,
        provider_message_id=sid,
        received_at=at,
        region="US",
    )
    assert not processed
    return inbound_id


def test_a_stranded_message_is_processed_by_the_next_pass_once(
    clinic: Runtime, now: datetime
) -> None:
    crisis = _store(clinic, "I took all my pills an hour ago", "SM" + "1" * 32, now)
    worker = Worker(clinic)
    worker.safety_step(now + STRANDED_AFTER / 2)  # too young: a webhook may still be on it
    with clinic.session_factory() as db:
        assert db.get(InboundMessage, crisis).processed_at is None  # type: ignore[union-attr]

    worker.safety_step(now + STRANDED_AFTER + timedelta(seconds=1))
    worker.safety_step(now + STRANDED_AFTER + timedelta(seconds=2))
    with clinic.session_factory() as db:
        row = db.get(InboundMessage, crisis)
        assert row is not None and row.processed_at is not None
        assert row.classification == "crisis"
        tasks = db.scalar(select(func.count()).select_from(StaffTask).where(StaffTask.urgent))
        assert tasks == 1
        alerts = db.scalar(select(func.count()).select_from(Message).where(Message.kind == "alert"))
        assert alerts == 3  # two on-call phones and one email, paged once
