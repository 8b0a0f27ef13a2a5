"""The admin pages in a real browser: add a staff account and see its one-time password, disable
it; save the policy, see the version in its history and revert it; find a patient's messages
by phone in the outbox; and no page scrolls sideways on a phone or a desktop."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reminders.db.models import AuditLog, Message, PolicyVersion, StaffUser
from tests.e2e.conftest import Console, shot

# One server and database for the module, and later tests read what earlier ones did: the
# whole module runs in one pytest-xdist process, in order (make test uses --dist loadscope).
pytestmark = pytest.mark.e2e
expect: Any = None
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PAGES = (
    "/staff/outbox",
    "/staff/accounts",
    "/staff/policy",
    "/staff/policy/history",
    "/staff/templates",
    "/staff/audit",
)


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


def _context(browser: Any, console: Console, state: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, base_url=console.url, storage_state=state)
    context.set_default_timeout(10_000)
    return context


def test_add_a_staff_account_then_disable_it(page: Any, browser: Any, console: Console) -> None:
    page.goto("/staff/accounts")
    form = page.locator("form.add-account")
    form.get_by_label("Email", exact=True).fill("nurse@clinic.test")
    form.get_by_label("Role").select_option("staff")
    form.get_by_label(re.compile("^Mobile")).fill("(410) 555-0142")
    form.get_by_role("button", name="Add account").click()
    secret = page.locator("#one-time-password")
    expect(secret).to_have_text(re.compile(r"^\S{12,}$"))
    expect(
        page.get_by_role("heading", name="Account created for nurse@clinic.test")
    ).to_be_visible()
    password = secret.inner_text()
    shot(page, "accounts-desktop")

    # The one-time password signs the new person in, once, to choose their own.
    nurse = browser.new_context(viewport=DESKTOP, base_url=console.url)
    other = nurse.new_page()
    other.goto("/staff/login")
    other.get_by_label("Email").fill("nurse@clinic.test")
    other.get_by_label("Password").fill(password)
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("heading", name="Choose your password")).to_be_visible()

    row = page.get_by_role("row", name=re.compile("nurse@clinic.test"))
    expect(row).to_contain_text("+14105550142")
    row.get_by_role("button", name=re.compile("^Disable")).click()
    expect(page.get_by_role("status")).to_contain_text("nurse@clinic.test can no longer sign in.")
    row = page.get_by_role("row", name=re.compile("nurse@clinic.test"))
    expect(row).to_contain_text("Disabled")
    expect(row.get_by_role("button", name=re.compile("^Enable"))).to_be_visible()
    # Their session has ended.
    other.goto("/staff/account/password")
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    nurse.close()
    with console.runtime.session_factory() as db:
        user = db.scalars(select(StaffUser).where(StaffUser.email == "nurse@clinic.test")).one()
        assert user.active is False and user.phone == "+14105550142"
        done = [
            a.action for a in db.scalars(select(AuditLog).where(AuditLog.entity == "staff_user"))
        ]
        assert done[-2:] == ["staff.add", "staff.disable"]


def test_policy_history_after_a_save_and_revert(page: Any, console: Console) -> None:
    policy_file = console.runtime.settings.policy_file
    assert policy_file is not None
    original = Path(policy_file).read_text(encoding="utf-8")
    page.goto("/staff/policy")
    editor = page.get_by_label("Policy (YAML)")
    editor.fill(editor.input_value().replace("when: -2h", "when: -3h", 1))
    page.get_by_label(re.compile("^Note for the history")).fill("ride text an hour earlier")
    page.get_by_role("button", name="Validate and save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved and validated")
    expect(page.locator("#policy-version")).to_contain_text("Version in use: 2")
    expect(page.get_by_role("cell", name="3 hours before the session starts")).to_be_visible()

    page.get_by_role("link", name="History and changes").first.click()
    expect(page.get_by_role("heading", name="Policy history")).to_be_visible()
    expect(page.get_by_role("cell", name="ride text an hour earlier")).to_be_visible()
    expect(
        page.get_by_role("cell", name=re.compile("as it was before the first change"))
    ).to_be_visible()
    page.get_by_role("link", name="Compare version 1 with the policy in use").click()
    expect(page.locator("pre.diff .del")).to_contain_text("when: -2h")
    expect(page.locator("pre.diff .add")).to_contain_text("when: -3h")
    page.get_by_role("button", name="Revert to version 1").click()
    expect(page.get_by_role("status")).to_contain_text("Reverted")
    expect(page.get_by_role("cell", name="2 hours before the session starts")).to_be_visible()
    assert Path(policy_file).read_text(encoding="utf-8") == original
    with console.runtime.session_factory() as db:
        notes = [v.note for v in db.scalars(select(PolicyVersion).order_by(PolicyVersion.version))]
        assert notes == ["as found", "ride text an hour earlier", "revert to v1"]


def test_outbox_filter_by_phone(
    page: Any, browser: Any, console: Console, admin_state: Any
) -> None:
    now = datetime.now(UTC)
    with console.runtime.session_factory() as db:
        for n, (patient, rule, status) in enumerate(
            [
                ("p-ana", "infusion-day-before-sms", "planned"),
                ("p-ana", "infusion-ride-sms", "planned"),
                ("p-ben", "infusion-prep-email", "planned"),
                ("p-cara", "infusion-checkin", "planned"),
            ]
        ):
            db.add(
                Message(
                    dedupe_key=f"e2e-admin-{n}",
                    patient_id=patient,
                    rule=rule,
                    kind="reminder",
                    channel="email" if rule.endswith("email") else "sms",
                    template="day_before",
                    due_at=now + timedelta(hours=3 * n + 2),
                    status=status,
                )
            )
        db.commit()
    page.goto("/staff/outbox")
    expect(page.locator("#count")).to_contain_text("4 messages")
    expect(page.locator("tbody tr").first).to_contain_text("Day-before text")
    page.get_by_role("link", name="Any time").click()
    page.get_by_label("Patient: name or phone").fill("(410) 555-0124")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#count")).to_contain_text("2 messages")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    for n in range(2):
        expect(rows.nth(n)).to_contain_text("Ben Okafor")
    expect(rows.nth(1)).to_contain_text("Not delivered")
    shot(page, "outbox-desktop")
    phone = _context(browser, console, admin_state, PHONE)
    small = phone.new_page()
    small.goto("/staff/outbox")
    expect(small.locator("#count")).to_contain_text("4 messages")
    shot(small, "outbox-phone")
    phone.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_no_sideways_scroll(
    browser: Any, console: Console, admin_state: Any, viewport: dict[str, int]
) -> None:
    context = _context(browser, console, admin_state, viewport)
    page = context.new_page()
    try:
        for path in (*PAGES, "/staff/policy/history?v=1"):
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], (path, width)
    finally:
        context.close()
