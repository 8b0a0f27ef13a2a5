"""The SQL of reconciliation: in-doubt sends (``sending`` rows whose lease has expired) taken
by one reconcile pass at a time and moved on by the events of :mod:`reminders.outbox.status`.

- :func:`mark_in_doubt`: the dispatcher's record of a lost answer (the lease ends at once).
- :func:`claim_in_doubt` leases in-doubt rows to one reconciler (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, so two workers never ask about, or re-send, the same message), skipping rows
  whose next check (``next_attempt_at``) has not come.
- :func:`settle_found`: the provider has it (``reconciled_found``: ``sent``, with its id).
- :func:`requeue_absent`: the provider provably does not have it (``reconciled_absent``: back to
  ``planned``, due at once, ``resends`` counted), or the in-doubt rule says send it again.
- :func:`check_later`: nobody can tell yet; in doubt still, looked at again at ``at``.
- an unresolved one ends ``failed`` through :func:`reminders.outbox.store.finish`
  (``unresolved``) with a staff task.

Each function runs on the caller's session; the caller commits (except :func:`claim_in_doubt`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from reminders.db.models import Message
from reminders.db.types import UtcDateTime, utcnow
from reminders.outbox.status import Status, sources, target

_CLAIM_SQL = {
    "postgresql": """
        WITH doubt AS (
            SELECT id FROM messages
            WHERE status = 'sending' AND lease_until < :now
              AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
            ORDER BY lease_until, id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        UPDATE messages m SET lease_owner = :owner, lease_until = :until
        FROM doubt WHERE m.id = doubt.id
        RETURNING m.id
    """,
    "sqlite": """
        UPDATE messages SET lease_owner = :owner, lease_until = :until
        WHERE id IN (
            SELECT id FROM messages
            WHERE status = 'sending' AND lease_until < :now
              AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
            ORDER BY lease_until, id
            LIMIT :limit
        )
        RETURNING id
    """,
}


def claim_in_doubt(
    db: Session, *, now: datetime, owner: str, limit: int, lease: timedelta
) -> list[int]:
    """Lease up to ``limit`` in-doubt messages to the reconciler ``owner`` (committed)."""
    dialect = db.get_bind().dialect.name
    stmt = text(_CLAIM_SQL["postgresql" if dialect == "postgresql" else "sqlite"]).bindparams(
        bindparam("now", type_=UtcDateTime()),
        bindparam("until", type_=UtcDateTime()),
    )
    ids = db.execute(
        stmt, {"now": now, "until": now + lease, "limit": limit, "owner": owner}
    ).scalars()
    claimed = sorted(int(i) for i in ids)
    db.commit()
    return claimed


def _update(db: Session, message_id: int, owner: str, event: str, **values: Any) -> bool:
    result = db.execute(
        update(Message)
        .where(
            Message.id == message_id,
            Message.status.in_(sources(event)),
            Message.lease_owner == owner,
        )
        .values(status=target(event), updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def settle_found(
    db: Session, message_id: int, *, owner: str, provider_message_id: str, reason: str
) -> bool:
    """The provider has the message: ``sent`` with the provider's id (not re-sent)."""
    return _update(
        db,
        message_id,
        owner,
        "reconciled_found",
        provider_message_id=provider_message_id[:255] or None,
        sent_at=Message.sending_at,
        reason=reason[:500],
        lease_owner=None,
        lease_until=None,
        next_attempt_at=None,
    )


def requeue_absent(db: Session, message_id: int, *, owner: str, reason: str) -> bool:
    """Send it again: back to ``planned``, due at once, ``resends`` + 1."""
    return _update(
        db,
        message_id,
        owner,
        "reconciled_absent",
        resends=Message.resends + 1,
        reason=reason[:500],
        lease_owner=None,
        lease_until=None,
        next_attempt_at=None,
    )


def check_later(db: Session, message_id: int, *, owner: str, at: datetime, now: datetime) -> None:
    """Still in doubt (its lease stays expired); the next check is not before ``at``."""
    db.execute(
        update(Message)
        .where(
            Message.id == message_id,
            Message.status == Status.SENDING,
            Message.lease_owner == owner,
        )
        .values(lease_owner=None, lease_until=now, next_attempt_at=at)
        .execution_options(synchronize_session=False)
    )


def mark_in_doubt(
    db: Session, message_id: int, *, reason: str, error_code: str | None, now: datetime
) -> None:
    """The provider's answer was lost: the row stays ``sending`` with its lease ended (in
    doubt), for a provider report or the reconcile pass; never re-sent blindly."""
    db.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == Status.SENDING)
        .values(
            reason=reason,
            error_code=error_code,
            lease_owner=None,
            lease_until=now,
            next_attempt_at=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def count_in_doubt(db: Session, now: datetime) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.status == Status.SENDING, Message.lease_until < now)
        )
        or 0
    )
