"""Measure the crisis screen on the labelled set: recall and false-alarm rate.

    .venv/bin/python bench/crisis_screen.py [--file tests/data/crisis_labelled.jsonl] [--phrases FILE] [-v]

Recall = crisis messages flagged / crisis messages (must be 100%).
False-alarm rate = non-crisis messages flagged / non-crisis messages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reminders.conversations.crisis import CrisisScreen  # noqa: E402
from reminders.defaults import CRISIS_PHRASES_FILE  # noqa: E402


def load_labelled(path: Path) -> list[dict[str, object]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


class Evaluation(TypedDict):
    messages: int
    crisis: int
    not_crisis: int
    recall: float
    false_alarm_rate: float
    misses: list[dict[str, object]]
    false_alarms: list[dict[str, object]]


def evaluate(screen: CrisisScreen, rows: list[dict[str, object]]) -> Evaluation:
    misses: list[dict[str, object]] = []
    false_alarms: list[dict[str, object]] = []
    for row in rows:
        hit = screen.screen(str(row["text"]))
        if row["crisis"] and hit is None:
            misses.append(row)
        elif not row["crisis"] and hit is not None:
            false_alarms.append({**row, "phrase": hit.phrase})
    crisis = sum(1 for r in rows if r["crisis"])
    safe = len(rows) - crisis
    return {
        "messages": len(rows),
        "crisis": crisis,
        "not_crisis": safe,
        "recall": (crisis - len(misses)) / crisis if crisis else 1.0,
        "false_alarm_rate": len(false_alarms) / safe if safe else 0.0,
        "misses": misses,
        "false_alarms": false_alarms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--file", type=Path, default=ROOT / "tests" / "data" / "crisis_labelled.jsonl"
    )
    parser.add_argument("--phrases", type=Path, default=CRISIS_PHRASES_FILE)
    parser.add_argument("-v", "--verbose", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    screen = CrisisScreen.from_file(args.phrases)
    rows = load_labelled(args.file)
    started = time.perf_counter()
    result = evaluate(screen, rows)
    elapsed = time.perf_counter() - started
    print(
        f"labelled messages: {result['messages']} ({result['crisis']} crisis, {result['not_crisis']} not)"
    )
    print(f"recall (crisis flagged): {result['recall']:.1%}  misses: {len(result['misses'])}")
    print(
        f"false-alarm rate: {result['false_alarm_rate']:.1%}  "
        f"({len(result['false_alarms'])} of {result['not_crisis']})"
    )
    print(f"screening time: {elapsed / len(rows) * 1000:.2f} ms per message")
    if args.verbose:
        for row in result["misses"]:
            print(f"MISS  [{row['lang']}] {row['text']}")
        for row in result["false_alarms"]:
            print(f"FALSE [{row['lang']}] {row['text']}  <- {row['phrase']}")
    return 0 if result["recall"] == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
