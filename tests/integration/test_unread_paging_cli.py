"""No patient message unread, with real processes: `reminders inbound` and `reminders tick`
at chosen instants, on both databases.

A patient texts STOP at 2 a.m. clinic time, then a question at 3 a.m. Out of clinic hours the
question pages on-call once it has been unread for 10 minutes (not before), although the
patient opted out of texts, and the patient gets no out-of-hours notice (they opted out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from reminders.db.engine import make_engine
from reminders.db.models import Location, Patient, TreatmentSession

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+14105550101"
# 2027-01-12 is a Tuesday; 08:00 UTC is 03:00 in New York (EST), outside clinic hours.
THREE_AM = datetime(2027, 1, 12, 8, 0, tzinfo=UTC)


def _seed(db_url: str) -> None:
    engine = make_engine(db_url)
    with Session(engine) as db:
        db.add(Location(id="main", name="Downtown", timezone="America/New_York"))
        db.add(Patient(id="p1", first_name="Ana", phone=PHONE, language="en", sms_consent=True))
        db.flush()
        db.add(
            TreatmentSession(
                id="s1",
                patient_id="p1",
                location_id="main",
                starts_at=THREE_AM + timedelta(days=5),
            )
        )
        db.commit()
    engine.dispose()


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "reminders", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _sent(outbox: Path) -> list[dict[str, Any]]:
    path = outbox / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_unread_message_pages_on_call_at_3am_even_after_stop(
    db_url: str, tmp_path: Path
) -> None:
    _seed(db_url)
    outbox = tmp_path / "outbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env.update(
        REMINDERS_DATABASE_URL=db_url,
        REMINDERS_DRYRUN_DIR=str(outbox),
        REMINDERS_ONCALL_PHONES="+14105550900",
        REMINDERS_SECRET_KEY="test-secret-key-0123456789abcdef",
    )
    stop_at = THREE_AM - timedelta(hours=1)
    _cli(env, "inbound", "--from", PHONE, "--body", "STOP", "--now", stop_at.isoformat())
    out = _cli(
        env,
        "inbound",
        "--from",
        PHONE,
        "--body",
        "can someone call me about the fasting tomorrow",
        "--now",
        THREE_AM.isoformat(),
    )
    assert "classification: free_text" in out

    _cli(env, "tick", "--now", (THREE_AM + timedelta(minutes=9)).isoformat())
    pages = [m for m in _sent(outbox) if m["kind"] == "alert"]
    assert pages == []  # not yet: 10 minutes out of hours

    _cli(env, "tick", "--now", (THREE_AM + timedelta(minutes=11)).isoformat())
    _cli(env, "tick", "--now", (THREE_AM + timedelta(minutes=12)).isoformat())
    sent = _sent(outbox)
    pages = [m for m in sent if m["kind"] == "alert"]
    assert [m["to"] for m in pages] == ["+14105550900"]  # once, to on-call
    assert "fasting" not in pages[0]["body"]  # the page never quotes the message
    assert "/staff/tasks/" in pages[0]["body"]
    # The patient opted out: the STOP confirmation is the only text they got, no out-of-hours
    # notice.
    assert [m["rule"] for m in sent if m["to"] == PHONE] == ["reply:opt_out"]
