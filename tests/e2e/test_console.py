"""The staff console in a real browser: sign in, edit a template with the live preview,
have an invalid one refused, see a saved one used by the next tick, acknowledge an urgent
crisis item, find a failed message's patient; screenshots of the main pages."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reminders.db.models import AuditLog, StaffTask, TemplateVersion
from reminders.worker import run_tick
from tests.e2e.conftest import ADMIN, ADMIN_PASSWORD, SESSION_START, Console, shot

# One server and database for the module, and later tests read what earlier ones did: the
# whole module runs in one pytest-xdist process, in order (make test uses --dist loadscope).
pytestmark = pytest.mark.e2e
expect: Any = None


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


def test_sign_in_wrong_password_then_right(
    browser: Any, console: Console, admin_state: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=console.url)
    page = context.new_page()
    page.goto("/staff/outbox")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(
        page.get_by_role("heading", name=re.compile("^Outbox"))
    ).to_be_visible()  # back where they were going
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_edit_template_preview_error_save_and_tick(page: Any, console: Console) -> None:
    page.goto("/staff/templates")
    shot(page, "templates")
    page.get_by_role("row", name=re.compile(r"day_before\s+sms\s+en")).get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("day_before"))).to_be_visible()
    segments = page.locator("#segments")
    expect(segments).to_have_text(re.compile(r"^\d segments?$"))
    shot(page, "template-edit")

    body = page.locator("#f-body")
    body.fill("{{ clinic.name }}: " + "see you soon, " * 30 + "{{ session.date }}")
    expect(segments).to_have_text("3 segments")
    expect(page.locator("#checks-body")).to_contain_text("3 SMS segments")  # the checker's warning
    body.fill("{{ clinic.name }}: see you {{ session.date }}")
    expect(segments).to_have_text("1 segment")
    body.fill("Hola {{ patient.first_name }} 🙂 {{ session.time }}")
    expect(page.locator("#sms-info")).to_contain_text("UCS-2")
    expect(page.locator("#preview .bubble")).to_contain_text("Hola Alex")

    # An invalid template: the error shows next to the field, and saving is refused.
    body.fill("Hi {{ patient.frist_name }}, see you {{ session.date }}")
    expect(page.locator("#checks-body")).to_contain_text("unknown variable 'patient.frist_name'")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#checks-body .error")).to_contain_text("did you mean 'patient.first_name'")
    shot(page, "template-error")
    with console.runtime.session_factory() as db:
        assert db.scalar(select(TemplateVersion)) is None

    # A valid one: saved as version 1, live for the next tick.
    page.locator("#f-body").fill(
        "{{ clinic.name }}: E2E-MARKER {{ patient.first_name }}, your visit is {{ session.date }} at "
        "{{ session.time }}. Reply {{ reply.confirm }} to confirm."
    )
    page.get_by_label("Note for the history").fill("browser test")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.locator("#live-version")).to_have_text("Live version: 1 (edited in the console)")

    tick_at = SESSION_START - timedelta(days=1) + timedelta(minutes=1)
    run_tick(console.runtime, now=tick_at)
    sent = [
        json.loads(line)
        for line in (console.runtime.settings.dryrun_dir / "sms.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    mine = [
        m for m in sent if m["patient_id"] == "p-ana" and m["rule"] == "infusion-day-before-sms"
    ]
    assert mine, sent
    assert "E2E-MARKER Ana, your visit is Wednesday, March 12 at 3:00 PM" in mine[0]["body"]

    page.goto("/staff/templates/day_before/sms/en/history")
    expect(page.get_by_role("cell", name="browser test")).to_be_visible()
    shot(page, "template-history")
    page.get_by_role("link", name="diff with shipped file").click()
    expect(page.locator("pre.diff .add").first).to_contain_text("E2E-MARKER")


def test_acknowledge_urgent_crisis(page: Any, console: Console) -> None:
    page.goto("/staff/inbox")
    first = page.locator("ul.tasks").first.locator("li.task").first
    expect(first).to_have_class(re.compile(r"\burgent\b"))  # pinned on top in its own style
    expect(first).to_contain_text("Crisis language")
    expect(first).to_contain_text("Cara Lind")
    shot(page, "inbox")
    first.get_by_role("link").click()
    expect(page.locator(".detail blockquote")).to_contain_text("i cant go on anymore")
    page.get_by_label(re.compile("^Note")).fill(
        "Called Cara, she is safe with family; follow-up tomorrow."
    )
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".detail")).to_contain_text(f"Acknowledged by {ADMIN}")
    expect(page.locator("ul.tasks").first.locator("li.urgent")).to_have_count(0)
    with console.runtime.session_factory() as db:
        task = db.scalars(select(StaffTask).where(StaffTask.kind == "crisis")).one()
        assert task.acknowledged_by == ADMIN and task.note and "safe" in task.note
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "task.acknowledge")).one()
        assert audit.entity_id == str(task.id)


def test_find_failed_message_patient(page: Any) -> None:
    page.goto("/staff/outbox?when=past")  # the default view is what goes out next
    expect(page.locator("tr.st-failed")).to_contain_text("carrier: unreachable handset")
    shot(page, "outbox")
    page.get_by_role("link", name="Failed: patients to phone").click()
    row = page.get_by_role("row", name=re.compile("Ben Okafor"))
    expect(row).to_contain_text("+14105550124")
    shot(page, "outbox-failed")
    row.get_by_role("link", name="Ben Okafor").click()
    expect(page.get_by_role("heading", name="Ben Okafor")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("carrier: unreachable handset")


def test_patient_policy_and_audit_pages(page: Any) -> None:
    page.goto("/staff/patients")
    shot(page, "patients")
    page.get_by_role("link", name="Ana Rivera").click()
    expect(page.locator(".big")).to_have_text("3 of 6")
    expect(page.locator("svg.chart circle")).to_have_count(4)
    shot(page, "patient")
    page.goto("/staff/policy")
    expect(page.get_by_role("cell", name="1 day before the session starts").first).to_be_visible()
    shot(page, "policy")
    page.goto("/staff/audit")
    expect(page.get_by_role("cell", name="template.save")).to_be_visible()
    shot(page, "audit")
