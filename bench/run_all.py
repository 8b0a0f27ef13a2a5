"""Run every benchmark (each in its own process) and print a summary of the targets.

    .venv/bin/python bench/run_all.py [--quick] [--no-pg] [--json FILE] [--only NAME ...]

Exits non-zero only when a benchmark crashed, never because a target was missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHES = [
    "plan", "dispatch", "memory", "latency", "rate", "inbound", "page", "crisis_screen", "today",
]  # fmt: skip
PG_AWARE = {"plan", "dispatch", "today"}
SCRIPTS = {  # others: <name>_bench.py
    "inbound": "inbound_load.py",
    "page": "page_latency.py",
    "crisis_screen": "crisis_screen.py",
}


def summary_lines(result: dict[str, Any]) -> list[str]:
    name = result["bench"]
    if name == "plan":
        return [
            f"plan [{result['backend']}]: first pass {result['first_plan_s']} s for {result['sessions']} sessions "
            f"-> {result['outbox_rows']} outbox rows: {result['first_plan_verdict']}",
            f"plan [{result['backend']}]: re-plan, nothing changed {result['replan_unchanged_s']} s: "
            f"{result['replan_verdict']}; 1% changed {result['replan_1pct_s']} s",
        ]
    if name == "dispatch":
        line = (
            f"dispatch [{result['backend']}, {result['processes']} process(es)]: {result['rate']} messages/s, "
            f"{result['duplicates']} duplicates"
        )
        return [line + (f": {result['verdict']}" if "verdict" in result else " (reference)")]
    if name == "memory":
        return [
            f"memory: peak RSS {result['peak_mb']} MB with {result['sessions']} sessions "
            f"(plan {result['plan']['peak_mb']} MB, dispatch {result['dispatch']['peak_mb']} MB): {result['verdict']}"
        ]
    if name == "latency":
        o, p = result["outbox_delay_s"], result["provider_delay_s"]
        return [
            f"latency: outbox p50 {o['p50']} s p99 {o['p99']} s: {result['verdict']}; "
            f"provider-call p50 {p['p50']} s p99 {p['p99']} s: {result['provider_verdict']}"
        ]
    if name == "rate":
        return [
            f"rate: max {result['max_in_1s']} sends in any 1 s at {result['rate_per_second']:g}/s: "
            f"{result['verdict']}; two processes: {result['two_processes']['max_in_1s']}"
        ]
    if name == "inbound":
        first = result["inbound_first_attempt_s"]
        return [
            f"inbound SMS under console load: p50 {first['p50']} s p99 {first['p99']} s: "
            f"{result['verdict']}; {result['inbound_5xx']} 5xx, {result['inbound_lost']} lost of "
            f"{result['inbound_sent']}: {result['lost_verdict']}"
        ]
    if name == "crisis_screen":
        return [
            f"risk screen [{split}]: recall {result[split]['recall']:.1%} (target 99%), false alarms "
            f"{result[split]['false_alarms']:.1%} (target 5%), p99 {result[split]['ms_per_message']['p99']} ms"
            for split in ("locked", "locked2", "locked3", "unseen")
            if split in result
        ]
    if name == "page":
        page, hook = result["page_latency_s"], result["webhook_response_s"]
        return [
            f"inbound-to-page: p50 {page['p50']} s p99 {page['p99']} s: {result['verdict']}; "
            f"{result['no_alert']} of {result['inbound_sent']} without a page: "
            f"{result['no_alert_verdict']}; webhook p50 {hook['p50']} s p99 {hook['p99']} s"
        ]
    return [json.dumps(result)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    parser.add_argument("--only", nargs="*", choices=BENCHES, default=None)
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    crashed: list[str] = []
    for name in args.only or BENCHES:
        cmd = [sys.executable, str(HERE / SCRIPTS.get(name, f"{name}_bench.py"))]
        if args.quick:
            cmd.append("--quick")
        if args.no_pg and name in PG_AWARE:
            cmd.append("--no-pg")
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.startswith("BENCH-RESULT "):
                results.append(json.loads(line[len("BENCH-RESULT ") :]))
        proc.wait()
        print(
            f"=== {name}: exit {proc.returncode} after {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        if proc.returncode != 0:
            crashed.append(name)

    print(
        "\n=== summary" + (" (quick sizes: not comparable with the targets)" if args.quick else "")
    )
    for result in results:
        for line in summary_lines(result):
            print("  " + line)
    if crashed:
        print(f"  CRASHED: {', '.join(crashed)}")
    if args.json:
        args.json.write_text(
            json.dumps({"quick": args.quick, "results": results, "crashed": crashed}, indent=2)
        )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
