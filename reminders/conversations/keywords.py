"""Keyword commands (whole-message, Twilio's defaults) and check-in scores.

Twilio's default keywords only act when they are the whole message ("STOP", "stop.", " Stop "),
so the same rule applies here: "please stop calling my sister" is free text, not an opt-out.
"""

from __future__ import annotations

import re
from typing import Literal

from reminders.conversations.crisis import fold

Command = Literal["opt_out", "opt_in", "help"]

# Twilio's default opt-out / opt-in / help keywords, plus their common Spanish equivalents.
OPT_OUT = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
        "alto",
        "parar",
        "detener",
        "baja",
    }
)
# YES is a Twilio opt-in keyword; confirmations use C, never YES (docs/design.md section 9).
# "Sí" is a confirmation (section 9), not an opt-in: Twilio's opt-in keywords are English.
OPT_IN = frozenset({"start", "unstop", "yes"})
HELP = frozenset({"help", "info", "ayuda"})
SPANISH_KEYWORDS = frozenset({"alto", "parar", "detener", "baja", "ayuda"})

CONFIRM_WORDS = frozenset(
    {"confirm", "confirmed", "confirmo", "confirmar", "confirmado", "confirmada", "si"}
)
# "si confirmo", "sí, confirmado", "c confirmo", "confirmo mi cita", "sí, ahí estaré".
CONFIRM_PHRASE = re.compile(
    r"^(?:(?:si|c|ok|okay|yes)\s+)?(?:confirm|confirmed|confirmo|confirmar|confirmado|confirmada|"
    r"ahi estare|alli estare|ahi nos vemos)(?:\s+(?:mi|la|su)\s+(?:cita|visita|"
    r"sesion|infusion))?(?:\s+gracias)?$|^si\s+(?:gracias|ahi estare|alli estare|ahi nos vemos)$"
)
RESCHEDULE_WORDS = frozenset({"reschedule", "reprogramar", "cambiar"})

NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "cero": 0,
    "uno": 1,
    "una": 1,
    "un": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "diez": 10,
}
_NUMBER = (
    r"(?P<num>\d{1,2}(?:[.,]\d+)?|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
)
_LEAD = (
    r"(?:(?:i d say|id say|i would say|i say|i am|im|i m|i feel|feeling|mood|today|about|around|"
    r"maybe|like|probably|solid|a|an|its|it s|it is|un|una|como|estoy en|me siento|diria|yo diria|"
    r"hoy|es)\s+)*"
)
_OUT_OF = r"(?:\s*(?:/|out of|of|de|sobre)\s*10)?"
SCORE_RE = re.compile(rf"^\s*{_LEAD}{_NUMBER}{_OUT_OF}(?P<rest>(?:[\s.,;:!)\-].*)?)$", re.DOTALL)


def command_text(body: str) -> str:
    """The message folded for keyword matching: lower case, no accents, outer punctuation gone."""
    return re.sub(r"\s+", " ", fold(body)).strip().strip(".!?¡¿,;:'\"()[]*-_ ").strip()


def keyword_command(body: str) -> Command | None:
    word = command_text(body)
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word in HELP:
        return "help"
    return None


def is_confirm(body: str, keyword: str) -> bool:
    text = command_text(body)
    if text == command_text(keyword) or text in CONFIRM_WORDS:
        return True
    return CONFIRM_PHRASE.match(" ".join(re.sub(r"[^a-z0-9 ]+", " ", text).split())) is not None


def is_reschedule(body: str, keyword: str) -> bool:
    text = command_text(body)
    return text == command_text(keyword) or text in RESCHEDULE_WORDS


def parse_score(body: str) -> tuple[int, str] | None:
    """A 0-10 check-in answer at the start of the message and what follows it.

    "7", "7/10", "a 7", "seven", "siete", "I'd say 6.5" (rounded down: a low score must not be
    rounded away from the alert threshold), "8 - slept well". None when it is not a score.
    """
    text = re.sub(r"\s+", " ", fold(body)).strip()
    text = text.replace("'", " ")
    match = SCORE_RE.match(text)
    if not match:
        return None
    raw = match.group("num")
    value = NUMBER_WORDS[raw] if raw in NUMBER_WORDS else int(float(raw.replace(",", ".")))
    if not 0 <= value <= 10:
        return None
    rest = match.group("rest").strip(" .,;:!-)")
    # "10am tomorrow" or "7 pm": a time, not a score.
    if re.match(r"^(am|pm|a m|p m|h|hrs|hours|horas|min|minutes|minutos|days|dias)\b", rest):
        return None
    return value, rest
