"""Due-to-send delay with the default pass interval (docs/design.md section 10: p99 <= 2 s).

The real daemon (``reminders run``, default ``REMINDERS_PASS_INTERVAL_SECONDS``, dry-run
providers, a free ``REMINDERS_HTTP_PORT``) runs on a fresh SQLite file. Once its
``/healthz`` answers, 600 planned reminders (half SMS, half email with .ics) are inserted
with ``due_at`` spread evenly over the next ~60 s (10 a second); when all are sent the
daemon gets SIGTERM. Delays are computed two ways:

* outbox: ``messages.sent_at - due_at`` (``sent_at`` is the pass's clock when it claimed
  the batch);
* provider: the dry-run line's ``sent_at`` (the moment the provider was called) - ``due_at``.

Patients are in a fixed-offset zone where it is early afternoon, so SMS quiet hours never
interfere whatever the hour of the run; the policy is recorded as already applied and the
patients are not marked for planning, so the planner leaves the hand-made outbox alone.

    .venv/bin/python bench/latency_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import (
    bench_daemon,
    bench_settings,
    consenting_patients,
    daytime_zone,
    delay_stats,
    due_messages,
    free_port,
    fresh_sqlite,
    insert_locations,
    loadavg,
    machine_info,
    read_jsonl,
    report,
    seed_policy_fingerprint,
    verdict,
)
from sqlalchemy import func, select

from reminders.db.engine import make_session_factory
from reminders.db.models import Message
from reminders.planning.policy import load_policy

TARGET_P99_S = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args(argv)
    count, spread = (60, 10.0) if args.quick else (600, 60.0)
    print("machine:", machine_info(), flush=True)

    with bench_daemon("latency") as daemon:
        work = daemon.work
        db_path = work / "latency.db"
        engine = fresh_sqlite(db_path)
        settings = bench_settings()
        seed_policy_fingerprint(engine, load_policy(settings.policy_path))
        insert_locations(engine)
        zone = daytime_zone(datetime.now(UTC))
        session_start = datetime.now(UTC) + timedelta(days=2)
        consenting_patients(
            engine, messages=count, session_start=session_start, patient_timezone=zone
        )

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env.update(
            {
                "REMINDERS_DATABASE_URL": f"sqlite:///{db_path}",
                "REMINDERS_DRYRUN_DIR": str(work / "dry"),
                "REMINDERS_HTTP_PORT": str(port),
                "REMINDERS_ONCALL_EMAILS": "oncall@example.org",
            }
        )
        proc = daemon.start(env, port)
        print(
            f"daemon up on port {port} (default pass interval {settings.pass_interval_seconds} s); "
            f"inserting {count} messages due over the next {spread:.0f} s",
            flush=True,
        )

        load = loadavg()
        first_due = datetime.now(UTC) + timedelta(seconds=3)
        due_messages(
            engine,
            messages=count,
            session_start=session_start,
            due_at=lambda m: first_due + timedelta(seconds=spread * m / count),
        )
        factory = make_session_factory(engine)
        deadline = time.time() + 3 + spread + 120
        sent = 0
        while time.time() < deadline:
            with factory() as db:
                sent = (
                    db.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(Message.sent_at.is_not(None))
                    )
                    or 0
                )
            if sent >= count:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode} during the run")
            time.sleep(1.0)
        daemon.stop()

        with factory() as db:
            rows = db.execute(
                select(Message.id, Message.due_at, Message.sent_at, Message.status, Message.reason)
            ).all()
        outbox = [(r.sent_at - r.due_at).total_seconds() for r in rows if r.sent_at is not None]
        due_by_id = {r.id: r.due_at for r in rows}
        provider = [
            (datetime.fromisoformat(rec["sent_at"]) - due_by_id[rec["message_id"]]).total_seconds()
            for rec in read_jsonl(work / "dry")
            if rec["message_id"] in due_by_id
        ]
        not_sent = {f"{r.status}:{r.reason}" for r in rows if r.sent_at is None}
        figures: dict[str, Any] = {
            "messages": count,
            "spread_s": spread,
            "sent": len(outbox),
            "not_sent": sorted(not_sent),
            "pass_interval_s": settings.pass_interval_seconds,
            "loadavg_before": load,
            "outbox_delay_s": delay_stats(outbox),
            "provider_delay_s": delay_stats(provider),
        }
        figures["verdict"] = verdict(figures["outbox_delay_s"]["p99"], TARGET_P99_S, at_most=True)
        figures["provider_verdict"] = verdict(
            figures["provider_delay_s"]["p99"], TARGET_P99_S, at_most=True
        )
        print(f"  sent {len(outbox)}/{count}; not sent: {sorted(not_sent) or 'none'}", flush=True)
        print(
            f"  outbox sent_at - due_at (s): {figures['outbox_delay_s']} -> p99 {figures['verdict']}",
            flush=True,
        )
        print(
            f"  provider call - due_at (s): {figures['provider_delay_s']} -> p99 {figures['provider_verdict']}",
            flush=True,
        )
        report("latency", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
