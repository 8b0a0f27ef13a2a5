"""Crisis-to-inbox latency (issue 14): how long after a crisis inbox item is written does it
show in an inbox page that is already open, with no reload?

The real daemon (``reminders run``: web server and passes, default settings, dry-run
providers, a free ``REMINDERS_HTTP_PORT``) runs on a fresh SQLite file holding ``--open``
routine open items (200 by default: the list every poll digests) and one patient per try.
Headless Chromium (Debian's /usr/bin/chromium, through Playwright) signs in and opens
``/staff/inbox``; a MutationObserver put on the page's list records, with the page's clock,
when each item first appears in it. Then, ``--tries`` times (10), 1-3 s apart (seeded jitter,
so the polls' phase varies), this process calls ``reminders.conversations.inbound.receive``
with a crisis text from the next patient's number, as the SMS webhook does; the item is
committed when it returns. Reported: item committed (``receive`` returned) -> visible in the
open page, and ``receive`` called -> visible (that adds the risk screen and the write), with
the page's "New urgent item" notices and tones counted. Then the cost of one poll, measured
from this process over HTTP with the page's session cookie: ``since`` = the current cursor
(nothing changed: the common case) and no ``since`` (the list rendered again).

    .venv/bin/python bench/inbox_live_bench.py [--tries N] [--open N]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import (
    bench_daemon,
    bench_settings,
    delay_stats,
    free_port,
    fresh_sqlite,
    insert_chunked,
    insert_locations,
    loadavg,
    machine_info,
    patient_row,
    report,
    seed_policy_fingerprint,
)
from sqlalchemy import Engine

from reminders.conversations.inbound import receive
from reminders.db.engine import make_session_factory
from reminders.db.models import Patient, StaffTask, StaffUser
from reminders.planning.policy import load_policy
from reminders.web.staff.auth import hash_password

CHROMIUM = Path("/usr/bin/chromium")
EMAIL, PASSWORD = "bench@clinic.test", "a long bench password"
CRISIS_TEXTS = [
    "I want to kill myself tonight",
    "i cant go on anymore, i have the pills ready",
    "I'm going to end it all tonight",
    "I don't want to be alive anymore",
]
GAP_S = (1.0, 3.0)
POLLS = 200
FULL_POLLS = 50
OBSERVE = """() => {
  window.__seen = {};
  const list = document.getElementById("inbox-list");
  const mark = () => list.querySelectorAll("li.task[data-id]").forEach((li) => {
    if (!(li.dataset.id in window.__seen)) window.__seen[li.dataset.id] = Date.now();
  });
  mark();
  new MutationObserver(mark).observe(list, { childList: true, subtree: true });
}"""


def seed(engine: Engine, tries: int, routine: int) -> list[str]:
    """Patients (one per try, plus those of the routine items), routine open items, a staff
    account; the try patients' numbers."""
    insert_locations(engine)
    rng = random.Random(5)
    rows = [patient_row(i, rng, needs_plan=False, sms_consent=True) for i in range(tries + 50)]
    insert_chunked(engine, Patient.__table__, rows)
    now = datetime.now(UTC)
    with make_session_factory(engine)() as db:
        db.add(StaffUser(email=EMAIL, role="staff", password_hash=hash_password(PASSWORD)))
        for n in range(routine):
            db.add(
                StaffTask(
                    kind=("free_text", "delivery_failed", "reschedule")[n % 3],
                    patient_id=str(rows[tries + n % 50]["id"]),
                    summary="A routine item",
                    created_at=now - timedelta(minutes=n),
                    message_count=1,
                )
            )
        db.commit()
    return [str(r["phone"]) for r in rows[:tries]]


def poll_costs(base: str, cookies: list[Any], cursor: str | None) -> dict[str, Any]:
    jar = {str(c["name"]): str(c["value"]) for c in cookies}
    timings: dict[str, list[float]] = {"unchanged": [], "full": []}
    with httpx.Client(base_url=base, cookies=jar, headers={"Accept": "application/json"}) as web:
        for kind, count in (("unchanged", POLLS), ("full", FULL_POLLS)):
            for _ in range(count):
                params = {"since": cursor or ""} if kind == "unchanged" else {}
                start = time.perf_counter()
                answer = web.get("/staff/inbox/updates", params=params)
                timings[kind].append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text[:200]
                data = answer.json()
                assert data["changed"] == (kind == "full"), data
    sizes = {"full_bytes": len(answer.content)}
    return {f"poll_{k}_s": delay_stats(v) for k, v in timings.items()} | sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tries", type=int, default=10, help="crisis texts to time")
    parser.add_argument("--open", type=int, default=200, help="routine open items")
    args = parser.parse_args(argv)
    print("machine:", machine_info(), flush=True)
    from playwright.sync_api import sync_playwright

    with bench_daemon("inbox-live") as daemon:
        db_path = daemon.work / "inbox.db"
        engine = fresh_sqlite(db_path)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        values = {
            "database_url": f"sqlite:///{db_path}",
            "dryrun_dir": daemon.work / "dry",
            "public_url": base,
            "secret_key": secrets.token_urlsafe(32),
            "oncall_phones": "+15555550100",  # the daemon wants someone to page
        }
        settings = bench_settings(**values)
        seed_policy_fingerprint(engine, load_policy(settings.policy_path))
        phones = seed(engine, args.tries, args.open)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env |= {f"REMINDERS_{k.upper()}": str(v) for k, v in values.items()}
        env["REMINDERS_HTTP_PORT"] = str(port)
        daemon.start(env, port)
        factory = make_session_factory(engine)
        # The risk screen's model loads on first use: not part of what is measured.
        receive(
            factory,
            settings,
            channel="sms",
            from_address="+19995550000",
            body="thanks, see you then",
            provider_message_id="SM-warm-up",
        )
        load = loadavg()
        committed: list[float] = []
        called: list[float] = []
        with sync_playwright() as pw:
            executable = str(CHROMIUM) if CHROMIUM.exists() else None
            browser = pw.chromium.launch(
                executable_path=executable, headless=True, args=["--no-sandbox"]
            )
            context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
            page = context.new_page()
            page.goto("/staff/login")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#inbox-live")
            page.evaluate(OBSERVE)
            rng = random.Random(3)
            for n, phone in enumerate(phones):
                time.sleep(rng.uniform(*GAP_S))
                start = time.time()
                result = receive(
                    factory,
                    settings,
                    channel="sms",
                    from_address=phone,
                    body=CRISIS_TEXTS[n % len(CRISIS_TEXTS)],
                    provider_message_id=f"SM-bench-{n}",
                )
                done = time.time()
                assert result.classification == "crisis", result.classification
                task = result.task_ids[0]
                page.wait_for_function(f"() => window.__seen['{task}']", timeout=15_000)
                seen = page.evaluate(f"window.__seen['{task}']") / 1000
                committed.append(seen - done)
                called.append(seen - start)
                print(f"  try {n + 1}: visible {seen - done:.3f} s after the commit", flush=True)
            beeps = page.locator("#inbox-live").get_attribute("data-beeps")
            title = page.title()
            costs = poll_costs(
                base, context.cookies(), page.locator("#inbox-live").get_attribute("data-cursor")
            )
            browser.close()
        daemon.stop()
    figures: dict[str, Any] = {
        "tries": len(committed),
        "open_items": args.open,
        "loadavg_before": load,
        "committed_to_visible_s": delay_stats(committed),
        "receive_called_to_visible_s": delay_stats(called),
        "tones": beeps,
        "title_after": title,
        **costs,
    }
    print(f"  committed -> visible (s): {figures['committed_to_visible_s']}", flush=True)
    print(f"  receive() called -> visible (s): {figures['receive_called_to_visible_s']}")
    print(f"  tones played: {beeps}; title: {title!r}", flush=True)
    print(f"  poll, nothing changed (s): {costs['poll_unchanged_s']}", flush=True)
    print(f"  poll, list rendered (s): {costs['poll_full_s']}, {costs['full_bytes']} bytes")
    report("inbox_live", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
