"""The Today page for a 2,000-patient clinic (issue 14: ``GET /staff/today`` < 500 ms).

2,000 patients at 2 locations (New York and Chicago time), each with a series of infusions
(six, 3-4 days apart) and then maintenance every 28 days, from up to 120 days ago to 30 days
ahead: about 14,000 sessions, of which about 100 fall on any one day. Every session that was
not cancelled has its reminders (preparation email, day-before text, ride-home text) and a
next-day check-in: sent, delivered or not sent (no consent) when due before now, else still
planned; a cancelled session's are cancelled. Patients in maintenance have a planned
nudge, and a tenth of the day's visits a late-preparation flag. Bulk-inserted with
SQLAlchemy Core into a freshly migrated database.

The day measured is today in the clinic's zone (the data are laid out around it, so the
page sees sent and planned messages as the desk would): 20 ``GET /staff/today?day=...``
through a TestClient signed in as a staff member (after one warm-up), median and p95, with
the SQL statements each request runs, and the data-building part
(``reminders.web.staff.today.build_day``) on its own. On SQLite, then PostgreSQL.

    .venv/bin/python bench/today_bench.py [--quick] [--no-pg | --pg-only] [--requests N]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from _common import (
    Postgres,
    bench_dir,
    bench_settings,
    fresh_sqlite,
    insert_chunked,
    loadavg,
    machine_info,
    message_row,
    migrated,
    patient_row,
    percentile,
    report,
    session_row,
    verdict,
)
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, insert, select

from reminders.db.engine import make_session_factory
from reminders.db.models import Location, Message, Patient, StaffTask, StaffUser, TreatmentSession
from reminders.runtime import Runtime
from reminders.web.app import create_app
from reminders.web.staff.auth import hash_password
from reminders.web.staff.today import build_day

TARGET_MS = 500.0
CLINIC_ZONE = "America/New_York"
PLACES = [
    ("loc-downtown", "Downtown", "America/New_York"),
    ("loc-lakeside", "Lakeside", "America/Chicago"),
]
STAFF_EMAIL = "frontdesk@clinic.test"
STAFF_PASSWORD = "a long bench password"
REMINDERS = [  # rule, channel, template, (days, local hour) before the start or None: 2 h
    ("infusion-prep-email", "email", "prep_full", (3, 9)),
    ("infusion-day-before-sms", "sms", "day_before", (1, 17)),
    ("infusion-ride-sms", "sms", "ride", None),
]
VIA = ["sms", "email", "phone", "clinic"]


def local_slot(day: date, zone: str, rng: random.Random) -> datetime:
    slot = clock_time(8 + rng.randrange(9), 15 * rng.randrange(4))
    return datetime.combine(day, slot, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def clinic(engine: Engine, *, patients: int, today: date, now: datetime) -> dict[str, int]:
    """The synthetic clinic around ``today``; how many rows of each went in."""
    rng = random.Random(14)
    stamp = datetime.now(UTC)
    insert_chunked(
        engine,
        Location.__table__,
        (
            {"id": lid, "name": name, "address": "", "phone": None, "timezone": tz, "updated_at": stamp}
            for lid, name, tz in PLACES
        ),
    )  # fmt: skip
    rows = [patient_row(i, rng, needs_plan=False) for i in range(patients)]
    insert_chunked(engine, Patient.__table__, rows)
    sessions: list[dict[str, Any]] = []
    for i in range(patients):
        place = PLACES[i % len(PLACES)]
        day = today + timedelta(days=rng.randrange(-150, 20))
        for n in range(10):
            if day > today + timedelta(days=30):
                break
            starts = local_slot(day, place[2], rng)
            past = day < today
            roll = rng.random()
            if roll < 0.05:
                status = "cancelled"
            elif past:
                status = "no_show" if roll < 0.08 else "completed"
            else:
                status = "confirmed" if roll < 0.55 else "scheduled"
            row = session_row(f"s{i:05d}-{n}", f"p{i:07d}", (place[0], place[1], place[2]), starts, status=status)  # fmt: skip
            row["confirmed_via"] = rng.choice(VIA) if status == "confirmed" else None
            row["confirmed_at"] = starts - timedelta(days=1) if status == "confirmed" else None
            sessions.append(row)
            day += timedelta(days=rng.choice((3, 4)) if n < 5 else 28)
    insert_chunked(engine, TreatmentSession.__table__, sessions)
    insert_chunked(engine, Message.__table__, messages(sessions, rows, now, rng))
    todays = [s for s in sessions if _local_day(s) == today and s["status"] != "cancelled"]
    flags = [
        {
            "kind": "prep_late",
            "urgent": False,
            "patient_id": s["patient_id"],
            "session_id": s["id"],
            "summary": "Booked after the fasting cut-off: please call about their preparation.",
            "dedupe_key": f"prep_late:{s['id']}:{s['starts_at'].isoformat()}",
            "created_at": now,
            "alert_count": 0,
            "urgent_review": False,
            "message_count": 0,
        }
        for s in todays[::10]
    ]
    insert_chunked(engine, StaffTask.__table__, flags)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(Message))
    return {
        "patients": patients,
        "sessions": len(sessions),
        "messages": int(total or 0),
        "day_visits": len(todays),
        "day_flags": len(flags),
    }


def _local_day(session: dict[str, Any]) -> date:
    zone = dict((lid, tz) for lid, _, tz in PLACES)[session["location_id"]]
    starts: datetime = session["starts_at"]
    return starts.astimezone(ZoneInfo(zone)).date()


def messages(
    sessions: list[dict[str, Any]],
    patients: list[dict[str, Any]],
    now: datetime,
    rng: random.Random,
) -> Iterator[dict[str, Any]]:
    consent = {p["id"]: p["sms_consent"] for p in patients}
    zones = {lid: ZoneInfo(tz) for lid, _, tz in PLACES}
    mid = 0
    last: dict[str, datetime] = {}
    for s in sessions:
        starts: datetime = s["starts_at"]
        local = starts.astimezone(zones[s["location_id"]])
        plans = []
        for rule, channel, template, before in REMINDERS:
            if before is None:
                due = starts - timedelta(hours=2)
            else:
                day = local.date() - timedelta(days=before[0])
                due = datetime.combine(day, clock_time(before[1]), tzinfo=local.tzinfo)
            plans.append((rule, "reminder", channel, template, due.astimezone(UTC)))
        plans.append(("infusion-checkin", "checkin", "sms", "checkin", starts + timedelta(days=1)))
        for rule, kind, channel, template, due in plans:
            mid += 1
            row = message_row(
                mid, pid=s["patient_id"], sid=s["id"], session_starts_at=starts, rule=rule,
                kind=kind, channel=channel, template=template, due_at=due, not_after=starts,
            )  # fmt: skip
            row.update(status="planned", reason=None, sent_at=None, delivered_at=None)
            if s["status"] == "cancelled":
                row.update(status="cancelled", reason="session_cancelled")
            elif due <= now:
                if channel == "sms" and not consent[s["patient_id"]]:
                    row.update(status="skipped", reason="no_sms_consent")
                else:
                    row.update(status="delivered" if rng.random() < 0.85 else "sent", sent_at=due)
            yield row
        last[s["patient_id"]] = max(starts, last.get(s["patient_id"], starts))
    for pid, starts in last.items():
        mid += 1
        due = starts + timedelta(days=21)
        if due > now:
            row = message_row(
                mid, pid=pid, sid=None, session_starts_at=None, rule="maintenance-nudge",
                kind="nudge", channel="sms", template="nudge", due_at=due, not_after=None,
            )  # fmt: skip
            row.update(status="planned", reason=None, sent_at=None, delivered_at=None)
            yield row


def sign_in(client: TestClient) -> None:
    page = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token is not None
    response = client.post(
        "/staff/login",
        data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303, response.text


def bench_backend(label: str, url: str, engine: Engine, *, patients: int, requests: int) -> dict[str, Any]:  # fmt: skip
    settings = bench_settings(
        database_url=url,
        timezone=CLINIC_ZONE,
        secret_key="bench-secret-key-0123456789abcdef",
        public_url="http://testserver",
    )
    zone = settings.zone
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    print(f"[{label}] generating a {patients}-patient clinic around {today}", flush=True)
    start = time.perf_counter()
    figures: dict[str, Any] = {"backend": label, "day": today.isoformat()}
    figures.update(clinic(engine, patients=patients, today=today, now=now))
    with engine.begin() as conn:
        conn.execute(
            insert(StaffUser),
            [{"email": STAFF_EMAIL, "role": "staff", "password_hash": hash_password(STAFF_PASSWORD),
              "active": True, "failed_logins": 0, "created_at": now}],
        )  # fmt: skip
    figures["insert_s"] = round(time.perf_counter() - start, 1)
    print(f"  {figures} ", flush=True)

    runtime = Runtime(settings)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    try:
        client = TestClient(create_app(runtime), follow_redirects=False)
        sign_in(client)
        path = f"/staff/today?day={today.isoformat()}"
        first = client.get(path)  # warm-up: templates compiled, connections open
        assert first.status_code == 200, first.text[:500]
        figures["page_bytes"] = len(first.content)
        figures["rows_shown"] = first.text.count('<tr id="visit-')
        figures["loadavg_before"] = loadavg()
        event.listen(runtime.engine, "before_cursor_execute", count)
        times = []
        for _ in range(requests):
            statements.clear()
            t0 = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        event.remove(runtime.engine, "before_cursor_execute", count)
        figures["sql_statements_per_request"] = len(statements)
        with make_session_factory(engine)() as db:
            built = []
            for _ in range(requests):
                t0 = time.perf_counter()
                view = build_day(db, day=today, zone=zone, now=datetime.now(UTC))
                built.append((time.perf_counter() - t0) * 1000)
                db.rollback()
        assert view.visits == figures["rows_shown"]
    finally:
        runtime.close()
    figures.update(
        requests=requests,
        median_ms=round(statistics.median(times), 1),
        p95_ms=round(percentile(times, 95), 1),
        max_ms=round(max(times), 1),
        build_day_median_ms=round(statistics.median(built), 1),
        confirmed=view.confirmed,
        warnings=view.warnings,
    )
    figures["verdict"] = verdict(figures["p95_ms"], TARGET_MS, at_most=True)
    print(
        f"  GET {path}: {figures['rows_shown']} visits, {figures['page_bytes']} bytes, "
        f"{figures['sql_statements_per_request']} SQL statements; median "
        f"{figures['median_ms']} ms, p95 {figures['p95_ms']} ms, max {figures['max_ms']} ms "
        f"(build_day alone: median {figures['build_day_median_ms']} ms); {figures['verdict']}",
        flush=True,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 patients, 5 requests")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--pg-only", action="store_true", help="skip the SQLite run")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args(argv)
    patients = args.patients or (200 if args.quick else 2_000)
    requests = args.requests or (5 if args.quick else 20)
    print("machine:", machine_info(), flush=True)
    work = bench_dir("today")
    try:
        if not args.pg_only:
            path = work / "today.db"
            engine = fresh_sqlite(path)
            figures = bench_backend(
                "sqlite", f"sqlite:///{path}", engine, patients=patients, requests=requests
            )
            engine.dispose()
            report("today", figures)
        if not args.no_pg and Postgres.available():
            pg = Postgres()
            try:
                url = pg.database("today_bench")
                engine = migrated(url)
                figures = bench_backend(
                    "postgresql", url, engine, patients=patients, requests=requests
                )
                engine.dispose()
                report("today", figures)
            finally:
                pg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
