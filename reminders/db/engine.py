"""Engine and session factory.

SQLite gets WAL, a busy timeout and foreign keys, and its transactions begin with
``BEGIN IMMEDIATE`` so that a claim takes the write lock up front (one host, several
threads or processes). PostgreSQL URLs are normalised to the psycopg 3 driver.

Every engine hides its bound parameters (``hide_parameters=True``): a statement's error
message and its traceback would otherwise quote them, and they are patients' names, phone
numbers, addresses and message bodies. SQL logging (``echo``) stays off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CursorResult,
    Engine,
    String,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Accept the URL forms people paste (``postgres://``, ``postgresql://``) and pick psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    # Parameters are row data (names, numbers, addresses, bodies): never in errors or logs.
    kwargs["hide_parameters"] = True
    kwargs["echo"] = False
    kwargs["echo_pool"] = False
    if is_sqlite(url):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


@event.listens_for(Engine, "handle_error")
def _hide_parameters(context: Any) -> None:
    """A net for engines made without :func:`make_engine` (e.g. by a library or a clinic-data
    reader): a statement's error never carries its parameters, whatever the engine."""
    error = context.sqlalchemy_exception
    if error is not None:
        error.hide_parameters = True


BUSY_TIMEOUT_MS = 30_000
# Execution option: on SQLite, wait at most this many milliseconds for the write lock when the
# transaction begins (instead of BUSY_TIMEOUT_MS); ignored on PostgreSQL. Pass it with
# ``Session.connection(execution_options={LOCK_WAIT_MS: ...})`` before the first statement.
LOCK_WAIT_MS = "reminders_lock_wait_ms"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) issue BEGIN, so we can make it IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-16384")  # 16 MiB: keeps the outbox indexes' hot pages
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        # Reads that will not write (see make_read_session_factory) must not hold the write lock.
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        wait = options.get(LOCK_WAIT_MS)
        if wait is None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        # A caller with a deadline (an inbound webhook) waits at most this long for the lock.
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def among(db: Session, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN (...)``; on PostgreSQL ``= ANY(array)``: one parameter, so psycopg's
    prepared (generic) plan still uses the index instead of a scan per chunk."""
    if db.get_bind().dialect.name == "postgresql":
        matches = column == any_(bindparam("among_values", list(values), type_=ARRAY(String)))
    else:
        matches = column.in_(list(values))
    return cast("ColumnElement[bool]", matches)  # ``column`` is any mapped column: Any


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "reminders_read_only"


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only. On SQLite they begin DEFERRED, so a long read (loading a
    batch, rendering) does not block writers; every other transaction begins IMMEDIATE so
    that a read followed by a write can never fail to upgrade its lock."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rowcount(result: Any) -> int:
    """Rows an UPDATE changed (the claim must change exactly one)."""
    return int(cast(CursorResult[Any], result).rowcount)
