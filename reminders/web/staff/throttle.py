"""Throttling password guesses (security audit, item 4: lockout cannot be used against staff).

Failed password checks are counted per key in ``staff_login_throttle`` (shared by every
worker). Each key gets a few free failures, then an exponential back-off: a check that
comes while its key is backed off is refused *before* any hashing (it costs nothing) and is
answered exactly like a wrong password; it is not counted, so hammering does not lengthen it.

A sign-in is checked against three keys:

- the client address (``ADDRESS``): one address trying many accounts (password spraying);
- the account from that address (``PAIR``): one address guessing one account;
- the account from anywhere (``ACCOUNT``): guesses spread over many addresses. An outsider
  must not be able to keep a real user out with it, so it only *delays* (capped at a couple
  of minutes) and only binds clients that have failures of their own in the window: someone
  signing in from an address with no recent failures (the front desk) is not held up by what
  others did to the account.

The keys are hashed (email and address are never stored) and forgotten ``FORGET_AFTER``
without a failure. Unknown emails and disabled accounts are counted exactly like real ones,
so the back-off reveals nothing about which accounts exist.

On the password page the current-password check of a signed-in user is throttled the same
way (``CURRENT_PASSWORD``, keyed by the user).

The client address is the connection's peer. Behind a reverse proxy every request may come
from the proxy: set ``REMINDERS_TRUST_FORWARDED_FOR=true`` when a proxy you run sets
``X-Forwarded-For`` (its last entry, the address the proxy saw, is used).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from reminders.db.models import LoginThrottle
from reminders.settings import Settings

FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Rule:
    """``free`` failures, then ``first`` doubling with each further failure, up to ``cap``."""

    free: int
    first: timedelta
    cap: timedelta

    def delay(self, failures: int) -> timedelta:
        if failures < self.free:
            return timedelta(0)
        doubled: timedelta = self.first * 2 ** min(failures - self.free, 20)
        return min(doubled, self.cap)


PAIR = Rule(free=5, first=timedelta(seconds=30), cap=timedelta(minutes=15))
ADDRESS = Rule(free=20, first=timedelta(seconds=30), cap=timedelta(minutes=15))
ACCOUNT = Rule(free=10, first=timedelta(seconds=15), cap=timedelta(minutes=2))
CURRENT_PASSWORD = Rule(free=5, first=timedelta(seconds=30), cap=timedelta(minutes=15))


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()
    return f"{kind}:{digest}"


@dataclass(frozen=True)
class LoginKeys:
    address: str
    account: str
    pair: str

    def rules(self) -> list[tuple[str, Rule]]:
        return [(self.address, ADDRESS), (self.account, ACCOUNT), (self.pair, PAIR)]


def login_keys(email: str, address: str) -> LoginKeys:
    account = email.strip().lower()
    return LoginKeys(
        address=_key("addr", address),
        account=_key("acct", account),
        pair=_key("pair", account, address),
    )


def password_key(user_id: int) -> str:
    return f"pw:{user_id}"


def client_address(request: Request, settings: Settings) -> str:
    if settings.trust_forwarded_for:
        last = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
        if last:
            return last[:100]
    return request.client.host if request.client else "unknown"


# --- reading (no write lock) -------------------------------------------------------------------


def _rows(db: Session, keys: Sequence[str], now: datetime) -> dict[str, LoginThrottle]:
    found = db.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(list(keys))))
    return {row.key: row for row in found if row.last_failure_at > now - FORGET_AFTER}


def _backed_off(row: LoginThrottle | None, now: datetime) -> bool:
    return row is not None and row.blocked_until is not None and row.blocked_until > now


def login_blocked(db: Session, keys: LoginKeys, now: datetime) -> bool:
    """Whether a sign-in with these keys is refused without checking the password."""
    rows = _rows(db, (keys.address, keys.account, keys.pair), now)
    address = rows.get(keys.address)
    if _backed_off(address, now) or _backed_off(rows.get(keys.pair), now):
        return True
    # The account-wide back-off binds only a client with failures of its own.
    return _backed_off(rows.get(keys.account), now) and address is not None


def blocked(db: Session, key: str, now: datetime) -> bool:
    return _backed_off(_rows(db, (key,), now).get(key), now)


# --- writing (short, after the hashing) --------------------------------------------------------


def _insert(db: Session) -> Any:
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def record_failure(db: Session, rules: Iterable[tuple[str, Rule]], now: datetime) -> None:
    """Count one failure against each key (the caller commits). Rows are created if missing
    and re-read under a row lock (PostgreSQL; SQLite's write lock is held already), so
    concurrent failures are each counted once."""
    rules = sorted(rules, key=lambda pair: pair[0])  # one lock order for every writer
    insert = _insert(db)
    for key, _ in rules:
        db.execute(
            insert(LoginThrottle)
            .values(key=key, failures=0, last_failure_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
    found = db.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.key.in_([key for key, _ in rules]))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = {row.key: row for row in found}
    for key, rule in rules:
        row = rows[key]
        stale = row.last_failure_at <= now - FORGET_AFTER
        row.failures = 1 if stale else (row.failures or 0) + 1
        row.last_failure_at = now
        delay = rule.delay(row.failures)
        row.blocked_until = now + delay if delay else None
    prune(db, now)


def prune(db: Session, now: datetime) -> None:
    """Drop keys without a failure for ``FORGET_AFTER`` (a batch; rows another writer holds
    are left for the next time, so two writers never wait on each other here)."""
    stale = (
        select(LoginThrottle.key)
        .where(LoginThrottle.last_failure_at < now - FORGET_AFTER)
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    db.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(stale)))


def clear(db: Session, keys: Iterable[str]) -> None:
    """Forget the failures of these keys (after a correct password; the caller commits)."""
    db.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(list(keys))))
