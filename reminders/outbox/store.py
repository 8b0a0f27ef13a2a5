"""The SQL on the outbox (the ``messages`` table): every write the planner and the
dispatcher make goes through here, each conditional on the row's state.

- Inserts skip dedupe keys that exist (``ON CONFLICT DO NOTHING``), so planning twice, or
  in two workers at once, inserts nothing new.
- A claim is a lease on the row (``lease_owner``, ``lease_until``), per channel, so a slow
  provider never holds another's messages: PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so
  several workers share the outbox; SQLite relies on ``BEGIN IMMEDIATE`` (one host). A
  claimed message is marked ``sending`` (committed) once its rate slot has come, just before
  the provider is called, and ``sent`` after; a crash in between leaves it ``sending`` with an
  expired lease (in doubt), for the reconcile pass (:mod:`reminders.outbox.settle`).
- Every update names the statuses it may move the row from, by the event's name in
  :mod:`reminders.outbox.status`, so a row that moved on meanwhile (cancelled, re-planned,
  delivered) is left alone, and no writer can make a move the table there does not allow.

The functions execute on the caller's session; the caller commits, except
:func:`claim_due`, whose lease must be visible to other workers at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, case, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reminders.db.models import Message
from reminders.db.types import UtcDateTime, sqlite_time, utcnow
from reminders.outbox import bulk
from reminders.outbox.status import sources, target

_messages = cast(Table, Message.__table__)


class PlannedRow(Protocol):
    """What a new outbox row is made from (the planner's ``PlannedMessage``), read-only."""

    @property
    def dedupe_key(self) -> str: ...
    @property
    def patient_id(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def session_starts_at(self) -> datetime | None: ...
    @property
    def rule(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def not_after(self) -> datetime | None: ...
    @property
    def data(self) -> dict[str, Any]: ...


# --- inserting --------------------------------------------------------------------------------


def insert_ignore(db: Session, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping dedupe keys that exist; returns how many were new."""
    if not rows:
        return 0
    conn = db.connection()
    if db.get_bind().dialect.name == "postgresql":
        # Batched multi-row VALUES; RETURNING lists only the rows the conflict did not skip.
        pg = postgresql.insert(_messages).on_conflict_do_nothing(index_elements=["dedupe_key"])
        return len(conn.execute(pg.returning(_messages.c.id), rows).all())
    lite = sqlite.insert(_messages).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return max(int(conn.execute(lite, rows).rowcount), 0)


_PLANNED_COLUMNS = (
    "dedupe_key",
    "patient_id",
    "session_id",
    "session_starts_at",
    "rule",
    "kind",
    "channel",
    "template",
    "due_at",
    "not_after",
    "status",
    "attempts",
    "data",
    "created_at",
    "updated_at",
)
_SQLITE_INSERT_PLANNED = (
    f"INSERT INTO messages ({', '.join(_PLANNED_COLUMNS)}) VALUES ({', '.join('?' * len(_PLANNED_COLUMNS))}) "
    "ON CONFLICT (dedupe_key) DO NOTHING"
)


def insert_planned(db: Session, planned: Sequence[PlannedRow], timestamp: datetime) -> int:
    """The planner's hot path: new outbox rows, existing dedupe keys skipped; returns how many."""
    if not planned:
        return 0
    if db.get_bind().dialect.name == "postgresql":
        # The whole batch in one INSERT ... SELECT FROM unnest(arrays) (reminders/outbox/bulk.py).
        return bulk.insert_planned_postgres(db, planned, timestamp)
    # SQLite: a DB-API executemany with values already in their stored form (SQLAlchemy's
    # per-value processing costs more than SQLite's insert); rowcount = rows inserted.
    stamp = sqlite_time(timestamp)
    values = [
        (
            pm.dedupe_key,
            pm.patient_id,
            pm.session_id,
            None if pm.session_starts_at is None else sqlite_time(pm.session_starts_at),
            pm.rule,
            pm.kind,
            pm.channel,
            pm.template,
            sqlite_time(pm.due_at),
            None if pm.not_after is None else sqlite_time(pm.not_after),
            "planned",
            0,
            json.dumps(pm.data),
            stamp,
            stamp,
        )
        for pm in planned
    ]
    cursor = db.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT_PLANNED, values)
        return max(int(cursor.rowcount), 0)
    finally:
        cursor.close()


def add_fallback(db: Session, msg: Message, channel: str, now: datetime) -> None:
    """Queue the same message on the rule's fallback channel (once)."""
    insert_ignore(
        db,
        [
            {
                "dedupe_key": f"{msg.dedupe_key}|fallback:{channel}"[:255],
                "patient_id": msg.patient_id,
                "session_id": msg.session_id,
                "session_starts_at": msg.session_starts_at,
                "rule": msg.rule,
                "kind": msg.kind,
                "channel": channel,
                "template": msg.template,
                "due_at": now,
                "not_after": msg.not_after,
                "status": "planned",
                "attempts": 0,
                "data": {**(msg.data or {}), "fallback_from": msg.id},
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        ],
    )


# --- conditional updates --------------------------------------------------------------------


def _update(db: Session, *conditions: Any, **values: Any) -> None:
    db.execute(
        update(Message)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- claiming and sending ---------------------------------------------------------------------


_CLAIM_SQL = {
    # Several workers: SKIP LOCKED lets each take different rows without waiting.
    "postgresql": """
        WITH due AS (
            SELECT id FROM messages
            WHERE status = 'planned' AND due_at <= :now
              AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
              AND (lease_until IS NULL OR lease_until < :now)
              AND (CAST(:channel AS VARCHAR) IS NULL OR channel = :channel)
            ORDER BY due_at, id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        UPDATE messages m SET lease_owner = :owner, lease_until = :until
        FROM due WHERE m.id = due.id
        RETURNING m.id
    """,
    # One host: the transaction began with BEGIN IMMEDIATE, so it already holds the write lock.
    "sqlite": """
        UPDATE messages SET lease_owner = :owner, lease_until = :until
        WHERE id IN (
            SELECT id FROM messages
            WHERE status = 'planned' AND due_at <= :now
              AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
              AND (lease_until IS NULL OR lease_until < :now)
              AND (:channel IS NULL OR channel = :channel)
            ORDER BY due_at, id
            LIMIT :limit
        )
        RETURNING id
    """,
}


def claim_due(
    db: Session,
    *,
    now: datetime,
    owner: str,
    limit: int,
    lease: timedelta,
    channel: str | None = None,
) -> list[int]:
    """Lease up to ``limit`` due messages (of ``channel``, or all) to ``owner``; returns their
    ids (committed)."""
    dialect = db.get_bind().dialect.name
    stmt = text(_CLAIM_SQL["postgresql" if dialect == "postgresql" else "sqlite"]).bindparams(
        # Typed, so times are written exactly as the columns store them (SQLite compares text).
        bindparam("now", type_=UtcDateTime()),
        bindparam("until", type_=UtcDateTime()),
    )
    rows = (
        db.execute(
            stmt,
            {"now": now, "until": now + lease, "limit": limit, "owner": owner, "channel": channel},
        )
        .scalars()
        .all()
    )
    db.commit()
    return sorted(int(r) for r in rows)


# The two statements every send runs, built once (statement construction costs more than
# SQLite's execution of them).
_MARK_SENDING = (
    update(_messages)
    .where(
        _messages.c.id == bindparam("b_id"),
        _messages.c.status.in_(sources("send")),
        _messages.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        status=target("send"),
        attempts=_messages.c.attempts + 1,
        sending_at=bindparam("b_updated", type_=UtcDateTime()),
        sent_to=bindparam("b_to"),
        lease_until=bindparam("b_lease_until", type_=UtcDateTime()),
        next_attempt_at=None,
        provider=bindparam("b_provider"),
        subject=bindparam("b_subject"),
        body=bindparam("b_body"),
        language=bindparam("b_language"),
        updated_at=bindparam("b_updated", type_=UtcDateTime()),
    )
)
# A delivery callback may already have moved the row on (delivered): never move it back.
_MARK_SENT = (
    update(_messages)
    .where(_messages.c.id == bindparam("b_id"))
    .values(
        provider_message_id=bindparam("b_provider_id"),
        sent_at=bindparam("b_sent_at", type_=UtcDateTime()),
        lease_owner=None,
        lease_until=None,
        updated_at=bindparam("b_updated", type_=UtcDateTime()),
        status=case(
            (_messages.c.status.in_(sources("accepted")), target("accepted")),
            else_=_messages.c.status,
        ),
        reason=case((_messages.c.status.in_(sources("accepted")), None), else_=_messages.c.reason),
    )
)


def mark_sending(
    db: Session,
    message_id: int,
    *,
    owner: str,
    provider: str,
    to: str,
    subject: str | None,
    body: str,
    language: str,
    at: datetime,
    in_flight: timedelta,
) -> bool:
    """``planned`` -> ``sending`` with the text about to go out and where; the lease now covers
    the provider call (``in_flight``: past it, the row is in doubt). False when the row is no
    longer ours to send (cancelled, re-planned, or another worker's lease)."""
    marked = (
        db.connection()
        .execute(
            _MARK_SENDING,
            {
                "b_id": message_id,
                "b_owner": owner,
                "b_provider": provider,
                "b_to": to,
                "b_subject": subject,
                "b_body": body,
                "b_language": language,
                "b_updated": at,
                "b_lease_until": at + in_flight,
            },
        )
        .rowcount
    )
    return bool(marked == 1)


def mark_sent(db: Session, message_id: int, *, provider_message_id: str, sent_at: datetime) -> None:
    db.connection().execute(
        _MARK_SENT,
        {
            "b_id": message_id,
            "b_provider_id": provider_message_id,
            "b_sent_at": sent_at,
            "b_updated": utcnow(),
        },
    )


def finish(
    db: Session,
    message_id: int,
    *,
    event: str,
    reason: str | None,
    error_code: str | None = None,
) -> None:
    """An end state by ``event`` (``cancel``, ``skip``, ``fail_unsent``, ``refused``,
    ``unresolved``: :data:`reminders.outbox.status.MOVES`) with its reason; the lease ends."""
    values: dict[str, Any] = {
        "status": target(event),
        "reason": reason,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": utcnow(),
    }
    if error_code is not None:
        values["error_code"] = error_code
    _update(db, Message.id == message_id, Message.status.in_(sources(event)), **values)


def unmark_sending(db: Session, message_id: int, *, owner: str) -> None:
    """``sending`` -> ``planned`` before any provider call (its rate slot passed while the row
    was being marked); the owner keeps its lease and takes another slot."""
    _update(
        db,
        Message.id == message_id,
        Message.lease_owner == owner,
        Message.status.in_(sources("unsend")),
        status=target("unsend"),
        attempts=Message.attempts - 1,
    )


def release(db: Session, ids: list[int], *, owner: str) -> None:
    """Give claimed, unsent messages back (shutting down, a batch that failed)."""
    _update(
        db,
        Message.id.in_(ids),
        Message.lease_owner == owner,
        Message.status.in_(sources("send")),
        lease_owner=None,
        lease_until=None,
    )


def defer(db: Session, message_id: int, *, owner: str, until: datetime, reason: str) -> None:
    _update(
        db,
        Message.id == message_id,
        Message.lease_owner == owner,
        Message.status.in_(sources("send")),
        due_at=until,
        reason=f"deferred: {reason}",
        lease_owner=None,
        lease_until=None,
        updated_at=utcnow(),
    )


def schedule_retry(db: Session, message_id: int, *, at: datetime, error_code: str) -> None:
    """``sending`` -> ``planned`` again, not before ``at`` (a transient provider error)."""
    _update(
        db,
        Message.id == message_id,
        Message.status.in_(sources("retry")),
        status=target("retry"),
        next_attempt_at=at,
        error_code=error_code,
        reason=f"retrying after transient error {error_code}",
        lease_owner=None,
        lease_until=None,
        updated_at=utcnow(),
    )
