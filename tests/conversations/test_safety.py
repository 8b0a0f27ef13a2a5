"""Crisis at 3 a.m. from an opted-out patient, re-alerts and unconfirmed infusions."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from reminders.conversations.inbound import receive
from reminders.conversations.replies import CRISIS_EN
from reminders.conversations.safety import run_safety_checks
from reminders.db.models import Message, OptOut, Patient, StaffTask, TreatmentSession
from reminders.runtime import Runtime
from tests.conversations.helpers import P1

NY = ZoneInfo("America/New_York")


def test_crisis_at_3am_from_opted_out_patient_alerts_and_replies(clinic: Runtime) -> None:
    three_am = datetime(2026, 12, 2, 3, 0, tzinfo=NY)
    rt = clinic
    with rt.session_factory() as db:
        db.add(OptOut(channel="sms", address=P1, active=True, source="sms_stop"))
        db.add(
            OptOut(channel="email", address="ana@example.com", active=True, source="unsubscribe")
        )
        patient = db.get(Patient, "p1")
        assert patient is not None
        patient.sms_consent = False
        db.commit()
    result = receive(
        rt.session_factory,
        rt.settings,
        channel="sms",
        from_address=P1,
        body="i just want it all to end tonight",
        provider_message_id="SM-3am",
        now=three_am,
    )
    assert result.classification == "crisis" and result.alert_count == 3
    with rt.session_factory() as db:
        rows = list(db.scalars(select(Message).order_by(Message.id)))
        task = db.scalars(select(StaffTask)).one()
    alerts = [m for m in rows if m.kind == "alert"]
    replies = [m for m in rows if m.kind == "reply"]
    assert len(alerts) == 3 and len(replies) == 1
    for message in rows:
        # Due at once (3 a.m.), waiting for the dispatcher, which records their delivery status.
        assert message.status == "planned" and message.due_at == three_am
    assert {a.to_address for a in alerts} == {"+14105550900", "+14105550901", "oncall@example.com"}
    assert replies[0].data is not None
    assert replies[0].to_address == P1 and CRISIS_EN in replies[0].data["text"]
    assert task.urgent and task.kind == "crisis" and task.acknowledged_at is None


def test_unacknowledged_urgent_task_is_realerted(clinic: Runtime, now: datetime) -> None:
    rt = clinic
    receive(
        rt.session_factory,
        rt.settings,
        channel="sms",
        from_address=P1,
        body="kms",
        provider_message_id="SM-k",
        now=now,
    )
    with rt.session_factory() as db:
        # Before 15 minutes: nothing more.
        assert run_safety_checks(db, rt.settings, now + timedelta(minutes=14)) >= 0
        assert len(list(db.scalars(select(Message).where(Message.kind == "alert")))) == 3
    with rt.session_factory() as db:
        assert run_safety_checks(db, rt.settings, now + timedelta(minutes=15, seconds=1)) >= 1
        alerts = list(
            db.scalars(select(Message).where(Message.kind == "alert").order_by(Message.id))
        )
        assert len(alerts) == 6 and alerts[-1].data is not None
        assert alerts[-1].data["alert_number"] == 2
        task = db.scalars(select(StaffTask)).one()
        assert task.alert_count == 2
        # Running the same pass again (another worker, a retry) does not alert twice.
        run_safety_checks(db, rt.settings, now + timedelta(minutes=15, seconds=2))
        assert len(list(db.scalars(select(Message).where(Message.kind == "alert")))) == 6
        task.acknowledged_at = now + timedelta(minutes=20)
        task.acknowledged_by = "nurse@example.com"
        db.commit()
    with rt.session_factory() as db:
        run_safety_checks(db, rt.settings, now + timedelta(hours=2))
        assert len(list(db.scalars(select(Message).where(Message.kind == "alert")))) == 6


def test_unconfirmed_infusion_flagged_once(clinic: Runtime, now: datetime) -> None:
    rt = clinic
    with rt.session_factory() as db:
        db.add(
            TreatmentSession(
                id="soon", patient_id="p2", location_id="main", starts_at=now + timedelta(hours=10)
            )
        )
        db.add(
            TreatmentSession(
                id="soon-confirmed",
                patient_id="p3",
                location_id="main",
                starts_at=now + timedelta(hours=10),
                status="confirmed",
            )
        )
        db.add(
            TreatmentSession(
                id="soon-consult",
                patient_id="p4",
                location_id="main",
                starts_at=now + timedelta(hours=10),
                kind="consultation",
            )
        )
        db.commit()
    with rt.session_factory() as db:
        assert run_safety_checks(db, rt.settings, now) == 1
        assert run_safety_checks(db, rt.settings, now + timedelta(minutes=1)) == 0
        (task,) = db.scalars(select(StaffTask)).all()
        assert (task.kind, task.session_id, task.urgent) == ("unconfirmed", "soon", False)
    # s1-next (two days away) comes into the window later and is flagged then.
    with rt.session_factory() as db:
        assert run_safety_checks(db, rt.settings, now + timedelta(days=1, hours=12)) >= 1
        assert "s1-next" in {t.session_id for t in db.scalars(select(StaffTask))}
