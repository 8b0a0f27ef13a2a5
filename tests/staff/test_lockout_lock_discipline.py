"""The login throttle keeps the lock discipline of issue 9 (SQLite): failures are counted in a
short write after the hashing, never around it, and concurrent failures are each counted once.
(Replaces the account-lock version of this check in test_lock_discipline.py.)"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import LoginThrottle, StaffUser
from reminders.runtime import Runtime
from reminders.web.staff import throttle
from tests.staff.conftest import PASSWORD, csrf_of
from tests.staff.test_lock_discipline import assert_never_blocked, probe_while


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "reminders.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def test_wrong_passwords_are_counted_after_hashing_and_none_lost(
    app_client: TestClient, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    slow = PasswordHasher(time_cost=12, memory_cost=64 * 1024, parallelism=1)
    with factory() as db:
        db.add(StaffUser(email="slow@clinic.test", role="admin", password_hash=slow.hash(PASSWORD)))
        db.commit()
    token = csrf_of(app_client.get("/staff/login").text)

    def wrong(n: int) -> Any:
        return app_client.post(
            "/staff/login",
            data={"email": "slow@clinic.test", "password": f"wrong {n}", "csrf_token": token},
        )

    def four_at_once() -> list[int]:
        codes: list[int] = []
        threads = [
            threading.Thread(target=lambda n=n: codes.append(wrong(n).status_code))
            for n in range(throttle.PAIR.free - 1)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return codes

    database = runtime.engine.url.database
    assert database
    codes, waits, took = probe_while(Path(database), four_at_once)
    assert codes == [401] * (throttle.PAIR.free - 1)
    assert_never_blocked(waits, took)
    keys = throttle.login_keys("slow@clinic.test", "testclient")
    with factory() as db:
        for key in (keys.pair, keys.address, keys.account):
            row = db.get(LoginThrottle, key)
            assert row is not None and row.failures == throttle.PAIR.free - 1
            assert row.blocked_until is None
    assert wrong(99).status_code == 401  # the fifth backs the pair off: the same answer
    with factory() as db:
        row = db.get(LoginThrottle, keys.pair)
        assert row is not None and row.blocked_until is not None
