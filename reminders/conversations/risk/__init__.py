"""The risk screen run on every inbound message (docs/design.md section 9).

Two tiers come out of it:

- ``crisis``: page on-call staff at once and answer the patient with 988 / 911;
- ``review``: a person must read it soon (negated, past or other-person mentions, strong
  distress); no 988 auto-reply, paged only if nobody reviews it in time.

The layers, in order (the first crisis wins; nothing ever turns a crisis into less):

1. the text is normalised (:mod:`.text`): emoji to words, accents, look-alike digits,
   stretched letters, chat spellings, misspelled risk words, clauses split at "but";
2. rules by category (:mod:`.rules`, with the patterns in :mod:`.patterns_en` and
   :mod:`.patterns_es`), read in context: a negation, a past marker or
   another person as the subject moves a finding to review; a relative writing makes any
   crisis a third-party report;
3. the classifier (:mod:`.model`): its crisis vote adds a crisis the rules missed, and a
   lower score adds an urgent-review flag;
4. the clinic's own phrases (``REMINDERS_CRISIS_PHRASES_FILE``), if any, each a crisis.

Each finding names a category that staff can act on. The page names the category, never the
message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from reminders.conversations.crisis import CrisisScreen
from reminders.conversations.risk import rules as risk_rules
from reminders.conversations.risk.model import RiskModel, load_model
from reminders.conversations.risk.text import clauses
from reminders.errors import ConfigError
from reminders.settings import Settings

Tier = Literal["crisis", "review"]

# Crisis categories, as the page and the staff inbox name them.
CRISIS_CATEGORIES: dict[str, str] = {
    "suicide_risk": "suicide risk",
    "self_harm": "self-harm",
    "overdose": "possible overdose",
    "medical_emergency": "medical emergency after infusion",
    "third_party": "third-party report",
    "harm_to_others": "risk of harm to others",
}
# Urgent-review categories.
REVIEW_CATEGORIES: dict[str, str] = {
    "negated": "mention of suicide or self-harm, denied",
    "past": "past suicide attempt or self-harm",
    "other_person": "mention of someone else's suicide or self-harm",
    "distress": "strong distress",
}
# Categories whose patient reply points to 911 first (a body in danger now).
EMERGENCY_CATEGORIES = frozenset({"medical_emergency", "overdose", "third_party"})


@dataclass(frozen=True)
class RiskFinding:
    tier: Tier
    category: str  # a key of CRISIS_CATEGORIES (tier crisis) or REVIEW_CATEGORIES (review)
    language: str  # "en" or "es": the language the finding was made in
    source: str = "rules"  # "rules", "model", "phrases" (the clinic's own list), joined by "+"

    @property
    def label(self) -> str:
        """What staff and the page call it: "possible overdose", "suicide risk"..."""
        if self.tier == "crisis":
            return CRISIS_CATEGORIES[self.category]
        return REVIEW_CATEGORIES[self.category]

    @property
    def emergency(self) -> bool:
        """The patient's reply names 911 first (medical emergency, overdose, a relative's report)."""
        return self.tier == "crisis" and self.category in EMERGENCY_CATEGORIES


class RiskScreen:
    """Rules, then the classifier, then the clinic's own phrases; the first crisis wins."""

    def __init__(
        self,
        phrases: CrisisScreen | None = None,
        model: RiskModel | None = None,
        *,
        enabled: bool = True,
    ) -> None:
        self.phrases = phrases
        self.model = model
        self.enabled = enabled

    def assess(self, text: str) -> RiskFinding | None:
        parts = clauses(text) if self.enabled else []
        if not parts:
            return None
        findings = risk_rules.find(parts)
        crisis = next((f for f in findings if f.tier == "crisis"), None)
        if crisis is not None:
            return RiskFinding("crisis", _page_category(crisis.category), crisis.language, "rules")
        language = findings[0].language if findings else _language(parts)
        vote = self.model.vote(" ".join(parts)) if self.model is not None else None
        if vote is not None and vote[0] == "crisis" and risk_rules.routine(parts):
            vote = ("review", "model")
        if vote is not None and vote[0] == "crisis":
            return RiskFinding("crisis", vote[1], language, "model")
        if self.phrases is not None:
            hit = self.phrases.screen(text)
            if hit is not None:
                return RiskFinding("crisis", "suicide_risk", hit.language, "phrases")
        if findings:
            return RiskFinding("review", findings[0].category, language, "rules")
        if vote is not None:
            return RiskFinding("review", "distress", language, "model")
        return None


def _page_category(category: str) -> str:
    return category if category in CRISIS_CATEGORIES else "suicide_risk"


_SPANISH = frozenset(
    [
        "que",
        "de",
        "no",
        "la",
        "el",
        "en",
        "y",
        "me",
        "mi",
        "por",
        "para",
        "con",
        "estoy",
        "quiero",
        "ya",
        "mas",
        "pero",
        "muy",
        "todo",
        "esta",
        "es",
        "se",
        "lo",
        "los",
        "las",
        "una",
        "un",
        "soy",
        "tengo",
        "hoy",
        "anoche",
    ]
)


def _language(parts: list[str]) -> str:
    words = " ".join(parts).split()
    spanish = sum(1 for w in words if w in _SPANISH)
    return "es" if words and spanish * 4 >= len(words) else "en"


@lru_cache(maxsize=8)
def _screen(phrases_path: Path | None, mtime: float) -> RiskScreen:
    phrases = CrisisScreen.from_file(phrases_path) if phrases_path is not None else None
    return RiskScreen(phrases, load_model())


def risk_screen_for(settings: Settings) -> RiskScreen:
    """The screen in force for ``settings`` (the clinic's phrase file re-read when it changes)."""
    if not settings.crisis_screening:
        return RiskScreen(enabled=False)
    path = settings.crisis_phrases_file
    if path is None:
        return _screen(None, 0.0)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise ConfigError(
            f"REMINDERS_CRISIS_PHRASES_FILE: cannot read {path}: {exc.strerror}"
        ) from exc
    return _screen(path, mtime)
