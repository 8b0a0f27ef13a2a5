"""The message status machine: the moves allowed, and that no sequence of events can move a
row backwards or out of a final state (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reminders.db.models import MESSAGE_STATUS_CHECK
from reminders.outbox import status
from reminders.outbox.status import ACCEPTED, FINAL, MOVES, IllegalMove, Status, move

EVENTS = sorted(MOVES)
# Events that may only happen before any provider call began for this attempt.
BEFORE_CALL = {"cancel", "skip", "fail_unsent", "revive", "send"}


def test_the_database_check_lists_exactly_the_statuses() -> None:
    assert status.check_constraint_sql() == MESSAGE_STATUS_CHECK
    assert set(status.MESSAGE_STATUSES) == {
        "planned",
        "sending",
        "sent",
        "delivered",
        "failed",
        "cancelled",
        "skipped",
    }


@pytest.mark.parametrize(
    ("current", "event"),
    [
        ("sent", "send"),  # a sent message is never sent again
        ("delivered", "report_failed"),  # delivered is final
        ("sent", "retry"),  # the provider has it: no retry
        ("sent", "reconciled_absent"),
        ("planned", "accepted"),  # acceptance needs a provider call
        ("skipped", "revive"),
        ("failed", "send"),
        ("cancelled", "send"),  # revived first, through the planner
    ],
)
def test_an_illegal_move_is_refused(current: str, event: str) -> None:
    with pytest.raises(IllegalMove, match=event):
        move(current, event)


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(IllegalMove, match="unknown"):
        move("planned", "teleport")


def test_the_life_of_a_message() -> None:
    s = "planned"
    for event, expected in [
        ("send", "sending"),
        ("retry", "planned"),
        ("send", "sending"),
        ("reconciled_found", "sent"),
        ("report_delivered", "delivered"),
    ]:
        s = move(s, event)
        assert s == expected


@given(st.sampled_from(list(Status)), st.lists(st.sampled_from(EVENTS), max_size=40))
def test_no_sequence_of_events_moves_a_row_backwards(start: Status, events: list[str]) -> None:
    """Applying any events (illegal ones are refused and change nothing): a final status is
    never left, a row the provider accepted never goes back to planned or sending, and the
    only ways back to planned are a retry, a slot given back or a reconciled absence from
    ``sending`` (nothing accepted) and a revive from ``cancelled``."""
    current = start.value
    for event in events:
        try:
            after = move(current, event)
        except IllegalMove:
            assert not status.allowed(current, event)
            continue
        assert current not in FINAL, f"{event} left the final status {current}"
        if current in ACCEPTED:
            assert after not in (Status.PLANNED, Status.SENDING), f"{event}: {current} -> {after}"
            assert event.startswith("report_"), f"only provider reports move {current}"
        if after == Status.PLANNED:
            assert (current, event) in {
                ("sending", "retry"),
                ("sending", "unsend"),
                ("sending", "reconciled_absent"),
                ("cancelled", "revive"),
            }
        if event in BEFORE_CALL:
            assert current in (Status.PLANNED, Status.CANCELLED)
        current = after


def test_every_move_ends_in_a_known_status() -> None:
    for event, (sources, target) in MOVES.items():
        assert sources and all(isinstance(s, Status) for s in sources), event
        assert isinstance(target, Status)
        assert status.sources(event) == tuple(sorted(s.value for s in sources))
