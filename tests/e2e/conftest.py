"""Browser tests: real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against a uvicorn server the tests start on a free loopback port, over SQLite.

No Chromium: the tests skip, unless ``REMINDERS_TEST_REQUIRE_BROWSER=1`` (CI), where the
browser fixture fails. Screenshots go to ``test-artifacts/screenshots/`` (git-ignored); with
``REMINDERS_UPDATE_SCREENSHOTS=1`` (or when one is missing) they are also copied to
``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from reminders.db.models import (
    CheckinScore,
    InboundMessage,
    Location,
    Message,
    Patient,
    StaffTask,
    StaffUser,
    TreatmentSession,
)
from reminders.defaults import POLICY_FILE
from reminders.runtime import Runtime
from reminders.web.app import create_app
from reminders.web.staff.auth import new_one_time_password
from tests.conftest import ROOT, make_test_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
ADMIN = "admin@clinic.test"
ADMIN_PASSWORD = "a new long password"
NY = ZoneInfo("America/New_York")
# Ana's next infusion, far from today so the test never depends on the real clock.
SESSION_START = datetime(2031, 3, 12, 15, 0, tzinfo=NY)

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Console:
    url: str
    runtime: Runtime
    one_time_password: str


def seed(runtime: Runtime) -> str:
    now = datetime.now(UTC)
    password, stored = new_one_time_password()
    with runtime.session_factory() as db:
        db.add(StaffUser(email=ADMIN, role="admin", phone="+14105550111", password_hash=stored))
        db.add(
            Location(
                id="main",
                name="Main office",
                address="100 Main Street",
                phone="+14105550100",
                timezone="America/New_York",
            )
        )
        db.add_all(
            [
                Patient(
                    id="p-ana",
                    first_name="Ana",
                    last_name="Rivera",
                    phone="+14105550123",
                    sms_consent=True,
                    language="en",
                    initial_series_size=6,
                ),
                Patient(
                    id="p-ben",
                    first_name="Ben",
                    last_name="Okafor",
                    phone="+14105550124",
                    sms_consent=True,
                    email="ben@example.com",
                    email_consent=True,
                ),
                Patient(
                    id="p-cara",
                    first_name="Cara",
                    last_name="Lind",
                    phone="+14105550125",
                    sms_consent=True,
                ),
            ]
        )
        db.flush()
        for n in range(3):
            db.add(
                TreatmentSession(
                    id=f"ana-{n + 1}",
                    patient_id="p-ana",
                    location_id="main",
                    starts_at=now - timedelta(days=12 - 4 * n),
                    status="completed",
                    kind="infusion",
                )
            )
        db.add(
            TreatmentSession(
                id="ana-4",
                patient_id="p-ana",
                location_id="main",
                starts_at=SESSION_START,
                kind="infusion",
                status="scheduled",
            )
        )
        for days, score in ((11, 3), (7, 5), (3, 6), (1, 7)):
            db.add(
                CheckinScore(
                    patient_id="p-ana", score=score, recorded_at=now - timedelta(days=days)
                )
            )
        db.add(
            Message(
                dedupe_key="seed-failed",
                patient_id="p-ben",
                rule="infusion-day-before-sms",
                kind="reminder",
                channel="sms",
                template="day_before",
                due_at=now - timedelta(hours=3),
                status="failed",
                reason="carrier: unreachable handset",
                error_code="30003",
                attempts=3,
                updated_at=now - timedelta(hours=2),
            )
        )
        crisis = InboundMessage(
            channel="sms",
            from_address="+14105550125",
            body="i cant go on anymore",
            patient_id="p-cara",
            classification="crisis",
            received_at=now - timedelta(minutes=9),
            processed_at=now - timedelta(minutes=9),  # else the worker's sweep processes it
        )
        chat = InboundMessage(
            channel="sms",
            from_address="+14105550124",
            body="Can I bring my sister along?",
            patient_id="p-ben",
            classification="free_text",
            received_at=now - timedelta(hours=1),
            processed_at=now - timedelta(hours=1),
        )
        db.add_all([crisis, chat])
        db.flush()
        db.add(
            StaffTask(
                kind="free_text",
                urgent=False,
                patient_id="p-ben",
                inbound_id=chat.id,
                summary="Reply from Ben",
                created_at=now - timedelta(hours=1),
            )
        )
        db.add(
            StaffTask(
                kind="crisis",
                urgent=True,
                patient_id="p-cara",
                inbound_id=crisis.id,
                summary="Crisis language in a reply: call the patient now",
                created_at=now - timedelta(minutes=9),
            )
        )
        db.commit()
    return password


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("e2e")
    policy = tmp / "policy.yaml"
    shutil.copyfile(POLICY_FILE, policy)
    settings = make_test_settings(
        f"sqlite:///{tmp / 'e2e.db'}",
        tmp,
        policy_file=policy,
        clinic_name="Lakeside Clinic",
        clinic_phone="+14105550100",
    )
    port = _free_port()
    settings.public_url = f"http://127.0.0.1:{port}"
    runtime = Runtime(settings)
    runtime.upgrade_schema()
    password = seed(runtime)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, name="e2e-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the e2e web server did not start")
        time.sleep(0.05)
    try:
        yield Console(f"http://127.0.0.1:{port}", runtime, password)
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: run .ci/browser.sh (apt-get install chromium)"
        if os.environ.get("REMINDERS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("REMINDERS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail("playwright is not installed: pip install -e '.[test]'")
        pytest.skip("playwright is not installed")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def admin_state(browser: Any, console: Console) -> dict[str, Any]:
    """First sign-in with the one-time password, choosing a real one; the signed-in state."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=console.url)
    page = context.new_page()
    page.goto("/staff/")
    expect(page).to_have_url(f"{console.url}/staff/login?next=/staff/")
    shot(page, "login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(console.one_time_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.get_by_label("Current password").fill(console.one_time_password)
    page.get_by_label("New password (10 characters or more)").fill(ADMIN_PASSWORD)
    page.get_by_label("New password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser: Any, console: Console, admin_state: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=console.url, storage_state=admin_state
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    docs = DOCS_SHOTS / f"{name}.png"
    if os.environ.get("REMINDERS_UPDATE_SCREENSHOTS") == "1" or not docs.exists():
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs)
    return path
