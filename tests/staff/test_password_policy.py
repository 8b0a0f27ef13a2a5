"""Audit item 4: trivially weak passwords are refused (zxcvbn score, length, the email's name,
the clinic's name), with a clear message, on the password page and in the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.cli import main
from reminders.db.models import StaffUser
from reminders.runtime import Runtime
from reminders.web.staff import auth, strength
from tests.staff.conftest import PASSWORD, SignedIn

WEAK = {
    "password1234": "too easy to guess",
    "qwertyuiop123": "too easy to guess",
    "short1!": "at least",
    "frontdesk violet tractor": "email name",
    "Lakeside-Clinic-violet-tractor": "clinic's name",
}


@pytest.mark.parametrize(("password", "why"), WEAK.items())
def test_the_password_page_refuses_weak_passwords(
    staff_client: SignedIn, factory: sessionmaker[Session], password: str, why: str
) -> None:
    response = staff_client.post(
        "/staff/account/password", {"current": PASSWORD, "password": password, "confirm": password}
    )
    assert response.status_code == 400
    assert why in response.text.replace("&#39;", "'")
    with factory() as db:
        user = db.scalars(select(StaffUser)).one()
        assert auth.verify_password(user.password_hash, PASSWORD)


def test_a_strong_password_is_taken(staff_client: SignedIn) -> None:
    new = "violet tractor harbour"
    response = staff_client.post(
        "/staff/account/password", {"current": PASSWORD, "password": new, "confirm": new}
    )
    assert response.status_code == 303


def test_the_policy_itself() -> None:
    assert strength.weakness("violet tractor harbour") is None
    assert strength.weakness("Tr0ub4dour&3") is not None
    assert strength.weakness("correcthorse", email="correcthorse@clinic.test") is not None
    for _ in range(20):
        password, stored = auth.new_one_time_password("a@clinic.test", "Lakeside Clinic")
        assert strength.weakness(password, email="a@clinic.test") is None
        assert auth.verify_password(stored, password)


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


def test_the_cli_refuses_a_weak_password(
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    factory: sessionmaker[Session],
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("password1234\n"))
    assert main(["staff", "add", "nurse@clinic.test", "--password-stdin"]) == 2
    err = capsys.readouterr().err
    assert "password refused" in err and "too easy to guess" in err
    with factory() as db:
        assert db.scalar(select(StaffUser)) is None
    monkeypatch.setattr("sys.stdin", io.StringIO("violet tractor harbour\n"))
    assert main(["staff", "add", "nurse@clinic.test", "--password-stdin"]) == 0
    assert "violet" not in capsys.readouterr().out  # a chosen password is not echoed
    monkeypatch.setattr("sys.stdin", io.StringIO("nurse-clinic-2024\n"))
    assert main(["staff", "reset-password", "nurse@clinic.test", "--password-stdin"]) == 2
    with factory() as db:
        user = db.scalars(select(StaffUser)).one()
        assert auth.verify_password(user.password_hash, "violet tractor harbour")
