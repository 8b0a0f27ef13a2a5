"""The console never holds SQLite's write lock while it hashes passwords or renders templates
(issue 9: an inbound SMS must be stored within Twilio's timeout while staff work).

Each test starts a slow console request (argon2 at a deliberately high cost, or a legal
template whose loops take seconds to render) on a thread, and meanwhile takes the write lock
from another connection again and again (``BEGIN IMMEDIATE; COMMIT``), as the inbound webhook
does. Every one of those must get the lock at once: the slow part runs with no write
transaction open, and the request's own write, if any, is a short one afterwards. SQLite only:
PostgreSQL has no database-wide write lock.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, extract_parameters
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import AuditLog, StaffUser, TemplateVersion
from reminders.runtime import Runtime
from reminders.web.staff import auth
from tests.staff.conftest import PASSWORD, SignedIn, login, sign_in

# A legal template that takes a while to render (about 0.1-0.2 s, inside the render limits
# of reminders/templates/limits.py), rendered three times by a preview (two sample checks and
# the preview itself).
SLOW_SMS = (
    "{% set ns = namespace(n=0) %}{% for i in range(100) %}{% for j in range(90) %}"
    "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}"
    '{% for k in range(10) %}{% set w = ("word " * 10000)|wordwrap(7) %}{% endfor %}'
    "Hi {{ patient.first_name }}, see you soon. Reply C to confirm ({{ ns.n }})."
)
# A probe that waits longer than this for the lock found it held by the console.
PROMPT_S = 0.25


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only (overrides the two-backend fixture for this module)."""
    path = tmp_path / "reminders.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(runtime: Runtime) -> Path:
    database = runtime.engine.url.database
    assert database
    return Path(database)


@pytest.fixture
def slow_hasher() -> PasswordHasher:
    """argon2 costly enough (about a second) that a lock held around it cannot be missed."""
    return PasswordHasher(time_cost=12, memory_cost=64 * 1024, parallelism=1)


def _probe(path: Path) -> float:
    """Take and release the write lock from another connection; the seconds it waited."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        waited = time.perf_counter() - start
        conn.execute("COMMIT")
        return waited
    finally:
        conn.close()


def probe_while(path: Path, work: Callable[[], Any]) -> tuple[Any, list[float], float]:
    """Run ``work`` on a thread and probe the write lock until it ends: (its result, the
    probes' waits, how long it took)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    start = time.perf_counter()
    thread.start()
    waits: list[float] = []
    time.sleep(0.05)
    while thread.is_alive():
        waits.append(_probe(path))
        time.sleep(0.02)
    thread.join()
    took = time.perf_counter() - start
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result"), waits, took


def assert_never_blocked(waits: list[float], took: float) -> None:
    assert waits and max(waits) < PROMPT_S, (
        f"a writer waited {max(waits):.2f} s for the lock during a {took:.2f} s console request"
    )
    assert len(waits) >= 3, f"the request took {took:.2f} s: too fast to probe, make it slower"


def _user(factory: sessionmaker[Session], email: str, hasher: PasswordHasher) -> None:
    with factory() as db:
        db.add(StaffUser(email=email, role="admin", password_hash=hasher.hash(PASSWORD)))
        db.commit()


def test_login_verifies_the_password_outside_the_write_lock(
    app_client: TestClient,
    factory: sessionmaker[Session],
    db_path: Path,
    slow_hasher: PasswordHasher,
) -> None:
    _user(factory, "slow@clinic.test", slow_hasher)
    # The suite's cheap hasher is in force, so a successful login also rehashes: a write.
    response, waits, took = probe_while(db_path, lambda: login(app_client, "slow@clinic.test"))
    assert response.status_code == 303
    assert_never_blocked(waits, took)
    with factory() as db:
        user = db.scalars(select(StaffUser)).one()
        assert user.password_hash is not None
        assert extract_parameters(user.password_hash).time_cost != 12  # rehashed, cheaply
        assert auth.verify_password(user.password_hash, PASSWORD)


def test_password_change_hashes_outside_the_lock(
    app_client: TestClient,
    factory: sessionmaker[Session],
    db_path: Path,
    slow_hasher: PasswordHasher,
    make_user: Callable[..., str],
) -> None:
    make_user("a@clinic.test")
    with factory() as db:  # the current password costs a second to verify
        user = db.scalars(select(StaffUser)).one()
        user.password_hash = slow_hasher.hash(PASSWORD)
        db.commit()
    previous = auth.use_hasher(slow_hasher)  # and so does hashing the new one
    try:
        signed = sign_in(app_client, "a@clinic.test")
        new = "another long password"
        response, waits, took = probe_while(
            db_path,
            lambda: signed.post(
                "/staff/account/password",
                {"current": PASSWORD, "password": new, "confirm": new},
            ),
        )
    finally:
        auth.use_hasher(previous)
    assert response.status_code == 303
    assert_never_blocked(waits, took)
    with factory() as db:
        user = db.scalars(select(StaffUser)).one()
        assert auth.verify_password(user.password_hash, new)
        assert db.scalars(select(AuditLog).where(AuditLog.action == "staff.password")).one()


def test_template_preview_renders_outside_the_lock(admin_client: SignedIn, db_path: Path) -> None:
    response, waits, took = probe_while(
        db_path,
        lambda: admin_client.post(
            "/staff/templates/day_before/sms/en/preview", {"body": SLOW_SMS, "patient": ""}
        ),
    )
    assert response.status_code == 200 and "(9000)" in response.text
    assert_never_blocked(waits, took)


def test_template_save_renders_outside_the_lock_then_writes(
    admin_client: SignedIn, db_path: Path, factory: sessionmaker[Session]
) -> None:
    response, waits, took = probe_while(
        db_path,
        lambda: admin_client.post("/staff/templates/day_before/sms/en", {"body": SLOW_SMS}),
    )
    assert response.status_code == 303, response.text
    assert_never_blocked(waits, took)
    # Reverting to it renders it again (the checks before saving): outside the lock too.
    admin_client.post("/staff/templates/day_before/sms/en", {"body": "Hi, reply C to confirm."})
    response, waits, took = probe_while(
        db_path,
        lambda: admin_client.post("/staff/templates/day_before/sms/en/revert", {"version": "1"}),
    )
    assert response.status_code == 303, response.text
    assert_never_blocked(waits, took)
    with factory() as db:
        versions = db.scalars(select(TemplateVersion).order_by(TemplateVersion.version)).all()
        assert [v.body == SLOW_SMS for v in versions] == [True, False, True]
        audit = db.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
        assert audit is not None and audit.action == "template.revert"
        assert audit.detail == {"version": 3, "reverted_to": 1}
        assert versions[-1].note == "revert to v1"


def test_pages_read_without_the_write_lock(admin_client: SignedIn, db_path: Path) -> None:
    """A page being rendered keeps no write transaction open: while another connection holds
    the write lock, every page still answers (it would wait for the lock otherwise)."""
    holder = sqlite3.connect(db_path, timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for path in ("/staff/inbox", "/staff/outbox", "/staff/patients", "/staff/templates",
                     "/staff/templates/day_before/sms/en", "/staff/policy", "/staff/audit"):  # fmt: skip
            assert admin_client.client.get(path).status_code == 200, path
    finally:
        holder.execute("ROLLBACK")
        holder.close()
