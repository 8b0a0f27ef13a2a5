"""Classification of an inbound message (docs/design.md section 9), in this order:

crisis (the risk screen's first tier) -> opt-out / opt-in / help keyword -> confirm (C) /
reschedule (R) -> check-in score (only while a check-in is outstanding) -> urgent review (the
risk screen's second tier) -> free text.

Crisis comes first so that no keyword or score can hide it; the risk screen reads the whole
text, the commands only ``command`` (the first line of an email, the whole SMS). A review
finding is kept on the classification whatever the kind ("7, not suicidal, just tired" is a
check-in score *and* a message a person must read soon).

:func:`for_sender` then takes the commands out of a message whose sender is not verified (an
email failing SPF/DKIM): it is read by a person and changes nothing by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from reminders.conversations.keywords import is_confirm, is_reschedule, keyword_command, parse_score
from reminders.conversations.matching import sender_unverified
from reminders.conversations.risk import RiskFinding, RiskScreen

Kind = Literal[
    "crisis",
    "opt_out",
    "opt_in",
    "help",
    "confirm",
    "reschedule",
    "checkin",
    "review",
    "free_text",
]
KINDS: tuple[str, ...] = (
    "crisis",
    "opt_out",
    "opt_in",
    "help",
    "confirm",
    "reschedule",
    "checkin",
    "review",
    "free_text",
)


@dataclass(frozen=True)
class Classification:
    kind: Kind
    # The risk screen's finding: tier "crisis" (kind "crisis") or "review" (any other kind).
    risk: RiskFinding | None = None
    # A parsed check-in score (also kept with a crisis hit, so the trend is not lost).
    score: int | None = None
    # Text after the score ("7, slept badly"), for the staff inbox.
    comment: str = ""


def _is_command(command: str, parsed: tuple[int, str] | None) -> bool:
    return len(command.split()) <= 2 or (parsed is not None and not parsed[1])


def classify(
    text: str,
    *,
    screen: RiskScreen,
    confirm_keyword: str,
    reschedule_keyword: str,
    checkin_outstanding: bool,
    command: str | None = None,
) -> Classification:
    command = text if command is None else command
    parsed = parse_score(command) if checkin_outstanding else None
    risk = screen.assess(text)
    if risk is not None and risk.tier == "crisis":
        return Classification("crisis", risk=risk, score=parsed[0] if parsed else None)
    if risk is not None and risk.source == "model" and _is_command(command, parsed):
        # The classifier's doubt about "HELP" or a bare "7" is noise: no rule saw risk in it.
        risk = None
    keyword = keyword_command(command)
    if keyword is not None:
        return Classification(keyword, risk=risk)
    if is_confirm(command, confirm_keyword):
        return Classification("confirm", risk=risk)
    if is_reschedule(command, reschedule_keyword):
        return Classification("reschedule", risk=risk)
    if parsed is not None:
        return Classification("checkin", risk=risk, score=parsed[0], comment=parsed[1])
    if risk is not None:
        return Classification("review", risk=risk)
    return Classification("free_text")


def for_sender(cls: Classification, sender_note: str | None) -> Classification:
    """What may be acted on, given the sender's match note (``matching.match_inbound``).

    A sender that is not verified (a forged ``From:`` reads exactly like the patient) gets no
    automatic effect: a crisis stays a crisis, so on-call staff are still paged (safety first),
    but without recording its score; a keyword (STOP, START, HELP), a confirmation, a request to
    reschedule or a check-in score becomes a message for a person to read (``review`` when the
    risk screen flagged it). A verified sender's classification is returned as it is.
    """
    if not sender_unverified(sender_note):
        return cls
    if cls.kind == "crisis":
        return replace(cls, score=None)
    if cls.risk is not None:
        return Classification("review", risk=cls.risk)
    return Classification("free_text")
