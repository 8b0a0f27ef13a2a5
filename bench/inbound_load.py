"""Inbound SMS webhook latency and loss while the staff console is busy (docs/design.md
section 10: inbound webhook p99 <= 1 s while the console is in use; issue 9: no patient
message lost or late).

The real daemon (``reminders run``: the passes and the web server, dry-run providers, a
Twilio auth token and account SID set, a free ``REMINDERS_HTTP_PORT``) runs on a fresh SQLite
file holding 45 staff accounts (production argon2 cost) and 50 patients. For the whole
inbound window, and at the same time:

* signed inbound SMS arrive at a steady rate (8 a second; each with its own ``MessageSid``,
  the configured ``AccountSid``, a patient's number, a short reply), each request on its own
  thread, signed the way Twilio's ``RequestValidator`` signs them. A 5xx answer (or a 15 s
  timeout, Twilio's) is retried twice, as Twilio's fallback would, after 0.5 s;
* the console logs in 45 people at once (real HTTP: the login page for the CSRF cookie and
  token, then the POST), wave after wave;
* one signed-in person runs a long template preview in a loop (a legal template whose
  loops take about 4 s to render, checks included);
* a probe connection takes SQLite's write lock (``BEGIN IMMEDIATE; COMMIT``) every 0.2 s and
  records how long it waited: the write-lock hold times the console causes.

Reported: inbound latency of the first attempt and until accepted (p50/p99/max), the 5xx
answers, and inbound lost = sent ``MessageSid`` values absent from ``inbound_messages`` at
the end (plus rows stored but never processed); login and preview times; the probe's waits.

    .venv/bin/python bench/inbound_load.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import sqlite3
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _common import (
    bench_daemon,
    delay_stats,
    free_port,
    fresh_sqlite,
    insert_chunked,
    insert_locations,
    loadavg,
    machine_info,
    patient_row,
    report,
    verdict,
)
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from reminders.db.engine import make_session_factory
from reminders.db.models import InboundMessage, Patient, StaffUser
from reminders.web.staff.auth import hash_password

TARGET_P99_S = 1.0
SMS_PATH = "/webhooks/twilio/sms"
TWILIO_TIMEOUT_S = 15.0
RETRIES = 2  # after the first attempt, as a fallback URL would
RETRY_AFTER_S = 0.5
STAFF = 45
PASSWORD = "bench password 0123"
# Legal and slow: about 500,000 loop steps per render; the preview renders it three times.
SLOW_TEMPLATE = (
    "{% set ns = namespace(n=0) %}{% for i in range(500) %}{% for j in range(1000) %}"
    "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}"
    "Hi {{ patient.first_name }}, see you soon ({{ ns.n }})."
)
REPLIES = ["C", "R", "8", "Thanks, see you then", "Can I bring my sister?", "ok", "7/10"]
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def seed(engine: Any, patients: int) -> list[str]:
    """Patients to reply from, and the staff accounts (one production-cost hash, shared)."""
    insert_locations(engine)
    rng = random.Random(5)
    rows = [patient_row(i, rng, needs_plan=False) for i in range(patients)]
    insert_chunked(engine, Patient.__table__, rows)
    stored = hash_password(PASSWORD)
    with make_session_factory(engine)() as db:
        db.add_all(
            StaffUser(email=f"staff{n}@clinic.test", role="admin" if n == 0 else "staff",
                      password_hash=stored)
            for n in range(STAFF)
        )  # fmt: skip
        db.commit()
    return [str(r["phone"]) for r in rows]


class Inbound:
    """Signed inbound SMS at a steady rate; Twilio's retries on 5xx and timeouts."""

    def __init__(self, base: str, token: str, account: str, phones: list[str]) -> None:
        self.url = base + SMS_PATH
        self.validator = RequestValidator(token)
        self.account, self.phones = account, phones
        self.client = httpx.Client(
            timeout=TWILIO_TIMEOUT_S, limits=httpx.Limits(max_connections=200)
        )
        self.lock = threading.Lock()
        self.sent: list[str] = []
        self.first: list[float] = []  # first attempt's latency
        self.accepted: list[float] = []  # until a 2xx, retries included
        self.answers: dict[str, int] = {}

    def _count(self, key: str) -> None:
        with self.lock:
            self.answers[key] = self.answers.get(key, 0) + 1

    def send_one(self, n: int) -> None:
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.account,
            "From": self.phones[n % len(self.phones)],
            "To": "+14105550000",
            "Body": REPLIES[n % len(REPLIES)],
            "NumMedia": "0",
        }
        with self.lock:
            self.sent.append(params["MessageSid"])
        signature = self.validator.compute_signature(self.url, params)
        start = time.perf_counter()
        for attempt in range(1 + RETRIES):
            if attempt:
                time.sleep(RETRY_AFTER_S)
            began = time.perf_counter()
            try:
                status = self.client.post(
                    self.url, data=params, headers={"X-Twilio-Signature": signature}
                ).status_code
            except httpx.TimeoutException:
                status = 0
            except httpx.HTTPError:
                status = -1
            now = time.perf_counter()
            if attempt == 0:
                with self.lock:
                    self.first.append(now - began)
            self._count(str(status) if status > 0 else ("timeout" if status == 0 else "error"))
            if 200 <= status < 300:
                with self.lock:
                    self.accepted.append(now - start)
                return
            if 400 <= status < 500:
                return  # refused: Twilio does not retry a 4xx


def login(base: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
    page = client.get("/staff/login")
    match = _CSRF.search(page.text)
    assert match, "no CSRF token on the login page"
    return client, match.group(1)


def login_wave(base: str, times: list[float], failures: list[int]) -> None:
    """45 people log in at the same moment (each with its own cookies)."""

    def one(n: int) -> None:
        client: httpx.Client | None = None
        try:
            client, csrf = login(base)
            start = time.perf_counter()
            response = client.post(
                "/staff/login",
                data={"email": f"staff{n}@clinic.test", "password": PASSWORD,
                      "csrf_token": csrf, "next": "/staff/inbox"},
            )  # fmt: skip
            times.append(time.perf_counter() - start)
            if response.status_code != 303:
                failures.append(response.status_code)
        except httpx.HTTPError:
            failures.append(-1)
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(STAFF)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def preview_loop(base: str, stop: threading.Event, times: list[float], codes: list[int]) -> None:
    client, csrf = login(base)
    try:
        response = client.post(
            "/staff/login",
            data={"email": "staff0@clinic.test", "password": PASSWORD, "csrf_token": csrf},
        )
        assert response.status_code == 303, response.status_code
        match = _CSRF.search(client.get("/staff/inbox").text)
        assert match, "no CSRF token on the inbox page"
        while not stop.is_set():
            start = time.perf_counter()
            response = client.post(
                "/staff/templates/day_before/sms/en/preview",
                data={"csrf_token": match.group(1), "body": SLOW_TEMPLATE, "patient": ""},
            )
            times.append(time.perf_counter() - start)
            codes.append(response.status_code)
    finally:
        client.close()


def lock_probe(db_path: Path, stop: threading.Event, waits: list[float]) -> None:
    """Take and release the write lock every 0.2 s; a wait past 30 s counts as 30 s."""
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        while not stop.wait(0.2):
            start = time.perf_counter()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # database is locked: gave up after 30 s
                waits.append(time.perf_counter() - start)
                continue
            waits.append(time.perf_counter() - start)
            conn.execute("COMMIT")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--console",
        choices=("both", "logins", "preview", "none"),
        default="both",
        help="the console load beside the inbound SMS (to see what costs what)",
    )
    args = parser.parse_args(argv)
    rate, window = (8.0, 6.0) if args.quick else (8.0, 40.0)
    print("machine:", machine_info(), flush=True)

    with bench_daemon("inbound") as daemon:
        work = daemon.work
        db_path = work / "inbound.db"
        engine = fresh_sqlite(db_path)
        phones = seed(engine, 50)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        token, account = secrets.token_hex(16), "AC" + secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env.update(
            {
                "REMINDERS_DATABASE_URL": f"sqlite:///{db_path}",
                "REMINDERS_DRYRUN_DIR": str(work / "dry"),
                "REMINDERS_HTTP_PORT": str(port),
                "REMINDERS_PUBLIC_URL": base,
                "REMINDERS_SECRET_KEY": secrets.token_urlsafe(32),
                "REMINDERS_TWILIO_AUTH_TOKEN": token,
                "REMINDERS_TWILIO_ACCOUNT_SID": account,
                "REMINDERS_ONCALL_PHONES": "+14105550900",
                "REMINDERS_ONCALL_EMAILS": "oncall@clinic.test",
            }
        )
        daemon.start(env, port)
        load_text = {
            "both": f"logs in {STAFF} at a time and previews a slow template",
            "logins": f"logs in {STAFF} at a time",
            "preview": "previews a slow template",
            "none": "is idle",
        }[args.console]
        print(
            f"daemon up on port {port}; {STAFF} staff, {len(phones)} patients; inbound "
            f"{rate:g}/s for {window:g} s while the console {load_text}",
            flush=True,
        )

        load = loadavg()
        stop = threading.Event()
        login_times: list[float] = []
        login_failures: list[int] = []
        preview_times: list[float] = []
        preview_codes: list[int] = []
        probe_waits: list[float] = []
        waves = [0]

        def console() -> None:
            while not stop.is_set():
                login_wave(base, login_times, login_failures)
                waves[0] += 1

        helpers = [threading.Thread(target=lock_probe, args=(db_path, stop, probe_waits))]
        if args.console in ("both", "logins"):
            helpers.append(threading.Thread(target=console, name="logins"))
        if args.console in ("both", "preview"):
            helpers.append(
                threading.Thread(
                    target=preview_loop, args=(base, stop, preview_times, preview_codes)
                )
            )
        for t in helpers:
            t.start()
        time.sleep(1.0)  # the first wave and preview are under way

        inbound = Inbound(base, token, account, phones)
        total = int(rate * window)
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=256) as pool:
            for n in range(total):
                delay = began + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(inbound.send_one, n)
        stop.set()
        for t in helpers:
            t.join()
        inbound.client.close()
        time.sleep(1.0)  # let the last processing commit
        daemon.stop()

        with make_session_factory(engine)() as db:
            rows = db.execute(
                select(
                    InboundMessage.provider_message_id,
                    InboundMessage.processed_at,
                    InboundMessage.error,
                )
            ).all()
        stored = {r.provider_message_id for r in rows}
        lost = [sid for sid in inbound.sent if sid not in stored]
        unprocessed = sum(1 for r in rows if r.processed_at is None and r.error is None)
        five_xx = sum(n for code, n in inbound.answers.items() if code.startswith("5"))
        figures: dict[str, Any] = {
            "inbound_sent": len(inbound.sent),
            "rate_per_s": rate,
            "console": args.console,
            "window_s": window,
            "loadavg_before": load,
            "inbound_first_attempt_s": delay_stats(inbound.first),
            "inbound_until_accepted_s": delay_stats(inbound.accepted),
            "answers": inbound.answers,
            "inbound_5xx": five_xx,
            "inbound_lost": len(lost),
            "inbound_stored_unprocessed": unprocessed,
            "login_waves": waves[0],
            "logins": delay_stats(login_times),
            "login_failures": len(login_failures),
            "previews": delay_stats(preview_times),
            "preview_codes": sorted(set(preview_codes)),
            "write_lock_probe_wait_s": delay_stats(probe_waits),
        }
        figures["verdict"] = verdict(
            figures["inbound_first_attempt_s"]["p99"], TARGET_P99_S, at_most=True
        )
        figures["lost_verdict"] = "MET (target 0)" if not lost else f"MISSED ({len(lost)} lost)"
        print(f"  inbound sent {len(inbound.sent)}; answers {inbound.answers}", flush=True)
        print(
            f"  inbound first attempt (s): {figures['inbound_first_attempt_s']} "
            f"-> p99 {figures['verdict']}",
            flush=True,
        )
        print(f"  inbound until accepted (s): {figures['inbound_until_accepted_s']}", flush=True)
        print(
            f"  5xx answers {five_xx}; lost {len(lost)} ({figures['lost_verdict']}); "
            f"stored but unprocessed {unprocessed}",
            flush=True,
        )
        print(
            f"  logins: {waves[0]} waves of {STAFF}, {figures['logins']}, "
            f"failures {len(login_failures)}",
            flush=True,
        )
        print(f"  previews (s): {figures['previews']} codes {figures['preview_codes']}", flush=True)
        print(f"  write-lock probe wait (s): {figures['write_lock_probe_wait_s']}", flush=True)
        report("inbound", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
