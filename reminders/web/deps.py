"""What every route reaches through the app: the :class:`~reminders.runtime.Runtime`
(settings, database sessions, policy), stored on ``app.state`` by :func:`reminders.web.app.create_app`.

Lock discipline (issue 9). On SQLite one writer at a time holds the database's write lock,
and the inbound webhooks must get it within Twilio's timeout. So:

- :func:`get_db` is a read-only session (``BEGIN DEFERRED`` on SQLite): what a page reads and
  renders never takes or waits for the write lock, however long it takes.
- :func:`get_write_db` is for a route's writes: its transaction begins (``BEGIN IMMEDIATE``) at
  its first statement, so a route does the slow work first (argon2, Jinja rendering, anything
  that waits on the network), then reads what it changes, writes and commits at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from reminders.runtime import Runtime
from reminders.settings import Settings


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def settings_of(request: Request) -> Settings:
    return runtime_of(request).settings


def get_db(request: Request) -> Iterator[Session]:
    """A read-only session for the request (pages, checks, previews)."""
    db = runtime_of(request).read_session_factory()
    try:
        yield db
    finally:
        db.close()


def get_write_db(request: Request) -> Iterator[Session]:
    """A session for the request's writes: short, after the slow work, committed at once."""
    db = runtime_of(request).session_factory()
    try:
        yield db
    finally:
        db.rollback()  # never leave the lock held until the response is sent
        db.close()
