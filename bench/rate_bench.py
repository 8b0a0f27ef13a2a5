"""A provider's configured rate is never exceeded (docs/design.md section 10).

300 due reminders (200 SMS, 100 email) go through ``Dispatcher.run_pass`` with the dry-run
providers limited to ``REMINDERS_DRYRUN_RATE_PER_SECOND=20`` (``dryrun_rate_per_second``) and
``send_concurrency`` 4. From the dry-run lines' ``sent_at`` (the moment the provider was
called) we take, per provider, the largest number of sends in any closed 1-second window
(target <= 20 + 1 for the window edge).

Then the same outbox size with two worker processes on one SQLite file, each with the same
setting and a dispatch batch of 10 (so both get a share): the limiter lives in each process,
so this shows what two workers do to a provider (reported, not a target of its own).

    .venv/bin/python bench/rate_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from bisect import bisect_right
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    BENCH_NOW,
    PYTHON,
    Postgres,
    bench_dir,
    bench_settings,
    due_outbox,
    fresh_sqlite,
    insert_locations,
    loadavg,
    machine_info,
    migrated,
    read_jsonl,
    report,
    verdict,
)

RATE = 20.0
CONCURRENCY = 4
NOW = BENCH_NOW
SESSION_START = BENCH_NOW + timedelta(hours=26)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Largest number of events in any closed interval of ``window`` seconds."""
    ordered = sorted(times)
    return max((bisect_right(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


def provider_figures(directory: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    records = read_jsonl(directory)
    for channel in ("sms", "email"):
        times = [
            datetime.fromisoformat(r["sent_at"]).timestamp()
            for r in records
            if r["channel"] == channel
        ]
        if not times:
            continue
        span = max(times) - min(times)
        figures[channel] = {
            "sent": len(times),
            "max_in_1s": max_in_window(times),
            "span_s": round(span, 2),
            "mean_rate": round((len(times) - 1) / span, 2) if span > 0 else None,
        }
    return figures


def make_worker(db_url: str, dryrun_dir: Path, name: str, **overrides: Any) -> Any:
    from reminders.runtime import Runtime
    from reminders.worker import Worker

    settings = bench_settings(
        database_url=db_url,
        dryrun_dir=dryrun_dir,
        worker_id=name,
        dryrun_rate_per_second=RATE,
        send_concurrency=CONCURRENCY,
        **overrides,
    )
    runtime = Runtime(settings)
    return runtime, Worker(runtime, clock=lambda: NOW)


def worker_main(db_url: str, dryrun_dir: str, start_at: float, name: str) -> int:
    # Small batches, so that both workers get a share of the outbox.
    runtime, worker = make_worker(db_url, Path(dryrun_dir), name, dispatch_batch_size=10)
    time.sleep(max(0.0, start_at - time.time()))
    sent = 0
    while True:
        result = worker.dispatcher.run_pass(NOW)
        sent += result.sent
        if result.handled == 0:
            break
    worker.close()
    runtime.close()
    print(json.dumps({"name": name, "sent": sent}), flush=True)
    return 0


def prepare(work: Path, name: str, sms: int, email: int, url: str | None = None) -> str:
    """A due outbox in a fresh SQLite file, or in the given (PostgreSQL) database; returns its URL."""
    db_path = work / f"{name}.db"
    engine = migrated(url) if url else fresh_sqlite(db_path)
    insert_locations(engine)
    due_outbox(
        engine, messages=2 * email, due_at=NOW - timedelta(minutes=5), session_start=SESSION_START
    )
    due_outbox(
        engine,
        messages=sms - email,
        due_at=NOW - timedelta(minutes=5),
        session_start=SESSION_START,
        first_patient=100_000,
        channels=("sms",),
    )
    engine.dispose()
    return url or f"sqlite:///{db_path}"


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, worker_url, worker_dir, worker_start, worker_name = sys.argv
        return worker_main(worker_url, worker_dir, float(worker_start), worker_name)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args(argv)
    sms, email = (60, 30) if args.quick else (200, 100)
    print("machine:", machine_info(), flush=True)
    work = bench_dir("rate")
    try:
        # One worker process.
        db_url = prepare(work, "one", sms, email)
        dry = work / "dry-one"
        runtime, worker = make_worker(db_url, dry, "bench-rate")
        load = loadavg()
        start = time.perf_counter()
        result = worker.dispatcher.run_pass(NOW)
        elapsed = time.perf_counter() - start
        worker.close()
        runtime.close()
        per = provider_figures(dry)
        worst = max(f["max_in_1s"] for f in per.values())
        figures: dict[str, Any] = {
            "rate_per_second": RATE,
            "send_concurrency": CONCURRENCY,
            "messages": sms + email,
            "report": result.line(),
            "elapsed_s": round(elapsed, 2),
            "per_provider": per,
            "max_in_1s": worst,
            "loadavg_before": load,
            "verdict": verdict(worst, RATE + 1, at_most=True),
        }
        print(f"[one process] {result.line()} in {elapsed:.1f} s; per provider {per}", flush=True)
        print(f"  max sends in any 1 s window: {worst} -> {figures['verdict']}", flush=True)

        # Two worker processes sharing a PostgreSQL database (the supported multi-worker set-up):
        # the rate is shared through the database (reminders/providers/ratelimit.py).
        if not Postgres.available():
            report("rate", figures)
            return 0
        pg = Postgres()
        db_url = prepare(work, "two", sms, email, url=pg.database("rate_two"))
        dry = work / "dry-two"
        start_at = time.time() + 6.0
        procs = [
            subprocess.Popen(
                [
                    PYTHON,
                    __file__,
                    "--worker",
                    str(db_url),
                    str(dry),
                    str(start_at),
                    f"bench-rate-{i}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        for p in procs:
            p.communicate(timeout=600)
            if p.returncode != 0:
                raise RuntimeError(f"worker exited with {p.returncode}")
        pg.stop()
        per_two = provider_figures(dry)
        figures["two_processes"] = {
            "per_provider": per_two,
            "max_in_1s": max(f["max_in_1s"] for f in per_two.values()),
        }
        figures["two_processes"]["verdict"] = verdict(
            figures["two_processes"]["max_in_1s"], RATE + 1, at_most=True
        )
        print(
            f"[two processes, PostgreSQL] per provider {per_two}: max in 1 s "
            f"{figures['two_processes']['max_in_1s']} (configured {RATE:g}/s per provider) -> "
            f"{figures['two_processes']['verdict']}",
            flush=True,
        )
        report("rate", figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
