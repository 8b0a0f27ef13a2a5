"""The risk screen: tiers, categories, context, normalisation, and the classifier's weights.

These examples were written by the screen's author, so they check behaviour, not accuracy:
accuracy is measured on the locked test split by ``bench/crisis_screen.py``.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from reminders.conversations.crisis import CrisisScreen
from reminders.conversations.keywords import is_confirm, keyword_command
from reminders.conversations.risk import RiskFinding, RiskScreen, risk_screen_for
from reminders.conversations.risk.model import MODEL_FILE, RiskModel, features, load_model
from reminders.conversations.risk.text import clauses, normalise
from reminders.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus" / "crisis"


@pytest.fixture(scope="module")
def screen() -> RiskScreen:
    return risk_screen_for(Settings())


def _tier(screen: RiskScreen, text: str) -> str:
    finding = screen.assess(text)
    return finding.tier if finding else "none"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("took 800mg of ibuprofen and a bunch of my sleeping pills", "overdose"),
        ("standing on the bridge right now", "suicide_risk"),
        ("this is his wife, he passed out after the infusion and won't wake up", "third_party"),
        ("me corté otra vez anoche", "self_harm"),
        ("my chest hurts and I can't breathe", "medical_emergency"),
        ("no puede respirar y no reacciona", "medical_emergency"),
        ("I've decided. tonight's the night", "suicide_risk"),
        ("gave my dog to my sister, this is the last text you'll get from me", "suicide_risk"),
        ("kms", "suicide_risk"),
        ("me quiero morir wey", "suicide_risk"),
        ("ya no aguanto más, me voy a aventar del puente", "suicide_risk"),
        ("im going to kill my boss tomorrow, I have the gun", "harm_to_others"),
    ],
)
def test_crises_page_with_their_category(screen: RiskScreen, text: str, category: str) -> None:
    finding = screen.assess(text)
    assert finding is not None and finding.tier == "crisis", finding
    assert finding.category == category
    assert finding.label  # every category has a name staff read


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("not suicidal, just tired", "negated"),
        ("no thoughts of hurting myself, promise", "negated"),
        ("a year ago I tried to kill myself, doing much better", "past"),
        ("I used to cut in high school, the scars might show", "past"),
        ("my brother died by suicide 5 years ago today, i'm ok", "past|other_person"),
        ("my coworker killed himself last week, im shaken but im ok", "other_person"),
        ("everything feels hopeless this week", "distress"),
        ("no soy suicida, solo estoy cansada", "negated"),
    ],
)
def test_negated_past_and_other_person_go_to_review(
    screen: RiskScreen, text: str, category: str
) -> None:
    finding = screen.assess(text)
    assert finding is not None and finding.tier == "review", finding
    assert finding.category in category.split("|")


def test_a_negation_in_one_clause_does_not_cancel_the_next(screen: RiskScreen) -> None:
    assert _tier(screen, "I'm not suicidal but I keep thinking about ending it") == "crisis"
    assert _tier(screen, "not gonna lie, I keep thinking about killing myself") == "crisis"
    assert _tier(screen, "I don't want to live anymore") == "crisis"


@pytest.mark.parametrize(
    "text",
    [
        "This traffic is killing me",
        "I'd kill for a coffee",
        "dying to know how the test went",
        "my phone is dead, call my husband",
        "C",
        "STOP",
        "7/10",
        "I can't do tuesdays anymore",
        "I won't be around on Tuesday, can we reschedule?",
        "Ya no puedo ir el lunes",
        "Me muero de hambre",
        "me morí de risa con el recordatorio",
        "I took my pills this morning as usual",
        "Me tomé mis pastillas de la presión",
        "I want to end this week on a high note, any Friday slots?",
        "I slept 10 hours last night",
    ],
)
def test_everyday_messages_page_nobody(screen: RiskScreen, text: str) -> None:
    assert _tier(screen, text) != "crisis"


def test_a_relative_writing_makes_it_a_third_party_report(screen: RiskScreen) -> None:
    finding = screen.assess("Hi, this is her husband. She took all her pills an hour ago")
    assert finding is not None and (finding.tier, finding.category) == ("crisis", "third_party")
    assert finding.emergency  # the reply names 911 first
    routine = screen.assess("This is his wife, he says he is a 7 today and went to the gym")
    assert routine is None or routine.tier != "crisis"


def test_emergencies_name_911_first_and_suicide_risk_does_not() -> None:
    assert RiskFinding("crisis", "medical_emergency", "en").emergency
    assert RiskFinding("crisis", "overdose", "en").emergency
    assert not RiskFinding("crisis", "suicide_risk", "en").emergency
    assert not RiskFinding("review", "negated", "en").emergency


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("k1lll mys3lf", "kill myself"),
        ("s u i c i d e", "suicide"),
        ("suiciiiide", "suicide"),
        ("I can't go on 💊💊", "i can not go on pills pills"),
        ("took 800mg", "took 800 mg"),
        ("overdoesd on klonopim", "overdosed on klonopin"),
        ("Me corté", "me corte"),
        ("i keep thinkin about it", "i keep thinking about it"),
    ],
)
def test_normalisation(text: str, normal: str) -> None:
    assert normalise(text) == normal


def test_clauses_split_at_sentences_and_but() -> None:
    assert clauses("Not suicidal. But I took 30 pills") == ["not suicidal", "i took 30 pills"]
    assert clauses("kill... my... self") == ["kill my self"]


def _noisy(text: str, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return "  ".join(text.split()) + "!!!"
    if choice == 2:  # a letter stretched for emphasis
        letters = [i for i, ch in enumerate(text) if ch.isalpha()]
        i = rng.choice(letters)
        return text[:i] + text[i] * 4 + text[i:]
    return text.replace("i", "1", 1)


def test_crises_survive_case_spacing_and_stretched_letters(screen: RiskScreen) -> None:
    rng = random.Random(20261130)
    texts = [
        "I want to kill myself",
        "took the whole bottle of tylenol",
        "me quiero morir",
        "I cut myself again last night",
        "he is not breathing",
    ]
    missed = [
        (text, noisy)
        for text in texts
        for noisy in (_noisy(text, rng) for _ in range(8))
        if _tier(screen, noisy) != "crisis"
    ]
    assert missed == []


def test_the_classifier_only_adds_crises_to_the_rules() -> None:
    rules_only = RiskScreen(None, None)
    with_model = RiskScreen(None, load_model())
    rows = [
        json.loads(line)
        for line in (CORPUS / "train_en_b.jsonl").read_text(encoding="utf-8").splitlines()
    ][:300]
    for row in rows:
        before = rules_only.assess(row["text"])
        after = with_model.assess(row["text"])
        if before is not None and before.tier == "crisis":
            assert after is not None and after.tier == "crisis"


def test_the_clinics_own_phrases_add_crises(tmp_path: Path) -> None:
    phrases = tmp_path / "phrases.yaml"
    phrases.write_text("en:\n  - going to the old quarry\n", encoding="utf-8")
    screen = RiskScreen(CrisisScreen.from_file(phrases), None)
    finding = screen.assess("thinking about going to the old quarry tonight")
    assert finding is not None and finding.tier == "crisis" and finding.source == "phrases"


def test_the_shipped_model_loads_and_scores_in_plain_python() -> None:
    model = load_model()
    assert isinstance(model, RiskModel)
    assert 0 < model.review_threshold <= model.threshold < 1
    x = features(normalise("i took all my pills"))
    for block in ("c", "wbt", "kp"):  # characters; words, pairs, triples; word classes
        norm = sum(v * v for k, v in x.items() if k[0] in block)
        assert abs(norm - 1.0) < 1e-9, block
    assert model.probability(normalise("i took the whole bottle of xanax")) > model.threshold
    assert model.probability(normalise("see you tuesday, thanks!")) < model.review_threshold


def test_the_shipped_model_was_trained_on_the_train_split_only() -> None:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert data["trained_on"], "the model names its training files"
    assert all(name.startswith("train_") for name in data["trained_on"])
    trained = sum(
        len((CORPUS / name).read_text(encoding="utf-8").splitlines()) for name in data["trained_on"]
    )
    assert data["messages"] == trained


def test_the_locked_splits_are_unchanged() -> None:
    """The locked test split and the unseen set are never edited (their digests are in the
    corpus README): an edit would quietly turn them into tuning data."""
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    for name in ("locked_test.jsonl", "locked_test_2.jsonl", "locked_test_3.jsonl", "unseen.jsonl"):
        digest = hashlib.sha256((CORPUS / name).read_bytes()).hexdigest()
        assert f"`{digest}`" in readme, f"{name} changed or its digest is not recorded"


def test_the_corpus_is_big_enough_and_mixed() -> None:
    rows = [
        json.loads(line)
        for path in sorted(CORPUS.glob("*.jsonl"))
        if path.name != "unseen.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(rows) >= 2000
    assert sum(r["label"] == "crisis" for r in rows) / len(rows) >= 0.40
    assert {r["language"] for r in rows} >= {"en", "es", "mixed"}
    assert sum(r["category"] == "idiom" for r in rows) >= 200  # hard negatives


@pytest.mark.parametrize("text", ["sí", "Si", "si confirmo", "Sí, confirmo", "confirmado", "C"])
def test_spanish_confirmations_confirm(text: str) -> None:
    assert is_confirm(text, "C")
    assert keyword_command(text) is None
