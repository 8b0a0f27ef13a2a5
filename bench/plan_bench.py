"""Planning 100,000 upcoming sessions into the outbox (docs/design.md section 10: <= 20 s on SQLite; a
re-plan with nothing changed <= 2 s).

25,000 patients x 4 infusions in the next 30 days (5 locations across US zones, a fifth of
the patients with their own zone, crossing a daylight-saving change) are bulk-inserted with
``needs_plan`` set into a freshly migrated database; then ``plan_pass`` runs three times: the
first plan, a second with nothing changed, and a third after 1% of the patients changed.
With ``--policy-change``, a fourth pass after the policy changed under every patient (the ride
SMS goes 3 h instead of 2 h before the session: one message in four moves, the re-plan's
batched UPDATEs).

    .venv/bin/python bench/plan_bench.py [--quick] [--no-pg | --pg-only] [--profile]
                                         [--policy-change]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import shutil
import sys
import time
from typing import Any

from _common import (
    BENCH_NOW,
    Postgres,
    bench_dir,
    bench_settings,
    cpu_seconds,
    fresh_sqlite,
    loadavg,
    machine_info,
    migrated,
    report,
    timed,
    upcoming_clinic,
    verdict,
)
from sqlalchemy import Engine, func, select

from reminders.clinic.changes import mark_patients_dirty
from reminders.conversations.prep_flags import flag_late_preparation
from reminders.db.engine import make_session_factory
from reminders.db.models import Message
from reminders.planning.plan_pass import plan_pass
from reminders.planning.policy import Offset, Policy, load_policy

TARGET_FIRST_S = 20.0
TARGET_REPLAN_S = 2.0


def run_plan(
    engine: Engine, policy: Any, zone: Any, profile: bool = False
) -> tuple[float, float, Any, str]:
    """(wall seconds, CPU seconds of this process, PlanReport, profile text)."""
    factory = make_session_factory(engine)
    profiler = cProfile.Profile() if profile else None
    with factory() as db:
        start, cpu = time.perf_counter(), cpu_seconds()
        if profiler:
            profiler.enable()
        result = plan_pass(db, policy=policy, default_tz=zone, now=BENCH_NOW)
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    text = ""
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(20)
        text = out.getvalue()
    return elapsed, cpu, result, text


def later_ride(policy: Policy) -> Policy:
    """The same policy with the ride SMS 3 h before the session instead of 2 h."""
    changed = policy.model_copy(deep=True)
    for rule in changed.rules:
        if rule.name == "infusion-ride-sms":
            rule.when = Offset(days=0, minutes=-180)
    return changed


def bench_backend(
    label: str,
    engine: Engine,
    *,
    patients: int,
    per_patient: int,
    profile: bool,
    policy_change: bool = False,
) -> dict[str, Any]:
    settings = bench_settings()
    policy = load_policy(settings.policy_path)
    zone = settings.zone
    figures: dict[str, Any] = {"backend": label}
    print(
        f"[{label}] generating {patients} patients x {per_patient} upcoming infusions", flush=True
    )
    t0 = time.perf_counter()
    n_patients, n_sessions = upcoming_clinic(
        engine, patients=patients, sessions_per_patient=per_patient, now=BENCH_NOW
    )
    figures.update(
        patients=n_patients, sessions=n_sessions, insert_s=round(time.perf_counter() - t0, 2)
    )
    print(f"  inserted {n_sessions} sessions in {figures['insert_s']} s", flush=True)

    figures["loadavg_before"] = loadavg()
    first, first_cpu, result, prof = run_plan(engine, policy, zone, profile)
    figures["first_plan_s"] = round(first, 2)
    figures["first_plan_cpu_s"] = round(first_cpu, 2)
    figures["first_plan_report"] = result.line()
    print(
        f"  first plan_pass: {first:.2f} s wall, {first_cpu:.2f} s CPU in this process "
        f"(load {figures['loadavg_before']})  ({result.line()})",
        flush=True,
    )
    if prof:
        print(prof)

    with make_session_factory(engine)() as db:
        rows = db.execute(
            select(Message.kind, Message.channel, func.count()).group_by(
                Message.kind, Message.channel
            )
        ).all()
        total = db.scalar(select(func.count()).select_from(Message))
    assert total is not None  # COUNT(*) always returns a row
    figures["outbox_rows"] = total
    figures["outbox_by_kind_channel"] = {f"{k}/{c}": n for k, c, n in rows}
    figures["outbox_rows_per_s"] = round(total / first, 0) if first else None
    print(f"  outbox rows: {total} ({figures['outbox_by_kind_channel']})", flush=True)

    # The late-preparation check (issue 12) runs on every safety pass (each second by default):
    # the first call raises the flags, the next ones are the steady state.
    for label_, key in (("first", "prep_flags_first_s"), ("steady", "prep_flags_steady_s")):
        with make_session_factory(engine)() as db:
            start = time.perf_counter()
            raised = flag_late_preparation(db, settings, policy, BENCH_NOW)
            figures[key] = round(time.perf_counter() - start, 3)
        figures[f"{key.removesuffix('_s')}_raised"] = raised
        print(
            f"  late-preparation check ({label_}): {figures[key]:.3f} s, {raised} flags", flush=True
        )

    second, _, result2, _ = run_plan(engine, policy, zone)
    figures["replan_unchanged_s"] = round(second, 3)
    print(f"  second plan_pass (nothing changed): {second:.3f} s  ({result2.line()})", flush=True)

    # 1% of the patients changed (e.g. a clinic sync touched their sessions).
    rng = random.Random(5)
    dirty = [f"p{i:07d}" for i in rng.sample(range(n_patients), max(1, n_patients // 100))]
    with make_session_factory(engine)() as db:
        mark_patients_dirty(db, dirty)
        db.commit()
    third, _, result3, _ = run_plan(engine, policy, zone)
    figures["replan_1pct_s"] = round(third, 3)
    figures["replan_1pct_patients"] = result3.patients
    print(
        f"  plan_pass after {len(dirty)} patients marked dirty: {third:.3f} s  ({result3.line()})",
        flush=True,
    )

    if policy_change:
        fourth, _, result4, _ = run_plan(engine, later_ride(policy), zone)
        figures["replan_policy_change_s"] = round(fourth, 2)
        figures["replan_policy_change_report"] = result4.line()
        print(f"  plan_pass after a policy change: {fourth:.2f} s  ({result4.line()})", flush=True)

    figures["first_plan_verdict"] = verdict(first, TARGET_FIRST_S, at_most=True)
    figures["replan_verdict"] = verdict(second, TARGET_REPLAN_S, at_most=True)
    print(
        f"  first plan: {figures['first_plan_verdict']}; unchanged re-plan: {figures['replan_verdict']}",
        flush=True,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--pg-only", action="store_true", help="skip the SQLite run")
    parser.add_argument(
        "--policy-change",
        action="store_true",
        help="a fourth pass after a policy change that moves one message in four",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the first plan pass")
    parser.add_argument("--patients", type=int, default=None)
    args = parser.parse_args(argv)
    patients = args.patients or (500 if args.quick else 25_000)
    per_patient = 4
    print("machine:", machine_info(), flush=True)

    work = bench_dir("plan")
    try:
        if not args.pg_only:
            with timed("migrate sqlite"):
                engine = fresh_sqlite(work / "plan.db")
            figures = bench_backend(
                "sqlite",
                engine,
                patients=patients,
                per_patient=per_patient,
                profile=args.profile,
                policy_change=args.policy_change,
            )
            engine.dispose()
            report("plan", figures)

        if not args.no_pg and Postgres.available():
            pg = Postgres()
            try:
                engine = migrated(pg.database("plan_bench"))
                figures = bench_backend(
                    "postgresql",
                    engine,
                    patients=patients,
                    per_patient=per_patient,
                    profile=args.profile,
                    policy_change=args.policy_change,
                )
                engine.dispose()
                report("plan", figures)
            finally:
                pg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
