"""One conversation per patient (issue 14): the thread holds every message both ways and the
staff notes, newest last; the reply box queues a "staff" text that the worker's next tick
hands to the (dry-run) provider, deferred by quiet hours unless urgent, refused outright with
no consent or an opt-out; a live template previewed for the patient and sent the same way.

Quiet hours are the patient's own (their time zone): each test gives its patient a fixed-offset
zone (``Etc/GMT...``) where it is now midday, or night, whatever the real clock says.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import (
    AuditLog,
    InboundMessage,
    Location,
    Message,
    Patient,
    StaffNote,
    TreatmentSession,
)
from reminders.db.types import utcnow
from reminders.outbox.consent import set_opt_out
from reminders.planning.plan_pass import plan_pass
from reminders.runtime import Runtime
from reminders.web.staff import conversation
from reminders.worker import run_tick
from tests.staff.conftest import SignedIn

PHONE = "+14105550101"
URL = "/staff/patients/p1"
KEY = "0123456789abcdef0123456789abcdef"


def zone_at(hour: int, now: datetime | None = None) -> str:
    """A fixed-offset zone where the local time is now ``hour`` o'clock (give or take minutes)."""
    utc_hour = (now or utcnow()).astimezone(UTC).hour
    offset = next(o for o in range(-12, 15) if (utc_hour + o) % 24 == hour)
    # Etc/GMT signs are inverted: Etc/GMT+5 is UTC-5.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def add_patient(
    factory: sessionmaker[Session], *, hour: int = 12, pid: str = "p1", **values: Any
) -> None:
    fields: dict[str, Any] = {
        "id": pid, "first_name": "Ana", "last_name": "Rivera", "phone": PHONE,
        "sms_consent": True, "email": "ana@example.com", "email_consent": True,
        "timezone": zone_at(hour), "language": "en", "needs_plan": False,
    }  # fmt: skip
    fields.update(values)
    with factory() as db:
        db.add(Patient(**fields))
        db.commit()


def sent_texts(runtime: Runtime) -> list[dict[str, Any]]:
    path = Path(runtime.settings.dryrun_dir) / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def staff_texts(factory: sessionmaker[Session]) -> list[Message]:
    with factory() as db:
        return list(db.scalars(select(Message).where(Message.kind == "staff")))


def reply(client: SignedIn, text: str, *, urgent: bool = False, key: str = "") -> Any:
    data = {"text": text, "key": key or KEY, **({"urgent": "1"} if urgent else {})}
    return client.post(f"{URL}/reply", data)


def test_the_thread_holds_everything_both_ways_newest_last(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    now = utcnow()
    with factory() as db:
        db.add_all(
            [
                Message(
                    dedupe_key="m-sent", patient_id="p1", rule="infusion-day-before-sms",
                    kind="reminder", channel="sms", template="day_before",
                    due_at=now - timedelta(days=3), sent_at=now - timedelta(days=3),
                    status="delivered", body="FIRST see you tomorrow at 9:00",
                ),
                Message(
                    dedupe_key="m-failed", patient_id="p1", rule="infusion-ride-sms",
                    kind="reminder", channel="sms", template="ride_home",
                    due_at=now - timedelta(days=2), status="failed",
                    reason="provider_error 30003: unreachable handset",
                ),
                Message(
                    dedupe_key="m-email", patient_id="p1", rule="infusion-prep-email",
                    kind="reminder", channel="email", template="prep_full",
                    due_at=now - timedelta(hours=30), sent_at=now - timedelta(hours=30),
                    status="sent", subject="How to prepare", body="THIRD https://example.com/" + "a" * 300,
                ),
                Message(
                    dedupe_key="m-alert", patient_id="p1", rule="alert", kind="alert",
                    channel="sms", template="staff_alert", due_at=now - timedelta(hours=20),
                    status="sent", body="ON-CALL PAGE", to_address="+14105550199",
                ),
                Message(
                    dedupe_key="m-later", patient_id="p1", rule="infusion-checkin",
                    kind="checkin", channel="sms", template="checkin",
                    due_at=now + timedelta(days=2), status="planned",
                ),
            ]
        )  # fmt: skip
        db.add(
            InboundMessage(
                channel="sms", from_address=PHONE, body="FOURTH yes I will be there",
                patient_id="p1", received_at=now - timedelta(hours=10), classification="confirm",
                processed_at=now - timedelta(hours=10),
            )
        )  # fmt: skip
        db.add(
            StaffNote(
                patient_id="p1", author="nurse@clinic.test", body="FIFTH called her back",
                created_at=now - timedelta(hours=1),
            )
        )  # fmt: skip
        db.commit()
    page = admin_client.client.get(URL).text
    order = [
        page.index(marker) for marker in ("FIRST", "Ride-home text", "THIRD", "FOURTH", "FIFTH")
    ]
    assert order == sorted(order), "oldest first, newest at the bottom"
    assert page.index("FIFTH") < page.index("Next-day check-in")  # the planned one last
    thread = page[page.index('id="thread"') : page.index('id="reply"')]
    assert "Delivered" in thread and "Not delivered" in thread and "Scheduled to send" in thread
    assert "The text/email service refused it (30003: unreachable handset)" in thread
    assert "provider_error" not in thread and "infusion-ride-sms" not in thread
    assert "How to prepare" in thread and "From the patient" in thread
    assert "Note by nurse@clinic.test" in thread and "Will be sent at" in thread
    assert "ON-CALL PAGE" not in page  # alerts go to staff, not to the patient
    assert "Showing the latest" not in page
    short = admin_client.client.get(f"{URL}?show=3").text
    assert "Showing the latest 3 of 6." in short and "FIRST" not in short and "FIFTH" in short


def test_a_reply_is_queued_then_sent_by_the_next_tick(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    add_patient(factory, hour=12)
    page = admin_client.client.get(URL).text
    assert 'id="reply"' in page and "quiet hours for this patient" not in page
    response = reply(admin_client, "  Your ride is booked for 3 PM.  ")
    assert response.status_code == 303
    (msg,) = staff_texts(factory)
    assert response.headers["location"] == f"{URL}?queued={msg.id}#m{msg.id}"
    assert (msg.channel, msg.template, msg.status, msg.rule) == (
        "sms",
        "reply_text",
        "planned",
        "staff",
    )
    assert msg.data == {"text": "Your ride is booked for 3 PM.", "by": "admin@clinic.test"}
    assert msg.due_at <= utcnow() and msg.not_after is not None
    shown = admin_client.client.get(response.headers["location"]).text
    assert "Scheduled to send: it goes out with the next pass" in shown
    assert "Your ride is booked for 3 PM." in shown and "Text from admin@clinic.test" in shown
    # The same form posted twice (a double click) queues one text.
    assert reply(admin_client, "Your ride is booked for 3 PM.").status_code == 303
    assert len(staff_texts(factory)) == 1

    run_tick(runtime, now=utcnow())
    texts = sent_texts(runtime)
    assert [(t["to"], t["body"], t["kind"]) for t in texts] == [
        (PHONE, "Your ride is booked for 3 PM.", "staff")
    ]
    (msg,) = staff_texts(factory)
    assert msg.status == "sent"
    assert "Sent" in admin_client.client.get(URL).text
    with factory() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "patient.message")).one()
    assert audit.actor == "admin@clinic.test" and audit.entity_id == "p1"
    assert audit.detail == {
        "message_id": msg.id, "channel": "sms", "urgent": False, "waits_for_quiet_hours": False,
    }  # fmt: skip


def test_in_quiet_hours_it_waits_unless_urgent(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    add_patient(factory, hour=2)
    page = admin_client.client.get(URL).text
    assert "It is quiet hours for this patient: a text sent now will go at" in page
    assert "Urgent: send now even in quiet hours" in page
    waiting = reply(admin_client, "Call us when you wake up", key="a" * 32)
    notice = admin_client.client.get(waiting.headers["location"]).text
    assert re.search(
        r"It will go at \d{1,2}:00 [AP]M( \(8:00 AM where the patient is\))?, after quiet hours",
        notice,
    ), notice
    urgent = reply(admin_client, "URGENT your visit is moved", urgent=True, key="b" * 32)
    assert urgent.status_code == 303
    now = utcnow()
    run_tick(runtime, now=now)
    assert [t["body"] for t in sent_texts(runtime)] == ["URGENT your visit is moved"]
    held = next(m for m in staff_texts(factory) if not (m.data or {}).get("override_quiet"))
    assert held.status == "planned" and held.due_at > now
    assert held.due_at.astimezone(held.due_at.tzinfo).minute == 0
    # At the end of quiet hours it goes.
    run_tick(runtime, now=held.due_at + timedelta(minutes=1))
    assert [t["body"] for t in sent_texts(runtime)][-1] == "Call us when you wake up"
    with factory() as db:
        details = [a.detail for a in db.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert [(d or {}).get("urgent") for d in details] == [False, True]
    assert [(d or {}).get("waits_for_quiet_hours") for d in details] == [True, False]


def test_the_planner_leaves_a_waiting_staff_text_alone(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    add_patient(factory, hour=2)
    reply(admin_client, "Good morning")
    with factory() as db:
        db.get(Patient, "p1").needs_plan = True  # type: ignore[union-attr]
        db.commit()
    with factory() as db:
        plan_pass(db, policy=runtime.policy, default_tz=runtime.settings.zone, now=utcnow())
    (msg,) = staff_texts(factory)
    assert msg.status == "planned" and msg.reason is None


def test_no_text_without_consent_or_after_an_opt_out(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    add_patient(factory, sms_consent=False)
    page = admin_client.client.get(URL).text
    assert "This patient has not agreed to texts, so no text can be sent." in page
    assert 'name="text"' not in page
    refused = reply(admin_client, "Hello", urgent=True)
    assert refused.status_code == 400
    assert "has not agreed to texts" in refused.text
    with factory() as db:
        db.get(Patient, "p1").sms_consent = True  # type: ignore[union-attr]
        set_opt_out(db, channel="sms", address=PHONE, source="sms_stop")
        db.commit()
    page = admin_client.client.get(URL).text
    assert "asked for no more texts (STOP)" in page and "stopped texts" in page
    refused = reply(admin_client, "Hello", urgent=True)
    assert refused.status_code == 400 and "asked for no more texts" in refused.text
    assert staff_texts(factory) == []
    run_tick(runtime, now=utcnow())
    assert sent_texts(runtime) == []


def test_an_empty_or_long_text_is_refused(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    assert reply(admin_client, "   ").status_code == 400
    assert reply(admin_client, "x" * 1001).status_code == 400
    assert admin_client.post("/staff/patients/nobody/reply", {"text": "Hi"}).status_code == 404
    assert staff_texts(factory) == []


def test_a_template_previewed_for_the_patient_then_sent(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    add_patient(factory)
    starts = utcnow() + timedelta(days=3)
    with factory() as db:
        db.add(Location(id="main", name="Main office", timezone="America/New_York"))
        db.add(TreatmentSession(id="s1", patient_id="p1", location_id="main", starts_at=starts))
        db.commit()
    page = admin_client.client.get(URL).text
    assert '<option value="day_before"' in page and "Day-before reminder" in page
    assert 'value="reply_text"' not in page and 'value="staff_alert"' not in page
    preview = admin_client.client.get(f"{URL}?template=day_before").text
    match = re.search(r'id="template-preview">([^<]+)</div>', preview)
    assert match, "no preview"
    text = match.group(1).replace("&#39;", "'")
    assert text.startswith("Lakeside Clinic: Hi Ana, see you") and "Main office" in text
    sent = admin_client.post(f"{URL}/template", {"template": "day_before", "key": KEY})
    assert sent.status_code == 303
    (msg,) = staff_texts(factory)
    assert msg.data and msg.data["template"] == "day_before" and msg.data["text"] == text
    assert admin_client.post(f"{URL}/template", {"template": "staff_alert"}).status_code == 400
    run_tick(runtime, now=utcnow())
    assert [t["body"] for t in sent_texts(runtime) if t["kind"] == "staff"] == [text]
    thread = admin_client.client.get(URL).text
    assert "(Day-before reminder)" in thread


def test_a_note_is_added_to_the_thread_and_audited(
    staff_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    assert staff_client.post(f"{URL}/note", {"body": "  "}).status_code == 400
    response = staff_client.post(f"{URL}/note", {"body": "Prefers calls after 5 PM"})
    assert response.status_code == 303
    with factory() as db:
        note = db.scalars(select(StaffNote)).one()
        audit = db.scalars(select(AuditLog)).one()
    assert response.headers["location"] == f"{URL}#n{note.id}"
    assert (note.author, note.body) == ("frontdesk@clinic.test", "Prefers calls after 5 PM")
    assert (audit.action, audit.actor, audit.detail) == (
        "patient.note", "frontdesk@clinic.test", {"note_id": note.id},
    )  # fmt: skip
    page = staff_client.client.get(URL).text
    assert "Prefers calls after 5 PM" in page and "Note by frontdesk@clinic.test" in page


def test_the_page_reads_in_spanish(admin_client: SignedIn, factory: sessionmaker[Session]) -> None:
    add_patient(factory, hour=2)
    admin_client.post("/staff/account/language", {"language": "es", "next": URL})
    page = admin_client.client.get(URL).text
    assert (
        "Conversación" in page and "Enviar un SMS" in page and "Lo que nos dijo el paciente" in page
    )
    assert "Conversation" not in page and "Send a text" not in page


def test_reasons_read_as_words() -> None:
    words = conversation.reason_words
    assert words("carrier: unreachable handset", "en") == "carrier: unreachable handset"
    assert words("deferred: quiet_hours", "en") == "Held back: it would have arrived at night"
    assert words("no_sms_consent", "es") == "El paciente no aceptó recibir SMS"
    assert words("", "en") == ""
