"""Peak memory with 1,000,000 sessions in the database (docs/design.md section 10: <= 200 MB).

100,000 patients x 10 sessions are bulk-inserted into a fresh SQLite file: 70% of the
patients are in maintenance (8 completed sessions over the past months, 2 booked in the
next 4-60 days), 30% have lapsed (10 completed, the last 10-40 days ago: they are due
maintenance nudges). About 14% of the sessions are upcoming. Then, each in a fresh process
(so the generator's memory does not count), measuring peak RSS (VmHWM):

* baseline: imports, settings, Runtime, Worker; no work;
* plan: ``Worker.plan_step`` over every patient (all marked ``needs_plan``);
* dispatch: ``Worker.dispatch_step`` one day later (everything due by then is sent to the
  dry-run provider).

    .venv/bin/python bench/memory_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import (
    BENCH_NOW,
    LOCATIONS,
    PYTHON,
    bench_dir,
    bench_settings,
    cpu_seconds,
    fresh_sqlite,
    insert_chunked,
    insert_locations,
    loadavg,
    local_start,
    machine_info,
    patient_row,
    peak_rss_mb,
    report,
    session_row,
    verdict,
)

from reminders.db.models import Patient, TreatmentSession

TARGET_MB = 200.0
DISPATCH_NOW = BENCH_NOW + timedelta(days=1)


def generate(engine: Any, patients: int, seed: int = 3) -> int:
    rng = random.Random(seed)
    insert_locations(engine)
    insert_chunked(engine, Patient.__table__, (patient_row(i, rng) for i in range(patients)))

    def sessions() -> Iterator[dict[str, Any]]:
        r = random.Random(seed + 1)
        for i in range(patients):
            pid = f"p{i:07d}"
            location = LOCATIONS[i % len(LOCATIONS)]
            today = BENCH_NOW.astimezone(ZoneInfo(location[2])).date()
            if r.random() < 0.7:  # in maintenance: 8 completed, 2 booked
                past = [today - timedelta(days=7 + 21 * k + r.randrange(5)) for k in range(8)]
                future = sorted(r.sample(range(4, 61), 2))
                days = [(d, "completed") for d in past] + [
                    (today + timedelta(days=f), "scheduled") for f in future
                ]
            else:  # lapsed: 10 completed, nothing booked
                last = today - timedelta(days=10 + r.randrange(31))
                days = [
                    (last - timedelta(days=18 * k + r.randrange(4)), "completed") for k in range(10)
                ]
            for n, (day, status) in enumerate(sorted(days)):
                yield session_row(
                    f"s{i:07d}-{n}", pid, location, local_start(day, location[2], r), status=status
                )

    return insert_chunked(engine, TreatmentSession.__table__, sessions(), chunk=50_000)


# --- child-process mode ------------------------------------------------------------------------


def child_main(step: str, db_path: str, dryrun_dir: str) -> int:
    from sqlalchemy import func, select

    from reminders.db.models import Message
    from reminders.runtime import Runtime
    from reminders.worker import Worker

    runtime = Runtime(
        bench_settings(database_url=f"sqlite:///{db_path}", dryrun_dir=Path(dryrun_dir))
    )
    worker = Worker(runtime, clock=lambda: DISPATCH_NOW if step == "dispatch" else BENCH_NOW)
    with runtime.session_factory() as db:
        db.scalar(
            select(func.count()).select_from(Message).where(Message.id < 0)
        )  # open a connection
    ready_mb = peak_rss_mb()
    start, cpu = time.perf_counter(), cpu_seconds()
    summary = ""
    if step == "plan":
        summary = worker.plan_step(BENCH_NOW).line()
    elif step == "dispatch":
        summary = worker.dispatch_step(DISPATCH_NOW).line()
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    worker.close()
    print(
        json.dumps(
            {
                "step": step,
                "ready_peak_mb": round(ready_mb, 1),
                "peak_mb": round(peak_rss_mb(), 1),
                "elapsed_s": round(elapsed, 2),
                "cpu_s": round(cpu, 2),
                "summary": summary,
            }
        ),
        flush=True,
    )
    return 0


def run_child(step: str, db_path: Path, dryrun_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, __file__, "--child", step, str(db_path), str(dryrun_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise RuntimeError(f"{step} child exited with {out.returncode}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, child_step, child_db_path, child_dryrun_dir = sys.argv
        return child_main(child_step, child_db_path, child_dryrun_dir)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--patients", type=int, default=None)
    args = parser.parse_args(argv)
    patients = args.patients or (2_000 if args.quick else 100_000)
    print("machine:", machine_info(), flush=True)
    work = bench_dir("memory")
    try:
        db_path = work / "memory.db"
        engine = fresh_sqlite(db_path)
        print(f"generating {patients} patients x 10 sessions", flush=True)
        t0 = time.perf_counter()
        sessions = generate(engine, patients)
        engine.dispose()
        print(
            f"  inserted {sessions} sessions in {time.perf_counter() - t0:.1f} s; "
            f"database {db_path.stat().st_size / 1e6:.0f} MB",
            flush=True,
        )
        figures: dict[str, Any] = {"sessions": sessions, "patients": patients}
        for step in ("baseline", "plan", "dispatch"):
            load = loadavg()
            result = run_child(step, db_path, work / "dry")
            result["loadavg_before"] = load
            figures[step] = result
            print(
                f"  {step}: peak RSS {result['peak_mb']} MB (after start-up {result['ready_peak_mb']} MB), "
                f"{result['elapsed_s']} s wall, {result['cpu_s']} s CPU  {result['summary']}",
                flush=True,
            )
        peak = max(figures[s]["peak_mb"] for s in ("plan", "dispatch"))
        figures["peak_mb"] = peak
        figures["database_mb"] = round(db_path.stat().st_size / 1e6)
        figures["verdict"] = verdict(peak, TARGET_MB, at_most=True)
        print(f"  peak RSS {peak} MB: {figures['verdict']}", flush=True)
        report("memory", figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
