"""Staff accounts: argon2 passwords, signed session cookies, CSRF tokens, login throttling.

Sessions are stateless signed cookies (itsdangerous, keyed by ``REMINDERS_SECRET_KEY``):
``{"u": user id, "s": random session id, "p": fingerprint of the password hash}``. The
fingerprint means a password change (or reset) ends every other session of that user;
logout deletes the cookie, and a cookie is refused after ``SESSION_MAX_AGE`` anyway.

CSRF: every POST form carries ``csrf_token``, an HMAC of the session id (or, on the login
form, of a random seed kept in its own cookie). A POST without the right token gets 403.

Login throttling: after ``FREE_ATTEMPTS`` wrong passwords in a row the account is locked
for a time that doubles with each further failure (capped); a locked account refuses
even the right password until the lock ends. Unknown emails cost the same hashing time.

Lock discipline (issue 9): argon2 never runs inside a write transaction. A login reads the
account, verifies (and, when the parameters changed, rehashes) with no transaction open, then
records the outcome in a short write that re-reads the account under the lock, and only when
something changes. At most ``HASHING_SLOTS`` hashes run at once, at a lower OS priority, so a
burst of logins cannot starve the webhooks of CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from reminders.db.models import StaffUser
from reminders.db.types import utcnow
from reminders.settings import Settings

SESSION_COOKIE = "reminders_staff"
LOGIN_COOKIE = "reminders_login"
SESSION_MAX_AGE = 12 * 3600
FREE_ATTEMPTS = 5
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
# A password given by `reminders staff add` must be changed at the first login.
ONE_TIME_PREFIX = "onetime:"
MIN_PASSWORD_LENGTH = 10
ROLES = ("admin", "staff")

# argon2id at argon2-cffi's default (RFC 9106 low-memory profile: t=3, 64 MiB, p=4).
_hasher = PasswordHasher()
# Verified against for unknown emails, so they take as long as a wrong password; made at
# the first such login, not at import (every CLI command imports this module).
_dummy_hash: str | None = None
# argon2 uses a core per lane (p=4) for ~0.1 s: more at once only queues them on the CPU.
# They run on threads of their own at a lower OS priority (Linux: the niceness is per thread,
# and argon2's lane threads inherit it), so under a burst of logins the webhooks get the CPU.
HASHING_SLOTS = max(1, (os.cpu_count() or 2) // 2)
HASHING_NICENESS = 10


def _lower_priority() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


_hashing = ThreadPoolExecutor(HASHING_SLOTS, "argon2", initializer=_lower_priority)


# --- passwords -------------------------------------------------------------------------------


def use_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Hash new passwords with ``hasher`` from now on (existing hashes verify with their own
    parameters, and are rehashed at the next login); returns the previous one. The test
    suite uses argon2's cheapest profile this way; production never calls it."""
    global _hasher, _dummy_hash
    previous, _hasher, _dummy_hash = _hasher, hasher, None
    return previous


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def hash_password(password: str) -> str:
    return _hashing.submit(_hasher.hash, password).result()


def new_one_time_password() -> tuple[str, str]:
    """A random initial password and the value to store for it."""
    password = secrets.token_urlsafe(12)
    return password, ONE_TIME_PREFIX + hash_password(password)


def must_change_password(user: StaffUser) -> bool:
    return (user.password_hash or "").startswith(ONE_TIME_PREFIX)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        _verify(_dummy(), password)
        return False
    return _verify(stored.removeprefix(ONE_TIME_PREFIX), password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hashing.submit(_hasher.verify, hashed, password).result()
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str, confirm: str) -> str | None:
    if password != confirm:
        return "The two passwords differ."
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    return None


def find_user(db: Session, email: str) -> StaffUser | None:
    return db.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower()))


# --- login and throttling ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


def lock_length(failed: int) -> timedelta:
    """No lock for the first ``FREE_ATTEMPTS`` failures, then 30 s doubling up to 15 min."""
    if failed < FREE_ATTEMPTS:
        return timedelta(0)
    doubled: timedelta = FIRST_LOCK * 2 ** min(failed - FREE_ATTEMPTS, 16)
    return min(doubled, MAX_LOCK)


def attempt_login(
    read: sessionmaker[Session],
    write: sessionmaker[Session],
    *,
    email: str,
    password: str,
    now: datetime | None = None,
) -> LoginResult:
    """Check a password, counting failures. The account is read, the password verified (and
    rehashed if the hashing parameters changed) with no transaction open; then, only when the
    outcome changes the account, a short write re-reads it under the lock and records it. If
    the stored hash changed meanwhile (a reset, another login's rehash), it starts over."""
    for _ in range(3):
        result = _attempt(read, write, email=email, password=password, now=now or utcnow())
        if result is not None:
            return result
    return LoginResult(None)


def _attempt(
    read: sessionmaker[Session],
    write: sessionmaker[Session],
    *,
    email: str,
    password: str,
    now: datetime,
) -> LoginResult | None:
    with read() as db:
        user = find_user(db, email)
    if user is None or not user.active:
        verify_password(None, password)
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, locked_until=user.locked_until)
    seen = user.password_hash
    ok = verify_password(seen, password)
    rehashed = (
        hash_password(password)
        if ok and seen and not must_change_password(user) and _hasher.check_needs_rehash(seen)
        else None
    )
    if ok and rehashed is None and not user.failed_logins and user.locked_until is None:
        return LoginResult(user)  # nothing to record: no write at all
    with write() as db:
        fresh = db.get(StaffUser, user.id)
        if fresh is None or not fresh.active:
            return LoginResult(None)
        if fresh.password_hash != seen:
            return None  # checked against a hash that is gone: check again
        if not ok:
            fresh.failed_logins = (fresh.failed_logins or 0) + 1
            lock = lock_length(fresh.failed_logins)
            fresh.locked_until = now + lock if lock else None
            db.commit()
            return LoginResult(None, locked_until=fresh.locked_until)
        if fresh.locked_until is not None and fresh.locked_until > now:
            return LoginResult(None, locked_until=fresh.locked_until)  # locked meanwhile
        fresh.failed_logins = 0
        fresh.locked_until = None
        if rehashed is not None:
            fresh.password_hash = rehashed
        db.commit()
        return LoginResult(fresh)


# --- cookies -----------------------------------------------------------------------------------


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key_value(), salt=salt)


def _fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def secure_cookies(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def _set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/staff", httponly=True, samesite="lax",
        secure=secure_cookies(settings),
    )  # fmt: skip


def start_session(response: Response, settings: Settings, user: StaffUser) -> None:
    payload = {"u": user.id, "s": secrets.token_urlsafe(16), "p": _fingerprint(user.password_hash)}
    token = _serializer(settings, "staff-session").dumps(payload)
    _set_cookie(response, settings, SESSION_COOKIE, token, SESSION_MAX_AGE)
    response.delete_cookie(LOGIN_COOKIE, path="/staff")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/staff")


def _session_payload(request: Request, settings: Settings) -> dict[str, Any] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        payload = _serializer(settings, "staff-session").loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return None
    return payload if isinstance(payload, dict) else None


def session_user(request: Request, settings: Settings, db: Session) -> tuple[StaffUser, str] | None:
    """The signed-in user and the session id, or None."""
    payload = _session_payload(request, settings)
    if payload is None:
        return None
    user = db.get(StaffUser, payload.get("u"))
    if user is None or not user.active or payload.get("p") != _fingerprint(user.password_hash):
        return None
    return user, str(payload.get("s"))


def login_seed(request: Request, settings: Settings) -> str | None:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw:
        return None
    try:
        value = _serializer(settings, "staff-login").loads(raw, max_age=3600)
    except BadSignature:
        return None
    return str(value)


def set_login_seed(response: Response, settings: Settings, seed: str) -> None:
    """The login form's CSRF seed, in its own short-lived cookie (there is no session yet)."""
    _set_cookie(
        response, settings, LOGIN_COOKIE, _serializer(settings, "staff-login").dumps(seed), 3600
    )


# --- CSRF --------------------------------------------------------------------------------------


def csrf_token(settings: Settings, seed: str) -> str:
    key = settings.secret_key_value().encode()
    return hmac.new(key, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def check_csrf(settings: Settings, seed: str | None, given: object) -> None:
    """403 unless ``given`` is the token for ``seed``."""
    if (
        not seed
        or not isinstance(given, str)
        or not hmac.compare_digest(csrf_token(settings, seed), given)
    ):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token: reload the page")
