"""``reminders init``: editable copies of the defaults that the settings then use (issue:
installable anywhere). Through the real CLI entry point, in an empty folder."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from reminders.cli import main
from reminders.defaults import POLICY_FILE, TEMPLATES_DIR
from reminders.settings import PLACEHOLDER_SECRETS
from tests.integration.test_tick_series import write_clinic

SESSION = {
    "id": "s1",
    "patient_id": "p1",
    "location_id": "main",
    "kind": "infusion",
    "starts_at": "2026-12-01T09:00:00-05:00",
    "duration_minutes": 60,
    "status": "scheduled",
}


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as the working directory, and no REMINDERS_* variable set."""
    for key in list(os.environ):
        if key.startswith("REMINDERS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def env_values(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def test_init_then_check_and_an_edited_template_is_the_one_sent(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    assert (empty / "policy.yaml").read_text() == POLICY_FILE.read_text()
    shipped = sorted(p.relative_to(TEMPLATES_DIR) for p in TEMPLATES_DIR.rglob("*.j2"))
    assert (
        sorted(p.relative_to(empty / "templates") for p in (empty / "templates").rglob("*.j2"))
        == shipped
    )
    env = env_values(empty / ".env")
    assert env["REMINDERS_POLICY_FILE"] == "policy.yaml"
    assert env["REMINDERS_TEMPLATES_DIR"] == "templates"
    assert env["REMINDERS_SECRET_KEY"].lower() not in PLACEHOLDER_SECRETS
    assert len(env["REMINDERS_SECRET_KEY"]) >= 32
    assert stat.S_IMODE((empty / ".env").stat().st_mode) == 0o600

    capsys.readouterr()
    # Crisis screening is on and nobody would be alerted yet: check says which variables to set.
    assert main(["check"]) == 1
    assert "REMINDERS_ONCALL_EMAILS" in capsys.readouterr().out
    with (empty / ".env").open("a", encoding="utf-8") as env_file:
        env_file.write("REMINDERS_ONCALL_EMAILS=oncall@example.org\n")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert (
        "policy: policy.yaml (6 rules)" in out and "templates: templates, over the built-in" in out
    )

    sms = empty / "templates" / "es" / "day_before.sms.j2"  # the sample patient reads Spanish
    sms.write_text("EDITADO POR LA CLINICA. " + sms.read_text())
    write_clinic(empty / "clinic.json", [SESSION])
    assert main(["import", "clinic.json"]) == 0
    assert main(["tick", "--now", "2026-11-30T09:00:30-05:00"]) == 0
    sent = [json.loads(line) for line in (empty / "outbox" / "sms.jsonl").read_text().splitlines()]
    assert [m["rule"] for m in sent] == ["infusion-day-before-sms"]
    assert sent[0]["body"].startswith("EDITADO POR LA CLINICA. ")
    assert (empty / "reminders.db").exists()  # the database the .env names, in this folder


def test_init_never_overwrites_unless_forced(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (empty / "policy.yaml").write_text("# the clinic's own\n")
    assert main(["init"]) == 2
    assert "not overwriting policy.yaml" in capsys.readouterr().err
    assert sorted(p.name for p in empty.iterdir()) == ["policy.yaml"]  # nothing else written
    assert main(["init", "--force"]) == 0
    assert (empty / "policy.yaml").read_text() == POLICY_FILE.read_text()


def test_an_existing_env_is_left_alone_and_the_example_has_no_secret(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (empty / "site").mkdir()
    (empty / "site" / ".env").write_text("REMINDERS_CLINIC_NAME=Ours\n")
    assert main(["init", "site"]) == 0
    assert (empty / "site" / ".env").read_text() == "REMINDERS_CLINIC_NAME=Ours\n"
    example = env_values(empty / "site" / ".env.example")
    assert example["REMINDERS_POLICY_FILE"] == "policy.yaml"
    assert example["REMINDERS_SECRET_KEY"] == "change-me"
    assert "copy these lines" in capsys.readouterr().out


def test_init_into_a_file_is_refused(empty: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (empty / "afile").write_text("x")
    assert main(["init", "afile"]) == 2
    assert "afile is not a folder" in capsys.readouterr().err


def test_a_place_it_cannot_write_is_one_clear_line(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (empty / "templates").write_text("a file where the folder should go")
    assert main(["init"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reminders: error: cannot write ") and "templates" in err
    assert err.count("\n") == 1


def test_check_names_a_broken_copied_template(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    (empty / "templates" / "en" / "ride_home.sms.j2").write_text("Hi {{ patient.first_nam }}")
    capsys.readouterr()
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert (
        "template error: ride_home/sms/en (file): body line 1: unknown variable 'patient.first_nam'"
        in out
    )
    assert out.rstrip().endswith("configuration has problems")
