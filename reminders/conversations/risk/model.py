"""The risk screen's statistical layer: a small linear classifier over character and word
n-grams, trained on the labelled corpus in ``corpus/crisis/`` (train split only) by
``tools/train_risk_model.py`` and shipped as weights in ``reminders/defaults/risk_model.json``.

Scoring is plain Python (no scikit-learn at run time, nothing downloaded): the features are
computed here, in exactly the same way for training and for scoring, so the two cannot drift.

- features: character 2- to 5-grams of each word (with a space on each side, so word starts and
  ends count); words, word pairs and triples; word classes ("drug", "height", "weapon") and
  their pairs; each block's counts damped (1 + log n) and scaled to unit length;
- ``crisis``: a logistic regression, crisis against everything else; its vote counts when the
  probability reaches the threshold chosen at training time (by cross-validation on the train
  split, never on the locked test split);
- ``category``: a multinomial logistic regression over the page categories, asked only when the
  model votes crisis and the rules found nothing.

A vote can only add a crisis finding to the rules' (recall can only go up).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reminders.defaults import DEFAULTS_DIR

# Word classes the classifier also sees as features ("k drug" for "klonopin"), so that what it
# learns from one drug, place or relative carries over to the others.
CONCEPTS: dict[str, str] = {}
for _concept, _words_of in {
    "drug": """tylenol acetaminophen paracetamol ibuprofen ibuprofeno advil motrin aleve aspirin
        benadryl xanax alprazolam klonopin clonazepam rivotril tafil valium diazepam ativan
        lorazepam seroquel quetiapine quetiapina ambien zolpidem trazodone trazodona lithium litio
        insulin insulina oxy oxycodone oxycontin percocet vicodin hydrocodone fentanyl fentanilo
        fent morphine morfina methadone heroin tramadol gabapentin sertraline sertralina zoloft
        prozac fluoxetine lexapro wellbutrin lamictal adderall norco nyquil melatonin xannies
        benzos opioids amitriptyline propranolol antidepressants meds pills pill tablets tabs
        capsules pastillas pastilla pildoras medicinas medicamentos sleeping""",
    "poison": "bleach cloro lejia antifreeze poison veneno raticida",
    "amount": """all whole entire bunch handful fistful bottle bottles box boxes frasco todas
        todo monton caja mg""",
    "height": """bridge overpass ledge edge roof rooftop cliff tracks railroad platform garage
        deck balcony puente azotea techo edificio vias balcon precipicio acantilado window
        ventana building floor stories""",
    "weapon": """gun guns pistol revolver rifle shotgun handgun firearm 9mm glock ammo bullets
        shells knife razor razors blade blades rope noose belt cord pistola arma escopeta
        navaja cuchilla cuchillo soga cuerda balas""",
    "death": """die dying dead death died kill killing suicide suicidal unalive morir morirme
        muerto muerta muerte matar matarme suicidio grave coffin skull""",
    "goodbye": "goodbye bye farewell adios despedida despido goodbyes last ultimo ultima final",
    "time": """tonight tomorrow tmrw weekend sunday monday tuesday wednesday thursday friday
        saturday noche manana hoy esta""",
    "relative": """wife husband mom mother dad father son daughter sister brother partner
        roommate roomie boyfriend girlfriend fiance spouse esposa esposo mama madre papa padre
        hija hijo hermana hermano pareja novia novio marido""",
    "negation": "not no never nunca jamas without zero none nada ni",
    "past": "ago years used history attempt hace solia pasado antes",
    "laugh": "lol lmao haha hahaha jaja jajaja jk lmfao rofl xd",
    "body": """chest breathe breathing breath throat heart seizure seizing fainted unconscious
        unresponsive pecho respirar respira garganta corazon convulsiones desmayo""",
    "selfharm": "cut cutting cuts burn burned burning scratch scratching carve carved sh blood",
}.items():
    for _w in _words_of.split():
        CONCEPTS[_w] = _concept

MODEL_FILE = DEFAULTS_DIR / "risk_model.json"
CHAR_NGRAMS = (2, 3, 4, 5)


def features(normalised: str) -> dict[str, float]:
    """The feature vector of an already normalised text: three blocks (character n-grams;
    words, word pairs and triples; word classes and their pairs), each with damped counts
    (1 + log n) scaled to unit length, so no block drowns the others."""
    words = normalised.split()
    chars: Counter[str] = Counter()
    grams: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    for word in words:
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            for i in range(len(padded) - n + 1):
                chars["c" + padded[i : i + n]] += 1
        grams["w " + word] += 1
        concept = CONCEPTS.get(word) or ("amount" if word.isdigit() else None)
        if concept is not None:
            classes["k " + concept] += 1
    for first, second in zip(words, words[1:], strict=False):
        grams[f"b {first} {second}"] += 1
        if first in CONCEPTS or second in CONCEPTS:
            classes[f"p {CONCEPTS.get(first, first)} {CONCEPTS.get(second, second)}"] += 1
    for first, second, third in zip(words, words[1:], words[2:], strict=False):
        grams[f"t {first} {second} {third}"] += 1
    out: dict[str, float] = {}
    for block in (chars, grams, classes):
        damped = {k: 1.0 + math.log(v) for k, v in block.items()}
        norm = math.sqrt(sum(v * v for v in damped.values())) or 1.0
        out.update((k, v / norm) for k, v in damped.items())
    return out


@dataclass(frozen=True)
class RiskModel:
    threshold: float
    review_threshold: float
    crisis_bias: float
    crisis_weights: dict[str, float]
    categories: tuple[str, ...]
    category_bias: tuple[float, ...]
    category_weights: dict[str, tuple[float, ...]]

    def probability(self, normalised: str) -> float:
        """P(crisis) for an already normalised text."""
        x = features(normalised)
        score = self.crisis_bias + sum(
            v * self.crisis_weights[k] for k, v in x.items() if k in self.crisis_weights
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))

    def category(self, normalised: str) -> str:
        x = features(normalised)
        scores = list(self.category_bias)
        for k, v in x.items():
            row = self.category_weights.get(k)
            if row is not None:
                for i, w in enumerate(row):
                    scores[i] += v * w
        return self.categories[max(range(len(scores)), key=scores.__getitem__)]

    def vote(self, normalised: str) -> tuple[str, str] | None:
        """("crisis", page category) or ("review", "model") when the model flags it, else None."""
        p = self.probability(normalised)
        if p >= self.threshold:
            return "crisis", self.category(normalised)
        if p >= self.review_threshold:
            return "review", "model"
        return None

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RiskModel:
        crisis = data["crisis"]
        category = data["category"]
        assert isinstance(crisis, dict) and isinstance(category, dict)
        return cls(
            threshold=float(data["threshold"]),  # type: ignore[arg-type]
            review_threshold=float(data["review_threshold"]),  # type: ignore[arg-type]
            crisis_bias=float(crisis["bias"]),
            crisis_weights={str(k): float(v) for k, v in crisis["weights"].items()},
            categories=tuple(str(c) for c in category["classes"]),
            category_bias=tuple(float(b) for b in category["bias"]),
            category_weights={
                str(k): tuple(float(w) for w in v) for k, v in category["weights"].items()
            },
        )


@lru_cache(maxsize=2)
def load_model(path: Path = MODEL_FILE) -> RiskModel | None:
    """The shipped model, or None when the file is missing (the rules still run)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return RiskModel.from_json(data)
