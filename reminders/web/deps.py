"""What every route reaches through the app: the :class:`~reminders.runtime.Runtime`
(settings, database sessions, policy), stored on ``app.state`` by :func:`reminders.web.app.create_app`."""

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
    db = runtime_of(request).session_factory()
    try:
        yield db
    finally:
        db.close()
