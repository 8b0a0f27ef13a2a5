"""Measure the risk screen on labelled messages: recall, false alarms, time per message.

    .venv/bin/python bench/crisis_screen.py [--split locked|unseen|train|all] [--show-misses]

Splits (``corpus/crisis/``, see its README): ``locked`` is the locked test split, written by a
separate author with a separate brief and never used for tuning; ``locked2`` and ``locked3``
more of them, by other authors; ``unseen`` is a further set,
written by another author, also never used for tuning; ``train`` is what the rules and the
classifier were built from (figures on it are flattering by construction).

- recall = crisis messages the screen pages for (tier "crisis") / crisis messages;
- caught at any tier = crisis messages paged or put in urgent review;
- false alarms = ordinary messages paged for / ordinary messages (urgent-review flags on
  ordinary messages are reported separately);
- review messages paged = review messages (negated, past, other person, distress) paged for.

``--show-misses`` lists the messages missed and the false alarms, and only for the train split:
looking at the locked or unseen messages would turn them into tuning data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import machine_info, percentile, report  # noqa: E402

from reminders.conversations.risk import RiskScreen, risk_screen_for  # noqa: E402
from reminders.settings import Settings  # noqa: E402

CORPUS = ROOT / "corpus" / "crisis"
SPLITS = {
    "locked": ["locked_test.jsonl"],
    "locked2": ["locked_test_2.jsonl"],
    "locked3": ["locked_test_3.jsonl"],
    "unseen": ["unseen.jsonl"],
    "train": sorted(p.name for p in CORPUS.glob("train_*.jsonl")),
}
TARGETS = {"recall": 0.99, "false_alarms": 0.05, "p99_ms": 20.0}


def load(names: list[str]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for name in names:
        text = (CORPUS / name).read_text(encoding="utf-8")
        rows += [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


def evaluate(screen: RiskScreen, rows: list[dict[str, str]]) -> dict[str, Any]:
    timings: list[float] = []
    predicted: list[str] = []
    for row in rows:
        started = time.perf_counter()
        finding = screen.assess(row["text"])
        timings.append((time.perf_counter() - started) * 1000)
        predicted.append(finding.tier if finding else "none")
    crisis = [i for i, r in enumerate(rows) if r["label"] == "crisis"]
    ordinary = [i for i, r in enumerate(rows) if r["label"] == "ordinary"]
    review = [i for i, r in enumerate(rows) if r["label"] == "review"]
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for i in crisis:
        cell = by_category[rows[i]["category"]]
        cell[0] += predicted[i] == "crisis"
        cell[1] += predicted[i] != "none"
        cell[2] += 1
        lang = by_language[rows[i]["language"]]
        lang[0] += predicted[i] == "crisis"
        lang[1] += 1
    for i in ordinary:
        lang = by_language[rows[i]["language"]]
        lang[2] += predicted[i] == "crisis"
        lang[3] += 1
    paged = sum(predicted[i] == "crisis" for i in crisis)
    return {
        "messages": len(rows),
        "crisis": len(crisis),
        "ordinary": len(ordinary),
        "review": len(review),
        "recall": ratio(paged, len(crisis)),
        "caught_any_tier": ratio(sum(predicted[i] != "none" for i in crisis), len(crisis)),
        "false_alarms": ratio(sum(predicted[i] == "crisis" for i in ordinary), len(ordinary)),
        "ordinary_flagged_review": ratio(
            sum(predicted[i] == "review" for i in ordinary), len(ordinary)
        ),
        "review_paged": ratio(sum(predicted[i] == "crisis" for i in review), len(review)),
        "review_flagged_any": ratio(sum(predicted[i] != "none" for i in review), len(review)),
        "by_category": {
            k: {"recall": ratio(v[0], v[2]), "any_tier": ratio(v[1], v[2]), "n": v[2]}
            for k, v in sorted(by_category.items())
        },
        "by_language": {
            k: {
                "recall": ratio(v[0], v[1]),
                "crisis": v[1],
                "false_alarms": ratio(v[2], v[3]),
                "ordinary": v[3],
            }
            for k, v in sorted(by_language.items())
        },
        "ms_per_message": {
            "p50": round(percentile(timings, 50), 3),
            "p99": round(percentile(timings, 99), 3),
            "max": round(max(timings), 3),
        },
        "ordinary_by_category_paged": dict(
            Counter(rows[i]["category"] for i in ordinary if predicted[i] == "crisis")
        ),
        "_predicted": predicted,
    }


def print_result(split: str, result: dict[str, Any]) -> None:
    print(
        f"\n== {split}: {result['messages']} messages ({result['crisis']} crisis, "
        f"{result['review']} review, {result['ordinary']} ordinary)"
    )
    print(
        f"recall (paged) {result['recall']:.1%}   caught at any tier {result['caught_any_tier']:.1%}"
        f"   false alarms {result['false_alarms']:.1%}   ordinary put in review "
        f"{result['ordinary_flagged_review']:.1%}   review messages paged {result['review_paged']:.1%}"
    )
    for name, cell in result["by_category"].items():
        print(
            f"  {name:22} recall {cell['recall']:6.1%}  any tier {cell['any_tier']:6.1%}  (n={cell['n']})"
        )
    for name, cell in result["by_language"].items():
        print(
            f"  [{name:5}] recall {cell['recall']:6.1%} of {cell['crisis']:4}   false alarms "
            f"{cell['false_alarms']:5.1%} of {cell['ordinary']}"
        )
    ms = result["ms_per_message"]
    print(f"  time per message: p50 {ms['p50']} ms, p99 {ms['p99']} ms, max {ms['max']} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split", choices=["locked", "locked2", "locked3", "unseen", "train", "all"], default="all"
    )
    parser.add_argument("--show-misses", action="store_true", help="train split only")
    parser.add_argument("--quick", action="store_true", help="accepted for run_all; same run")
    args = parser.parse_args()
    splits = (
        ["locked", "locked2", "locked3", "unseen", "train"] if args.split == "all" else [args.split]
    )
    if args.show_misses and splits != ["train"]:
        parser.error("--show-misses is for the train split only (use --split train)")
    screen = risk_screen_for(Settings())
    screen.assess("warm up")
    figures: dict[str, Any] = {"machine": machine_info(), "targets": TARGETS}
    for split in splits:
        rows = load(SPLITS[split])
        result = evaluate(screen, rows)
        predicted = result.pop("_predicted")
        print_result(split, result)
        figures[split] = result
        if args.show_misses:
            for row, tier in zip(rows, predicted, strict=True):
                if row["label"] == "crisis" and tier != "crisis":
                    print(f"MISS [{row['category']}] ({tier}) {row['text']}")
                elif row["label"] == "ordinary" and tier == "crisis":
                    print(f"FALSE [{row['category']}] {row['text']}")
    report("crisis_screen", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
