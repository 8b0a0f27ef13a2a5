"""Shared fixtures: every database test runs on SQLite and on a throwaway PostgreSQL.

``db_url`` is parametrised over both backends and gives a fresh, migrated, empty database.
PostgreSQL tests are skipped when no server binaries exist, unless
``REMINDERS_TEST_REQUIRE_PG=1`` (set by ``make test`` and CI), where that is an error.

Staff passwords are hashed with argon2's cheapest profile here (the production cost made
login-heavy tests several times slower); ``PRODUCTION_HASHER`` is the one the code ships
with, and one test checks its cost and the upgrade of a cheap hash at login.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import make_engine, make_session_factory
from reminders.db.migrate import upgrade
from reminders.settings import Settings, load_settings
from reminders.web.staff import auth
from tests.pgcluster import PgCluster, find_pg_bin

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_HASHER = auth.use_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if find_pg_bin() is None:
        if os.environ.get("REMINDERS_TEST_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL server binaries are required (REMINDERS_TEST_REQUIRE_PG=1)")
        pytest.skip("PostgreSQL server binaries not installed")
    cluster = PgCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A migrated template database; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    url = pg_cluster.create_database("reminders_template")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return "reminders_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated, empty database URL on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "reminders.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    template_name: str = request.getfixturevalue("pg_template")
    return cluster.create_database(f"t{os.getpid()}_{next(_counter)}", template=template_name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for a test: the fresh database, dry-run providers writing under tmp_path."""
    return make_test_settings(db_url, tmp_path)


def make_test_settings(db_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "dryrun_dir": tmp_path / "outbox",
        "policy_file": None,  # the built-in defaults
        "templates_dir": None,
        "timezone": "America/New_York",
        "secret_key": "test-secret-key-0123456789abcdef",
        "public_url": "http://testserver",
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)
