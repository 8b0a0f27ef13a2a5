"""The password policy (security audit, item 4): trivially weak passwords are refused.

A password needs ``MIN_LENGTH`` characters, must not contain the account's email name or the
clinic's name, and must score at least ``MIN_SCORE`` (of 0-4) with zxcvbn, Dropbox's
strength estimator: it knows common and breached passwords, dictionary words, names,
keyboard patterns, dates, repeats and l33t substitutions, and estimates the guesses needed.
Used by the password page and by ``reminders staff add / reset-password`` (the one-time
passwords the system makes pass it too).
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

MIN_LENGTH = 10
MIN_SCORE = 3
# zxcvbn's time grows with the length; what it sees of a longer password is plenty.
SCORED_CHARS = 100


def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _personal(email: str, clinic_name: str) -> list[str]:
    """What must not be in a password: the email's name and the clinic's name (and its
    longer words), compared without case, spaces or punctuation."""
    words = [email.split("@")[0], clinic_name, *re.split(r"\W+", clinic_name)]
    return sorted({w for w in map(_squash, words) if len(w) >= 4}, key=len, reverse=True)


def weakness(password: str, *, email: str = "", clinic_name: str = "") -> str | None:
    """Why ``password`` is refused, in a sentence for the person choosing it; None if it is
    fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    squashed = _squash(password)
    for word in _personal(email, clinic_name):
        if word in squashed:
            return "Do not use your email name or the clinic's name in your password."
    result = zxcvbn(password[:SCORED_CHARS], user_inputs=_personal(email, clinic_name))
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    hints = [str(feedback.get("warning") or "")]
    hints += [str(s) for s in feedback.get("suggestions") or []]
    advice = " ".join(h.rstrip(".") + "." for h in hints if h)
    return (
        "This password is too easy to guess. "
        + (advice + " " if advice else "")
        + "A few unrelated words make a strong password that is easy to remember."
    )
