"""Chaos suite: the real daemon (``reminders run``) sending through the official Twilio and
SendGrid SDKs to a provider stand-in (``tests/standin.py``) while workers are killed, the
provider misbehaves, or PostgreSQL restarts. Every scenario gets a fresh database, a fresh
stand-in and fresh worker processes, and is judged from the stand-in's own records.

Seeded data (every scenario): consenting patients in a fixed-offset zone where it is early
afternoon (no SMS quiet hours at any hour of the run), one upcoming session each two days
ahead, and one planned reminder per session, all due now: half day-before SMS, half
preparation emails (.ics, unsubscribe link). The policy is recorded as applied and the
patients are not marked for planning, so the planner leaves the hand-made outbox alone.

Scenarios (full size; ``--quick`` runs each at a small size):

* ``pg-kill``: PostgreSQL, 2 workers, 2,000 messages, SMS 12/s, email 20/s. A random worker
  (seeded) gets SIGKILL every 1-3 s and is restarted at once, 50 kills in all; then the two run
  until settled.
* ``pg-faults``: PostgreSQL, 2 workers, 2,000 messages, same rates; the stand-in fails 20% of
  the requests (500, 429, timeout, drop, reset_after; "timeout" and "reset_after" accept the
  message and leave the sender without an answer). Faults stay on until the end. No kills:
  the settle time counts from the start.
* ``pg-faults-kill``: both of the above together (faults stay on after the kills end).
* ``pg-restart``: PostgreSQL, 2 workers, 1,000 messages, 20/s each; ``pg_ctl restart -m
  immediate`` when 20% and again when 60% of the messages have reached the stand-in.
* ``sigterm``: PostgreSQL, 2 workers, 1,000 messages, 20/s each; SIGTERM to worker 2 (not the
  one taking webhooks) when 30% have reached the stand-in: how long it takes to exit, and
  whether it left rows claimed (``planned`` with its ``lease_owner`` and a future
  ``lease_until``) or ``sending``; then it is restarted and the two settle.
* ``sqlite-kill``: SQLite, 1 worker, 600 messages, SMS 12/s, email 20/s; SIGKILL every 1-3 s
  and an immediate restart, 20 times; then settle.

"Settled": no message ``sending`` and none ``planned`` with ``due_at`` in the past (a retry
waiting for its time counts as not settled), checked once a second in the ``messages`` table;
the settle time runs from the end of the chaos. Not settled within the timeout (180 s plus
the time the remaining messages need at the configured rates) is reported as such.

Figures per scenario, from the stand-in's records: the seeded outbox ids received once, twice
or more (duplicates) and never (lost); the highest number of send requests in any 1-s window
per provider against the configured rate; fault counts. From the database, for information:
rows still ``sending`` at the end (in doubt), final status counts and failure reasons. Also the
kills and restarts done, worker exits nobody asked for, and a summary of the workers' logs
(warnings and errors by message). Targets: 0 lost, 0 duplicated, 0 in doubt at the end, never
more than the rate + 1 in a window. Bad figures do not fail the script; a crash does.

The stand-in makes Twilio status callbacks and signed SendGrid events (``processed``,
``delivered``) to ``REMINDERS_PUBLIC_URL``, a small front that passes each request to the next
worker that answers, as a reverse proxy before several workers would (``--no-callbacks``: none).
A Twilio callback that no worker answers is lost (Twilio does not retry them; the
reconcile pass asks Twilio instead); a SendGrid event batch that fails is posted again after
1, 2, 4... s, as SendGrid does (for a day). Both are counted in the figures. Worker settings for a run of minutes: leases 20 s,
batches of 40, retries after 2-15 s, a 2-s provider timeout, reconciling every 2 s, Twilio
re-sends and the email in-doubt rule (``resend``) after 10 s. The throwaway PostgreSQL cluster
gets ``synchronous_commit = on`` (tests/pgcluster.py turns it off for speed; an immediate
restart would then lose commits already acknowledged to the workers).

Each worker incarnation has its own ``REMINDERS_WORKER_ID`` (``w1.0``, ``w1.1``...). The worker
logs (one file per worker slot, incarnations separated by ``=== chaos:`` lines) stay in the
work folder printed at the start.

    .venv/bin/python bench/chaos.py [--quick] [--scenario NAME ...] [--no-pg] [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import ctypes
import http.server
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from _common import (
    DAEMON,
    Postgres,
    bench_settings,
    consenting_patients,
    daytime_zone,
    due_messages,
    free_port,
    fresh_sqlite,
    insert_locations,
    loadavg,
    machine_info,
    migrated,
    report,
    seed_policy_fingerprint,
    wait_healthy,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import DBAPIError

from reminders.db.engine import make_engine, make_read_session_factory
from reminders.db.types import UtcDateTime
from reminders.logs import redact
from reminders.planning.policy import load_policy
from tests.standin import SEND_KINDS, Faults, ProviderStandIn

# --- what the workers are given -----------------------------------------------------------------

TWILIO_ACCOUNT_SID = "AC" + "0" * 32
TWILIO_AUTH_TOKEN = "chaos-twilio-auth-token"
TWILIO_FROM = "+15005550006"
SENDGRID_API_KEY = "SG.chaos-sendgrid-api-key"
EMAIL_FROM = "clinic@chaos.example"
ONCALL_EMAIL = "oncall@chaos.example"
SMS_PROVIDER = "twilio"
EMAIL_PROVIDER = "sendgrid"

# Worker settings shared by every scenario (REMINDERS_<NAME>).
WORKER_SETTINGS: dict[str, str] = {
    "PASS_INTERVAL_SECONDS": "1",
    # Short leases and batches: rows claimed by a killed worker come back within seconds, and a
    # batch is sent well within its lease at these rates.
    "LEASE_SECONDS": "20",
    "DISPATCH_BATCH_SIZE": "40",
    # Transient errors are retried within the run (default 30 s, doubling).
    "RETRY_BASE_SECONDS": "2",
    "RETRY_MAX_SECONDS": "15",
    # The in-doubt machinery, tuned for a run of minutes.
    "PROVIDER_TIMEOUT_SECONDS": "2",
    "RECONCILE_INTERVAL_SECONDS": "2",
    "RECONCILE_RESEND_AFTER_SECONDS": "10",
    "EMAIL_IN_DOUBT_WINDOW_SECONDS": "10",
    "EMAIL_IN_DOUBT_RULE": "resend",
}

FAULT_RATE = 0.2
SETTLE_TIMEOUT_S = 180.0
QUICK_SETTLE_TIMEOUT_S = 60.0
KILL_WAIT_S = 10.0  # SIGKILL is immediate; this only bounds the wait for the exit status
STOP_WAIT_S = 45.0  # SIGTERM at the end: the daemon's grace period (30 s) plus margin
READY_MARK = b"worker started"
SENDGRID_EVENTS_PATH = "/webhooks/sendgrid/events"


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: str  # "pg" | "sqlite"
    workers: int
    messages: int
    sms_rate: float
    email_rate: float
    kills: int = 0
    kill_every: tuple[float, float] = (1.0, 3.0)
    fault_rate: float = 0.0
    pg_restarts: tuple[float, ...] = ()  # fractions of the messages accepted by the stand-in
    sigterm_at: float | None = None  # likewise


def scenarios(quick: bool) -> list[Scenario]:
    def size(full: int, small: int) -> int:
        return small if quick else full

    return [
        Scenario("pg-kill", "pg", 2, size(2000, 200), 12, 20, kills=size(50, 8)),
        Scenario("pg-faults", "pg", 2, size(2000, 200), 12, 20, fault_rate=FAULT_RATE),
        Scenario(
            "pg-faults-kill",
            "pg",
            2,
            size(2000, 200),
            12,
            20,
            kills=size(50, 6),
            fault_rate=FAULT_RATE,
        ),
        Scenario("pg-restart", "pg", 2, size(1000, 200), 20, 20, pg_restarts=(0.2, 0.6)),
        Scenario("sigterm", "pg", 2, size(1000, 200), 20, 20, sigterm_at=0.3),
        Scenario("sqlite-kill", "sqlite", 1, size(600, 100), 12, 20, kills=size(20, 5)),
    ]


SCENARIO_NAMES = [s.name for s in scenarios(False)]


class Interrupted(BaseException):
    """SIGTERM or SIGHUP to the harness: unwind like Ctrl-C so every process is cleaned up."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the harness dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# --- worker processes ---------------------------------------------------------------------------


@dataclass
class Kill:
    at: float  # seconds since the chaos began
    slot: int
    worker_id: str
    uptime_s: float
    ready: bool  # it had logged "worker started"


@dataclass
class Exit:
    """A worker that exited without being asked to."""

    at: float
    slot: int
    worker_id: str
    returncode: int | None
    uptime_s: float
    last_lines: list[str]


@dataclass
class Slot:
    index: int  # 1-based, as in the log file name
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = -1
    started: float = 0.0
    log_offset: int = 0

    @property
    def worker_id(self) -> str:
        return f"w{self.index}.{self.incarnation}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """Whether this incarnation has logged that it started (its web server is up)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self.log_offset)
                return READY_MARK in fh.read()
        except OSError:
            return False


class Front:
    """What production puts before several workers (docker-compose's reverse proxy, a load
    balancer): one public address for the providers' webhooks, each request passed to the
    next worker that answers. ``REMINDERS_PUBLIC_URL`` is this address, so Twilio signatures,
    computed over it, still verify at whichever worker gets the request."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._next = 0
        self._lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                status, answer = front.forward(self.path, body, headers)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            start, self._next = self._next, self._next + 1
        for i in range(len(self.ports)):
            port = self.ports[(start + i) % len(self.ports)]
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()
            except OSError:
                continue  # that worker is down: the next one
        return 502, b""

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Fleet:
    """The worker slots of a scenario; each (re)start is a new process and worker id."""

    def __init__(self, logs: Path, ports: list[int], env: Callable[[Slot], dict[str, str]]) -> None:
        self.slots = [
            Slot(i + 1, port, logs / f"worker-{i + 1}.log") for i, port in enumerate(ports)
        ]
        self.env = env
        self.t0 = time.monotonic()
        self.kills: list[Kill] = []
        self.exits: list[Exit] = []
        self.starts = 0
        self.events: list[tuple[float, str]] = []  # (time.time(), what) for the rate windows

    def start(self, slot: Slot, why: str) -> None:
        slot.incarnation += 1
        with open(slot.log_path, "ab") as log:
            log.write(
                f"=== chaos: start {slot.worker_id} ({why}) at "
                f"{datetime.now(UTC).isoformat(timespec='milliseconds')}\n".encode()
            )
            log.flush()
            slot.log_offset = log.tell()
            slot.proc = subprocess.Popen(
                [DAEMON, "run"],
                cwd=slot.log_path.parent,
                env=self.env(slot),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the terminal's Ctrl-C is the harness's to handle
                preexec_fn=_die_with_parent,
            )
        slot.started = time.monotonic()
        self.starts += 1
        self.events.append((time.time(), f"start {slot.worker_id}"))

    def start_all(self) -> None:
        for slot in self.slots:
            self.start(slot, "initial")
        for slot in self.slots:
            assert slot.proc is not None
            try:
                wait_healthy(slot.port, slot.proc)
            except RuntimeError as exc:
                raise RuntimeError(f"{slot.worker_id}: {exc}; log: {tail(slot.log_path)}") from None
        self.t0 = time.monotonic()

    def kill(self, slot: Slot) -> Kill:
        """SIGKILL (this worker's own pid) and restart at once."""
        assert slot.proc is not None
        record = Kill(
            at=round(time.monotonic() - self.t0, 2),
            slot=slot.index,
            worker_id=slot.worker_id,
            uptime_s=round(time.monotonic() - slot.started, 2),
            ready=slot.ready(),
        )
        if slot.proc.poll() is None:
            slot.proc.kill()
        slot.proc.wait(KILL_WAIT_S)
        self.kills.append(record)
        self.events.append((time.time(), f"SIGKILL {record.worker_id}"))
        self.start(slot, "restart after SIGKILL")
        return record

    def watch(self) -> None:
        """Restart workers that exited on their own (and record it)."""
        for slot in self.slots:
            if slot.proc is None or slot.proc.poll() is None:
                continue
            self.exits.append(
                Exit(
                    at=round(time.monotonic() - self.t0, 2),
                    slot=slot.index,
                    worker_id=slot.worker_id,
                    returncode=slot.proc.returncode,
                    uptime_s=round(time.monotonic() - slot.started, 2),
                    last_lines=tail(slot.log_path, 5).splitlines(),
                )
            )
            print(
                f"  ! {slot.worker_id} exited by itself (status {slot.proc.returncode}); restarting",
                flush=True,
            )
            if sum(1 for e in self.exits if e.slot == slot.index) > 30:
                raise RuntimeError(f"worker {slot.index} keeps exiting: {tail(slot.log_path)}")
            self.start(slot, "restart after it exited by itself")

    def stop_all(self) -> dict[str, float | None]:
        """SIGTERM every live worker, wait, SIGKILL what is left; the exit time of each."""
        times: dict[str, float | None] = {}
        began = time.monotonic()
        for slot in self.slots:
            if slot.alive():
                assert slot.proc is not None
                slot.proc.send_signal(signal.SIGTERM)
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(max(0.1, STOP_WAIT_S - (time.monotonic() - began)))
                times[slot.worker_id] = round(time.monotonic() - began, 2)
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
                times[slot.worker_id] = None
        return times

    def kill_all(self) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    slot.proc.wait(KILL_WAIT_S)


def tail(path: Path, lines: int = 20) -> str:
    try:
        text_lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return redact("\n".join(text_lines[-lines:]))


# --- PostgreSQL restarts --------------------------------------------------------------------------


def pg_ctl_restart(pg: Postgres) -> float:
    """``pg_ctl restart -m immediate`` on the same data folder and port, run the way
    tests/pgcluster.py runs pg_ctl (as the ``postgres`` user when we are root); seconds taken."""
    cluster = pg.cluster
    cmd = [
        str(cluster.bin / "pg_ctl"),
        "-D",
        str(cluster.data),
        "-l",
        str(cluster.root / "log"),
        "-w",
        "-t",
        "60",
        "-m",
        "immediate",
        "restart",
    ]
    if cluster.as_root:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    began = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cluster.root, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pg_ctl restart failed ({done.returncode}): {done.stderr.strip()}")
    return round(time.monotonic() - began, 2)


def durable_commits(pg: Postgres) -> None:
    """``synchronous_commit = on``: the throwaway cluster turns it off for speed, and then an
    immediate restart loses commits the workers were told had succeeded (a ``sent`` that goes
    back to claimed, and is sent again when its lease expires). ``fsync = off`` stays: it only
    matters when the machine itself crashes."""
    import psycopg

    cluster = pg.cluster
    with psycopg.connect(
        f"host=127.0.0.1 port={cluster.port} user={cluster.user} dbname=postgres", autocommit=True
    ) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_commit = on")
        conn.execute("SELECT pg_reload_conf()")


# --- the outbox, seen from the harness ------------------------------------------------------------

RETRYABLE_DB_ERRORS = (DBAPIError,)


class Outbox:
    """Read-only queries on the ``messages`` table, retried while the database is away."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        self.reader = make_read_session_factory(self.engine)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        stmt = text(sql)
        if ":now" in sql:  # stored exactly as the columns store times (SQLite compares text)
            stmt = stmt.bindparams(bindparam("now", type_=UtcDateTime()))
        deadline = time.monotonic() + 90
        while True:
            try:
                with self.reader() as db:
                    return list(db.execute(stmt, params or {}).all())
            except RETRYABLE_DB_ERRORS:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def statuses(self) -> dict[str, int]:
        rows = self.query("SELECT status, count(*) FROM messages GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def pending(self) -> tuple[int, int]:
        """(rows ``sending``, rows ``planned`` and due)."""
        rows = self.query(
            "SELECT status, count(*) FROM messages WHERE status = 'sending' "
            "OR (status = 'planned' AND due_at <= :now) GROUP BY status",
            {"now": datetime.now(UTC)},
        )
        counts = {str(s): int(n) for s, n in rows}
        return counts.get("sending", 0), counts.get("planned", 0)

    def held_by(self, worker_id: str) -> dict[str, int]:
        """Rows with this lease owner, by status, and how many of them hold a live lease."""
        rows = self.query(
            "SELECT status, lease_until > :now AS live, count(*) FROM messages "
            "WHERE lease_owner = :owner GROUP BY 1, 2",
            {"owner": worker_id, "now": datetime.now(UTC)},
        )
        out: dict[str, int] = {}
        for status, live, n in rows:
            out[f"{status}{' (lease live)' if live else ''}"] = int(n)
        return out

    def failed_reasons(self) -> dict[str, int]:
        rows = self.query(
            "SELECT reason, count(*) FROM messages WHERE status = 'failed' GROUP BY reason"
        )
        reasons: Counter[str] = Counter()
        for reason, n in rows:
            reasons[shorten(reason)] += int(n)
        return dict(reasons.most_common())

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        found: list[dict[str, Any]] = []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ", ".join(str(int(i)) for i in part)
            for r in self.query(
                "SELECT id, channel, status, reason, attempts, error_code, lease_owner "
                f"FROM messages WHERE id IN ({marks}) ORDER BY id"
            ):
                found.append(
                    {
                        "id": int(r[0]),
                        "channel": r[1],
                        "status": r[2],
                        "reason": shorten(r[3]),
                        "attempts": r[4],
                        "error_code": r[5],
                        "lease_owner": r[6],
                    }
                )
        return found

    def close(self) -> None:
        self.engine.dispose()


def shorten(reason: Any, limit: int = 140) -> str:
    """A reason for the report: no addresses, digits of ids folded so reasons group."""
    if reason is None:
        return "(none)"
    value = redact(str(reason))
    value = re.sub(r"\b\d{3,}\b", "N", value)
    return value[:limit]


# --- one scenario -----------------------------------------------------------------------------------


@dataclass
class Timeline:
    began: float = field(default_factory=time.monotonic)
    chaos_end: float | None = None
    settled_at: float | None = None

    def now(self) -> float:
        return round(time.monotonic() - self.began, 2)


class ScenarioRun:
    def __init__(
        self, sc: Scenario, work: Path, seed: int, settle_timeout: float, callbacks: bool
    ) -> None:
        self.sc = sc
        self.callbacks = callbacks
        # SendGrid signs its event webhook with this key; the workers get the public half.
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self.work = work
        self.seed = seed
        self.settle_timeout = settle_timeout
        self.rng = random.Random(f"{seed}:{sc.name}")
        self.pg: Postgres | None = None
        self.standin: ProviderStandIn | None = None
        self.fleet: Fleet | None = None
        self.outbox: Outbox | None = None
        self.front: Front | None = None
        self.seeded: set[int] = set()
        self.channel_of: dict[int, str] = {}
        self.time = Timeline()
        self.wall_t0 = time.time()
        self.last_progress = 0.0
        self.figures: dict[str, Any] = {}
        self.secret_key = secrets.token_urlsafe(32)

    # -- set-up ------------------------------------------------------------------------------

    def seed_data(self) -> str:
        sc = self.sc
        if sc.backend == "pg":
            self.pg = Postgres()
            durable_commits(self.pg)
            url = self.pg.database("chaos")
            engine = migrated(url)
        else:
            path = self.work / "chaos.db"
            engine = fresh_sqlite(path)
            url = f"sqlite:///{path}"
        try:
            seed_policy_fingerprint(engine, load_policy(bench_settings().policy_path))
            insert_locations(engine)
            now = datetime.now(UTC)
            session_start = now + timedelta(days=2)
            consenting_patients(
                engine,
                messages=sc.messages,
                session_start=session_start,
                patient_timezone=daytime_zone(now),
            )
            due_messages(
                engine,
                messages=sc.messages,
                due_at=now - timedelta(minutes=1),
                session_start=session_start,
            )
            with engine.connect() as conn:
                for mid, channel in conn.execute(text("SELECT id, channel FROM messages")):
                    self.channel_of[int(mid)] = str(channel)
        finally:
            engine.dispose()
        self.seeded = set(self.channel_of)
        return url

    def public_key(self) -> str:
        der = self.signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def start_standin(self, public_url: str) -> ProviderStandIn:
        """Status callbacks and signed events go to ``public_url`` (the front before the
        workers); a Twilio callback that fails is lost, a SendGrid event batch is retried."""
        faults = Faults(rate=self.sc.fault_rate, seed=self.seed)
        standin = ProviderStandIn(
            account_sid=TWILIO_ACCOUNT_SID,
            auth_token=TWILIO_AUTH_TOKEN,
            sendgrid_key=SENDGRID_API_KEY,
            faults=faults,
            status_callbacks=self.callbacks,
            sendgrid_events_url=f"{public_url}{SENDGRID_EVENTS_PATH}" if self.callbacks else None,
            sendgrid_signing_key=self.signing_key if self.callbacks else None,
        )
        return standin.start()

    def worker_env(
        self, url: str, standin_url: str, public_url: str
    ) -> Callable[[Slot], dict[str, str]]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        sc = self.sc
        settings = {
            "DATABASE_URL": url,
            "SMS_PROVIDER": SMS_PROVIDER,
            "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": TWILIO_FROM,
            "TWILIO_BASE_URL": standin_url,
            "EMAIL_PROVIDER": EMAIL_PROVIDER,
            "SENDGRID_API_KEY": SENDGRID_API_KEY,
            "SENDGRID_BASE_URL": standin_url,
            "EMAIL_FROM": EMAIL_FROM,
            "SMS_RATE_PER_SECOND": f"{sc.sms_rate:g}",
            "EMAIL_RATE_PER_SECOND": f"{sc.email_rate:g}",
            "ONCALL_EMAILS": ONCALL_EMAIL,
            "SECRET_KEY": self.secret_key,
            "DRYRUN_DIR": str(self.work / "dryrun"),
            "PUBLIC_URL": public_url,
            **WORKER_SETTINGS,
        }
        if self.callbacks:
            settings["SENDGRID_WEBHOOK_PUBLIC_KEY"] = self.public_key()

        def env(slot: Slot) -> dict[str, str]:
            values = {**settings, "HTTP_PORT": str(slot.port), "WORKER_ID": slot.worker_id}
            return {**base, **{f"REMINDERS_{k}": v for k, v in values.items()}}

        return env

    # -- observing ---------------------------------------------------------------------------

    def accepted(self) -> int:
        """Seeded messages the stand-in has accepted at least once."""
        assert self.standin is not None
        return sum(1 for mid in self.standin.received_counts() if int(mid) in self.seeded)

    def tick(self, sleep: float = 0.2) -> None:
        """Watch the workers and print progress every 5 s; sleeps ``sleep`` seconds."""
        assert self.fleet is not None and self.outbox is not None
        self.fleet.watch()
        if time.monotonic() - self.last_progress >= 5.0:
            self.last_progress = time.monotonic()
            sending, due = self.outbox.pending()
            print(
                f"  t={self.time.now():6.1f}s accepted {self.accepted()}/{len(self.seeded)}; "
                f"sending {sending}, planned due {due}; kills {len(self.fleet.kills)}, "
                f"own exits {len(self.fleet.exits)}",
                flush=True,
            )
        time.sleep(sleep)

    def wait_fraction(self, fraction: float, timeout: float = 300.0) -> bool:
        target = fraction * len(self.seeded)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.accepted() >= target:
                return True
            self.tick()
        return False

    # -- chaos ---------------------------------------------------------------------------------

    def fleet_event(self, what: str) -> None:
        assert self.fleet is not None
        self.fleet.events.append((time.time(), what))

    def chaos_kills(self) -> None:
        assert self.fleet is not None
        low, high = self.sc.kill_every
        while len(self.fleet.kills) < self.sc.kills:
            wake = time.monotonic() + self.rng.uniform(low, high)
            while time.monotonic() < wake:
                self.tick(min(0.2, max(0.0, wake - time.monotonic())))
            slot = self.rng.choice(self.fleet.slots)
            record = self.fleet.kill(slot)
            if not record.ready:
                print(f"  (kill {len(self.fleet.kills)} hit {record.worker_id} before it was up)")

    def chaos_pg_restarts(self) -> None:
        assert self.pg is not None
        done: list[dict[str, Any]] = []
        for fraction in self.sc.pg_restarts:
            reached = self.wait_fraction(fraction)
            at = self.time.now()
            accepted = self.accepted()
            if not reached:
                print(f"  {fraction:.0%} never reached; restarting PostgreSQL anyway", flush=True)
            self.fleet_event("PostgreSQL restart")
            took = pg_ctl_restart(self.pg)
            print(
                f"  PostgreSQL restarted (-m immediate) at t={at}s, {accepted} accepted; "
                f"pg_ctl took {took} s",
                flush=True,
            )
            done.append(
                {"at_s": at, "fraction_target": fraction, "accepted": accepted, "pg_ctl_s": took}
            )
        self.figures["pg_restarts"] = done

    def chaos_sigterm(self) -> None:
        assert self.fleet is not None and self.outbox is not None and self.sc.sigterm_at
        reached = self.wait_fraction(self.sc.sigterm_at)
        # The last worker (kept from an older set-up where worker 1 took the webhooks alone).
        slot = self.fleet.slots[-1]
        assert slot.proc is not None
        worker = slot.worker_id
        held_before = self.outbox.held_by(worker)
        accepted = self.accepted()
        began = time.monotonic()
        at = self.time.now()
        self.fleet_event(f"SIGTERM {worker}")
        slot.proc.send_signal(signal.SIGTERM)
        try:
            slot.proc.wait(STOP_WAIT_S + 15)
            exit_s: float | None = round(time.monotonic() - began, 2)
        except subprocess.TimeoutExpired:
            exit_s = None
            slot.proc.kill()
            slot.proc.wait()
        held_after = self.outbox.held_by(worker)
        claimed_after = sum(n for k, n in held_after.items() if k == "planned (lease live)")
        sending_after = sum(n for k, n in held_after.items() if k.startswith("sending"))
        lines = [
            line
            for line in tail(slot.log_path, 40).splitlines()
            if any(
                w in line
                for w in ("shutting down", "worker stopped", "grace", "Traceback", "ERROR")
            )
        ]
        self.figures["sigterm"] = {
            "worker": worker,
            "at_s": at,
            "reached_target": reached,
            "accepted_before": accepted,
            "held_before": held_before,
            "exit_s": exit_s,
            "exit_status": slot.proc.returncode,
            "held_after": held_after,
            "claimed_after_exit": claimed_after,
            "sending_after_exit": sending_after,
            "released_claims": claimed_after == 0,
            "log": lines[-6:],
        }
        print(
            f"  SIGTERM {worker} at t={at}s ({accepted} accepted); rows held before: "
            f"{held_before or 'none'}; exited after "
            f"{exit_s if exit_s is not None else 'NEVER (killed)'} s with status "
            f"{slot.proc.returncode}; held after: {held_after or 'none'}",
            flush=True,
        )
        self.fleet.start(slot, "restart after SIGTERM")

    # -- settling --------------------------------------------------------------------------------

    def settle(self, chaos_end: float) -> None:
        assert self.outbox is not None and self.standin is not None
        self.time.chaos_end = chaos_end
        remaining = len(self.seeded) - self.accepted()
        half = remaining / 2
        timeout = self.settle_timeout + half / self.sc.sms_rate + half / self.sc.email_rate
        deadline = time.monotonic() + timeout
        self.figures["settle_timeout_s"] = round(timeout, 1)
        print(
            f"  chaos over at t={self.time.now()}s; settling (at most {timeout:.0f} s)", flush=True
        )
        while time.monotonic() < deadline:
            sending, due = self.outbox.pending()
            if sending == 0 and due == 0:
                self.time.settled_at = time.monotonic()
                return
            self.tick(1.0)

    # -- the whole run -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        sc = self.sc
        self.figures.update(
            {
                "scenario": sc.name,
                "backend": "postgresql" if sc.backend == "pg" else "sqlite",
                "workers": sc.workers,
                "messages": sc.messages,
                "sms_rate": sc.sms_rate,
                "email_rate": sc.email_rate,
                "fault_rate": sc.fault_rate,
                "loadavg_before": loadavg(),
                "logs": str(self.work),
            }
        )
        print(f"\n[{sc.name}] seeding {sc.messages} due messages ({sc.backend})", flush=True)
        try:
            url = self.seed_data()
            self.outbox = Outbox(url)
            ports = [free_port() for _ in range(sc.workers)]
            self.front = Front(ports)  # the webhooks' public address, before the workers
            public_url = self.front.url
            self.standin = self.start_standin(public_url)
            env = self.worker_env(url, self.standin.url, public_url)
            self.fleet = Fleet(self.work, ports, env)
            self.fleet.start_all()
            self.time = Timeline()
            self.wall_t0 = time.time()
            print(f"  {sc.workers} worker(s) up; stand-in at {self.standin.url}", flush=True)
            if sc.kills:
                self.chaos_kills()
            if sc.pg_restarts:
                self.chaos_pg_restarts()
            if sc.sigterm_at is not None:
                self.chaos_sigterm()
            self.figures["chaos_s"] = round(time.monotonic() - self.time.began, 2)
            # Faults only: they last the whole run, so settling counts from the start.
            events = sc.kills or sc.pg_restarts or sc.sigterm_at is not None
            self.settle(time.monotonic() if events else self.time.began)
            # Let the last status callbacks and events reach the workers before they stop.
            self.figures["callbacks_drained"] = self.standin.wait_callbacks(10.0)
            self.figures["worker_exit_s"] = self.fleet.stop_all()
            self.collect()
            self.save_records()
        finally:
            self.cleanup()
        return self.figures

    def cleanup(self) -> None:
        if self.fleet is not None:
            self.fleet.kill_all()
        if self.front is not None:
            self.front.stop()
        if self.standin is not None:
            try:
                self.standin.stop()
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                print(f"  (stand-in stop failed: {exc!r})", file=sys.stderr)
        if self.outbox is not None:
            self.outbox.close()
        if self.pg is not None:
            with contextlib.suppress(OSError):  # the server's log, before the cluster goes
                shutil.copy(self.pg.cluster.root / "log", self.work / "postgresql.log")
            self.pg.stop()

    def save_records(self) -> None:
        """The stand-in's records (ids, times, outcomes; no addresses or bodies) and the
        harness's own events, for looking into a duplicate or a rate window afterwards."""
        assert self.standin is not None and self.fleet is not None
        records = {
            "t0": self.wall_t0,
            "events": [{"at": at, "what": what} for at, what in self.fleet.events],
            "accepted": [
                {
                    "channel": a.channel,
                    "outbox_id": a.outbox_id,
                    "provider_id": a.provider_id,
                    "at": a.at,
                }
                for a in self.standin.accepted()
            ],
            "requests": [
                {"provider": r.provider, "kind": r.kind, "at": r.at, "outcome": r.outcome}
                for r in self.standin.requests()
            ],
        }
        path = self.work / "records.json"
        path.write_text(json.dumps(records))

    # -- figures ---------------------------------------------------------------------------------

    def collect(self) -> None:
        assert self.standin is not None and self.outbox is not None and self.fleet is not None
        sc, f, t = self.sc, self.figures, self.time
        counts = {int(k): int(v) for k, v in self.standin.received_counts().items()}
        per_id = {mid: counts.get(mid, 0) for mid in self.seeded}
        lost = sorted(mid for mid, n in per_id.items() if n == 0)
        dups = sorted(mid for mid, n in per_id.items() if n >= 2)
        f["expected"] = len(self.seeded)
        f["received_once"] = sum(1 for n in per_id.values() if n == 1)
        f["duplicated"] = len(dups)
        f["duplicate_extra_sends"] = sum(per_id[m] - 1 for m in dups)
        f["lost"] = len(lost)
        f["by_channel"] = {
            ch: {
                "expected": sum(1 for m in self.seeded if self.channel_of[m] == ch),
                "once": sum(1 for m, n in per_id.items() if n == 1 and self.channel_of[m] == ch),
                "duplicated": sum(1 for m in dups if self.channel_of[m] == ch),
                "lost": sum(1 for m in lost if self.channel_of[m] == ch),
            }
            for ch in ("sms", "email")
        }
        others = {m: n for m, n in counts.items() if m not in self.seeded}
        f["other_outbox_ids_received"] = {"ids": len(others), "accepts": sum(others.values())}
        lost_rows = self.outbox.rows(lost)
        dup_rows = self.outbox.rows(dups)
        f["lost_by_db_status"] = dict(Counter(r["status"] for r in lost_rows))
        f["duplicated_by_db_status"] = dict(Counter(r["status"] for r in dup_rows))
        for r in dup_rows:
            r["accepted_times"] = per_id[r["id"]]
        f["examples"] = {"lost": lost_rows[:8], "duplicated": dup_rows[:8]}

        statuses = self.outbox.statuses()
        f["db_status"] = statuses
        f["in_doubt_end"] = statuses.get("sending", 0)
        f["failed_reasons"] = self.outbox.failed_reasons()
        f["settled"] = t.settled_at is not None
        f["settle_s"] = (
            round(t.settled_at - t.chaos_end, 2)
            if t.settled_at is not None and t.chaos_end is not None
            else None
        )
        f["run_s"] = round((t.settled_at or time.monotonic()) - t.began, 2)
        f["kills"] = len(self.fleet.kills)
        f["kills_before_up"] = sum(1 for k in self.fleet.kills if not k.ready)
        uptimes = sorted(k.uptime_s for k in self.fleet.kills)
        f["kill_uptime_s"] = (
            {"min": uptimes[0], "median": uptimes[len(uptimes) // 2], "max": uptimes[-1]}
            if uptimes
            else None
        )
        f["restarts"] = self.fleet.starts - sc.workers
        f["own_exits"] = [vars(e) for e in self.fleet.exits]
        f["faults"] = dict(self.standin.fault_counts())
        f["callbacks"] = dict(self.standin.webhook_counts()) if self.callbacks else "off"
        rates = {SMS_PROVIDER: sc.sms_rate, EMAIL_PROVIDER: sc.email_rate}
        f["rate"] = {}
        requests = self.standin.requests()
        for provider, rate in rates.items():
            most = int(self.standin.max_per_window(provider, 1.0))
            sends = sorted(
                r.at for r in requests if r.provider == provider and r.kind in SEND_KINDS
            )
            start, count = worst_window(sends)
            f["rate"][provider] = {
                "configured": rate,
                "max_per_1s": most,
                "exceeded_by_more_than_one": most > rate + 1,
                "mean_per_s": round((len(sends) - 1) / (sends[-1] - sends[0]), 2)
                if len(sends) > 1 and sends[-1] > sends[0]
                else None,
                # Where the worst window was, and what the harness did around it (-3 s .. +1 s).
                "worst_window_at_s": round(start - self.wall_t0, 2) if count else None,
                "near_worst_window": [
                    f"{at - self.wall_t0:+.2f}s {what}"
                    for at, what in self.fleet.events
                    if count and start - 3.0 <= at <= start + 1.0
                ][:8],
            }
        f["requests"] = {
            " ".join(str(x) for x in key): n
            for key, n in sorted(
                Counter((r.provider, r.kind, r.outcome) for r in self.standin.requests()).items(),
                key=lambda kv: str(kv[0]),
            )
        }
        f["log_summary"] = summarise_logs([s.log_path for s in self.fleet.slots])
        f["targets"] = {
            "no_lost": f["lost"] == 0,
            "no_duplicates": f["duplicated"] == 0,
            "none_in_doubt": f["in_doubt_end"] == 0,
            "rate_kept": not any(r["exceeded_by_more_than_one"] for r in f["rate"].values()),
            "settled": f["settled"],
        }


def worst_window(times: list[float], window: float = 1.0) -> tuple[float, int]:
    """The start and size of the fullest ``[t, t + window)`` window (as the stand-in counts)."""
    best, at = 0, 0.0
    for i, start in enumerate(times):
        n = bisect.bisect_left(times, start + window, lo=i) - i
        if n > best:
            best, at = n, start
    return at, best


LOG_LINE = re.compile(r"^\S+T\S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) (.*)$")
EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Timeout)\w*)(?::|$)")


def summarise_logs(paths: list[Path]) -> dict[str, Any]:
    """Warnings and errors by message, exception types, and a few INFO counts, with one
    example line each (redacted)."""
    by_message: Counter[str] = Counter()
    examples: dict[str, str] = {}
    exceptions: Counter[str] = Counter()
    info: Counter[str] = Counter()
    other = 0
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            m = LOG_LINE.match(line)
            if m:
                level, logger, rest = m.groups()
                message = re.sub(r"\d+", "N", re.split(r" \w+=", rest, maxsplit=1)[0])
                key = f"{level} {logger.rsplit('.', 1)[-1]}: {message[:160]}"
                if level in ("WARNING", "ERROR", "CRITICAL"):
                    by_message[key] += 1
                    examples.setdefault(key, redact(line)[:300])
                else:
                    info[key] += 1
                continue
            if line.startswith("=== chaos:") or not line.strip():
                continue
            e = EXCEPTION_LINE.match(line)
            if e:
                exceptions[e.group(1)] += 1
                examples.setdefault(e.group(1), redact(line)[:300])
            elif not line.startswith((" ", "Traceback", "The above", "During handling")):
                other += 1
    return {
        "warnings_errors": dict(by_message.most_common(20)),
        "exceptions": dict(exceptions.most_common(10)),
        "info": dict(info.most_common(12)),
        "unparsed_lines": other,
        "examples": {k: examples[k] for k in [*by_message, *exceptions][:25] if k in examples},
    }


# --- printing -----------------------------------------------------------------------------------


def print_table(f: dict[str, Any]) -> None:
    def row(label: str, value: Any) -> None:
        print(f"  {label:<34} {value}")

    print(f"\n== {f['scenario']} ({f['backend']}, {f['workers']} worker(s)) ==")
    if "error" in f:
        row("CRASHED", f["error"])
        return
    targets = f["targets"]

    def mark(ok: bool) -> str:
        return "" if ok else "   <-- target missed"

    row("messages expected (seeded)", f["expected"])
    row("received once", f["received_once"])
    row(
        "received twice or more",
        f"{f['duplicated']} ({f['duplicate_extra_sends']} extra sends; "
        f"DB status {f['duplicated_by_db_status'] or '-'}){mark(targets['no_duplicates'])}",
    )
    row(
        "never received (lost)",
        f"{f['lost']} (DB status {f['lost_by_db_status'] or '-'}){mark(targets['no_lost'])}",
    )
    for ch, c in f["by_channel"].items():
        row(
            f"  {ch}",
            f"{c['expected']} expected, {c['once']} once, {c['duplicated']} dup, {c['lost']} lost",
        )
    row("other outbox ids received", f["other_outbox_ids_received"])
    row("in doubt at the end (sending)", f"{f['in_doubt_end']}{mark(targets['none_in_doubt'])}")
    row("final DB status", f["db_status"])
    for reason, n in list(f["failed_reasons"].items())[:8]:
        row("  failed", f"{n} x {reason}")
    row(
        "settled",
        f"yes, {f['settle_s']} s after the chaos"
        if f["settled"]
        else f"NO (timeout {f['settle_timeout_s']} s){mark(False)}",
    )
    row("chaos phase / whole run", f"{f['chaos_s']} s / {f['run_s']} s")
    row(
        "kills / restarts",
        f"{f['kills']} kills ({f['kills_before_up']} before the worker was up; uptime "
        f"{f['kill_uptime_s']}) / {f['restarts']} restarts",
    )
    row("exits nobody asked for", len(f["own_exits"]))
    if "pg_restarts" in f:
        row("PostgreSQL restarts", f["pg_restarts"])
    if "sigterm" in f:
        s = f["sigterm"]
        row(
            "SIGTERM",
            f"{s['worker']} exited after {s['exit_s']} s (status {s['exit_status']}); claims "
            f"left live {s['claimed_after_exit']}, sending {s['sending_after_exit']}; held "
            f"before {s['held_before']}",
        )
    row("faults injected", f["faults"] or "none")
    row("callbacks / events to the workers", f["callbacks"])
    for provider, r in f["rate"].items():
        row(
            f"max sends in 1 s, {provider}",
            f"{r['max_per_1s']} (rate {r['configured']:g}/s, mean {r['mean_per_s']}/s; worst "
            f"window at t={r['worst_window_at_s']}s)" + mark(not r["exceeded_by_more_than_one"]),
        )
        if r["near_worst_window"] and r["exceeded_by_more_than_one"]:
            row("  around it", ", ".join(r["near_worst_window"]))
    row("requests (provider kind outcome)", f["requests"])
    logs = f["log_summary"]
    for key, n in list(logs["warnings_errors"].items())[:10]:
        row("  log", f"{n} x {key}")
    for key, n in logs["exceptions"].items():
        row("  exception", f"{n} x {key}")
    row("worker exit times at the end", f["worker_exit_s"])
    row("worker logs", f["logs"])


# --- main -------------------------------------------------------------------------------------------


def selected(args: argparse.Namespace) -> Iterator[Scenario]:
    wanted = args.scenario or SCENARIO_NAMES
    for sc in scenarios(args.quick):
        if sc.name not in wanted:
            continue
        if sc.backend == "pg" and (args.no_pg or not Postgres.available()):
            print(f"[{sc.name}] skipped: PostgreSQL not used or not available", flush=True)
            continue
        yield sc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIO_NAMES, help="run only this (repeatable)"
    )
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL scenarios")
    parser.add_argument("--seed", type=int, default=1, help="kills and faults (default 1)")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=None,
        help="seconds after the chaos (plus the sending time left) before 'not settled' "
        f"(default {SETTLE_TIMEOUT_S:g}, with --quick {QUICK_SETTLE_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--no-callbacks",
        action="store_true",
        help="the stand-in sends no Twilio status callbacks or SendGrid events",
    )
    args = parser.parse_args(argv)
    if args.settle_timeout is None:
        args.settle_timeout = QUICK_SETTLE_TIMEOUT_S if args.quick else SETTLE_TIMEOUT_S
    # Ctrl-C, SIGTERM and a closed terminal all unwind through the clean-up (SIGINT is set
    # explicitly: a background job may have inherited it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)

    base = Path(os.environ.get("BENCH_TMP", tempfile.gettempdir()))
    work = Path(tempfile.mkdtemp(prefix="reminders-chaos-", dir=base))
    print("machine:", machine_info(), flush=True)
    print(f"work folder (worker logs): {work}", flush=True)
    results: list[dict[str, Any]] = []
    crashed = False
    began = time.monotonic()
    try:
        for sc in selected(args):
            folder = work / sc.name
            folder.mkdir()
            run = ScenarioRun(sc, folder, args.seed, args.settle_timeout, not args.no_callbacks)
            try:
                figures = run.run()
            except Exception as exc:  # noqa: BLE001 - report it, go on with the next scenario
                crashed = True
                traceback.print_exc()
                figures = {**run.figures, "scenario": sc.name, "error": repr(exc)[:500]}
                figures.setdefault("backend", sc.backend)
                figures.setdefault("workers", sc.workers)
            results.append(figures)
            print_table(figures)
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted: workers and PostgreSQL stopped", file=sys.stderr, flush=True)
        return 130
    summary = {
        "quick": args.quick,
        "seed": args.seed,
        "elapsed_s": round(time.monotonic() - began, 1),
        "work": str(work),
        "machine": machine_info(),
        "worker_settings": {f"REMINDERS_{k}": v for k, v in WORKER_SETTINGS.items()},
        "callbacks": not args.no_callbacks,
        "scenarios": {f["scenario"]: f for f in results},
    }
    print(f"\nall scenarios: {summary['elapsed_s']} s; worker logs in {work}", flush=True)
    report("chaos", summary)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
