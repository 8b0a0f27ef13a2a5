"""The shipped classifier is what the train split gives (nothing else went in, nothing stale).

Retrains with scikit-learn (about 12 s) and compares the result with
``reminders/defaults/risk_model.json`` by what it does: its probability for every train
message, its crisis votes and its categories. The weights themselves are not compared: the
fit leaves some freedom along nearly flat directions (runs under different CPU load end a
few tenths apart on a few weights) while the scores agree. A change to the normalisation,
the features or the train files without running ``tools/train_risk_model.py`` moves the
scores and fails here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from reminders.conversations.risk.model import RiskModel

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "reminders" / "defaults" / "risk_model.json"


def _trainer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "train_risk_model", ROOT / "tools" / "train_risk_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_risk_model"] = module
    spec.loader.exec_module(module)
    return module


def test_the_shipped_model_is_what_the_train_split_gives() -> None:
    pytest.importorskip("sklearn")
    trainer = _trainer()
    shipped_data = json.loads(MODEL.read_text(encoding="utf-8"))
    rows = trainer.load_train()
    rebuilt_data = trainer.export(rows, shipped_data["threshold"], shipped_data["review_threshold"])
    assert rebuilt_data["trained_on"] == shipped_data["trained_on"]
    assert rebuilt_data["messages"] == shipped_data["messages"] == len(rows)
    assert not {"locked_test.jsonl", "unseen.jsonl"} & set(rebuilt_data["trained_on"])
    assert rebuilt_data["category"]["classes"] == shipped_data["category"]["classes"]

    shipped, rebuilt = RiskModel.from_json(shipped_data), RiskModel.from_json(rebuilt_data)
    texts = [trainer.normalised(r["text"]) for r in rows]
    drift = [abs(shipped.probability(t) - rebuilt.probability(t)) for t in texts]
    assert max(drift) < 0.1, f"probabilities moved by up to {max(drift):.3f}: retrain"
    votes = sum(
        (shipped.probability(t) >= shipped.threshold)
        != (rebuilt.probability(t) >= rebuilt.threshold)
        for t in texts
    )
    assert votes <= len(texts) // 1000, f"{votes} crisis votes differ: retrain"
    crisis = [t for t, r in zip(texts, rows, strict=True) if r["label"] == "crisis"]
    categories = sum(shipped.category(t) != rebuilt.category(t) for t in crisis)
    assert categories <= len(crisis) // 100, f"{categories} categories differ: retrain"
