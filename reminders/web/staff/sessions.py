"""Server-side console sessions (security audit, item 6: sessions end when they should).

The signed session cookie carries a random token; ``staff_sessions`` has a row per token
(keyed by its SHA-256, so the table alone cannot be turned into cookies). A cookie counts
only while its row is not revoked and has been used within ``REMINDERS_STAFF_IDLE_MINUTES``:

- sign-out revokes the row (a copy of the cookie stops working);
- changing or resetting a password, and disabling an account, revoke all of its rows;
- every request checks the row (one primary-key lookup joined to the account) and moves
  ``last_seen_at`` forward at most once a minute (``touch_interval``), in a short write of
  its own that waits at most ``TOUCH_LOCK_WAIT_MS`` for SQLite's write lock and is skipped
  when it cannot have it: a page never waits behind a webhook for this. So a session may end
  up to one touch interval before the idle time, never after.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import LOCK_WAIT_MS
from reminders.db.models import StaffSession, StaffUser

MAX_AGE = 12 * 3600  # seconds: the cookie's own limit, whatever the activity
TOUCH_EVERY = timedelta(minutes=1)
TOUCH_LOCK_WAIT_MS = 100


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def touch_interval(idle: timedelta) -> timedelta:
    return min(TOUCH_EVERY, idle / 4)


def create(db: Session, user_id: int, now: datetime) -> str:
    """A new session for the user (the caller commits); its token, for the cookie."""
    token = secrets.token_urlsafe(24)
    db.add(StaffSession(id=_digest(token), user_id=user_id, created_at=now, last_seen_at=now))
    prune(db, now)
    return token


def find(
    db: Session, token: str, *, now: datetime, idle: timedelta
) -> tuple[StaffSession, StaffUser] | None:
    """The live session of this token and its account, or None (unknown, revoked, idle)."""
    found = db.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.id == _digest(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or row.last_seen_at <= now - idle:
        return None
    return row, user


def touch(factory: sessionmaker[Session], token: str, now: datetime) -> None:
    """Record activity; skipped if the write lock is busy (the next request tries again)."""
    try:
        with factory() as db:
            db.connection(execution_options={LOCK_WAIT_MS: TOUCH_LOCK_WAIT_MS})
            db.execute(
                update(StaffSession)
                .where(StaffSession.id == _digest(token), StaffSession.revoked_at.is_(None))
                .values(last_seen_at=now)
            )
            db.commit()
    except OperationalError:
        pass


def revoke(db: Session, token: str, now: datetime) -> None:
    """End one session (the caller commits)."""
    db.execute(
        update(StaffSession)
        .where(StaffSession.id == _digest(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_all(db: Session, user_id: int, now: datetime) -> None:
    """End every session of the user (the caller commits)."""
    db.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def prune(db: Session, now: datetime) -> None:
    """Forget sessions older than any cookie can be (indexed on ``created_at``)."""
    db.execute(
        delete(StaffSession).where(StaffSession.created_at < now - timedelta(seconds=MAX_AGE))
    )
