"""Staff accounts: argon2 passwords, signed session cookies, CSRF tokens, login throttling.

Sessions are signed cookies (itsdangerous, keyed by ``REMINDERS_SECRET_KEY``):
``{"u": user id, "s": random session token, "p": fingerprint of the password hash}``, each
backed by a ``staff_sessions`` row (see :mod:`reminders.web.staff.sessions`): sign-out, a
password change or reset and disabling the account revoke it, an idle one stops counting,
and a cookie is refused after ``SESSION_MAX_AGE`` anyway. The fingerprint also ends the
sessions of a user whose password hash changed.

CSRF: every POST form carries ``csrf_token``, an HMAC of the session id (or, on the login
form, of a random seed kept in its own cookie). A POST without the right token gets 403.

Login throttling (see :mod:`reminders.web.staff.throttle`): failures are counted per client
address, per account and per (account, address), each with an exponential back-off enforced
before any hashing; there is no lock an outsider can hold. Every refusal (wrong password,
unknown or disabled account, backed off) gets the same answer, and unknown or disabled
accounts cost the same hashing time as a wrong password.

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
from reminders.web.staff import sessions, strength, throttle

SESSION_COOKIE = "reminders_staff"
LOGIN_COOKIE = "reminders_login"
SESSION_MAX_AGE = sessions.MAX_AGE
# The back-off of one account from one address (the other keys: see throttle.py).
FREE_ATTEMPTS = throttle.PAIR.free
FIRST_LOCK = throttle.PAIR.first
MAX_LOCK = throttle.PAIR.cap
# A password given by `reminders staff add` must be changed at the first login.
ONE_TIME_PREFIX = "onetime:"
MIN_PASSWORD_LENGTH = strength.MIN_LENGTH
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


def new_one_time_password(email: str = "", clinic_name: str = "") -> tuple[str, str]:
    """A random initial password (one that passes the password policy) and the value to
    store for it."""
    password = secrets.token_urlsafe(12)
    while strength.weakness(password, email=email, clinic_name=clinic_name) is not None:
        password = secrets.token_urlsafe(12)  # a random 16 characters fails about never
    return password, ONE_TIME_PREFIX + hash_password(password)


def one_time_hash(password: str) -> str:
    """The value to store for a one-time password chosen by an administrator."""
    return ONE_TIME_PREFIX + hash_password(password)


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


def password_problem(
    password: str, confirm: str, *, email: str = "", clinic_name: str = ""
) -> str | None:
    if password != confirm:
        return "The two passwords differ."
    return strength.weakness(password, email=email, clinic_name=clinic_name)


def find_user(db: Session, email: str) -> StaffUser | None:
    return db.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower()))


# --- login and throttling ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    token: str = ""  # the new session's, for the cookie
    throttled: bool = False  # for the log only: the answer is the same

    @property
    def ok(self) -> bool:
        return self.user is not None


def lock_length(failed: int) -> timedelta:
    """The back-off of one account from one address after ``failed`` failures in a row."""
    return throttle.PAIR.delay(failed)


def attempt_login(
    read: sessionmaker[Session],
    write: sessionmaker[Session],
    *,
    email: str,
    password: str,
    address: str = "unknown",
    now: datetime | None = None,
) -> LoginResult:
    """Check a password and open a session. A sign-in backed off (throttle.py) is refused
    first, with no hashing. Then the account is read and the password verified (and rehashed
    if the hashing parameters changed) with no transaction open; then a short write records
    the failure, or opens the session. If the stored hash changed meanwhile (a reset,
    another login's rehash), it starts over."""
    now = now or utcnow()
    keys = throttle.login_keys(email, address)
    with read() as db:
        if throttle.login_blocked(db, keys, now):
            return LoginResult(None, throttled=True)
    for _ in range(3):
        result = _attempt(read, write, email=email, password=password, keys=keys, now=now)
        if result is not None:
            return result
    return LoginResult(None)


def _attempt(
    read: sessionmaker[Session],
    write: sessionmaker[Session],
    *,
    email: str,
    password: str,
    keys: throttle.LoginKeys,
    now: datetime,
) -> LoginResult | None:
    with read() as db:
        user = find_user(db, email)
    # Unknown and disabled accounts verify against a dummy hash: the same time, the same count.
    seen = user.password_hash if user is not None and user.active else None
    ok = verify_password(seen, password)
    rehashed = (
        hash_password(password)
        if ok and seen and user and not must_change_password(user) and _hasher.check_needs_rehash(seen)
        else None
    )  # fmt: skip
    with write() as db:
        fresh = db.get(StaffUser, user.id) if ok and user is not None else None
        if fresh is None or not fresh.active:
            throttle.record_failure(db, keys.rules(), now)
            db.commit()
            return LoginResult(None)
        if fresh.password_hash != seen:
            return None  # checked against a hash that is gone: check again
        throttle.clear(db, [keys.pair])
        fresh.failed_logins = 0  # the columns of the former account lock
        fresh.locked_until = None
        if rehashed is not None:
            fresh.password_hash = rehashed
        token = sessions.create(db, fresh.id, now)
        db.commit()
        return LoginResult(fresh, token)


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


def start_session(response: Response, settings: Settings, user: StaffUser, token: str) -> None:
    """Set the cookie of the session ``token`` (made by :func:`sessions.create`)."""
    payload = {"u": user.id, "s": token, "p": _fingerprint(user.password_hash)}
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


def idle_limit(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.staff_idle_minutes)


def session_user(
    request: Request, settings: Settings, db: Session, *, touch: bool = True
) -> tuple[StaffUser, str] | None:
    """The signed-in user and the session token, or None: the cookie must be signed, and its
    session neither revoked nor idle; the account active, its password unchanged since.
    ``touch=False`` (a page's background polls) does not count as activity."""
    payload = _session_payload(request, settings)
    token = payload.get("s") if payload else None
    if payload is None or not isinstance(token, str):
        return None
    now, idle = utcnow(), idle_limit(settings)
    found = sessions.find(db, token, now=now, idle=idle)
    if found is None:
        return None
    row, user = found
    if (
        row.user_id != payload.get("u")
        or not user.active
        or payload.get("p") != _fingerprint(user.password_hash)
    ):
        return None
    if touch and now - row.last_seen_at >= sessions.touch_interval(idle):
        sessions.touch(request.app.state.runtime.session_factory, token, now)
    return user, token


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
