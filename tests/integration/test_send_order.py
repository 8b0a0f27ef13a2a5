"""The order of a send: the rate slot is taken while the message is still ``planned``, so a
worker killed (SIGKILL) while waiting for it strands nothing; and the database refuses any
status outside the list."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from reminders.db.models import Message
from reminders.runtime import Runtime
from tests.conftest import make_test_settings

ONCALL = "+14105550123"


def queue_alerts(runtime: Runtime, count: int, now: datetime) -> list[int]:
    ids = []
    with runtime.session_factory() as db:
        for n in range(count):
            row = Message(
                dedupe_key=f"slot-test-{n}",
                rule="alert:crisis",
                kind="alert",
                channel="sms",
                template="staff_alert",
                due_at=now - timedelta(seconds=1),
                status="planned",
                to_address=ONCALL,
                language="en",
                data={"summary": f"test {n}", "kind": "crisis", "patient_id": "p1", "link": "x"},
            )
            db.add(row)
            db.flush()
            ids.append(row.id)
        db.commit()
    return ids


def dry_run_lines(directory: Path) -> list[dict[str, object]]:
    path = directory / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_worker_killed_while_waiting_for_its_rate_slot_leaves_the_messages_planned(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_test_settings(db_url, tmp_path, oncall_emails="oncall@clinic.example.org")
    runtime = Runtime(settings)
    runtime.upgrade_schema()
    now = datetime.now(UTC)
    ids = queue_alerts(runtime, 4, now)
    env = {
        **os.environ,
        "REMINDERS_DATABASE_URL": db_url,
        "REMINDERS_DRYRUN_DIR": str(settings.dryrun_dir),
        "REMINDERS_ONCALL_EMAILS": "oncall@clinic.example.org",
        "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
        # One message every 4 s: the first goes at once, the other three wait for their slots.
        "REMINDERS_DRYRUN_RATE_PER_SECOND": "0.25",
        "REMINDERS_LEASE_SECONDS": "5",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "reminders", "tick"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not dry_run_lines(settings.dryrun_dir) and time.monotonic() < deadline:
            assert worker.poll() is None, "the tick ended before its first send"
            time.sleep(0.05)
        time.sleep(1.0)  # the first outcome is written; the others are waiting for slots
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(10)
    assert len(dry_run_lines(settings.dryrun_dir)) == 1
    with runtime.session_factory() as db:
        statuses = sorted(db.get(Message, i).status for i in ids)  # type: ignore[union-attr]
    # Before the send order changed, the three waiting ones were "sending": in doubt, lost.
    assert statuses == ["planned", "planned", "planned", "sent"]
    # Once their claim has expired, the next pass sends each of them, once.
    env["REMINDERS_DRYRUN_RATE_PER_SECOND"] = "0"
    later = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "reminders", "tick", "--now", later],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sent = [int(str(line["message_id"])) for line in dry_run_lines(settings.dryrun_dir)]
    assert sorted(sent) == sorted(ids)
    runtime.close()


@pytest.mark.parametrize("bad", ["in_doubt", "SENT", ""])
def test_the_database_refuses_a_status_outside_the_list(engine: Engine, bad: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO messages (dedupe_key, rule, kind, channel, template, due_at, status,"
                " attempts, resends, created_at, updated_at) VALUES ('k', 'r', 'reminder', 'sms',"
                " 't', :at, 'planned', 0, 0, :at, :at)"
            ),
            {"at": "2026-03-02 10:00:00"},
        )
    with pytest.raises(IntegrityError, match="ck_messages_status|CHECK"), engine.begin() as conn:
        conn.execute(text("UPDATE messages SET status = :s WHERE dedupe_key = 'k'"), {"s": bad})


def test_a_batch_at_one_sms_a_second_goes_out_well_within_its_lease(
    db_url: str, tmp_path: Path
) -> None:
    from reminders.dispatch.dispatcher import Dispatcher
    from reminders.providers.dryrun import DryRunProvider

    settings = make_test_settings(db_url, tmp_path, lease_seconds=120, dispatch_batch_size=200)
    runtime = Runtime(settings)
    slow = DryRunProvider(channel="sms", directory=settings.dryrun_dir, rate_per_second=1.0)
    fast = DryRunProvider(channel="email", directory=settings.dryrun_dir, rate_per_second=0)
    dispatcher = Dispatcher(
        settings=settings,
        policy=runtime.policy,
        session_factory=runtime.session_factory,
        providers={"sms": slow, "email": fast},
        owner="w1",
    )
    try:
        # 30 messages at 1/s take 30 s of a 120-s lease; unlimited providers take the batch size.
        assert dispatcher.claim_limit(slow) == 30
        assert dispatcher.claim_limit(fast) == 200
    finally:
        dispatcher.close()
        runtime.close()
