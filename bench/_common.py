"""Shared helpers for the benchmarks: machine facts, fresh databases, fast synthetic clinic data.

Data goes straight into the clinic and outbox tables with SQLAlchemy Core ``executemany``
inserts (no ORM objects, no importer validation): the benchmarks measure the worker, not
the data generator. Every generator is seeded, so runs are comparable.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert  # noqa: E402

from reminders.db.engine import make_engine  # noqa: E402
from reminders.db.migrate import upgrade  # noqa: E402
from reminders.db.models import Location, Message, Patient, TreatmentSession, WorkerState  # noqa: E402
from reminders.settings import Settings, load_settings  # noqa: E402

PYTHON = sys.executable

# Five clinic locations across US zones (Phoenix has no DST); a share of patients carry their own zone.
LOCATIONS = [
    ("loc-east", "Downtown", "America/New_York"),
    ("loc-central", "Lakeside", "America/Chicago"),
    ("loc-mountain", "Foothills", "America/Denver"),
    ("loc-west", "Bayview", "America/Los_Angeles"),
    ("loc-az", "Desert", "America/Phoenix"),
]
PATIENT_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
]

# A fixed "now" for the deterministic benchmarks: Monday 2 March 2026, 19:00 UTC = 14:00 in New
# York, 11:00 in Los Angeles, 09:00 in Honolulu (daytime in every zone used, so SMS quiet hours do
# not interfere). The following 30 days cross the US daylight-saving change of 8 March 2026.
BENCH_NOW = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)


# --- machine and measurement -----------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import sqlalchemy

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "postgresql": postgres_version(),
        "commit": code_version(),
    }


def code_version() -> str:
    """The checkout's commit, marked ``+dirty`` when reminders/ has uncommitted changes (the
    working tree is shared: say exactly which code was measured)."""
    import subprocess

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "reminders") else "")


def postgres_version() -> str | None:
    try:
        from tests.pgcluster import find_pg_bin
    except ImportError:
        return None
    pg_bin = find_pg_bin()
    if pg_bin is None:
        return None
    import subprocess

    out = subprocess.run(
        [str(pg_bin / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip().split()[2] if out.returncode == 0 else None


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB (10^6 bytes)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    """The 1-minute load average: the machine is shared, so wall-clock figures carry it."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


@contextmanager
def timed(label: str, results: dict[str, Any] | None = None) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if results is not None:
        results[label] = round(elapsed, 3)
    print(f"  {label}: {elapsed:.2f} s", flush=True)


def verdict(value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    if met:
        return f"MET (target {sign} {target:g})"
    ratio = value / target if at_most else target / value if value else float("inf")
    return f"MISSED (target {sign} {target:g}; off by a factor {ratio:.2f})"


def report(name: str, figures: dict[str, Any]) -> None:
    """One machine-readable line per benchmark (run_all.py collects them)."""
    print("BENCH-RESULT " + json.dumps({"bench": name, **figures}, default=str), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


# --- databases --------------------------------------------------------------------------------


def delay_stats(values: list[float]) -> dict[str, float]:
    """n, p50, p95, p99, max and min of a list of delays in seconds, rounded to the ms."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3) if values else float("nan"),
        "min": round(min(values), 3) if values else float("nan"),
    }


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Until the daemon on ``port`` answers ``/healthz`` 200; fails if it exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError("daemon did not become healthy in time")


def fresh_sqlite(path: Path) -> Engine:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


class Postgres:
    """A throwaway PostgreSQL cluster (tests/pgcluster.py), or None when the binaries are missing."""

    def __init__(self) -> None:
        from tests.pgcluster import PgCluster

        self.cluster = PgCluster().start()

    @staticmethod
    def available() -> bool:
        try:
            from tests.pgcluster import find_pg_bin
        except ImportError:
            return False
        return find_pg_bin() is not None

    def database(self, name: str) -> str:
        return self.cluster.create_database(name)

    def stop(self) -> None:
        self.cluster.stop()


def seed_policy_fingerprint(engine: Engine, policy: Any) -> None:
    """Record the policy as already applied, so the planner leaves hand-made outboxes alone."""
    with engine.begin() as conn:
        conn.execute(
            insert(WorkerState),
            [
                {
                    "key": "policy_fingerprint",
                    "value": policy.fingerprint(),
                    "updated_at": datetime.now(UTC),
                }
            ],
        )


# --- synthetic clinic data ---------------------------------------------------------------------


def insert_chunked(
    engine: Engine, table: Any, rows: Iterable[dict[str, Any]], chunk: int = 20_000
) -> int:
    count = 0
    batch: list[dict[str, Any]] = []
    stmt = insert(table)
    with engine.begin() as conn:
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                conn.execute(stmt, batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(stmt, batch)
            count += len(batch)
    return count


def insert_locations(engine: Engine) -> None:
    now = datetime.now(UTC)
    insert_chunked(
        engine,
        Location.__table__,
        (
            {
                "id": loc_id,
                "name": name,
                "address": f"{i + 1} Main St",
                "phone": f"+1410555010{i}",
                "timezone": tz,
                "updated_at": now,
            }
            for i, (loc_id, name, tz) in enumerate(LOCATIONS)
        ),
    )


FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jamal",
    "Kim",
    "Luis",
]


def patient_row(
    i: int,
    rng: random.Random,
    *,
    needs_plan: bool = True,
    timezone: str | None = None,
    sms_consent: bool | None = None,
    email_consent: bool | None = None,
) -> dict[str, Any]:
    pid = f"p{i:07d}"
    return {
        "id": pid,
        "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
        "last_name": f"Patient{i}",
        "phone": f"+1{410 + i % 500:03d}55{i % 100000:05d}",
        "phone_problem": None,
        "email": f"{pid}@example.com",
        "email_problem": None,
        # One patient in five carries their own zone; the rest use their location's.
        "timezone": timezone
        if timezone is not None
        else (rng.choice(PATIENT_ZONES) if rng.random() < 0.2 else None),
        "language": "es" if rng.random() < 0.15 else "en",
        "sms_consent": rng.random() < 0.9 if sms_consent is None else sms_consent,
        "email_consent": rng.random() < 0.95 if email_consent is None else email_consent,
        "initial_series_size": 6,
        "maintenance_interval_days": 28,
        "needs_plan": needs_plan,
        "change_seq": 0,
        "updated_at": datetime.now(UTC),
    }


def local_start(day: date, zone: str, rng: random.Random) -> datetime:
    """A daytime clinic slot (08:00-16:45 local, on the quarter hour) as an aware UTC datetime."""
    slot = clock_time(8 + rng.randrange(9), 15 * rng.randrange(4))
    return datetime.combine(day, slot, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def session_row(
    sid: str,
    pid: str,
    location: tuple[str, str, str],
    starts_at: datetime,
    *,
    status: str = "scheduled",
    kind: str = "infusion",
) -> dict[str, Any]:
    return {
        "id": sid,
        "patient_id": pid,
        "location_id": location[0],
        "starts_at": starts_at,
        "duration_minutes": 60 if kind == "infusion" else 30,
        "kind": kind,
        "status": status,
        "phase": None,
        "series_number": None,
        "confirmed_at": None,
        "updated_at": datetime.now(UTC),
    }


def upcoming_clinic(
    engine: Engine,
    *,
    patients: int,
    sessions_per_patient: int,
    now: datetime,
    days: int = 30,
    seed: int = 1,
) -> tuple[int, int]:
    """``patients`` x ``sessions_per_patient`` upcoming infusions within ``days`` days of ``now``."""
    rng = random.Random(seed)
    insert_locations(engine)
    n_patients = insert_chunked(
        engine, Patient.__table__, (patient_row(i, rng) for i in range(patients))
    )

    def sessions() -> Iterator[dict[str, Any]]:
        local_rng = random.Random(seed + 1)
        for i in range(patients):
            location = LOCATIONS[i % len(LOCATIONS)]
            start_zone = ZoneInfo(location[2])
            first_day = now.astimezone(start_zone).date() + timedelta(days=1)
            # An initial series: infusions a few days apart within the window.
            picked = sorted(local_rng.sample(range(days - 1), sessions_per_patient))
            for n, offset in enumerate(picked):
                starts = local_start(first_day + timedelta(days=offset), location[2], local_rng)
                yield session_row(f"s{i:07d}-{n}", f"p{i:07d}", location, starts)

    n_sessions = insert_chunked(engine, TreatmentSession.__table__, sessions())
    return n_patients, n_sessions


def message_row(
    mid: int,
    *,
    pid: str,
    sid: str | None,
    session_starts_at: datetime | None,
    rule: str,
    kind: str,
    channel: str,
    template: str,
    due_at: datetime,
    not_after: datetime | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "dedupe_key": f"bench|{rule}|{channel}|{sid or pid}|{mid}",
        "patient_id": pid,
        "session_id": sid,
        "session_starts_at": session_starts_at,
        "rule": rule,
        "kind": kind,
        "channel": channel,
        "template": template,
        "due_at": due_at,
        "not_after": not_after,
        "status": "planned",
        "attempts": 0,
        "data": data or {"series_number": 2, "series_size": 6, "phase": "initial"},
        "created_at": now,
        "updated_at": now,
    }


def consenting_patients(
    engine: Engine,
    *,
    messages: int,
    session_start: datetime,
    patient_timezone: str | None = None,
    first_patient: int = 0,
    seed: int = 7,
) -> None:
    """Patients (consenting to SMS and email, not marked for planning) and one upcoming session
    per future message, two messages per patient (see :func:`due_messages`)."""
    rng = random.Random(seed)
    n_patients = -(-messages // 2)
    insert_chunked(
        engine,
        Patient.__table__,
        (
            patient_row(
                first_patient + i,
                rng,
                needs_plan=False,
                timezone=patient_timezone,
                sms_consent=True,
                email_consent=True,
            )
            for i in range(n_patients)
        ),
    )

    def sessions() -> Iterator[dict[str, Any]]:
        for m in range(messages):
            p = first_patient + m // 2
            yield session_row(
                f"bs{first_patient}-{m}",
                f"p{p:07d}",
                LOCATIONS[p % len(LOCATIONS)],
                session_start + timedelta(minutes=m % 8 * 15),
            )

    insert_chunked(engine, TreatmentSession.__table__, sessions())


def due_messages(
    engine: Engine,
    *,
    messages: int,
    due_at: Any,
    session_start: datetime,
    first_patient: int = 0,
    channels: tuple[str, ...] = ("sms", "email"),
) -> None:
    """``messages`` planned reminders, one per session made by :func:`consenting_patients`.

    ``due_at`` is a datetime, or a function of the message number returning one. With both
    channels: half SMS (day-before reminder), half email (the full preparation email with its
    .ics and unsubscribe link), the mix the default policy produces before an infusion.
    """

    def rows() -> Iterator[dict[str, Any]]:
        for m in range(messages):
            p = first_patient + m // 2
            channel = channels[m % len(channels)]
            starts = session_start + timedelta(minutes=m % 8 * 15)
            rule, template = (
                ("infusion-day-before-sms", "day_before")
                if channel == "sms"
                else ("infusion-prep-email", "prep_full")
            )
            due = due_at(m) if callable(due_at) else due_at
            yield message_row(
                m,
                pid=f"p{p:07d}",
                sid=f"bs{first_patient}-{m}",
                session_starts_at=starts,
                rule=rule,
                kind="reminder",
                channel=channel,
                template=template,
                due_at=due,
                not_after=starts,
            )

    insert_chunked(engine, Message.__table__, rows())


def due_outbox(
    engine: Engine,
    *,
    messages: int,
    due_at: Any,
    session_start: datetime,
    patient_timezone: str | None = None,
    first_patient: int = 0,
    channels: tuple[str, ...] = ("sms", "email"),
) -> None:
    """Patients, sessions and their planned reminders in one go."""
    consenting_patients(
        engine,
        messages=messages,
        session_start=session_start,
        patient_timezone=patient_timezone,
        first_patient=first_patient,
    )
    due_messages(
        engine,
        messages=messages,
        due_at=due_at,
        session_start=session_start,
        first_patient=first_patient,
        channels=channels,
    )


def daytime_zone(at: datetime, local_hour: int = 13) -> str:
    """A fixed-offset IANA zone (``Etc/GMT-5`` = UTC+5) where ``at`` is about ``local_hour``:
    benchmarks that run on the real clock stay out of SMS quiet hours whatever the hour."""
    offset = (local_hour - at.astimezone(UTC).hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def read_jsonl(directory: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for name in ("sms.jsonl", "email.jsonl"):
        path = Path(directory) / name
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                records.extend(json.loads(line) for line in fh if line.strip())
    return records


def duplicates(records: list[dict[str, Any]]) -> int:
    """Messages sent more than once: occurrences beyond the first, per message_id."""
    seen: dict[Any, int] = {}
    for r in records:
        seen[r["message_id"]] = seen.get(r["message_id"], 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)


def bench_settings(**overrides: Any) -> Settings:
    """Settings for a benchmark: dry-run providers, the built-in policy and templates."""

    overrides.setdefault("policy_file", None)  # the built-in defaults
    overrides.setdefault("templates_dir", None)
    overrides.setdefault("sms_provider", "dryrun")
    overrides.setdefault("email_provider", "dryrun")
    return load_settings(**overrides)


def production_logging(path: Path) -> None:
    """The daemon's INFO key=value logging, to a file (logging is part of the per-message cost)."""
    import logging

    from reminders.logs import KeyValueFormatter

    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.FileHandler(path)
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("apscheduler", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bench_dir(name: str) -> Path:
    base = Path(os.environ.get("BENCH_TMP", "/tmp")) / f"reminders-bench-{name}-{os.getpid()}"
    base.mkdir(parents=True, exist_ok=True)
    return base


DAEMON = str(Path(sys.executable).with_name("reminders"))


class BenchDaemon:
    """The real daemon (``reminders run``) in a benchmark's work folder, logging to
    ``daemon.log`` there."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.log_path = work / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
        """Start it and wait until ``/healthz`` on ``port`` answers."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [DAEMON, "run"], cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_healthy(port, self.proc)
        return self.proc

    def stop(self) -> None:
        """SIGTERM, and wait for it to exit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


@contextmanager
def bench_daemon(name: str) -> Iterator[BenchDaemon]:
    """A fresh work folder for a daemon benchmark; on a failure the daemon log's tail goes to
    stderr; at the end a daemon still running is killed and the folder removed."""
    daemon = BenchDaemon(bench_dir(name))
    try:
        yield daemon
    except Exception:
        if daemon.log_path.exists():
            sys.stderr.write(daemon.log_path.read_text()[-4000:])
        raise
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        shutil.rmtree(daemon.work, ignore_errors=True)
