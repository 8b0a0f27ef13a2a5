"""Every console page on a phone (390 px) and a desktop (1280 px): nothing scrolls sideways,
and every form control has a name a screen reader can say (issue 14, item 8)."""

from __future__ import annotations

from typing import Any

import pytest

from reminders.db.models import Message
from tests.e2e.conftest import SESSION_START, Console

PAGES = [
    "/staff/today",
    f"/staff/today?day={SESSION_START:%Y-%m-%d}",
    "/staff/inbox",
    "/staff/patients",
    "/staff/patients/p-ana",
    "/staff/outbox",
    "/staff/templates",
    "/staff/templates/day_before/sms/en",
    "/staff/templates/prep_full/email/es",
    "/staff/policy",
    "/staff/policy/history",
    "/staff/accounts",
    "/staff/audit",
    "/staff/account/password",
    "/staff/no-such-page",
]
WIDTHS = [(390, 844), (1280, 900)]

# Controls without a label, aria-label, aria-labelledby or title (hidden ones excepted).
UNNAMED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
           && !el.getAttribute('aria-labelledby') && !el.title
           && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""

# The widest element, to say what overflows when something does.
WIDEST = """(limit) => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > limit + 1)
  .slice(0, 3).map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))"""


@pytest.fixture(scope="module", autouse=True)
def long_email(console: Console) -> None:
    """An email with a long unbroken link in Ana's thread (it once made the inbox 1,970 px)."""
    with console.runtime.session_factory() as db:
        db.add(
            Message(
                dedupe_key="widths:long-link",
                patient_id="p-ana",
                rule="infusion-prep-email",
                kind="reminder",
                channel="email",
                template="prep_full",
                due_at=SESSION_START,
                status="sent",
                to_address="ana@example.com",
                body="To stop these emails: https://clinic.example/unsubscribe/" + "A" * 300,
                language="en",
            )
        )
        db.commit()


@pytest.mark.parametrize(("width", "height"), WIDTHS, ids=["phone", "desktop"])
def test_no_page_scrolls_sideways(
    browser: Any, console: Console, admin_state: dict[str, Any], width: int, height: int
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        base_url=console.url,
        storage_state=admin_state,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = []
    try:
        for path in PAGES:
            response = page.goto(path)
            assert response is not None
            expected = 404 if path.endswith("no-such-page") else 200
            assert response.status == expected, f"{path}: {response.status}"
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                problems.append(
                    f"{path}: {scroll} px wide at {width}: {page.evaluate(WIDEST, width)}"
                )
            unnamed = page.evaluate(UNNAMED_CONTROLS)
            if unnamed:
                problems.append(f"{path}: controls without a name: {unnamed}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_the_sign_in_page_fits_a_phone(browser: Any, console: Console) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=console.url)
    page = context.new_page()
    try:
        page.goto("/staff/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate(UNNAMED_CONTROLS) == []
    finally:
        context.close()


def test_the_console_in_spanish_and_an_error_that_is_a_page(page: Any) -> None:
    """Item 4: a person switches the console to Spanish from the menu; codes read as words;
    a missing page is a page, in their language."""
    from playwright.sync_api import expect

    page.goto("/staff/outbox?when=past")
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change").click()
    expect(page.get_by_role("link", name="Bandeja de entrada")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    body = page.locator("main").inner_text()
    assert "No entregado" in body  # the failed message's status, in words
    assert "failed" not in body.split()  # never the code
    page.goto("/staff/no-such-page")
    expect(page.get_by_role("heading", name="No encontrado")).to_be_visible()
    expect(page.get_by_role("link", name="Volver a la consola")).to_be_visible()
    # Back to English for the other tests of this module.
    page.goto("/staff/today")
    page.get_by_label("Idioma").select_option("en")
    page.get_by_role("button", name="Cambiar").click()
    expect(page.get_by_role("link", name="Inbox")).to_be_visible()
