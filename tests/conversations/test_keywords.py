from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reminders.conversations.classify import classify
from reminders.conversations.keywords import keyword_command, parse_score
from reminders.conversations.risk import risk_screen_for
from reminders.settings import Settings

SCREEN = risk_screen_for(Settings())


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("7", 7),
        ("7/10", 7),
        ("7 / 10", 7),
        ("a 7", 7),
        ("seven", 7),
        ("Siete", 7),
        ("un 7", 7),
        ("0", 0),
        ("10", 10),
        ("7 out of 10", 7),
        ("I'd say 6.5", 6),
        ("8 - slept well", 8),
        ("Me siento un 4", 4),
    ],
)
def test_scores(text: str, score: int) -> None:
    parsed = parse_score(text)
    assert parsed is not None and parsed[0] == score


@pytest.mark.parametrize("text", ["11", "10am tomorrow", "3pm ok?", "2 days", "hello", "-1", ""])
def test_not_scores(text: str) -> None:
    assert parse_score(text) is None


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("STOP", "opt_out"),
        (" stop. ", "opt_out"),
        ("Unsubscribe", "opt_out"),
        ("START", "opt_in"),
        ("yes", "opt_in"),
        ("Info", "help"),
        ("stop calling my sister", None),
        ("C", None),
    ],
)
def test_keywords(text: str, command: str | None) -> None:
    assert keyword_command(text) == command


def _kind(text: str, checkin: bool = False) -> str:
    return classify(
        text,
        screen=SCREEN,
        confirm_keyword="C",
        reschedule_keyword="R",
        checkin_outstanding=checkin,
    ).kind


def test_order() -> None:
    assert _kind("c") == "confirm"
    assert _kind("R") == "reschedule"
    assert _kind("7") == "free_text"
    assert _kind("7", checkin=True) == "checkin"
    assert _kind("STOP", checkin=True) == "opt_out"
    assert _kind("I want to die") == "crisis"
    assert _kind("1, want to die", checkin=True) == "crisis"


@given(st.text(max_size=300))
def test_classify_never_fails(text: str) -> None:
    assert _kind(text, checkin=True) in {
        "crisis",
        "opt_out",
        "opt_in",
        "help",
        "confirm",
        "reschedule",
        "checkin",
        "review",  # the risk screen's urgent-review tier (issue 9)
        "free_text",
    }
