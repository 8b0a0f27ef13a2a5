"""The Today page in a real browser: the day's schedule by location, confirming a visit by
phone with the mouse and with the keyboard, and no sideways scrolling on a phone or a desk."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reminders.db.models import (
    AuditLog,
    Location,
    Message,
    Patient,
    StaffTask,
    TreatmentSession,
)
from tests.e2e.conftest import NY, Console, shot

# One server and database for the module; the tests run in order and later ones see what
# earlier ones did (the seed's own visit, Ana's, is on this day too).
pytestmark = pytest.mark.e2e
DAY = "2031-03-12"
PAGE = f"/staff/today?day={DAY}"
expect: Any = None


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


def _at(hour: int, minute: int = 0, days: int = 0) -> datetime:
    return datetime(2031, 3, 12, hour, minute, tzinfo=NY) + timedelta(days=days)


@pytest.fixture(scope="module")
def day(console: Console) -> str:
    """Three more patients at the main office and one at a second location, on the day.
    Each test confirms its own visit (Tess: the mouse; Noor: the keyboard): with pytest-xdist
    the tests of this module may run in different processes, each with its own server."""
    with console.runtime.session_factory() as db:
        db.add(Location(id="harbor", name="Harbor clinic", timezone="America/New_York"))
        db.add_all(
            [
                Patient(id="p-tess", first_name="Tess", last_name="Moreno",
                        phone="+14105550131", sms_consent=True),
                Patient(id="p-omar", first_name="Omar", last_name="Haddad"),
                Patient(id="p-noor", first_name="Noor", last_name="Aziz", phone="+14105550134"),
                Patient(id="p-lia", first_name="Lia", last_name="Santos",
                        phone="+14105550133", email="lia@example.com", email_consent=True),
            ]
        )  # fmt: skip
        db.flush()
        db.add_all(
            [
                TreatmentSession(id="tess-1", patient_id="p-tess", location_id="main",
                                 starts_at=_at(9, 30), kind="infusion", status="scheduled"),
                TreatmentSession(id="omar-1", patient_id="p-omar", location_id="main",
                                 starts_at=_at(11), kind="infusion", status="confirmed",
                                 confirmed_via="clinic"),
                TreatmentSession(id="noor-1", patient_id="p-noor", location_id="main",
                                 starts_at=_at(16), kind="infusion", status="scheduled"),
                TreatmentSession(id="lia-1", patient_id="p-lia", location_id="harbor",
                                 starts_at=_at(10), kind="consultation", status="confirmed",
                                 confirmed_via="email"),
            ]
        )  # fmt: skip
        db.flush()
        tess = _at(9, 30).astimezone(UTC)
        db.add_all(
            [
                Message(dedupe_key="e2e-today-prep", patient_id="p-tess", session_id="tess-1",
                        session_starts_at=tess, rule="infusion-prep-email", kind="reminder",
                        channel="email", template="prep_full", due_at=_at(9, days=-3),
                        status="skipped", reason="no_email"),
                Message(dedupe_key="e2e-today-sms", patient_id="p-tess", session_id="tess-1",
                        session_starts_at=tess, rule="infusion-day-before-sms", kind="reminder",
                        channel="sms", template="day_before", due_at=_at(17, days=-1),
                        status="delivered"),
                Message(dedupe_key="e2e-today-ride", patient_id="p-tess", session_id="tess-1",
                        session_starts_at=tess, rule="infusion-ride-sms", kind="reminder",
                        channel="sms", template="ride", due_at=_at(7, 30)),
                StaffTask(kind="prep_late", patient_id="p-omar", session_id="omar-1",
                          summary="Booked after the fasting cut-off.",
                          dedupe_key=f"prep_late:omar-1:{_at(11).astimezone(UTC).isoformat()}"),
            ]
        )  # fmt: skip
        db.commit()
    return DAY


def _row(page: Any, name: str) -> Any:
    return page.locator("tr.visit", has=page.get_by_role("link", name=name, exact=True))


def _scroll_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_the_days_schedule_and_confirming_by_phone(page: Any, console: Console, day: str) -> None:
    page.goto(PAGE)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Wednesday, March 12, 2031")
    expect(page.get_by_role("heading", name="Main office")).to_be_visible()
    expect(page.get_by_role("heading", name="Harbor clinic")).to_be_visible()
    expect(page.locator(".today-counts")).to_contain_text("5 visits")
    tess = _row(page, "Tess Moreno")
    expect(tess).to_contain_text("Not confirmed")
    expect(tess).to_contain_text("Infusion 1 of 6")
    expect(tess).to_contain_text("Preparation email not sent: No email address on file")
    expect(tess).to_contain_text("Day-before text delivered")
    expect(tess).to_contain_text("Ride-home text at 7:30 AM")
    expect(tess.get_by_role("link", name="Call Tess Moreno")).to_have_attribute(
        "href", "tel:+14105550131"
    )
    expect(_row(page, "Omar Haddad")).to_contain_text("Preparation cut-off missed")
    expect(_row(page, "Omar Haddad")).to_contain_text("Confirmed (clinic)")
    expect(_row(page, "Lia Santos")).to_contain_text("Confirmed by email")
    expect(_row(page, "Ana Rivera")).to_contain_text("Infusion 4 of 6")
    assert _scroll_width(page) <= 1280
    shot(page, "today-desktop")

    tess.get_by_role("button", name="Confirmed by phone").click()
    tess = _row(page, "Tess Moreno")
    expect(tess.locator(".confirmation")).to_have_text("Confirmed by phone")
    expect(tess.get_by_role("button")).to_have_count(0)
    assert page.url.startswith(f"{console.url}{PAGE}#visit-")
    expect(_row(page, "Ana Rivera").locator(".confirmation")).to_have_text("Not confirmed")
    with console.runtime.session_factory() as db:
        states = dict(
            db.execute(
                select(TreatmentSession.id, TreatmentSession.confirmed_via).where(
                    TreatmentSession.starts_at >= _at(0),
                    TreatmentSession.starts_at < _at(0, days=1),
                )
            ).all()
        )
        states.pop("noor-1")  # the keyboard's
        assert states == {"ana-4": None, "tess-1": "phone", "omar-1": "clinic", "lia-1": "email"}
        audits = db.scalars(select(AuditLog).where(AuditLog.action == "session.confirm")).all()
        assert [a.entity_id for a in audits if a.entity_id != "noor-1"] == ["tess-1"]


def test_no_sideways_scrolling_on_a_phone(
    browser: Any, console: Console, admin_state: Any, day: str
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=console.url, storage_state=admin_state
    )
    try:
        page = context.new_page()
        page.goto(PAGE)
        tess = _row(page, "Tess Moreno")
        expect(tess).to_contain_text("Ride-home text at 7:30 AM")
        assert tess.evaluate("r => getComputedStyle(r).display") == "block"  # a card
        box = tess.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        expect(_row(page, "Lia Santos").get_by_role("link", name="Text Lia Santos")).to_be_visible()
        confirm = _row(page, "Ana Rivera").get_by_role("button", name="Confirmed by phone")
        box = confirm.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        assert _scroll_width(page) <= 390
        shot(page, "today-phone")
        page.get_by_label("Day", exact=True).fill("2031-03-13")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text("No visits are booked on this day.")).to_be_visible()
        assert re.search(r"day=2031-03-13", page.url)
        assert _scroll_width(page) <= 390
    finally:
        context.close()


def test_confirming_with_the_keyboard(page: Any, console: Console, day: str) -> None:
    page.goto(PAGE)
    button = _row(page, "Noor Aziz").get_by_role("button", name="Confirmed by phone")
    expect(button).to_have_accessible_name("Confirmed by phone")
    expect(button).to_have_accessible_description("Noor Aziz")
    for _ in range(80):
        page.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("the confirm button cannot be reached with the Tab key")
    page.keyboard.press("Enter")
    noor = _row(page, "Noor Aziz")
    expect(noor.locator(".confirmation")).to_have_text("Confirmed by phone")
    expect(noor.get_by_role("button")).to_have_count(0)
    expect(_row(page, "Ana Rivera").get_by_role("button")).to_have_count(1)
