"""No patient message goes unread (docs/design.md section 9): a message no keyword or score
answers is an inbox item that pages on-call once if nobody acknowledges it in time (15 minutes
in clinic hours, 10 outside them, per location), and out of hours the patient is told when it
will be read."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from reminders.conversations.inbound import InboundResult, receive
from reminders.conversations.safety import run_safety_checks
from reminders.db.models import (
    InboundMessage,
    Location,
    Message,
    StaffTask,
    StaffUser,
    TreatmentSession,
)
from reminders.defaults import POLICY_FILE
from reminders.errors import PolicyError
from reminders.planning.policy import parse_policy
from reminders.runtime import Runtime
from reminders.settings import Settings
from reminders.web.app import create_app
from reminders.web.staff.auth import hash_password
from tests.conversations.helpers import P1, P2, sent_message
from tests.staff.conftest import PASSWORD, sign_in

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
WED_3AM = datetime(2026, 12, 2, 3, 0, tzinfo=NY)  # out of hours (default: Mon-Fri 08:00-18:00)
WED_10AM = datetime(2026, 12, 2, 10, 0, tzinfo=NY)  # in hours
_sids = itertools.count()


@pytest.fixture
def now() -> datetime:
    """The clinic's sessions are placed around a Wednesday morning."""
    return WED_10AM


def send(
    rt: Runtime, body: str, at: datetime, *, sender: str = P1, settings: Settings | None = None
) -> InboundResult:
    return receive(
        rt.session_factory,
        settings or rt.settings,
        channel="sms",
        from_address=sender,
        body=body,
        provider_message_id=f"SM-unread-{next(_sids)}",
        now=at,
    )


def tick(rt: Runtime, at: datetime, settings: Settings | None = None) -> None:
    with rt.session_factory() as db:
        run_safety_checks(db, settings or rt.settings, at)


def alerts(rt: Runtime, task_id: int | None = None) -> list[Message]:
    with rt.session_factory() as db:
        rows = db.scalars(select(Message).where(Message.kind == "alert").order_by(Message.id))
        return [m for m in rows if task_id is None or (m.data or {}).get("task_id") == task_id]


def replies(rt: Runtime) -> list[Message]:
    with rt.session_factory() as db:
        return list(db.scalars(select(Message).where(Message.kind == "reply").order_by(Message.id)))


def text_of(message: Message) -> str:
    assert message.data is not None
    return str(message.data["text"])


def summary_of(message: Message) -> str:
    assert message.data is not None
    return str(message.data["summary"])


def one_task(rt: Runtime, patient_id: str) -> StaffTask:
    with rt.session_factory() as db:
        return db.scalars(select(StaffTask).where(StaffTask.patient_id == patient_id)).one()


def with_policy(rt: Runtime, tmp_path: Path, **sections: Any) -> Settings:
    """The clinic's settings with a policy file: the built-in one plus ``sections``."""
    raw = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    raw.update(sections)
    path = tmp_path / f"policy-{next(_sids)}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return rt.settings.model_copy(update={"policy_file": path})


def test_unread_message_pages_after_10_minutes_at_3am_even_after_stop(clinic: Runtime) -> None:
    send(clinic, "STOP", WED_3AM - timedelta(minutes=5))
    result = send(clinic, "Can I bring my sister next time? Call me", WED_3AM)
    assert result.classification == "free_text" and result.alert_count == 0
    task = one_task(clinic, "p1")
    assert (task.kind, task.urgent, task.page_due_at) == (
        "free_text",
        False,
        WED_3AM + timedelta(minutes=10),
    )
    # Opted out of SMS: the STOP confirmation, and no out-of-hours notice.
    assert [r.rule for r in replies(clinic)] == ["reply:opt_out"]

    tick(clinic, WED_3AM + timedelta(minutes=9, seconds=59))
    assert alerts(clinic) == []
    tick(clinic, WED_3AM + timedelta(minutes=10))
    pages = alerts(clinic, task.id)
    assert sorted(p.to_address or "" for p in pages) == [
        "+14105550900",
        "+14105550901",
        "oncall@example.com",
    ]
    assert {summary_of(p) for p in pages} == {"unread message for 10 minutes"}
    assert all("sister" not in summary_of(p) for p in pages)
    # Once: later passes (or a second worker) page no more.
    tick(clinic, WED_3AM + timedelta(minutes=10))
    tick(clinic, WED_3AM + timedelta(hours=2))
    assert len(alerts(clinic)) == 3
    assert one_task(clinic, "p1").page_due_at is None


def test_in_hours_the_limit_is_15_minutes_and_no_reply(clinic: Runtime) -> None:
    send(clinic, "Is parking free at the clinic?", WED_10AM)
    assert replies(clinic) == []
    task = one_task(clinic, "p1")
    assert task.page_due_at == WED_10AM + timedelta(minutes=15)
    tick(clinic, WED_10AM + timedelta(minutes=14, seconds=59))
    assert alerts(clinic) == []
    tick(clinic, WED_10AM + timedelta(minutes=15))
    assert {summary_of(p) for p in alerts(clinic)} == {"unread message for 15 minutes"}


def test_acknowledging_in_the_inbox_stops_the_page(clinic: Runtime) -> None:
    with clinic.session_factory() as db:
        db.add(StaffUser(email="nurse@clinic.test", password_hash=hash_password(PASSWORD)))
        db.commit()
    send(clinic, "Running 10 minutes late", WED_10AM)
    task = one_task(clinic, "p1")
    with TestClient(create_app(clinic), follow_redirects=False) as client:
        staff = sign_in(client, "nurse@clinic.test")
        page = client.get(f"/staff/inbox?task={task.id}")
        assert "Running 10 minutes late" in page.text
        # A second message joins the item after the page was loaded: not acknowledged unread.
        send(clinic, "actually 20", WED_10AM + timedelta(minutes=1))
        assert one_task(clinic, "p1").message_count == 2
        refused = staff.post(f"/staff/inbox/{task.id}/ack", {"note": "", "seen": "1"})
        assert refused.status_code == 409
        page = client.get(f"/staff/inbox?task={task.id}")
        assert "actually 20" in page.text and "Running 10 minutes late" in page.text
        done = staff.post(f"/staff/inbox/{task.id}/ack", {"note": "noted", "seen": "2"})
        assert done.status_code == 303
    tick(clinic, WED_10AM + timedelta(minutes=30))
    assert alerts(clinic) == []
    # The next message opens a new item (the acknowledged one is closed).
    send(clinic, "thanks!", WED_10AM + timedelta(minutes=40))
    with clinic.session_factory() as db:
        tasks = list(db.scalars(select(StaffTask).order_by(StaffTask.id)))
    assert len(tasks) == 2 and tasks[1].acknowledged_at is None and tasks[1].message_count == 1


def test_out_of_hours_reply_says_when_it_will_be_read(clinic: Runtime) -> None:
    send(clinic, "question about my bill", WED_3AM)
    send(clinic, "pregunta sobre la factura", WED_3AM, sender=P2)
    en, es = (text_of(r) for r in replies(clinic))
    assert "We read messages Mon-Fri 8 AM-6 PM; we will read yours by Wednesday 8 AM" in en
    assert "Leemos los mensajes lun-vie 8:00-18:00" in es
    assert "a más tardar el miércoles a las 8:00" in es
    for text in (en, es):
        assert "988" in text and "911" in text and "+14105550100" in text
    assert [r.rule for r in replies(clinic)] == ["reply:after_hours"] * 2
    assert replies(clinic)[1].language == "es"
    # A second message on the same open item is not answered again.
    send(clinic, "also, can I pay online?", WED_3AM + timedelta(minutes=2))
    assert len(replies(clinic)) == 2
    # Friday evening: read on Monday.
    friday = datetime(2026, 12, 4, 19, 30, tzinfo=NY)
    send(clinic, "hello?", friday, sender="+14105550777")
    assert "we will read yours by Monday 8 AM" in text_of(replies(clinic)[-1])


def test_per_location_hours_in_the_location_zone(clinic: Runtime, tmp_path: Path) -> None:
    settings = with_policy(
        clinic,
        tmp_path,
        clinic_hours={
            "default": {"mon-fri": "08:00-18:00"},
            "locations": {"uptown": {"mon-fri": "09:00-17:00", "sat": "10:00-12:00"}},
        },
    )
    with clinic.session_factory() as db:
        db.add(Location(id="uptown", name="Uptown", timezone="America/Los_Angeles"))
        db.flush()
        # Beto's next session is uptown; Carla's only session uptown is past (the most recent).
        db.add(
            TreatmentSession(
                id="s2-uptown", patient_id="p2", location_id="uptown", starts_at=WED_10AM
            )
        )
        s3 = db.get(TreatmentSession, "s3-next")
        assert s3 is not None
        s3.location_id = None
        db.add(
            TreatmentSession(
                id="s3-past",
                patient_id="p3",
                location_id="uptown",
                starts_at=WED_10AM - timedelta(days=3),
                status="completed",
            )
        )
        db.commit()
    at = WED_10AM - timedelta(minutes=30)  # 09:30 in New York, 06:30 in Los Angeles
    send(clinic, "see you soon", at, settings=settings)  # Ana: main, default hours, open
    send(clinic, "nos vemos pronto", at, sender=P2, settings=settings)  # Beto: uptown, closed
    assert one_task(clinic, "p1").page_due_at == at + timedelta(minutes=15)
    assert one_task(clinic, "p2").page_due_at == at + timedelta(minutes=10)
    (reply,) = replies(clinic)
    assert reply.to_address == P2
    assert "lun-vie 9:00-17:00, sáb 10:00-12:00" in text_of(reply)
    assert "miércoles a las 9:00" in text_of(reply)  # 9 AM in Los Angeles
    with clinic.session_factory() as db:
        # Carla (a shared phone, matched by the latest message) has only a past uptown session.
        sent_message(db, patient_id="p3", kind="reminder", sent_at=at - timedelta(hours=1))
    send(clinic, "thanks", at, sender="+14105550199", settings=settings)
    assert one_task(clinic, "p3").page_due_at == at + timedelta(minutes=10)
    tick(clinic, at + timedelta(minutes=10), settings)
    assert {p.patient_id for p in alerts(clinic)} == {"p2", "p3"}


def test_out_of_hours_paging_off_waits_for_the_opening(clinic: Runtime, tmp_path: Path) -> None:
    settings = with_policy(
        clinic,
        tmp_path,
        inbox={"review_minutes_in_hours": 15, "page_out_of_hours": False},
    )
    send(clinic, "question for the nurse", WED_3AM, settings=settings)
    opening = datetime(2026, 12, 2, 8, 0, tzinfo=NY)
    assert one_task(clinic, "p1").page_due_at == opening + timedelta(minutes=15)
    for at in (WED_3AM + timedelta(minutes=10), opening, opening + timedelta(minutes=14)):
        tick(clinic, at, settings)
    assert alerts(clinic) == []
    tick(clinic, opening + timedelta(minutes=15), settings)
    assert len(alerts(clinic)) == 3
    # In hours it still pages after 15 minutes.
    send(clinic, "another question", WED_10AM, sender=P2, settings=settings)
    tick(clinic, WED_10AM + timedelta(minutes=15), settings)
    assert {p.patient_id for p in alerts(clinic)} == {"p1", "p2"}


def test_paging_turned_off_after_the_message_still_waits(clinic: Runtime, tmp_path: Path) -> None:
    send(clinic, "question for the nurse", WED_3AM)  # due 03:10 with the built-in policy
    settings = with_policy(clinic, tmp_path, inbox={"page_out_of_hours": False})
    tick(clinic, WED_3AM + timedelta(minutes=10), settings)
    assert alerts(clinic) == []
    assert one_task(clinic, "p1").page_due_at == datetime(2026, 12, 2, 8, 15, tzinfo=NY)


def test_policy_refuses_to_turn_off_in_hours_paging() -> None:
    raw = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    with pytest.raises(PolicyError, match=r"field 'inbox\.page_in_hours': .*cannot be turned off"):
        parse_policy({**raw, "inbox": {"page_in_hours": False}})
    with pytest.raises(PolicyError, match=r"inbox\.review_minutes_in_hours"):
        parse_policy({**raw, "inbox": {"review_minutes_in_hours": 0}})
    with pytest.raises(PolicyError, match=r"inbox\.review_minutes_in_hours"):
        parse_policy({**raw, "inbox": {"review_minutes_in_hours": 100000}})
    with pytest.raises(PolicyError, match=r"clinic_hours\.default.*'monday'"):
        parse_policy({**raw, "clinic_hours": {"default": {"monday": "08:00-18:00"}}})
    with pytest.raises(PolicyError, match="open at some time"):
        parse_policy({**raw, "clinic_hours": {"default": {"mon-sun": None}}})
    with pytest.raises(PolicyError, match="overlap"):
        parse_policy({**raw, "clinic_hours": {"default": {"mon": ["08:00-12:00", "11:00-17:00"]}}})
    policy = parse_policy({**raw, "inbox": {"page_out_of_hours": False}})
    assert policy.inbox.page_out_of_hours is False and policy.inbox.review_minutes_in_hours == 15


def test_review_finding_is_flagged_and_paged_only_if_unread(clinic: Runtime) -> None:
    result = send(clinic, "not suicidal, just tired", WED_10AM)
    assert result.classification == "review" and result.alert_count == 0
    task = one_task(clinic, "p1")
    assert (task.kind, task.urgent, task.urgent_review) == ("review", False, True)
    assert replies(clinic) == []  # no 988 auto-reply in hours
    tick(clinic, WED_10AM + timedelta(minutes=15))
    (summary,) = {summary_of(p) for p in alerts(clinic)}
    assert summary.startswith("urgent review: ") and "unread for 15 minutes" in summary
    assert "tired" not in summary


def test_checkin_score_with_a_review_comment(clinic: Runtime) -> None:
    with clinic.session_factory() as db:
        sent_message(db, patient_id="p1", kind="checkin", sent_at=WED_10AM - timedelta(hours=1))
    result = send(clinic, "7, not suicidal just tired", WED_10AM)
    assert result.classification == "checkin" and result.alert_count == 0
    with clinic.session_factory() as db:
        inbound = db.scalars(select(InboundMessage)).one()
        assert inbound.score == 7
    task = one_task(clinic, "p1")
    assert task.urgent_review and not task.urgent and inbound.task_id == task.id
    (reply,) = replies(clinic)
    assert reply.rule == "reply:checkin" and "988" not in text_of(reply)


def test_a_score_alone_is_fully_handled(clinic: Runtime) -> None:
    with clinic.session_factory() as db:
        sent_message(db, patient_id="p1", kind="checkin", sent_at=WED_3AM - timedelta(hours=1))
    send(clinic, "8", WED_3AM)
    for body in ("C", "START"):
        send(clinic, body, WED_3AM)
    with clinic.session_factory() as db:
        assert db.scalars(select(StaffTask)).all() == []
    tick(clinic, WED_3AM + timedelta(hours=1))
    assert alerts(clinic) == []
