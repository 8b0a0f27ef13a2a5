"""The planner's writes to the outbox, a whole batch per statement.

:func:`insert_planned_postgres` sends a batch of new rows to PostgreSQL as one
``INSERT ... SELECT ... FROM unnest(<one array per column>) ON CONFLICT (dedupe_key) DO
NOTHING``: 12 parameters whatever the batch size, dumped by psycopg in binary. The form it
replaces (a multi-row ``VALUES`` list with ``RETURNING id``, through SQLAlchemy's per-value
type processing) spent most of its time in psycopg parsing a 15,000-placeholder statement, not
in the server. No ``RETURNING`` is needed: an ``INSERT``'s row count is the rows it inserted,
and rows skipped by ``ON CONFLICT DO NOTHING`` are not counted.

Its semantics are those of :func:`reminders.outbox.store.insert_planned`:

- dedupe keys that exist are skipped, so planning twice inserts nothing new, and two
  transactions planning the same keys at once insert each key once (the second waits for the
  first's uncommitted key, then skips it);
- values are stored as the ORM stores them: times as ``timestamptz`` (aware datetimes;
  naive ones are refused, as :class:`reminders.db.types.UtcDateTime` refuses them), ``data``
  as the JSON text SQLAlchemy's ``JSON`` type writes (``json.dumps``, default separators).

:func:`move_planned`, :func:`revive_cancelled` and :func:`cancel_planned` are the batched
forms of :func:`reminders.outbox.store.move`, :func:`~reminders.outbox.store.revive` and
:func:`~reminders.outbox.store.cancel_planned`, on both backends: the same single-row
UPDATE, by primary key and conditional on the row's status (the moves named by their events
in :mod:`reminders.outbox.status`), built once and sent as one ``executemany`` (psycopg
pipelines it; SQLite runs it in one call). One ORM statement at a time, a re-plan that moved
or cancelled many messages (a policy change, a clinic sync) cost 0.8-1.5 ms per message on
PostgreSQL; batched, 0.05-0.1 ms. An ``UPDATE ... FROM unnest(...)`` join was tried and
dropped: its plan depends on the table's statistics, and on a table that had just grown its
generic plan was a nested loop that took 28 s for 1,441 rows. (The single-row form needs
statistics too, or it may walk the ``(status, due_at)`` index instead of the primary key:
:mod:`reminders.planning.plan_pass` analyzes the table after a bulk load.) Rows go in id
order, so two planners working on the same patients lock them in the same order.

Everything executes on the caller's session; the caller commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, or_, update
from sqlalchemy.orm import Session

from reminders.db.models import Message
from reminders.db.types import UtcDateTime
from reminders.outbox.status import sources, target

if TYPE_CHECKING:  # store.py may import this module: no import cycle at run time
    from reminders.outbox.store import PlannedRow

_messages = cast(Table, Message.__table__)


def _aware(value: datetime) -> datetime:
    """Aware datetimes pass (``timestamptz`` keeps the instant); naive ones are refused, as
    :class:`UtcDateTime` refuses them."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime given to a UtcDateTime column")
    return value.astimezone(UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


# --- inserting (PostgreSQL) -------------------------------------------------------------------

# One array per varying column; status, attempts and the two timestamps are the same for
# every row of a batch. unnest() of several arrays yields their elements side by side, in order.
_PG_INSERT_PLANNED = """
INSERT INTO messages (
    dedupe_key, patient_id, session_id, session_starts_at, rule, kind, channel, template,
    due_at, not_after, data, status, attempts, created_at, updated_at
)
SELECT u.dedupe_key, u.patient_id, u.session_id, u.session_starts_at, u.rule, u.kind,
       u.channel, u.template, u.due_at, u.not_after, u.data::json,
       'planned', 0, %(stamp)s, %(stamp)s
FROM unnest(
    %(dedupe_key)b::text[], %(patient_id)b::text[], %(session_id)b::text[],
    %(session_starts_at)b::timestamptz[], %(rule)b::text[], %(kind)b::text[],
    %(channel)b::text[], %(template)b::text[], %(due_at)b::timestamptz[],
    %(not_after)b::timestamptz[], %(data)b::text[]
) AS u(dedupe_key, patient_id, session_id, session_starts_at, rule, kind, channel, template,
       due_at, not_after, data)
ON CONFLICT (dedupe_key) DO NOTHING
"""


def insert_planned_postgres(db: Session, planned: Sequence[PlannedRow], timestamp: datetime) -> int:
    """New outbox rows on PostgreSQL, existing dedupe keys skipped; returns how many were new.

    Any batch size is one statement, and its text never changes (psycopg prepares it once per
    connection). Rows are inserted in the order given.
    """
    if not planned:
        return 0
    params: dict[str, Any] = {
        "stamp": _aware(timestamp),
        "dedupe_key": [pm.dedupe_key for pm in planned],
        "patient_id": [pm.patient_id for pm in planned],
        "session_id": [pm.session_id for pm in planned],
        "session_starts_at": [_aware_or_none(pm.session_starts_at) for pm in planned],
        "rule": [pm.rule for pm in planned],
        "kind": [pm.kind for pm in planned],
        "channel": [pm.channel for pm in planned],
        "template": [pm.template for pm in planned],
        "due_at": [_aware(pm.due_at) for pm in planned],
        "not_after": [_aware_or_none(pm.not_after) for pm in planned],
        "data": [json.dumps(pm.data) for pm in planned],
    }
    result = db.connection().exec_driver_sql(_PG_INSERT_PLANNED, params)
    return max(int(result.rowcount), 0)


# --- re-planning (both backends) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewTimes:
    """An existing outbox row's new due time, expiry and data (a move or a revival)."""

    id: int
    due_at: datetime
    not_after: datetime | None
    data: dict[str, Any]


# The same statements as store.move, store.revive and store.cancel_planned (one row each, by
# primary key, conditional on its status; the status moves named by their events in
# reminders.outbox.status), built once.
_c = _messages.c


def _status_in(event: str) -> Any:
    """``status`` is one of the event's source statuses, as plain parameters (an expanding
    ``IN`` cannot be used with ``executemany``)."""
    return or_(*(_c.status == status for status in sources(event)))


_NEW_TIMES = {
    "due_at": bindparam("b_due_at", type_=UtcDateTime()),
    "not_after": bindparam("b_not_after", type_=UtcDateTime()),
    "data": bindparam("b_data", type_=_c.data.type),
    "updated_at": bindparam("b_at", type_=UtcDateTime()),
}
_MOVE = (
    update(_messages)
    .where(_c.id == bindparam("b_id"), _c.status == "planned", _c.lease_owner.is_(None))
    .values(**_NEW_TIMES)
)
_REVIVE = (
    update(_messages)
    .where(_c.id == bindparam("b_id"), _status_in("revive"))
    .values(status=target("revive"), reason=None, **_NEW_TIMES)
)
_CANCEL = (
    update(_messages)
    .where(_c.id == bindparam("b_id"), _status_in("cancel"))
    .values(
        status=target("cancel"),
        reason=bindparam("b_reason"),
        updated_at=bindparam("b_at", type_=UtcDateTime()),
        lease_owner=None,
        lease_until=None,
    )
)


def _new_times(db: Session, stmt: Any, rows: Sequence[NewTimes], at: datetime) -> None:
    if not rows:
        return
    db.connection().execute(
        stmt,
        [
            {
                "b_id": r.id,
                "b_due_at": r.due_at,
                "b_not_after": r.not_after,
                "b_data": r.data,
                "b_at": at,
            }
            for r in sorted(rows, key=lambda r: r.id)
        ],
    )


def move_planned(db: Session, rows: Sequence[NewTimes], *, at: datetime) -> None:
    """Planned messages get new due times (unless a dispatcher holds one right now)."""
    _new_times(db, _MOVE, rows, at)


def revive_cancelled(db: Session, rows: Sequence[NewTimes], *, at: datetime) -> None:
    """Messages the planner cancelled are wanted again: back to ``planned``."""
    _new_times(db, _REVIVE, rows, at)


def cancel_planned(db: Session, rows: Sequence[tuple[int, str]], *, at: datetime) -> None:
    """``(id, reason)``: planned messages no longer wanted, cancelled with their reason."""
    if not rows:
        return
    db.connection().execute(
        _CANCEL, [{"b_id": i, "b_reason": reason, "b_at": at} for i, reason in sorted(rows)]
    )
