"""Train the risk screen's classifier on the train split and write its weights.

    .venv/bin/python tools/train_risk_model.py [--out reminders/defaults/risk_model.json] [--cv-only]

Reads ``corpus/crisis/train_*.jsonl`` only: the locked test split (``locked_test.jsonl``) and
the unseen set (``unseen.jsonl``) are never read here. The vote threshold is chosen by 5-fold
cross-validation on the train split: the lowest threshold at which rules + model raise false
alarms on at most ``--max-false-alarms`` of the ordinary messages held out. scikit-learn is
needed here only (``pip install -e .[dev]``); scoring at run time is plain Python.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reminders.conversations.risk import rules as risk_rules  # noqa: E402
from reminders.conversations.risk.model import MODEL_FILE, features  # noqa: E402
from reminders.conversations.risk.text import clauses  # noqa: E402

CORPUS = ROOT / "corpus" / "crisis"
PAGE_CATEGORY = {
    "wish_dead": "suicide_risk",
    "active_thoughts": "suicide_risk",
    "method_means": "suicide_risk",
    "intent_plan": "suicide_risk",
    "preparatory_farewell": "suicide_risk",
    "self_harm": "self_harm",
    "overdose": "overdose",
    "medical_emergency": "medical_emergency",
    "third_party": "third_party",
    "harm_to_others": "harm_to_others",
}
C = 16.0  # inverse regularisation strength (chosen by cross-validation on the train split)


def load_train() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(CORPUS.glob("train_*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return rows


def normalised(text: str) -> str:
    return " ".join(clauses(text))


def rules_say_crisis(text: str) -> bool:
    return any(f.tier == "crisis" for f in risk_rules.find(clauses(text)))


def fit(texts: Sequence[str], labels: Sequence[Any], *, multiclass: bool = False) -> Any:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    vectorizer = DictVectorizer()
    x = vectorizer.fit_transform([features(t) for t in texts])
    # One thread and a tight tolerance, so that the same train files give the same scores
    # (tests/integration/test_risk_model.py retrains and compares them).
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=20000, tol=1e-7)
    with threadpool_limits(limits=1):
        model.fit(x, labels)
    return vectorizer, model


def probabilities(fitted: Any, texts: Sequence[str]) -> list[float]:
    vectorizer, model = fitted
    x = vectorizer.transform([features(t) for t in texts])
    return [float(p) for p in model.predict_proba(x)[:, 1]]


def choose_thresholds(
    rows: list[dict[str, str]], max_false_alarms: float, max_review_flags: float
) -> tuple[float, float]:
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    texts = [normalised(r["text"]) for r in rows]
    y = [r["label"] == "crisis" for r in rows]
    by_rules = [rules_say_crisis(r["text"]) for r in rows]
    held_out = [0.0] * len(rows)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=7)
    for train, test in folds.split(texts, [r["label"] for r in rows]):
        fitted = fit([texts[i] for i in train], [y[i] for i in train])
        for i, p in zip(test, probabilities(fitted, [texts[i] for i in test]), strict=True):
            held_out[i] = p
    ordinary = [i for i, r in enumerate(rows) if r["label"] == "ordinary"]
    crisis = [i for i, r in enumerate(rows) if r["label"] == "crisis"]
    best = 0.95
    review = 0.95
    for step in range(95, 4, -1):
        t = step / 100
        flagged = [by_rules[i] or held_out[i] >= t for i in range(len(rows))]
        false_alarms = sum(flagged[i] for i in ordinary) / len(ordinary)
        recall = sum(flagged[i] for i in crisis) / len(crisis)
        model_fa = sum(held_out[i] >= t for i in ordinary) / len(ordinary)
        model_recall = sum(held_out[i] >= t for i in crisis) / len(crisis)
        print(
            f"threshold {t:.2f}: rules+model recall {recall:.1%}, false alarms {false_alarms:.1%}"
            f" (model alone {model_recall:.1%}, {model_fa:.1%})"
        )
        if false_alarms <= max_false_alarms:
            best = t
        if model_fa <= max_review_flags:
            review = t
    return best, min(best, review)


def export(rows: list[dict[str, str]], threshold: float, review: float) -> dict[str, Any]:
    texts = [normalised(r["text"]) for r in rows]
    vectorizer, crisis_model = fit(texts, [r["label"] == "crisis" for r in rows])
    names = vectorizer.get_feature_names_out()
    weights = {
        str(n): round(float(w), 3)
        for n, w in zip(names, crisis_model.coef_[0], strict=True)
        if abs(w) >= 0.02
    }
    crisis_rows = [r for r in rows if r["label"] == "crisis"]
    cat_vectorizer, cat_model = fit(
        [normalised(r["text"]) for r in crisis_rows],
        [PAGE_CATEGORY[r["category"]] for r in crisis_rows],
        multiclass=True,
    )
    cat_names = cat_vectorizer.get_feature_names_out()
    cat_weights = {
        str(n): [round(float(w), 2) for w in cat_model.coef_[:, j]]
        for j, n in enumerate(cat_names)
        if max(abs(cat_model.coef_[:, j])) >= 0.2
    }
    return {
        "version": 1,
        "trained_on": sorted(p.name for p in CORPUS.glob("train_*.jsonl")),
        "messages": len(rows),
        "threshold": threshold,
        "review_threshold": review,
        "crisis": {"bias": round(float(crisis_model.intercept_[0]), 4), "weights": weights},
        "category": {
            "classes": [str(c) for c in cat_model.classes_],
            "bias": [round(float(b), 4) for b in cat_model.intercept_],
            "weights": cat_weights,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    parser.add_argument("--max-false-alarms", type=float, default=0.04)
    parser.add_argument("--max-review-flags", type=float, default=0.10)
    parser.add_argument("--cv-only", action="store_true")
    args = parser.parse_args()
    rows = load_train()
    print(f"train split: {len(rows)} messages")
    threshold, review = choose_thresholds(rows, args.max_false_alarms, args.max_review_flags)
    print(f"chosen thresholds: crisis {threshold:.2f}, urgent review {review:.2f}")
    if args.cv_only:
        return 0
    model = export(rows, threshold, review)
    args.out.write_text(json.dumps(model, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
