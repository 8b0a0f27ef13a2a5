"""The patient pages in a real browser: find a patient by a phone number typed another way,
text them from their conversation and see it sent by the next tick, record that they no longer
agree to texts, and no sideways scrolling on a phone or a desktop (a long unbroken link in an
email wraps); screenshots ``patient-desktop`` and ``patient-phone``."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reminders.db.models import AuditLog, InboundMessage, Message, Patient, TreatmentSession
from reminders.db.types import utcnow
from reminders.worker import run_tick
from tests.e2e.conftest import Console, shot
from tests.staff.test_conversation import zone_at

# One server and database for the module; later tests read what earlier ones did.
pytestmark = pytest.mark.e2e
expect: Any = None
PID = "p-dana"
PHONE = "+14105550177"
LONG_URL = "https://portal.example.com/prepare/" + "x7" * 120
TEXT = "See you Thursday at 3, Dana. Bring your list of medications."


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


@pytest.fixture(scope="module", autouse=True)
def dana(console: Console) -> str:
    """A patient of our own in the module's console: it is midday where she lives."""
    now = utcnow()
    with console.runtime.session_factory() as db:
        db.add(
            Patient(
                id=PID, first_name="Dana", last_name="Whitfield", phone=PHONE, sms_consent=True,
                email="dana.whitfield@example.com", email_consent=True, timezone=zone_at(12),
                needs_plan=False,
            )
        )  # fmt: skip
        db.flush()
        db.add(
            TreatmentSession(
                id="dana-1", patient_id=PID, location_id="main", starts_at=now + timedelta(days=9)
            )
        )
        db.add(
            Message(
                dedupe_key="dana-prep", patient_id=PID, rule="infusion-prep-email",
                kind="reminder", channel="email", template="prep_full", status="delivered",
                due_at=now - timedelta(days=2), sent_at=now - timedelta(days=2),
                subject="How to prepare for your visit",
                body=f"Hi Dana, everything you need to know: {LONG_URL}",
            )
        )  # fmt: skip
        db.add(
            InboundMessage(
                channel="sms", from_address=PHONE, body="Can I drive myself home afterwards?",
                patient_id=PID, classification="free_text", received_at=now - timedelta(hours=5),
                processed_at=now - timedelta(hours=5),
            )
        )  # fmt: skip
        db.commit()
    return PID


def _sms_lines(console: Console) -> list[dict[str, Any]]:
    path = Path(console.runtime.settings.dryrun_dir) / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_search_by_phone_typed_another_way(page: Any) -> None:
    page.goto("/staff/patients")
    page.get_by_label("Name, phone, email or id").fill("410.555.0177")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_contain_text("1 patient")
    page.get_by_role("link", name="Dana Whitfield").click()
    expect(page.get_by_role("heading", name="Dana Whitfield")).to_be_visible()


def test_a_reply_is_sent_and_shown_in_the_thread(page: Any, console: Console) -> None:
    page.goto(f"/staff/patients/{PID}")
    thread = page.locator("#thread")
    expect(thread).to_contain_text("Can I drive myself home afterwards?")
    box = page.get_by_label("Text to Dana")
    box.fill(TEXT)
    expect(page.locator("#reply-count")).to_contain_text("text message")
    page.get_by_role("button", name="Send text").click()
    mine = thread.locator("li.item.out", has_text=TEXT)
    expect(mine).to_contain_text("Scheduled to send")
    expect(page.get_by_role("status")).to_contain_text("Scheduled to send")

    run_tick(console.runtime, now=utcnow())
    page.reload()
    expect(mine).to_contain_text(re.compile(r"\b(Sent|Delivered)\b"))
    assert [(m["to"], m["body"]) for m in _sms_lines(console) if m["patient_id"] == PID] == [
        (PHONE, TEXT)
    ]

    page.get_by_label("Note (only staff see it)").fill("Asked about driving: told her no.")
    page.get_by_role("button", name="Add note").click()
    expect(thread.locator("li.note").last).to_contain_text("Asked about driving: told her no.")


def test_unticking_sms_consent_is_recorded(page: Any, console: Console) -> None:
    page.goto(f"/staff/patients/{PID}")
    records = page.locator("#records")
    records.get_by_label("Agrees to texts").uncheck()
    records.get_by_label("Why (who said so, and when)").first.fill("Phoned in: texts no longer")
    records.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    expect(records.get_by_label("Agrees to texts")).not_to_be_checked()
    expect(page.locator("#reply")).to_contain_text("has not agreed to texts")
    with console.runtime.session_factory() as db:
        patient = db.get(Patient, PID)
        assert patient is not None and patient.sms_consent is False
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "patient.consent")).one()
    assert audit.entity_id == PID and audit.detail == {
        "field": "sms_consent", "from": True, "to": False, "why": "Phoned in: texts no longer",
    }  # fmt: skip


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 900)])
def test_no_sideways_scrolling(
    browser: Any, console: Console, admin_state: Any, width: int, height: int
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        base_url=console.url,
        storage_state=admin_state,
    )
    page = context.new_page()
    try:
        for path in ("/staff/patients", f"/staff/patients/{PID}"):
            page.goto(path)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, (path, scroll)
        link = page.locator("#thread .bubble", has_text="portal.example.com")
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
        shot(page, "patient-phone" if width < 700 else "patient-desktop")
    finally:
        context.close()
