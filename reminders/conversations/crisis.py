"""A clinic's own crisis phrases (``REMINDERS_CRISIS_PHRASES_FILE``), matched fuzzily.

The built-in screen is :mod:`reminders.conversations.risk`; this matcher adds the phrases a
clinic lists (local slang, names of places), each a crisis when found. Matching is generous:

- text and phrases are normalised the same way: case, accents, apostrophes, punctuation,
  look-alike digits and symbols ("k1ll", "$uicide"), letters repeated for emphasis
  ("suiciiiide", "killl"), a few chat spellings ("wanna", "u", "ur");
- a phrase token matches a text token within a small edit distance (Damerau-Levenshtein:
  none for short words, 1 from five letters, 2 from eight), a token ending in ``*`` matches
  as a prefix ("suicid*" covers suicide, suicidal, suicidio, suicidarme);
- up to two filler words may sit between the words of a phrase ("want to just die");
- phrases are also found with the spaces removed ("kill my self", "s u i c i d e");
- negations never suppress a hit: "I'm not suicidal" is shown to staff (a false alarm)
  because "I'm not suicidal but I keep thinking about ending it" must not be missed.

The file is YAML: ``{language: [phrase, ...]}``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from reminders.errors import ConfigError

# Look-alike characters people use (or phones produce) in place of letters.
_LOOKALIKES = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "i",
    }
)
# Chat spellings rewritten to what the phrase lists use.
_REWRITES = {
    "wanna": "want to",
    "wana": "want to",
    "gonna": "going to",
    "gona": "going to",
    "gotta": "got to",
    "u": "you",
    "ur": "your",
    "youre": "you are",
    "im": "i am",
    "ima": "i am going to",
    "imma": "i am going to",
    "ive": "i have",
    "dont": "do not",
    "doesnt": "does not",
    "cant": "can not",
    "cannot": "can not",
    "wont": "will not",
    "isnt": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "didnt": "did not",
    "couldnt": "could not",
    "wouldnt": "would not",
    "shouldnt": "should not",
    "havent": "have not",
    "2": "to",
    "cnt": "can not",
    "kiero": "quiero",
    "qiero": "quiero",
    "kero": "quiero",
    "idk": "i do not know",
    "pls": "please",
    "plz": "please",
    "myslef": "myself",
    "mysef": "myself",
    "mself": "myself",
    "xq": "porque",
    "pq": "porque",
}
MAX_GAP = 2  # filler words allowed between the words of a phrase
MIN_COMPACT = 7  # phrases shorter than this (spaces removed) are not searched space-free


def fold(text: str) -> str:
    """Lower case, no accents, apostrophes dropped (can't -> cant), other punctuation -> space."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"['\u2019\u2018`\u00b4]", "", text)
    return text


def _squeeze(token: str) -> str:
    # Letters repeated for emphasis: every run collapses to one letter ("kill" -> "kil" too;
    # phrases go through the same step, so they still match).
    return re.sub(r"(.)\1+", r"\1", token)


_SQUEEZED_REWRITES: dict[str, str] = {}


def tokens(text: str, *, pattern: bool = False) -> list[str]:
    """The normalised words of a text, or of a phrase (``pattern``: ``*`` marks a prefix)."""
    text = fold(text)
    if not pattern:
        text = text.replace("*", "")  # "su*cide": censored words are still words
    # Look-alikes only inside words that also hold letters ("k1ll", "$uicide"), so that a
    # bare score such as "1" or "10" stays a number.
    parts: list[str] = []
    for word in re.findall(r"[^\s]+", text):
        word = word.strip("!?.,;:")
        if re.search(r"[a-z]", word):
            word = word.translate(_LOOKALIKES)
        parts.extend(re.findall(r"[a-z0-9*]+", word))
    out: list[str] = []
    # Squeezed first: "canttt" -> "cant" before the rewrite lookup, "s uuu i c i d e" joins.
    for part in _join_spelled_letters([_squeeze(p) for p in parts]):
        out.extend(_squeeze(w) for w in _SQUEEZED_REWRITES.get(part, part).split())
    return out


_SQUEEZED_REWRITES.update({_squeeze(k): v for k, v in _REWRITES.items()})


def _join_spelled_letters(words: list[str]) -> list[str]:
    """'s u i c i d e' -> 'suicide': three or more single letters in a row become one word."""
    out: list[str] = []
    run: list[str] = []
    for word in words + [""]:
        if len(word) == 1 and (word.isalpha() or word in "013457"):
            run.append(word)
            continue
        if len(run) >= 3 and sum(ch.isalpha() for ch in run) >= 2:
            out.append("".join(run).translate(_LOOKALIKES))
        else:
            out.extend(run)
        run = []
        if word:
            out.append(word)
    return out


def _allowed_distance(length: int) -> int:
    if length >= 8:
        return 2
    if length >= 5:
        return 1
    return 0


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (adjacent swaps count 1); stops early above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[len(b)]


def token_matches(pattern: str, word: str) -> bool:
    if pattern.endswith("*"):
        stem = pattern[:-1]
        if word.startswith(stem):
            return True
        limit = _allowed_distance(len(stem))
        return (
            limit > 0
            and len(word) >= len(stem) - limit
            and any(
                edit_distance(stem, word[:n], limit) <= limit
                for n in range(max(1, len(stem) - limit), min(len(word), len(stem) + limit) + 1)
            )
        )
    if pattern == word:
        return True
    limit = _allowed_distance(len(pattern))
    if limit == 0:
        # Short words: only two neighbouring letters swapped ("wnat", "dei").
        return (
            len(pattern) >= 3
            and sorted(pattern) == sorted(word)
            and edit_distance(pattern, word, 1) <= 1
        )
    return edit_distance(pattern, word, limit) <= limit


@dataclass(frozen=True)
class Phrase:
    language: str
    text: str  # as written in the list
    words: tuple[str, ...]
    compact: str  # the words joined without spaces (no prefix stars), "" when too short


@dataclass(frozen=True)
class CrisisHit:
    language: str
    phrase: str


def _find_sequence(words: tuple[str, ...], text: list[str]) -> bool:
    """The phrase's words in order, each within MAX_GAP filler words of the previous one."""

    def from_position(k: int, start: int) -> bool:
        if k == len(words):
            return True
        end = len(text) if k == 0 else min(len(text), start + MAX_GAP + 1)
        for pos in range(start, end):
            if token_matches(words[k], text[pos]) and from_position(k + 1, pos + 1):
                return True
        return False

    return from_position(0, 0)


class CrisisScreen:
    def __init__(self, phrases: dict[str, list[str]]) -> None:
        self.phrases: list[Phrase] = []
        for language, items in phrases.items():
            for text in items:
                words = tuple(tokens(text, pattern=True))
                if not words:
                    continue
                compact = "".join(w.rstrip("*") for w in words)
                self.phrases.append(
                    Phrase(language, text, words, compact if len(compact) >= MIN_COMPACT else "")
                )
        if not self.phrases:
            raise ConfigError("the crisis phrase list is empty")

    @classmethod
    def from_file(cls, path: Path) -> CrisisScreen:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"REMINDERS_CRISIS_PHRASES_FILE: cannot read {path}: {exc.strerror}"
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"REMINDERS_CRISIS_PHRASES_FILE: {path} is not valid YAML: {exc}"
            ) from exc
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(p, str) for p in v)
            for k, v in raw.items()
        ):
            raise ConfigError(
                f"REMINDERS_CRISIS_PHRASES_FILE: {path} must map a language code to a list of phrases"
            )
        return cls(raw)

    def screen(self, text: str) -> CrisisHit | None:
        """The first crisis phrase found in ``text``, or None."""
        words = tokens(text)
        if not words:
            return None
        compact = "".join(words)
        starts = [0]
        for word in words[:-1]:
            starts.append(starts[-1] + len(word))
        for phrase in self.phrases:
            if _find_sequence(phrase.words, words) or (
                phrase.compact and any(compact.startswith(phrase.compact, at) for at in starts)
            ):
                return CrisisHit(phrase.language, phrase.text)
        return None
