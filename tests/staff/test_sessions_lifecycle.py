"""Audit item 6, sessions end when they should (SQLite and PostgreSQL): sign-out revokes the
session server-side, an idle session expires, disabling an account or resetting or changing
its password ends its sessions, and a reset keeps a disabled account disabled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.cli import main
from reminders.db.models import StaffSession, StaffUser
from reminders.runtime import Runtime
from reminders.settings import Settings
from reminders.web.staff import auth
from tests.staff.conftest import PASSWORD, SignedIn, csrf_of, login, sign_in


@pytest.fixture
def other_client(app_client: TestClient) -> Iterator[TestClient]:
    """A second browser on the same console."""
    with TestClient(app_client.app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def cli_env(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = runtime.settings
    for key, value in {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_POLICY_FILE": str(settings.policy_file),
        "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "REMINDERS_CLINIC_NAME": settings.clinic_name,
    }.items():
        monkeypatch.setenv(key, value)


def copy_of_cookie(source: TestClient, target: TestClient) -> TestClient:
    value = source.cookies.get(auth.SESSION_COOKIE)
    assert value
    target.cookies.set(auth.SESSION_COOKIE, value, domain="testserver.local", path="/staff")
    return target


def signed_out(client: TestClient) -> bool:
    response = client.get("/staff/inbox")
    return response.status_code == 303 and "/staff/login" in response.headers["location"]


def test_a_copied_cookie_stops_working_after_sign_out(
    staff_client: SignedIn, other_client: TestClient, factory: sessionmaker[Session]
) -> None:
    copy = copy_of_cookie(staff_client.client, other_client)
    assert copy.get("/staff/inbox").status_code == 200  # the copy works while signed in
    assert staff_client.post("/staff/logout").status_code == 303
    assert signed_out(staff_client.client)
    assert signed_out(copy)
    with factory() as db:
        assert db.scalars(select(StaffSession)).one().revoked_at is not None


def test_an_idle_session_expires_and_activity_keeps_one_alive(
    runtime: Runtime, staff_client: SignedIn, other_client: TestClient
) -> None:
    runtime.settings.staff_idle_minutes = 2 / 60  # 2 s (the default is 30 minutes)
    active = staff_client.client
    idle = copy_of_cookie(active, other_client)
    sign_in(other_client, "frontdesk@clinic.test")  # a session of its own
    start = time.monotonic()
    while time.monotonic() - start < 3.5:  # used every 0.4 s: longer than the idle time
        assert active.get("/staff/inbox").status_code == 200
        time.sleep(0.4)
    assert signed_out(idle)
    time.sleep(2.5)
    assert signed_out(active)


def test_the_idle_time_defaults_to_thirty_minutes() -> None:
    assert Settings.model_fields["staff_idle_minutes"].default == 30


def test_a_session_check_is_one_query(
    staff_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    with factory() as db:
        row = db.scalars(select(StaffSession)).one()
        assert row.revoked_at is None and len(row.id) == 64  # the token's hash, not the token
    assert row.id != staff_client.client.cookies.get(auth.SESSION_COOKIE)


def test_changing_the_password_ends_the_other_sessions(
    app_client: TestClient, other_client: TestClient, make_user: Callable[..., str]
) -> None:
    email = make_user("frontdesk@clinic.test")
    here = sign_in(app_client, email)
    elsewhere = sign_in(other_client, email)
    new = "violet tractor harbour"
    changed = here.post(
        "/staff/account/password", {"current": PASSWORD, "password": new, "confirm": new}
    )
    assert changed.status_code == 303
    assert app_client.get("/staff/inbox").status_code == 200  # this one goes on
    assert signed_out(elsewhere.client)


def test_disabling_ends_sessions_for_good(
    staff_client: SignedIn, cli_env: None, factory: sessionmaker[Session]
) -> None:
    assert main(["staff", "disable", "frontdesk@clinic.test"]) == 0
    assert signed_out(staff_client.client)
    # Enabling the account again does not bring the old sessions back: they were revoked.
    assert main(["staff", "enable", "frontdesk@clinic.test"]) == 0
    assert signed_out(staff_client.client)
    with factory() as db:
        assert all(s.revoked_at is not None for s in db.scalars(select(StaffSession)))
    assert login(staff_client.client, "frontdesk@clinic.test").status_code == 303


def test_reset_password_ends_sessions(
    staff_client: SignedIn, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["staff", "reset-password", "frontdesk@clinic.test"]) == 0
    out = capsys.readouterr().out
    assert "every console session of frontdesk@clinic.test has ended" in out
    assert "disabled" not in out
    assert signed_out(staff_client.client)


def test_reset_password_keeps_a_disabled_account_disabled(
    app_client: TestClient,
    make_user: Callable[..., str],
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    factory: sessionmaker[Session],
) -> None:
    email = make_user("frontdesk@clinic.test")
    assert main(["staff", "disable", email]) == 0
    assert main(["staff", "reset-password", email]) == 0
    out = capsys.readouterr().out
    assert "stays disabled" in out
    password = out.split(f"{email}: ")[1].split()[0]
    with factory() as db:
        assert db.scalars(select(StaffUser)).one().active is False
    assert login(app_client, email, password).status_code == 401
    assert main(["staff", "enable", email]) == 0
    assert login(app_client, email, password).headers["location"] == "/staff/account/password"
    form = app_client.get("/staff/account/password")
    assert csrf_of(form.text)
