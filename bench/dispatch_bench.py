"""Dispatch throughput to the dry-run provider (docs/design.md section 10: >= 300 messages/s on SQLite; on
PostgreSQL two worker processes together >= 500 messages/s with zero duplicates).

20,000 planned reminders (half day-before SMS, half preparation email with its .ics
attachment and unsubscribe link), each for its own upcoming session, for consenting
patients, all due at a daytime ``now`` (no quiet hours), are bulk-inserted; then:

* SQLite: one ``Dispatcher.run_pass(now)`` (default batch size and send concurrency) in this
  process, with the daemon's INFO logging going to a file;
* PostgreSQL: the same outbox, first one worker process (for scale), then two worker processes
  (``--worker`` mode of this script: a Runtime, a Worker's dispatcher, ``run_pass(now)``
  until nothing is due) started together; combined messages/s, and duplicates counted by
  ``message_id`` in the dry-run JSONL files (must be 0).

    .venv/bin/python bench/dispatch_bench.py [--quick] [--no-pg] [--profile] [--messages N]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import (
    BENCH_NOW,
    PYTHON,
    Postgres,
    bench_dir,
    bench_settings,
    cpu_seconds,
    due_outbox,
    duplicates,
    fresh_sqlite,
    insert_locations,
    loadavg,
    machine_info,
    migrated,
    production_logging,
    read_jsonl,
    report,
    verdict,
)
from sqlalchemy import Engine, func, select

from reminders.db.engine import make_session_factory
from reminders.db.models import Message

TARGET_SQLITE = 300.0
TARGET_PG_TWO = 500.0
NOW = BENCH_NOW
SESSION_START = BENCH_NOW + timedelta(hours=26)


def populate(engine: Engine, messages: int) -> None:
    insert_locations(engine)
    due_outbox(
        engine, messages=messages, due_at=NOW - timedelta(minutes=5), session_start=SESSION_START
    )


def status_counts(engine: Engine) -> dict[str, int]:
    with make_session_factory(engine)() as db:
        return {
            s: n
            for s, n in db.execute(select(Message.status, func.count()).group_by(Message.status))
        }


def make_worker(url: str, dryrun_dir: Path, worker_id: str) -> Any:
    from reminders.runtime import Runtime
    from reminders.worker import Worker

    runtime = Runtime(bench_settings(database_url=url, dryrun_dir=dryrun_dir, worker_id=worker_id))
    return runtime, Worker(runtime, clock=lambda: NOW)


# --- worker-process mode -----------------------------------------------------------------------


def worker_main(url: str, dryrun_dir: Path, start_at: float, name: str) -> int:
    """One worker process: warm up, wait for the common start, dispatch until nothing is due."""
    production_logging(dryrun_dir / f"{name}.log")
    runtime, worker = make_worker(url, dryrun_dir, name)
    with runtime.engine.connect():
        pass  # open the pool's first connection before the clock starts
    time.sleep(max(0.0, start_at - time.time()))
    began, cpu = time.time(), cpu_seconds()
    total: dict[str, int] = {}
    while True:
        result = worker.dispatcher.run_pass(NOW)
        for k, v in vars(result).items():
            total[k] = total.get(k, 0) + v
        if result.handled == 0:
            break
    ended, cpu = time.time(), cpu_seconds() - cpu
    worker.close()
    runtime.close()
    print(
        json.dumps({"name": name, "began": began, "ended": ended, "cpu_s": cpu, "report": total}),
        flush=True,
    )
    return 0


def run_workers(url: str, dryrun_dir: Path, count: int) -> dict[str, Any]:
    start_at = time.time() + 6.0  # leave time for imports and connections
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                __file__,
                "--worker",
                url,
                str(dryrun_dir),
                str(start_at),
                f"bench-worker-{i}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"worker exited with {p.returncode}")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    if any(o["began"] > start_at + 1.0 for o in outs):
        print(
            "  warning: a worker started late (imports took longer than the head start)", flush=True
        )
    began = min(o["began"] for o in outs)
    ended = max(o["ended"] for o in outs)
    sent = sum(o["report"].get("sent", 0) for o in outs)
    cpu = sum(o["cpu_s"] for o in outs)
    return {
        "elapsed_s": round(ended - began, 2),
        "sent": sent,
        "per_worker": {o["name"]: o["report"] for o in outs},
        "rate": round(sent / (ended - began), 1),
        "workers_cpu_s": round(cpu, 2),
        "worker_cpu_ms_per_message": round(1000 * cpu / sent, 2) if sent else None,
    }


# --- benchmarks --------------------------------------------------------------------------------


def bench_sqlite(work: Path, messages: int, profile: bool) -> dict[str, Any]:
    print(f"[sqlite] {messages} due messages, one process, Dispatcher.run_pass", flush=True)
    db_path = work / "dispatch.db"
    engine = fresh_sqlite(db_path)
    populate(engine, messages)
    url = f"sqlite:///{db_path}"
    dry = work / "dry-sqlite"
    production_logging(work / "sqlite.log")
    runtime, worker = make_worker(url, dry, "bench-sqlite")
    load = loadavg()
    start, cpu = time.perf_counter(), cpu_seconds()
    result = worker.dispatcher.run_pass(NOW)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    worker.close()
    records = read_jsonl(dry)
    counts = status_counts(engine)
    figures: dict[str, Any] = {
        "backend": "sqlite",
        "processes": 1,
        "messages": messages,
        "elapsed_s": round(elapsed, 2),
        "sent": result.sent,
        "report": result.line(),
        "rate": round(result.sent / elapsed, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_message": round(1000 * cpu / result.sent, 2) if result.sent else None,
        "loadavg_before": load,
        "jsonl_records": len(records),
        "duplicates": duplicates(records),
        "statuses": counts,
        "batch_size": runtime.settings.dispatch_batch_size,
        "send_concurrency": runtime.settings.send_concurrency,
    }
    figures["verdict"] = verdict(figures["rate"], TARGET_SQLITE, at_most=False)
    print(
        f"  {result.line()} in {elapsed:.2f} s: {figures['rate']} messages/s -> {figures['verdict']}",
        flush=True,
    )
    print(
        f"  CPU {cpu:.2f} s = {figures['cpu_ms_per_message']} ms per message (load before: {load})",
        flush=True,
    )
    print(
        f"  statuses {counts}; dry-run lines {len(records)}, duplicates {figures['duplicates']}",
        flush=True,
    )

    if profile:
        profile_sqlite(work, min(messages, 2000))
    runtime.close()
    engine.dispose()
    return figures


def profile_sqlite(work: Path, messages: int) -> None:
    """cProfile a pass with one send thread (cProfile sees only the thread it runs in, so the
    batch preparation is profiled; sends run in the pool's thread)."""
    db_path = work / "dispatch-profile.db"
    engine = fresh_sqlite(db_path)
    populate(engine, messages)
    runtime, worker = make_worker(f"sqlite:///{db_path}", work / "dry-profile", "bench-profile")
    profiler = cProfile.Profile()
    start = time.perf_counter()
    threading.setprofile(None)
    profiler.enable()
    done = worker.dispatcher.run_pass(NOW).sent
    profiler.disable()
    elapsed = time.perf_counter() - start
    print(
        f"  profile: {done} messages sequentially in {elapsed:.2f} s ({done / elapsed:.0f}/s, single thread)"
    )
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())
    worker.close()
    runtime.close()
    engine.dispose()


def bench_pg(work: Path, messages: int) -> list[dict[str, Any]]:
    results = []
    pg = Postgres()
    try:
        for processes in (1, 2):
            print(
                f"[postgresql] {messages} due messages, {processes} worker process(es)", flush=True
            )
            url = pg.database(f"dispatch_{processes}")
            engine = migrated(url)
            populate(engine, messages)
            dry = work / f"dry-pg-{processes}"
            dry.mkdir(parents=True, exist_ok=True)
            load = loadavg()
            run = run_workers(url, dry, processes)
            records = read_jsonl(dry)
            counts = status_counts(engine)
            figures: dict[str, Any] = {
                "backend": "postgresql",
                "processes": processes,
                "messages": messages,
                **run,
                "loadavg_before": load,
                "jsonl_records": len(records),
                "duplicates": duplicates(records),
                "statuses": counts,
            }
            if processes == 2:
                figures["verdict"] = verdict(run["rate"], TARGET_PG_TWO, at_most=False)
                figures["duplicates_verdict"] = (
                    "MET (0 duplicates)" if figures["duplicates"] == 0 else "MISSED"
                )
            print(
                f"  sent {run['sent']} in {run['elapsed_s']} s: {run['rate']} messages/s "
                f"{figures.get('verdict', '(reference)')}",
                flush=True,
            )
            print(
                f"  per worker {run['per_worker']}; workers' CPU {run['workers_cpu_s']} s "
                f"({run['worker_cpu_ms_per_message']} ms/message); load before {load}",
                flush=True,
            )
            print(
                f"  statuses {counts}; dry-run lines {len(records)}, duplicates {figures['duplicates']}",
                flush=True,
            )
            engine.dispose()
            results.append(figures)
    finally:
        pg.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, url, directory, start_at, name = sys.argv
        return worker_main(url, Path(directory), float(start_at), name)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the per-message path on SQLite"
    )
    parser.add_argument("--messages", type=int, default=None)
    args = parser.parse_args(argv)
    messages = args.messages or (600 if args.quick else 20_000)
    print("machine:", machine_info(), flush=True)
    work = bench_dir("dispatch")
    try:
        report("dispatch", bench_sqlite(work, messages, args.profile))
        if not args.no_pg and Postgres.available():
            for figures in bench_pg(work, messages):
                report("dispatch", figures)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
