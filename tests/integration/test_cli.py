"""Every command gives one clear line and a non-zero status on bad input; no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from reminders.cli import main
from reminders.db.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMINDERS_DATABASE_URL", db_url)
    monkeypatch.setenv("REMINDERS_DRYRUN_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("REMINDERS_ONCALL_EMAILS", "oncall@example.org")
    return tmp_path


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_broken_policy_is_refused_naming_the_rule(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = env / "policy.yaml"
    policy.write_text(
        "rules:\n  - name: day-before\n    kind: reminder\n    when: -1 day\n"
        "    channels: [sms]\n    template: day_before\n"
    )
    monkeypatch.setenv("REMINDERS_POLICY_FILE", str(policy))
    code, _, err = run("tick", capsys=capsys)
    assert code == 2
    assert "REMINDERS_POLICY_FILE" in err and "rule 'day-before' field 'when'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_now_and_unknown_session(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tick", "--now", "2026-12-01T09:00:00"])  # naive: refused by argparse
    assert exc.value.code == 2
    assert "needs an offset" in capsys.readouterr().err
    code, _, err = run("plan", "--session", "nope", capsys=capsys)
    assert code == 2 and "no session with id 'nope'" in err


def test_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMINDERS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = run("outbox", capsys=capsys)
    assert code == 2 and err.startswith("reminders: error: cannot use the database")
    assert "Traceback" not in err


def test_plan_shows_the_timeline_with_reasons(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic = env / "clinic.json"
    clinic.write_text(
        json.dumps(
            {
                "patients": [
                    {"id": "p1", "first_name": "Ana", "phone": "4105550101", "sms_consent": True}
                ],
                "sessions": [
                    {"id": "s1", "patient_id": "p1", "starts_at": "2026-12-01T08:30:00-05:00"}
                ],
            }
        )
    )
    assert main(["import", str(clinic)]) == 0
    assert main(["tick", "--now", "2026-11-20T12:00:00Z"]) == 0
    code, out, _ = run("plan", "--session", "s1", "--json", capsys=capsys)
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "scheduled" and report["session"]["series_number"] == 1
    ride = next(m for m in report["messages"] if m["rule"] == "infusion-ride-sms")
    assert ride["due_local"].startswith("2026-11-30T20:45") and "evening before" in ride["note"]
    code, out, _ = run("plan", "--session", "s1", capsys=capsys)
    assert "infusion-ride-sms" in out and "evening before" in out


def test_entry_point_runs_as_a_process(env: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reminders", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "tick" in result.stdout and "REMINDERS_" in result.stdout


def test_tick_goes_on_when_the_clinic_source_is_down(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMINDERS_CLINIC_SOURCE_URL", f"sqlite:///{env / 'missing-emr.db'}")
    monkeypatch.setenv("REMINDERS_CLINIC_PATIENTS_QUERY", "SELECT id, first_name FROM people")
    monkeypatch.setenv(
        "REMINDERS_CLINIC_SESSIONS_QUERY", "SELECT id, patient_id, starts_at FROM visits"
    )
    code, out, _ = run("tick", "--now", "2026-11-20T12:00:00Z", capsys=capsys)
    assert code == 0
    assert "clinic source unavailable" in out and "sent 0" in out


def test_check_reports_providers_and_names_what_is_missing(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run("check", capsys=capsys)
    assert (
        code == 0
        and "sms provider: dryrun; email provider: dryrun" in out
        and "configuration OK" in out
    )
    monkeypatch.setenv("REMINDERS_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("REMINDERS_TWILIO_ACCOUNT_SID", "AC123")
    code, out, _ = run("check", capsys=capsys)
    assert code == 1
    assert "REMINDERS_TWILIO_AUTH_TOKEN" in out and "REMINDERS_TWILIO_FROM_NUMBER" in out
    code, _, err = run("tick", capsys=capsys)  # the daemon and tick refuse to start the same way
    assert code == 2 and "REMINDERS_TWILIO_AUTH_TOKEN" in err


def test_read_only_commands_never_change_an_existing_schema(
    env: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commands that only read create the schema of a new database, but never migrate one
    that has a schema (a newer CLI must not alter the schema under running workers)."""
    code, out, _ = run("outbox", capsys=capsys)
    assert code == 0 and out.strip() == "no messages"
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
        for command in (
            ["outbox"],
            ["plan", "--session", "s1"],
            ["templates", "list"],
            ["staff", "list"],
        ):
            code, _, err = run(*command, capsys=capsys)
            assert code == 2, command
            assert (
                "revision 0000_older" in err
                and "reminders db upgrade" in err
                and len(err.splitlines()) == 1
            )
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                == "0000_older"
            )
    finally:
        engine.dispose()
