"""``reminders templates ...`` through the real CLI entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from reminders.cli import main
from reminders.db.engine import session_scope
from reminders.db.models import Location, Patient, TemplateVersion, TreatmentSession
from reminders.defaults import POLICY_FILE, TEMPLATES_DIR

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at the test database; returns a private copy of the shipped templates."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("REMINDERS_DATABASE_URL", db_url)
    monkeypatch.setenv("REMINDERS_TEMPLATES_DIR", str(templates))
    monkeypatch.setenv("REMINDERS_PUBLIC_URL", "http://testserver")
    return templates


def _store_raw(factory: sessionmaker[Session], body: str) -> None:
    """A version written behind save_version's back (an old release, a hand edit)."""
    with session_scope(factory) as db:
        db.add(TemplateVersion(name="ride_home", channel="sms", language="en", version=1,
                               body=body, created_by="db-admin"))  # fmt: skip


def test_list_shows_files_and_db_versions(
    env: Path, session_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["templates", "list"]) == 0
    out = capsys.readouterr().out
    assert "day_before" in out and "staff_alert" in out
    _store_raw(session_factory, "{{ clinic.name }} hi")
    assert main(["templates", "list"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["ride_home", "sms", "en", "db", "v1"] in lines
    assert ["ride_home", "sms", "es", "file"] in lines


def test_check_passes_on_the_shipped_templates(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["templates", "check", "--all"]) == 0
    out = capsys.readouterr().out
    assert "day_before/sms/es (file): ok (GSM-7" in out
    assert "templates checked: 0 errors, 0 warnings" in out
    assert "error" not in out.replace("0 errors", "")


def test_check_reports_a_broken_db_version_with_its_line(
    env: Path, session_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    _store_raw(session_factory, "Hi {{ patient.first_name }}\n{{ patient.last_nam }}")
    assert main(["templates", "check"]) == 1
    out = capsys.readouterr().out
    assert (
        "ride_home/sms/en (db v1): error: body line 2: unknown variable 'patient.last_nam'" in out
    )


def test_check_reports_broken_files_and_warnings(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "es" / "checkin.sms.j2").write_text("{{ clinic.name }}\n\n{% for x in %}")
    (env / "en" / "maintenance_due.sms.j2").write_text(
        "{{ clinic.name }}: time for your ketamine visit"
    )
    assert main(["templates", "check", "checkin", "maintenance_due"]) == 1
    out = capsys.readouterr().out
    assert "checkin/sms/es (file): error: body line 3: syntax error" in out
    assert "maintenance_due/sms/en (file): warning: body: mentions 'ketamine'" in out
    assert "day_before" not in out  # only the named templates


def test_check_finds_templates_the_policy_needs(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = env.parent / "policy.yaml"
    policy.write_text(
        POLICY_FILE.read_text().replace("template: ride_home\n", "template: ride_home_v2\n")
    )
    monkeypatch.setenv("REMINDERS_POLICY_FILE", str(policy))
    assert main(["templates", "check"]) == 1
    assert (
        "ride_home_v2/sms/en: error: missing, but policy rule infusion-ride-sms sends it"
        in capsys.readouterr().out
    )


def test_an_override_file_beats_the_built_in_and_falls_back_when_removed(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "en" / "ride_home.sms.j2").write_text(
        "Clinic's own ride text for {{ patient.first_name }}."
    )
    assert main(["templates", "show", "ride_home", "--channel", "sms"]) == 0
    out = capsys.readouterr().out
    assert "== ride_home/sms/en (file) ==" in out and "Clinic's own ride text" in out
    shutil.rmtree(env / "en")  # an override folder may hold only some templates
    assert main(["templates", "show", "ride_home", "--channel", "sms"]) == 0
    out = capsys.readouterr().out
    assert "== ride_home/sms/en (built-in) ==" in out and "Clinic's own ride text" not in out
    assert main(["templates", "list"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["ride_home", "sms", "en", "built-in"] in lines
    assert ["ride_home", "sms", "es", "file"] in lines
    assert (
        out.count("\n") > 2 and (TEMPLATES_DIR / "en" / "ride_home.sms.j2").read_text()[:40] in out
    )


def test_check_unknown_name(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "check", "nope"]) == 1
    assert "nope: error: no such template" in capsys.readouterr().out


def test_show(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "show", "day_before", "--language", "es-MX"]) == 0
    out = capsys.readouterr().out
    assert "== day_before/sms/es (file) ==" in out
    assert "== day_before/email/es (file) ==" in out
    assert "{{ reply.confirm }}" in out
    assert main(["templates", "show", "prep_full", "--channel", "sms"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reminders: error: no template prep_full/sms") and err.count("\n") == 1


def test_preview_with_sample_data(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "preview", "day_before", "--channel", "sms"]) == 0
    out = capsys.readouterr().out
    assert "Hi Alex" in out and "9:00 AM" in out
    assert "[GSM-7," in out and "segment" in out
    assert (
        main(["templates", "preview", "prep_full", "--channel", "email", "--language", "es"]) == 0
    )
    out = capsys.readouterr().out
    assert "Subject: Cómo prepararse" in out and "<p>Hola Alex:</p>" in out


def test_preview_with_a_real_session(
    env: Path, session_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    with session_scope(session_factory) as db:
        db.add(Location(id="north", name="North office", address="9 Elm St", phone="+14105550199",
                        timezone="America/Chicago"))  # fmt: skip
        db.add(Patient(id="p1", first_name="Luz", language="es"))
        db.flush()
        db.add(TreatmentSession(id="s1", patient_id="p1", location_id="north",
                                starts_at=datetime(2026, 12, 1, 15, 0, tzinfo=UTC)))  # fmt: skip
    assert main(["templates", "preview", "day_before", "--channel", "sms", "--session", "s1",
                 "--now", "2026-11-30T18:00:00Z"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Hola Luz" in out and "mañana, martes 1 de diciembre, a las 9:00 en North office" in out
    # Read on the session's day in Chicago, after the fasting cut-off (3:00): today, and call us.
    assert main(["templates", "preview", "day_before", "--channel", "sms", "--session", "s1",
                 "--now", "2026-12-01T14:00:00Z"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "hoy a las 9:00" in out and "comio algo desde las 3:00" in out
    assert main(["templates", "preview", "maintenance_due", "--channel", "sms", "--patient", "p1",
                 "--language", "en"]) == 0  # fmt: skip
    assert "Hi Luz" in capsys.readouterr().out
    assert (
        main(["templates", "preview", "day_before", "--channel", "sms", "--session", "nope"]) == 2
    )
    assert capsys.readouterr().err.strip() == "reminders: error: no session 'nope'"
