"""Alerts staff can act on, and honest replies (docs/design.md section 9): one open urgent item
per patient or sender, pages that name the category (never the text) and repeat until
acknowledged, and crisis replies that claim an alert only when one was queued."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from reminders.conversations.inbound import InboundResult, receive
from reminders.conversations.replies import CRISIS_EN, CRISIS_ES
from reminders.conversations.safety import run_safety_checks
from reminders.db.models import InboundMessage, Message, StaffTask
from reminders.runtime import Runtime
from reminders.worker import run_tick
from tests.conftest import make_test_settings
from tests.conversations.helpers import P1, P2, seed_clinic

NY = ZoneInfo("America/New_York")
WED_3AM = datetime(2026, 12, 2, 3, 0, tzinfo=NY)
WED_10AM = datetime(2026, 12, 2, 10, 0, tzinfo=NY)
_sids = itertools.count()


@pytest.fixture
def now() -> datetime:
    return WED_10AM


def send(rt: Runtime, body: str, at: datetime, *, sender: str = P1) -> InboundResult:
    return receive(
        rt.session_factory,
        rt.settings,
        channel="sms",
        from_address=sender,
        body=body,
        provider_message_id=f"SM-urgent-{next(_sids)}",
        now=at,
    )


def tick(rt: Runtime, at: datetime) -> None:
    with rt.session_factory() as db:
        run_safety_checks(db, rt.settings, at)


def count_alerts(rt: Runtime) -> int:
    with rt.session_factory() as db:
        return int(
            db.scalar(select(func.count()).select_from(Message).where(Message.kind == "alert")) or 0
        )


def reply_texts(rt: Runtime) -> list[str]:
    with rt.session_factory() as db:
        rows = db.scalars(select(Message).where(Message.kind == "reply").order_by(Message.id))
        return [str((m.data or {})["text"]) for m in rows]


def tasks(db: Session) -> list[StaffTask]:
    return list(db.scalars(select(StaffTask).order_by(StaffTask.id)))


def acknowledge(rt: Runtime, task_id: int, at: datetime) -> None:
    with rt.session_factory() as db:
        task = db.get(StaffTask, task_id)
        assert task is not None
        task.acknowledged_at, task.acknowledged_by, task.note = at, "nurse@clinic.test", "called"
        db.commit()


@pytest.fixture
def no_oncall(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """The clinic with no on-call phone or email configured."""
    settings = make_test_settings(
        db_url, tmp_path, clinic_name="Lakeside Clinic", clinic_phone="+14105550100"
    )
    rt = Runtime(settings)
    with rt.session_factory() as db:
        seed_clinic(db, WED_10AM)
    yield rt
    rt.close()


def test_ten_crisis_texts_make_one_task_and_one_page_series(clinic: Runtime) -> None:
    for i in range(10):
        result = send(clinic, "I want to kill myself", WED_3AM + timedelta(seconds=20 * i))
        assert result.classification == "crisis"
        assert result.alert_count == (3 if i == 0 else 0)
    with clinic.session_factory() as db:
        (task,) = tasks(db)
        filed = {m.task_id for m in db.scalars(select(InboundMessage))}
    assert (task.kind, task.urgent, task.category, task.message_count) == (
        "crisis",
        True,
        "suicide risk",
        10,
    )
    assert filed == {task.id}
    assert count_alerts(clinic) == 3
    # Every message is answered, and each answer is true: the team was alerted.
    assert len(reply_texts(clinic)) == 10
    assert all("care team has been alerted" in t for t in reply_texts(clinic))

    # Pages repeat every realert interval (15 min) from the first, not once per message.
    tick(clinic, WED_3AM + timedelta(minutes=14, seconds=59))
    assert count_alerts(clinic) == 3
    tick(clinic, WED_3AM + timedelta(minutes=15))
    tick(clinic, WED_3AM + timedelta(minutes=15, seconds=30))  # another worker, same round
    assert count_alerts(clinic) == 6
    tick(clinic, WED_3AM + timedelta(minutes=30))
    assert count_alerts(clinic) == 9
    acknowledge(clinic, task.id, WED_3AM + timedelta(minutes=31))
    for minutes in (45, 60, 120):
        tick(clinic, WED_3AM + timedelta(minutes=minutes))
    assert count_alerts(clinic) == 9
    # After the acknowledgement a new crisis opens a new item and pages again.
    send(clinic, "I want to kill myself", WED_3AM + timedelta(hours=3))
    with clinic.session_factory() as db:
        assert [t.acknowledged_at is None for t in tasks(db)] == [False, True]
    assert count_alerts(clinic) == 12


def test_a_crisis_makes_an_open_free_text_item_urgent(clinic: Runtime) -> None:
    send(clinic, "Can I move my appointment?", WED_10AM)
    assert count_alerts(clinic) == 0
    result = send(clinic, "I took a whole bottle of pills", WED_10AM + timedelta(minutes=5))
    assert result.alert_count == 3
    with clinic.session_factory() as db:
        (task,) = tasks(db)
        alert = db.scalars(select(Message).where(Message.kind == "alert")).first()
    assert (task.urgent, task.kind, task.category, task.page_due_at) == (
        True,
        "crisis",
        "possible overdose",
        None,
    )
    assert alert is not None and (alert.data or {})["summary"] == "possible overdose"
    # No unread page on top; re-alerts count from the crisis.
    tick(clinic, WED_10AM + timedelta(minutes=15))
    assert count_alerts(clinic) == 3
    tick(clinic, WED_10AM + timedelta(minutes=20))
    assert count_alerts(clinic) == 6


def test_a_free_text_joins_an_open_urgent_item_without_paging(clinic: Runtime) -> None:
    send(clinic, "I want to end my life", WED_10AM)
    send(clinic, "sorry, ignore that", WED_10AM + timedelta(minutes=1))
    with clinic.session_factory() as db:
        (task,) = tasks(db)
    assert task.urgent and task.message_count == 2 and count_alerts(clinic) == 3


def test_unknown_sender_messages_share_one_item(clinic: Runtime) -> None:
    stranger = "+14105550777"
    send(clinic, "who is this?", WED_10AM, sender=stranger)
    send(clinic, "my brother took all his pills", WED_10AM + timedelta(minutes=1), sender=stranger)
    send(clinic, "please help", WED_10AM + timedelta(minutes=2), sender=stranger)
    with clinic.session_factory() as db:
        (task,) = tasks(db)
    assert task.patient_id is None and task.urgent and task.message_count == 3
    assert task.open_key == f"sms:{stranger}"
    assert count_alerts(clinic) == 3


def test_crisis_reply_claims_no_alert_without_oncall(no_oncall: Runtime) -> None:
    result = send(no_oncall, "I want to kill myself", WED_10AM)
    assert result.classification == "crisis" and result.alert_count == 0
    (reply,) = reply_texts(no_oncall)
    assert "alerted" not in reply
    assert CRISIS_EN in reply and "call us at +14105550100" in reply
    send(no_oncall, "quiero matarme", WED_10AM, sender=P2)
    es = reply_texts(no_oncall)[-1]
    assert "avisamos" not in es and CRISIS_ES in es and "+14105550100" in es


def test_emergency_replies_say_911_first(clinic: Runtime) -> None:
    send(clinic, "I cant breathe and my chest hurts since the infusion", WED_10AM)
    send(clinic, "me tomé todas las pastillas", WED_10AM, sender=P2)
    send(clinic, "my brother took all his pills", WED_10AM, sender="+14105550777")
    en, es, unknown = reply_texts(clinic)
    assert en.startswith("Lakeside Clinic: Please call 911 now.") and "alerted" in en
    assert es.startswith("Lakeside Clinic: Llame al 911 ahora.") and "avisamos" in es
    assert unknown.startswith("Lakeside Clinic: Please call 911 now.")
    for reply in (en, es, unknown):
        assert reply.index("911") < reply.index("988")
    # Suicide risk: 988 and 911, in the patient's language.
    send(clinic, "quiero matarme", WED_10AM + timedelta(minutes=1), sender="+14105550199")
    send(clinic, "ya no aguanto, me quiero morir", WED_10AM + timedelta(minutes=1), sender=P2)
    unknown_es, patient_es = reply_texts(clinic)[-2:]
    for reply in (unknown_es, patient_es):
        assert CRISIS_ES in reply


def test_emergency_reply_without_oncall_claims_no_alert(no_oncall: Runtime) -> None:
    send(no_oncall, "I took a whole bottle of pills", WED_10AM)
    send(no_oncall, "me tomé todas las pastillas", WED_10AM, sender=P2)
    en, es = reply_texts(no_oncall)
    assert en.startswith("Lakeside Clinic: Please call 911 now.") and "alerted" not in en
    assert es.startswith("Lakeside Clinic: Llame al 911 ahora.") and "avisamos" not in es
    assert "+14105550100" in en and "+14105550100" in es


def test_the_page_names_the_category_never_the_message(clinic: Runtime) -> None:
    body = "my husband is unresponsive after the infusion, lips are blue"
    send(clinic, body, WED_3AM)
    send(clinic, "Zebra question about invoices", WED_3AM, sender=P2)
    run_tick(clinic, now=WED_3AM + timedelta(minutes=10))
    with clinic.session_factory() as db:
        pages = list(db.scalars(select(Message).where(Message.kind == "alert")))
    assert len(pages) == 6 and {p.status for p in pages} == {"sent"}
    rendered: dict[str | None, list[str]] = {p.patient_id: [] for p in pages}
    for page in pages:
        assert page.body
        rendered[page.patient_id].append(f"{page.subject or ''}\n{page.body}")
    for text_ in rendered["p1"]:
        assert "medical emergency after infusion" in text_ and " p1" in text_
    for text_ in rendered["p2"]:
        assert "unread message for 10 minutes" in text_ and " p2" in text_
    words = {w for w in (body + " Zebra question invoices").lower().replace(",", "").split()}
    words -= {"after", "the", "are", "is", "my", "infusion", "question"}
    for texts in rendered.values():
        for text_ in texts:
            assert "/staff/tasks/" in text_
            assert not words & set(text_.lower().replace(",", " ").split()), text_


def test_two_concurrent_crisis_messages_make_one_open_urgent_task(
    db_url: str, clinic: Runtime
) -> None:
    """On PostgreSQL: both messages read "no open item", both insert one; the unique index
    makes the second wait for the first and join its item."""
    if not db_url.startswith("postgresql"):
        pytest.skip("two processors at once need PostgreSQL (SQLite serialises writers)")
    results: list[InboundResult] = []
    # Hold the outbox: each processor gets as far as queuing its alerts and reply, and waits
    # there with its item inserted but not committed (the window where both see none).
    with clinic.engine.connect() as holder:
        holder.execute(text("LOCK TABLE messages IN SHARE MODE"))
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(
                    send(clinic, "I want to kill myself", WED_3AM + timedelta(seconds=i))
                )
            )
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waiting = holder.execute(
                text("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
            ).scalar()
            if waiting == 2:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the two processors never reached the outbox together")
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.classification or "" for r in results) == ["crisis", "crisis"]
    assert all(r.error is None for r in results)
    with clinic.session_factory() as db:
        (task,) = tasks(db)
        filed = [m.task_id for m in db.scalars(select(InboundMessage))]
    assert task.urgent and task.message_count == 2 and filed == [task.id, task.id]
    assert count_alerts(clinic) == 3
