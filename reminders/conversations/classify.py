"""Classification of an inbound message (docs/design.md section 9), in this order:

crisis language -> opt-out / opt-in / help keyword -> confirm (C) / reschedule (R) ->
check-in score (only while a check-in is outstanding) -> free text.

Crisis comes first so that no keyword or score can hide it; it is screened on the whole text,
the commands only on ``command`` (the first line of an email, the whole SMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reminders.conversations.crisis import CrisisHit, CrisisScreen
from reminders.conversations.keywords import is_confirm, is_reschedule, keyword_command, parse_score

Kind = Literal[
    "crisis", "opt_out", "opt_in", "help", "confirm", "reschedule", "checkin", "free_text"
]
KINDS: tuple[str, ...] = (
    "crisis",
    "opt_out",
    "opt_in",
    "help",
    "confirm",
    "reschedule",
    "checkin",
    "free_text",
)


@dataclass(frozen=True)
class Classification:
    kind: Kind
    crisis: CrisisHit | None = None
    # A parsed check-in score (also kept with a crisis hit, so the trend is not lost).
    score: int | None = None
    # Text after the score ("7, slept badly"), for the staff inbox.
    comment: str = ""


def classify(
    text: str,
    *,
    screen: CrisisScreen,
    confirm_keyword: str,
    reschedule_keyword: str,
    checkin_outstanding: bool,
    command: str | None = None,
) -> Classification:
    command = text if command is None else command
    parsed = parse_score(command) if checkin_outstanding else None
    hit = screen.screen(text)
    if hit is not None:
        return Classification("crisis", crisis=hit, score=parsed[0] if parsed else None)
    keyword = keyword_command(command)
    if keyword is not None:
        return Classification(keyword)
    if is_confirm(command, confirm_keyword):
        return Classification("confirm")
    if is_reschedule(command, reschedule_keyword):
        return Classification("reschedule")
    if parsed is not None:
        return Classification("checkin", score=parsed[0], comment=parsed[1])
    return Classification("free_text")
