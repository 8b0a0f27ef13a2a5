"""The shipped classifier weights are exactly what the train split gives (nothing else went in).

Retrains with scikit-learn (about 25 s) and compares with ``reminders/defaults/risk_model.json``
within rounding: a change to the normalisation, the features or the train files without
running ``tools/train_risk_model.py`` fails here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

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


def _close(a: dict[str, Any], b: dict[str, Any], tolerance: float) -> list[str]:
    differ = []
    for key in a.keys() | b.keys():
        x, y = a.get(key, 0.0), b.get(key, 0.0)
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        if len(xs) != len(ys) or any(abs(p - q) > tolerance for p, q in zip(xs, ys, strict=False)):
            differ.append(key)
    return differ


def test_the_shipped_weights_are_what_the_train_split_gives() -> None:
    pytest.importorskip("sklearn")
    trainer = _trainer()
    shipped = json.loads(MODEL.read_text(encoding="utf-8"))
    rows = trainer.load_train()
    assert all(r["label"] in {"crisis", "review", "ordinary"} for r in rows)
    rebuilt = trainer.export(rows, shipped["threshold"], shipped["review_threshold"])
    assert rebuilt["trained_on"] == shipped["trained_on"]
    assert rebuilt["messages"] == shipped["messages"]
    assert "locked_test.jsonl" not in rebuilt["trained_on"]
    assert "unseen.jsonl" not in rebuilt["trained_on"]
    differ = _close(rebuilt["crisis"]["weights"], shipped["crisis"]["weights"], 2e-3)
    assert len(differ) <= 5, f"{len(differ)} crisis weights differ, e.g. {sorted(differ)[:5]}"
    assert abs(rebuilt["crisis"]["bias"] - shipped["crisis"]["bias"]) < 2e-3
    assert rebuilt["category"]["classes"] == shipped["category"]["classes"]
    differ = _close(rebuilt["category"]["weights"], shipped["category"]["weights"], 2e-2)
    assert len(differ) <= 5, f"{len(differ)} category weights differ"
