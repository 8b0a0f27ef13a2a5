"""Audit item 4, lockout cannot be used against staff (SQLite and PostgreSQL): guesses are
throttled per client address, per account and per (account, address) with a back-off checked
before any hashing; an outsider cannot keep a real user out; every refusal looks the same."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import LoginThrottle, StaffUser
from reminders.runtime import Runtime
from reminders.web.staff import auth, throttle
from tests.staff.conftest import PASSWORD, SignedIn, login

ATTACKER = "203.0.113.9"
FRONT_DESK = "198.51.100.7"


@pytest.fixture
def proxied(runtime: Runtime, app_client: TestClient) -> TestClient:
    """The app behind a trusted proxy: the client address comes from X-Forwarded-For."""
    runtime.settings.trust_forwarded_for = True
    return app_client


def from_address(client: TestClient, address: str) -> TestClient:
    client.headers["X-Forwarded-For"] = f"10.9.9.9, {address}"  # the last entry is the proxy's
    return client


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every password verification (argon2) the login makes."""
    calls: list[str] = []
    real = auth.verify_password

    def counting(stored: str | None, password: str) -> bool:
        calls.append(password)
        return real(stored, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    yield calls


def test_the_back_off_doubles_and_is_capped() -> None:
    rule = throttle.PAIR
    assert [rule.delay(n) for n in range(rule.free)] == [timedelta(0)] * rule.free
    assert rule.delay(rule.free) == rule.first and rule.delay(rule.free + 1) == rule.first * 2
    assert rule.delay(10_000) == rule.cap
    # The account-wide back-off, the one an outsider could aim at someone, only delays.
    assert throttle.ACCOUNT.cap <= timedelta(minutes=2)


def test_an_outsider_cannot_keep_the_real_user_out(
    proxied: TestClient, make_user: Callable[..., str], hashes: list[str]
) -> None:
    email = make_user("frontdesk@clinic.test")
    attacker = from_address(proxied, ATTACKER)
    tries = throttle.ACCOUNT.free + throttle.PAIR.free + 10
    codes = {login(attacker, email, f"guess {n}").status_code for n in range(tries)}
    assert codes == {401}
    # Backed off: refused without hashing, even with the right password.
    assert len(hashes) == throttle.PAIR.free
    assert login(attacker, email, PASSWORD).status_code == 401
    assert len(hashes) == throttle.PAIR.free
    # The real user, from an address with no failures, signs in at once.
    proxied.cookies.clear()
    assert login(from_address(proxied, FRONT_DESK), email).status_code == 303
    assert proxied.get("/staff/inbox").status_code == 200


def test_the_account_wide_back_off_binds_clients_that_failed_and_only_delays(
    proxied: TestClient,
    make_user: Callable[..., str],
    factory: sessionmaker[Session],
    hashes: list[str],
) -> None:
    """Guesses spread over many addresses back the account off for addresses that failed
    (the real user mistyping once waits a little), never for a long time."""
    email = make_user("frontdesk@clinic.test")
    for n in range(throttle.ACCOUNT.free + 3):
        assert login(from_address(proxied, f"203.0.113.{n + 1}"), email, "guess").status_code == 401
    mistyped = from_address(proxied, FRONT_DESK)
    assert login(mistyped, email, "typo").status_code == 401
    before = len(hashes)
    assert login(mistyped, email).status_code == 401  # delayed: no hashing
    assert len(hashes) == before
    key = throttle.login_keys(email, "").account
    with factory() as db:
        row = db.get(LoginThrottle, key)
        assert row is not None and row.blocked_until is not None
        assert row.blocked_until - datetime.now(UTC) <= throttle.ACCOUNT.cap
        row.blocked_until = datetime.now(UTC) - timedelta(seconds=1)  # the delay is over
        db.commit()
    assert login(mistyped, email).status_code == 303


def test_per_address_back_off_applies_across_accounts(
    proxied: TestClient, make_user: Callable[..., str], hashes: list[str]
) -> None:
    email = make_user("frontdesk@clinic.test")
    sprayer = from_address(proxied, ATTACKER)
    for n in range(throttle.ADDRESS.free):  # one guess per account: no pair backs off
        assert login(sprayer, f"user{n}@clinic.test", "Spring2024!").status_code == 401
    assert len(hashes) == throttle.ADDRESS.free
    # That address is now backed off for every account, even with a right password.
    assert login(sprayer, email, PASSWORD).status_code == 401
    assert login(sprayer, "someone.else@clinic.test", "x").status_code == 401
    assert len(hashes) == throttle.ADDRESS.free
    proxied.cookies.clear()
    assert login(from_address(proxied, FRONT_DESK), email).status_code == 303


def test_the_forwarded_address_is_ignored_unless_the_proxy_is_trusted(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    """Off by default: a client rotating X-Forwarded-For values is still one address."""
    email = make_user("frontdesk@clinic.test")
    for n in range(throttle.PAIR.free):
        from_address(app_client, f"203.0.113.{n + 1}")
        assert login(app_client, email, "guess").status_code == 401
    from_address(app_client, "203.0.113.200")
    assert login(app_client, email, PASSWORD).status_code == 401


_TOKEN_RE = re.compile(r'name="csrf_token" value="[0-9a-f]+"')
_EMAIL_RE = re.compile(r'name="email" value="[^"]*"')


def _normalised(response: Any) -> tuple[int, str]:
    text = _TOKEN_RE.sub('name="csrf_token" value=""', response.text)
    return response.status_code, _EMAIL_RE.sub('name="email" value=""', text)


def test_every_failure_gives_the_same_answer(
    app_client: TestClient, make_user: Callable[..., str], factory: sessionmaker[Session]
) -> None:
    make_user("real@clinic.test")
    make_user("gone@clinic.test")
    with factory() as db:
        db.execute(
            update(StaffUser).where(StaffUser.email == "gone@clinic.test").values(active=False)
        )
        db.commit()
    answers = {
        "wrong password": login(app_client, "real@clinic.test", "wrong password"),
        "unknown account": login(app_client, "nobody@clinic.test", PASSWORD),
        "disabled account": login(app_client, "gone@clinic.test", PASSWORD),
    }
    for n in range(throttle.PAIR.free):
        login(app_client, "real@clinic.test", f"guess {n}")
    answers["backed off, right password"] = login(app_client, "real@clinic.test", PASSWORD)
    for n in range(throttle.PAIR.free + 1):
        login(app_client, "nobody@clinic.test", f"guess {n}")
    answers["backed off, unknown account"] = login(app_client, "nobody@clinic.test", PASSWORD)
    first = _normalised(answers["wrong password"])
    assert first[0] == 401 and "Wrong email or password" in first[1]
    for name, response in answers.items():
        assert _normalised(response) == first, name
    assert "locked" not in first[1].lower()


def test_failures_on_unknown_accounts_are_counted_like_real_ones(
    app_client: TestClient, make_user: Callable[..., str], factory: sessionmaker[Session]
) -> None:
    make_user("real@clinic.test")
    for email in ("real@clinic.test", "nobody@clinic.test"):
        for _ in range(throttle.PAIR.free):
            login(app_client, email, "wrong")
    with factory() as db:
        rows = {row.key: row for row in db.scalars(select(LoginThrottle))}
    pairs = [
        rows[throttle.login_keys(email, "testclient").pair]
        for email in ("real@clinic.test", "nobody@clinic.test")
    ]
    assert [p.failures for p in pairs] == [throttle.PAIR.free] * 2
    assert all(p.blocked_until is not None for p in pairs)
    assert all(len(key) <= 80 and "clinic" not in key for key in rows)  # hashed keys


def test_a_right_password_forgets_the_failures_of_that_account_and_address(
    app_client: TestClient, make_user: Callable[..., str], factory: sessionmaker[Session]
) -> None:
    email = make_user("real@clinic.test")
    for _ in range(throttle.PAIR.free - 1):
        assert login(app_client, email, "wrong").status_code == 401
    assert login(app_client, email).status_code == 303
    with factory() as db:
        assert db.get(LoginThrottle, throttle.login_keys(email, "testclient").pair) is None


def test_change_password_guesses_are_throttled(
    staff_client: SignedIn, factory: sessionmaker[Session], hashes: list[str]
) -> None:
    new = "violet tractor harbour"
    for n in range(throttle.CURRENT_PASSWORD.free):
        response = staff_client.post(
            "/staff/account/password", {"current": f"guess {n}", "password": new, "confirm": new}
        )
        assert response.status_code == 400 and "current password is wrong" in response.text
    before = len(hashes)
    right = {"current": PASSWORD, "password": new, "confirm": new}
    refused = staff_client.post("/staff/account/password", right)
    assert refused.status_code == 429 and "Too many wrong current passwords" in refused.text
    assert len(hashes) == before  # no hashing while backed off
    with factory() as db:
        user = db.scalars(select(StaffUser)).one()
        assert auth.verify_password(user.password_hash, PASSWORD)  # unchanged
        db.execute(update(LoginThrottle).values(blocked_until=datetime.now(UTC)))
        db.commit()
    assert staff_client.post("/staff/account/password", right).status_code == 303
    with factory() as db:
        assert db.get(LoginThrottle, throttle.password_key(user.id)) is None
