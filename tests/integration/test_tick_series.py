"""`reminders tick --now T` over a patient's series reproduces the policy (docs/design.md section 6),
through the real CLI, importer, planner, dispatcher and dry-run provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reminders.cli import main

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "REMINDERS_DATABASE_URL": db_url,
        "REMINDERS_DRYRUN_DIR": str(tmp_path / "outbox"),
        "REMINDERS_TIMEZONE": "America/New_York",
        "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> int:
        return main(list(args))

    return run


def write_clinic(
    path: Path, sessions: list[dict[str, Any]], patients: list[dict[str, Any]] | None = None
) -> Path:
    data = {
        "locations": [
            {
                "id": "main",
                "name": "Downtown",
                "address": "1 Main St",
                "phone": "+14105550100",
                "timezone": "America/New_York",
            }
        ],
        "patients": patients
        or [
            {
                "id": "p1",
                "first_name": "Ana",
                "last_name": "Diaz",
                "phone": "410-555-0101",
                "email": "ana@example.com",
                "timezone": None,
                "language": "es",
                "sms_consent": True,
                "email_consent": True,
                "care_plan": {"initial_series_size": 6, "maintenance_interval_days": 28},
            },
        ],
        "sessions": sessions,
    }
    path.write_text(json.dumps(data))
    return path


def sent(tmp_path: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for name in ("sms.jsonl", "email.jsonl"):
        f = tmp_path / "outbox" / name
        if f.exists():
            lines += [json.loads(line) for line in f.read_text().splitlines()]
    return sorted(lines, key=lambda r: r["message_id"])


def outbox(
    cli: Callable[..., int], capsys: pytest.CaptureFixture[str], *args: str
) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert cli("outbox", "--json", *args) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def local(ts: str) -> str:
    return datetime.fromisoformat(ts).astimezone(NY).strftime("%m-%d %H:%M")


def test_series_of_ticks_sends_each_message_once_at_the_right_local_time(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic = write_clinic(
        tmp_path / "clinic.json",
        [
            {
                "id": "s1",
                "patient_id": "p1",
                "location_id": "main",
                "starts_at": "2026-12-01T09:00:00-05:00",
                "duration_minutes": 60,
                "kind": "infusion",
                "status": "scheduled",
            },
        ],
    )
    assert cli("import", str(clinic)) == 0
    instants = [
        "2026-11-27T12:00:00-05:00",
        "2026-11-28T09:00:30-05:00",
        "2026-11-28T10:00:00-05:00",
        "2026-11-30T09:00:10-05:00",
        "2026-11-30T23:00:00-05:00",
        "2026-12-01T08:00:05-05:00",
        "2026-12-01T12:00:00-05:00",
        "2026-12-02T10:00:20-05:00",
        "2026-12-02T10:05:00-05:00",
        "2026-12-04T10:00:00-05:00",
    ]
    for now in instants:
        assert cli("tick", "--now", now) == 0
    out = sent(tmp_path)
    assert [(r["rule"], r["channel"]) for r in out] == [
        ("infusion-prep-email", "email"),
        ("infusion-day-before-sms", "sms"),
        ("infusion-ride-sms", "sms"),
        ("infusion-checkin", "sms"),
    ]
    rows = {r["rule"]: r for r in outbox(cli, capsys)}
    assert local(rows["infusion-prep-email"]["due_at"]) == "11-28 09:00"
    assert local(rows["infusion-day-before-sms"]["due_at"]) == "11-30 09:00"
    assert (
        local(rows["infusion-ride-sms"]["due_at"]) == "12-01 08:00"
    )  # 07:00 is quiet: moved to 08:00
    assert local(rows["infusion-checkin"]["due_at"]) == "12-02 10:00"
    assert {r["status"] for r in rows.values()} == {"sent"}
    assert all(r["provider_message_id"] for r in rows.values())
    # Spanish patient: Spanish templates; the SMS goes to the normalised number.
    sms = [r for r in out if r["channel"] == "sms"]
    assert {r["to"] for r in sms} == {"+14105550101"}
    assert "diciembre" in next(r for r in out if r["rule"] == "infusion-prep-email")["body"].lower()
    assert all("ketamine" not in r["body"].lower() for r in sms)


def test_reschedule_and_cancel(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = {
        "id": "s1",
        "patient_id": "p1",
        "location_id": "main",
        "starts_at": "2026-12-01T09:00:00-05:00",
        "duration_minutes": 60,
        "kind": "infusion",
        "status": "scheduled",
    }
    assert cli("import", str(write_clinic(tmp_path / "a.json", [session]))) == 0
    assert (
        cli("tick", "--now", "2026-11-28T09:01:00-05:00") == 0
    )  # prep email for the old time goes out
    moved = {**session, "starts_at": "2026-12-03T11:00:00-05:00"}
    assert cli("import", str(write_clinic(tmp_path / "b.json", [moved]))) == 0
    assert cli("tick", "--now", "2026-11-28T09:02:00-05:00") == 0
    rows = outbox(cli, capsys)
    old = [r for r in rows if r["due_at"] < "2026-11-30T15" and r["rule"] != "infusion-prep-email"]
    assert old and all(r["status"] == "cancelled" and r["reason"] == "rescheduled" for r in old)
    assert any(
        r["rule"] == "infusion-prep-email" and r["status"] == "sent" for r in rows
    )  # history stays
    planned = [r for r in rows if r["status"] == "planned"]
    assert {local(r["due_at"]) for r in planned} >= {"12-02 11:00", "12-03 09:00", "12-04 10:00"}

    cancelled = {**moved, "status": "cancelled"}
    assert cli("import", str(write_clinic(tmp_path / "c.json", [cancelled]))) == 0
    assert cli("tick", "--now", "2026-11-28T09:03:00-05:00") == 0
    rows = outbox(cli, capsys)
    assert not [r for r in rows if r["status"] == "planned"]
    assert {r["reason"] for r in rows if r["status"] == "cancelled"} == {
        "rescheduled",
        "session_cancelled",
    }
    for now in (
        "2026-12-02T09:00:00-05:00",
        "2026-12-03T10:00:00-05:00",
        "2026-12-04T10:00:00-05:00",
    ):
        assert cli("tick", "--now", now) == 0
    assert len(sent(tmp_path)) == 1


def test_late_booking_sends_only_the_latest_reminder_per_channel(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = {
        "id": "s1",
        "patient_id": "p1",
        "location_id": "main",
        "starts_at": "2026-12-01T15:00:00-05:00",
        "duration_minutes": 60,
        "kind": "infusion",
        "status": "scheduled",
    }
    assert cli("import", str(write_clinic(tmp_path / "a.json", [session]))) == 0
    assert cli("tick", "--now", "2026-12-01T13:30:00-05:00") == 0  # booked 90 minutes before
    out = sent(tmp_path)
    assert sorted((r["rule"], r["channel"]) for r in out) == [
        ("infusion-prep-email", "email"),
        ("infusion-ride-sms", "sms"),
    ]
    rows = {r["rule"]: r for r in outbox(cli, capsys)}
    assert rows["infusion-day-before-sms"]["status"] == "skipped"
    assert rows["infusion-day-before-sms"]["reason"] == "superseded"
    assert cli("tick", "--now", "2026-12-01T16:00:00-05:00") == 0  # after the start: nothing more
    assert len(sent(tmp_path)) == 2


def test_consent_and_opt_out_are_honoured(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patients = [
        {
            "id": "p1",
            "first_name": "Ana",
            "phone": "410-555-0101",
            "email": "ana@example.com",
            "sms_consent": False,
            "email_consent": True,
        },
        {
            "id": "p2",
            "first_name": "Ben",
            "phone": "not a phone",
            "email": "ben@example.com",
            "sms_consent": True,
            "email_consent": False,
        },
    ]
    sessions = [
        {
            "id": f"s{i}",
            "patient_id": f"p{i}",
            "location_id": "main",
            "starts_at": "2026-12-01T10:00:00-05:00",
            "kind": "infusion",
        }
        for i in (1, 2)
    ]
    assert cli("import", str(write_clinic(tmp_path / "a.json", sessions, patients))) in (0, 1)
    for now in (
        "2026-11-28T10:00:10-05:00",
        "2026-11-30T10:00:10-05:00",
        "2026-12-01T08:00:10-05:00",
    ):
        assert cli("tick", "--now", now) == 0
    out = sent(tmp_path)
    assert all(r["patient_id"] == "p1" and r["channel"] == "email" for r in out)
    # p1's day-before SMS fell back to email (the rule allows it); the ride SMS has no fallback.
    assert sorted(r["rule"] for r in out) == ["infusion-day-before-sms", "infusion-prep-email"]
    rows = outbox(cli, capsys)
    reasons = {
        (r["patient_id"], r["rule"], r["channel"]): r["reason"]
        for r in rows
        if r["status"] == "skipped"
    }
    assert reasons[("p1", "infusion-ride-sms", "sms")] == "no_sms_consent"
    assert reasons[("p2", "infusion-ride-sms", "sms")].startswith("no_phone")
    assert reasons[("p2", "infusion-prep-email", "email")] == "no_email_consent"
