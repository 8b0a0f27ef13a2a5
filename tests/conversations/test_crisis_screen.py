"""The crisis screen, measured on the labelled set (recall must be 100%)."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

from reminders.conversations.crisis import CrisisScreen, edit_distance, tokens
from reminders.defaults import CRISIS_PHRASES_FILE

LABELLED = Path(__file__).resolve().parents[1] / "data" / "crisis_labelled.jsonl"


@pytest.fixture(scope="module")
def screen() -> CrisisScreen:
    return CrisisScreen.from_file(CRISIS_PHRASES_FILE)


def _rows() -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in LABELLED.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def test_labelled_set_is_big_and_mixed() -> None:
    rows = _rows()
    assert len(rows) >= 200
    assert {(r["lang"], r["crisis"]) for r in rows} == {
        ("en", True),
        ("en", False),
        ("es", True),
        ("es", False),
    }


def test_recall_is_100_percent_and_false_alarms_reported(
    screen: CrisisScreen, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows()
    misses = [r["text"] for r in rows if r["crisis"] and screen.screen(str(r["text"])) is None]
    false_alarms = [
        r["text"] for r in rows if not r["crisis"] and screen.screen(str(r["text"])) is not None
    ]
    safe = sum(1 for r in rows if not r["crisis"])
    with capsys.disabled():
        print(
            f"\ncrisis screen: recall 100% required, misses={len(misses)}; "
            f"false alarms {len(false_alarms)}/{safe} = {len(false_alarms) / safe:.1%}"
        )
    assert misses == []
    # Not a target, a tripwire: a phrase change that floods staff with alarms should be noticed.
    assert len(false_alarms) / safe < 0.15


def _perturb(text: str, rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return "  ".join(text.split()) + "!!!"
    if choice == 2:  # stretch a letter "suiciiide"
        positions = [i for i, ch in enumerate(text) if ch.isalpha()]
        i = rng.choice(positions)
        return text[:i] + text[i] * rng.randint(2, 4) + text[i:]
    if choice == 3:
        return "".join(
            ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
        )
    if choice == 4:
        return text.replace("i", "1", 1) if "i" in text else text.lower()
    return "..." + text.lower().replace(" ", " , ", 1)


def test_recall_survives_case_spacing_and_spelling_noise(screen: CrisisScreen) -> None:
    rng = random.Random(20261127)
    crisis = [str(r["text"]) for r in _rows() if r["crisis"]]
    missed = []
    for text in crisis:
        for _ in range(5):
            noisy = _perturb(text, rng)
            if screen.screen(noisy) is None:
                missed.append((text, noisy))
    assert missed == []


@pytest.mark.parametrize(
    "text",
    [
        "I want to kill myself",
        "KILL MY SELF",
        "kil myslef",
        "suiciiiide",
        "s u i c i d e",
        "kms",
        "k1ll myself",
        "su*cide",
        "I'm not suicidal but I keep thinking about ending it all",
        "quiero morirme",
        "ME QUIERO MORIR",
        "no puedo más",
        "me quiero matar",
        "i wnat to die",
    ],
)
def test_hits(screen: CrisisScreen, text: str) -> None:
    assert screen.screen(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "This traffic is killing me",
        "I could kill for a coffee",
        "I'm dying to see you",
        "C",
        "STOP",
        "7/10",
        "I won't be around on Tuesday",
        "Ya no puedo ir el lunes",
        "Me muero de hambre",
        "I want to dye my hair",
    ],
)
def test_everyday_phrases(screen: CrisisScreen, text: str) -> None:
    assert screen.screen(text) is None


def test_normalisation() -> None:
    assert tokens("Can't   GO on!!!") == ["can", "not", "go", "on"]
    assert tokens("Sííí, k1lll") == ["si", "kil"]
    assert edit_distance("suicide", "sucide", 2) == 1
    assert edit_distance("want", "wnat", 1) == 1
