"""The daemon as real processes: two `reminders run` on one PostgreSQL database never
send a message twice; SIGTERM stops a worker cleanly; /healthz and /metrics answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from reminders.db.engine import make_engine, make_session_factory
from reminders.db.models import Message

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clinic_file(path: Path, patients: int) -> Path:
    # Sessions 3 days minus 5 minutes away: every prep email is due now, at any hour (no quiet hours).
    start = datetime.now(UTC) + timedelta(days=3) - timedelta(minutes=5)
    data = {
        "locations": [
            {
                "id": "main",
                "name": "Downtown",
                "address": "1 Main St",
                "timezone": "America/New_York",
            }
        ],
        "patients": [
            {
                "id": f"p{i}",
                "first_name": f"P{i}",
                "email": f"p{i}@example.com",
                "email_consent": True,
                "sms_consent": False,
            }
            for i in range(patients)
        ],
        "sessions": [
            {
                "id": f"s{i}",
                "patient_id": f"p{i}",
                "location_id": "main",
                "starts_at": start.isoformat(),
                "kind": "infusion",
            }
            for i in range(patients)
        ],
    }
    path.write_text(json.dumps(data))
    return path


def env_for(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env.update(
        {
            "REMINDERS_DATABASE_URL": db_url,
            "REMINDERS_DRYRUN_DIR": str(tmp_path / "outbox"),
            "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "REMINDERS_ONCALL_EMAILS": "oncall@example.org",
            "REMINDERS_PASS_INTERVAL_SECONDS": "0.2",
            "REMINDERS_PLAN_INTERVAL_SECONDS": "0.5",
            "REMINDERS_DISPATCH_BATCH_SIZE": "20",
        }
    )
    env.update(extra)
    return env


def reminders(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reminders", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reminders", "run"],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def count(db_url: str, status: str) -> int:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as db:
            return int(
                db.scalar(select(func.count()).select_from(Message).where(Message.status == status))
                or 0
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_never_send_twice(db_url: str, tmp_path: Path) -> None:
    patients = 300
    env = env_for(db_url, tmp_path)
    assert (
        reminders(
            "import", str(clinic_file(tmp_path / "clinic.json", patients)), env=env
        ).returncode
        == 0
    )
    workers = [
        start_worker(
            # Port 0: the system picks a free one at bind time (this test makes no HTTP
            # requests), so a port taken meanwhile by a parallel test cannot stop a worker.
            {**env, "REMINDERS_HTTP_PORT": "0", "REMINDERS_WORKER_ID": f"w{i}"},
            tmp_path / f"w{i}.log",
        )
        for i in range(2)
    ]
    try:
        wait_until(lambda: count(db_url, "sent") >= patients, timeout=90)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    assert codes == [0, 0], [(tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(2)]
    lines = [json.loads(x) for x in (tmp_path / "outbox" / "email.jsonl").read_text().splitlines()]
    per_message = Counter(r["message_id"] for r in lines)
    assert len(per_message) == patients
    assert max(per_message.values()) == 1, "a message was sent twice"
    engine = make_engine(db_url)
    with make_session_factory(engine)() as db:
        provider_ids = db.scalars(
            select(Message.provider_message_id).where(Message.status == "sent")
        ).all()
    engine.dispose()
    assert len(set(provider_ids)) == len(provider_ids) == patients
    assert count(db_url, "sending") == 0
    # Both workers took part (otherwise this proves nothing about sharing the outbox).
    per_worker = [(tmp_path / f"w{i}.log").read_text().count("message sent") for i in range(2)]
    assert sum(per_worker) == patients and min(per_worker) > 0, per_worker
    logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(2))
    assert "@example.com" not in logs  # no addresses in logs


def test_daemon_serves_health_and_metrics_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = env_for(db_url, tmp_path, REMINDERS_HTTP_PORT=str(port))
    assert (
        reminders("import", str(clinic_file(tmp_path / "clinic.json", 5)), env=env).returncode == 0
    )
    worker = start_worker(env, tmp_path / "w.log")
    try:

        def healthy() -> bool:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and r.json()["last_pass_at"] is not None

        wait_until(healthy, timeout=60)
        body = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert body["status"] == "ok" and body["database"] == "ok"
        wait_until(lambda: count(db_url, "sent") == 5, timeout=60)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'reminders_messages{channel="email",status="sent"} 5.0' in metrics
        assert "reminders_pass_duration_seconds" in metrics
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    log = (tmp_path / "w.log").read_text()
    assert code == 0, log[-2000:]
    assert "worker stopped" in log
    assert count(db_url, "sending") == 0


def test_daemon_exits_non_zero_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_for(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, REMINDERS_HTTP_PORT=str(port))
        result = subprocess.run(
            [sys.executable, "-m", "reminders", "run"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "REMINDERS_HTTP_PORT" in result.stderr


def test_daemon_refuses_to_start_when_crisis_alerts_would_reach_nobody(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, REMINDERS_HTTP_PORT=str(free_port()))
    del env["REMINDERS_ONCALL_EMAILS"]
    for command in (["run"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-m", "reminders", *command],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0, command
        said = result.stdout + result.stderr
        assert "REMINDERS_ONCALL_PHONES" in said and "REMINDERS_ONCALL_EMAILS" in said
    # Turned off on purpose, it starts and says so.
    off = {**env, "REMINDERS_CRISIS_SCREENING": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "reminders", "check"],
        env=off,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "crisis screening: OFF" in result.stdout
