"""What a command or the daemon needs, built once from settings: engine, sessions, policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reminders.db import make_engine, make_session_factory
from reminders.policy import Policy, PolicyError, load_policy
from reminders.settings import Settings

log = logging.getLogger(__name__)


class UsageError(Exception):
    """An expected failure a command reports as one line (bad input, unknown id...)."""


@dataclass
class Runtime:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return self._engine or make_engine(self.settings.database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def policy(self) -> Policy:
        try:
            return load_policy(self.settings.policy_file)
        except PolicyError as exc:
            raise PolicyError(f"REMINDERS_POLICY_FILE: {exc}") from None

    def upgrade_schema(self) -> None:
        from reminders.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
