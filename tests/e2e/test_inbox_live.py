"""The live inbox in a real browser (issue 14): a crisis text shows up in an open inbox
without a reload (with its notice and the tab title's count, and a note being typed kept),
an opened item stays read, two routine items acknowledged together, and the page fits a
390 px phone and a 1280 px screen with a thread holding an email with a very long link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reminders.conversations.inbound import receive
from reminders.db.models import (
    AuditLog,
    InboundMessage,
    Message,
    StaffTask,
    TreatmentSession,
)
from tests.e2e.conftest import NY, Console, shot

# One server and database for the module; later tests read what earlier ones did (the module
# runs in one process, in order).
pytestmark = pytest.mark.e2e
expect: Any = None
LONG_URL = "https://mail.example.com/unsubscribe?token=" + "a1b2c3d4e5" * 26  # 300 characters
CRISIS_TEXT = "i just want it all to end tonight"


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


@pytest.fixture
def errors(page: Any) -> Iterator[list[str]]:
    """Script errors on the page (none expected, sound blocked or not)."""
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(str(error)))
    yield found
    assert found == []


def _task_id(console: Console, kind: str, patient: str) -> int:
    with console.runtime.session_factory() as db:
        task = db.scalars(
            select(StaffTask)
            .where(StaffTask.kind == kind, StaffTask.patient_id == patient)
            .order_by(StaffTask.id.desc())
        ).first()
        assert task is not None
        return task.id


def test_a_crisis_shows_up_without_reload(page: Any, console: Console, errors: list[str]) -> None:
    ben = _task_id(console, "free_text", "p-ben")
    page.goto(f"/staff/inbox?task={ben}")
    expect(page).to_have_title("(1) Inbox · Lakeside Clinic")  # Cara's crisis, unread
    note = page.get_by_label(re.compile("^Note"))
    note.fill("Called Ben back, half way through wri")
    note.focus()
    polls = int(page.locator("#inbox-live").get_attribute("data-polls") or 0)
    expect(page.locator("#inbox-live")).not_to_have_attribute("data-polls", str(polls))
    assert len(page.workers) == 1  # the polling clock runs in a worker (background tabs)

    result = receive(
        console.runtime.session_factory,
        console.runtime.settings,
        channel="sms",
        from_address="+14105550123",  # Ana
        body=CRISIS_TEXT,
        provider_message_id="SM-e2e-live-1",
    )
    assert result.classification == "crisis"
    item = page.locator(f'li.task[data-id="{result.task_ids[0]}"]')
    expect(item).to_be_visible(timeout=5000)  # no reload
    expect(item).to_contain_text("Possible crisis · Ana Rivera")
    expect(item).to_have_class(re.compile(r"\burgent\b.*\bunread\b"))
    expect(page.locator("ul.pinned li.task").first).to_have_attribute(
        "data-id", str(result.task_ids[0])
    )  # the newest urgent item on top
    expect(page.get_by_role("alert")).to_contain_text(
        "New urgent item: Possible crisis · Ana Rivera"
    )
    expect(page).to_have_title("(2) Inbox · Lakeside Clinic")
    expect(page.locator("#inbox-count")).to_have_text("2 unread")
    expect(page.locator("#inbox-live")).to_have_attribute("data-beeps", "1")
    # What was being typed is still there, still focused.
    expect(note).to_have_value("Called Ben back, half way through wri")
    expect(note).to_be_focused()
    page.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("alert")).to_have_text("")


def test_an_opened_item_stays_read(page: Any, console: Console) -> None:
    cara = _task_id(console, "crisis", "p-cara")
    page.goto("/staff/inbox")
    item = page.locator(f'li.task[data-id="{cara}"]')
    expect(item).to_contain_text("Unread")
    expect(page).to_have_title("(2) Inbox · Lakeside Clinic")
    item.get_by_role("link").click()
    expect(page.locator(".detail h2")).to_contain_text("Possible crisis · Cara Lind")
    page.reload()
    expect(page.locator(f'li.task[data-id="{cara}"]')).not_to_have_class(re.compile("unread"))
    expect(page.locator(f'li.task[data-id="{cara}"]')).not_to_contain_text("Unread")
    expect(page).to_have_title("(1) Inbox · Lakeside Clinic")


def test_acknowledge_two_routine_items_at_once(page: Any, console: Console) -> None:
    now = datetime.now(UTC)
    with console.runtime.session_factory() as db:
        failed = StaffTask(
            kind="delivery_failed",
            patient_id="p-ben",
            summary="A SMS reminder may not have reached the patient",
            created_at=now,
        )
        moved = StaffTask(
            kind="reschedule",
            patient_id="p-cara",
            summary="Patient p-cara asks to reschedule; please call.",
            created_at=now,
        )
        db.add_all([failed, moved])
        db.commit()
        ids = [failed.id, moved.id]
    page.goto("/staff/inbox")
    bulk = page.get_by_role("button", name="Acknowledge selected")
    expect(bulk).to_be_hidden()  # until something is ticked
    expect(page.locator(f'li.task[data-id="{ids[1]}"]')).to_contain_text(
        "Cara Lind asks to reschedule"
    )
    page.get_by_label("Select: A message did not arrive · Ben Okafor").check()
    page.get_by_label("Select: Wants to reschedule · Cara Lind").check()
    expect(page.locator(".bulk-count")).to_have_text("2 selected")
    # No box on urgent items: each needs its own note.
    expect(page.locator("ul.pinned input[type=checkbox]")).to_have_count(0)
    bulk.click()
    expect(page.get_by_role("status").filter(has_text="acknowledged")).to_have_text(
        "2 items acknowledged."
    )
    for task_id in ids:
        expect(page.locator(f'li.task[data-id="{task_id}"]')).to_have_count(0)
    with console.runtime.session_factory() as db:
        done = [db.get(StaffTask, i) for i in ids]
        assert all(t is not None and t.note == "bulk" and t.acknowledged_at for t in done)
        audits = db.scalars(select(AuditLog).where(AuditLog.action == "task.acknowledge")).all()
        assert sorted(int(a.entity_id or 0) for a in audits) == sorted(ids)


def _long_thread(console: Console) -> int:
    """Ben's email with a 300-character link, both ways, and unconfirmed visits to group."""
    now = datetime.now(UTC)
    with console.runtime.session_factory() as db:
        db.add(
            InboundMessage(
                channel="email",
                from_address="ben@example.com",
                body=f"Please stop these, the link does not work: {LONG_URL}",
                patient_id="p-ben",
                classification="free_text",
                received_at=now - timedelta(minutes=30),
                processed_at=now - timedelta(minutes=30),
            )
        )
        db.add(
            Message(
                dedupe_key="e2e-long-link",
                patient_id="p-ben",
                rule="infusion-prep-email",
                kind="reminder",
                channel="email",
                template="prep",
                due_at=now - timedelta(hours=2),
                status="delivered",
                body=f"Your visit is soon. To unsubscribe: {LONG_URL}",
                updated_at=now - timedelta(hours=2),
            )
        )
        day = datetime.now(NY).replace(hour=9, minute=0, second=0, microsecond=0)
        for n, pid in enumerate(("p-ben", "p-cara")):
            for days in (1, 2):
                sid = f"e2e-visit-{pid}-{days}"
                db.add(
                    TreatmentSession(
                        id=sid,
                        patient_id=pid,
                        location_id="main",
                        starts_at=day + timedelta(days=days, minutes=45 * n),
                        kind="infusion",
                    )
                )
                db.flush()
                db.add(
                    StaffTask(
                        kind="unconfirmed",
                        patient_id=pid,
                        session_id=sid,
                        summary=f"Infusion {sid} for patient {pid} is not confirmed",
                        created_at=now,
                    )
                )
        db.commit()
    return _task_id(console, "free_text", "p-ben")


def _fits(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at {width} px"
    wide = page.evaluate(
        """(width) => Array.from(document.querySelectorAll('main *'))
            .filter((el) => el.getBoundingClientRect().right > width + 1)
            .map((el) => el.tagName + '.' + el.className).slice(0, 5)""",
        width,
    )
    assert wide == [], wide


def test_fits_a_phone_and_a_desktop_with_a_long_link(
    page: Any, browser: Any, console: Console, admin_state: Any
) -> None:
    ben = _long_thread(console)
    page.goto(f"/staff/inbox?task={ben}")
    expect(page.locator(".thread .bubble").filter(has_text="To unsubscribe")).to_be_visible()
    groups = page.locator("details.day-group")
    expect(groups).to_have_count(2)
    expect(groups.first).to_contain_text(re.compile(r"Visits on \w+, \w+ \d+ not confirmed: 2"))
    groups.first.locator("summary").click()
    expect(
        groups.first.get_by_role("button", name=re.compile("^Confirmed by phone"))
    ).to_have_count(2)
    _fits(page, 1280)
    shot(page, "inbox-desktop")

    context = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=console.url, storage_state=admin_state
    )
    try:
        phone = context.new_page()
        phone.goto(f"/staff/inbox?task={ben}")
        expect(phone.get_by_role("heading", name=re.compile("^Inbox"))).to_be_attached()
        expect(phone.locator(".thread .bubble").filter(has_text="To unsubscribe")).to_be_visible()
        phone.locator("details.day-group summary").first.click()
        _fits(phone, 390)
        shot(phone, "inbox-phone")
    finally:
        context.close()
