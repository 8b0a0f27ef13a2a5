"""Text normalisation for the risk screen: what rules and the classifier both read.

``normalise(text)`` gives lower-case ASCII words separated by single spaces, with

- emoji that carry meaning turned into words (💊 -> "pills", 🔫 -> "gun", 🪦 -> "grave");
- accents, apostrophes and punctuation removed ("can't" -> "cant", "corté" -> "corte");
- look-alike characters inside words read as letters ("k1ll" -> "kill", "$uicide");
- letters repeated for emphasis cut to two ("killlll" -> "kill", "pleeease" -> "pleease");
- letters spelled out one by one joined ("s u i c i d e" -> "suicide");
- chat spellings rewritten ("wanna" -> "want to", "kiero" -> "quiero", "u" -> "you");
- misspelled risk words corrected to the nearest word of the screen's lexicon, within one
  letter for words of six or more letters and two for nine or more ("suicidle",
  "overdoesd", "pastilals").

Clauses are split at sentence ends and at "but" / "pero", so a negation in one clause does not
cancel a statement in the next ("not suicidal but I keep thinking about ending it").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from reminders.conversations.crisis import edit_distance
from reminders.conversations.risk.words import COMMON, EMOJI_WORDS, ING, LEXICON, REWRITES

_LOOKALIKES = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)

_SPLIT_CLAUSES = re.compile(
    r"(?<!\.)\.(?!\.)|[!?;,\n]+|\b(?:but|pero|though|although|aunque|sino)\b"
)


# Accents that change who did it: "me mató" (it killed me, an idiom) is not "me mato" (I kill
# myself); the accented past tense becomes a word no rule reads.
_ACCENTED = {"mató": "matoacc", "mato\u0301": "matoacc", "morí": "moriacc", "mori\u0301": "moriacc"}


def _fold(text: str) -> str:
    # "OD'd" would fold to the word "odd".
    text = re.sub(r"\bod['\u2019]?d\b", "overdosed", text, flags=re.IGNORECASE)
    lowered = text.casefold()
    for accented, word in _ACCENTED.items():
        if accented in lowered:
            text = re.sub(accented, word, text, flags=re.IGNORECASE)
    for emoji, word in EMOJI_WORDS.items():
        if emoji in text:
            text = text.replace(emoji, f" {word} ")
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"['\u2019\u2018`\u00b4]", "", text)


def _words(text: str) -> list[str]:
    out: list[str] = []
    for chunk in text.split():
        chunk = chunk.strip("!?.,;:")
        number_and_unit = re.fullmatch(r"\d+(?:[.,]\d+)?[a-z]{0,5}", chunk)  # 800mg, 10pm
        if not number_and_unit and re.search(r"[a-z][0-9@$!]|[0-9@$!][a-z]", chunk):
            chunk = chunk.translate(_LOOKALIKES)
        out.extend(re.findall(r"[a-z]+|\d+(?:[.,]\d+)?", chunk))
    return out


def _join_spelled(words: list[str]) -> list[str]:
    """'s u i c i d e' -> 'suicide': four or more single letters in a row become one word."""
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        out.extend(["".join(run)] if len(run) >= 4 else run)
        run = []
        if word:
            out.append(word)
    return out


_BY_LENGTH: dict[int, list[str]] = {}
for _word in LEXICON:
    _BY_LENGTH.setdefault(len(_word), []).append(_word)


@lru_cache(maxsize=65536)
def correct(word: str) -> str:
    """``word``, or the lexicon word it misspells (one unique nearest word)."""
    if word in LEXICON or word in COMMON or len(word) < 6 or not word.isalpha():
        return word
    limit = 2 if len(word) >= 9 else 1
    best: list[str] = []
    best_distance = limit + 1
    for length in range(len(word) - limit, len(word) + limit + 1):
        for candidate in _BY_LENGTH.get(length, ()):
            distance = edit_distance(word, candidate, limit)
            if distance < best_distance:
                best, best_distance = [candidate], distance
            elif distance == best_distance and distance <= limit:
                best.append(candidate)
    if len(best) > 1 and len({c[:6] for c in best}) == 1:
        return min(best, key=len)  # "overdosd": overdose or overdosed, the same word
    return best[0] if len(best) == 1 else word


# Everyday compounds made of risk words become one harmless word ("glue gun" -> "gluegun",
# "suicide sprints", "dead tired", "blood test", "me muero de risa"), so no rule reads them.
_COMPOUNDS = re.compile(
    r"\b(?:(?:glue|nail|heat|staple|squirt|water|nerf|spray|paint|caulk|caulking|glitter|hot glue|"
    r"radar|speed|jump) gun|gun shy|jump(?:ed|ing)? the gun|suicide (?:drills?|doors?|squeeze|"
    r"sprints?|runs?|lines?|squad|knot)|(?:doing|do|did|run|ran|running|made them run) suicides?|dead (?:tired|asleep|battery|phone|end|serious|set|"
    r"to me|center|last|wrong|silent|quiet|on)|(?:phone|battery|car) (?:is |was |will be |going to "
    r"be )?dead|(?:goodbye|farewell|going away|leaving) (?:lunch|party|dinner|card|drinks|gift|"
    r"breakfast)|blood (?:test|tests|draw|drawn|work|pressure|sugar|results|type|donation|bank)|"
    r"cut (?:my|his|her) (?:hair|bangs|nails|finger|hand) (?:shaving|cooking|chopping|on|with)|"
    r"cut myself (?:shaving|cooking|chopping|on|with|by accident|accidentally)|killing it|"
    r"killed it|(?:dying|die) (?:to|for) (?:know|see|try|go|hear|meet)|passed out (?:on the "
    r"(?:couch|sofa)|asleep|early|in bed|at \d+)|(?:me )?(?:muero|mori|morir|muerta|muerto|morirme) "
    r"(?:de|por) (?:la )?(?:verguenza|risa|hambre|sueno|ganas|pena|frio|calor|aburrimiento|"
    r"envidia|amor|cansancio|miedo|sed|nervios)|breathe? (?:thru|through) (?:my|his|her|the) nose|"
    r"(?:respirar|respiro) (?:bien )?por la nariz|can not breathe well|goodbye to (?:this|my|the) "
    r"(?:depression|anxiety|sadness|old|pain|job|fear)|sobredosis de (?:tamales|comida|azucar|pan|"
    r"cafe|chocolate|novelas|series|amor|trabajo|dulces|pastel|tacos|netflix)|(?:passed|pass) out "
    r"(?:after|from) (?:my |the |a )?(?:night |long )?(?:shift|work|exhaustion|gym|workout|nap))\b"
)


def normalise(text: str) -> str:
    words = _join_spelled(_words(_fold(text)))
    out: list[str] = []
    for word in words:
        word = re.sub(r"([a-z])\1{2,}", r"\1\1", word)
        if word.endswith("in") and word + "g" in ING:
            word += "g"
        for part in REWRITES.get(word, word).split():
            out.append(correct(part))
    text = " ".join(out)
    # "not gonna lie" is not a negation of what follows.
    # "zz" in front: no pattern can match a compound's word start ("suicid\\w*").
    text = _COMPOUNDS.sub(lambda m: "zz" + m.group(0).replace(" ", ""), text)
    text = re.sub(r"\bno e\b", "no he", text)
    return re.sub(r"\b(?:not going to lie|not gon lie|no lie|not to lie)\b", "ngl", text)


def clauses(text: str) -> list[str]:
    """The normalised clauses of ``text`` (sentences, split again at "but" / "pero")."""
    parts = [normalise(p) for p in _SPLIT_CLAUSES.split(_fold(text)) if p and p.strip()]
    return [p for p in parts if p]
