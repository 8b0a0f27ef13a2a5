"""What a command or the daemon needs, built once from settings: engine, sessions, policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import make_engine, make_read_session_factory, make_session_factory
from reminders.db.migrate import current_revision, head_revision, upgrade
from reminders.errors import PolicyError, UsageError
from reminders.planning.policy import Policy, load_policy
from reminders.settings import Settings

log = logging.getLogger(__name__)


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
    def read_session_factory(self) -> sessionmaker[Session]:
        """For reads only: on SQLite these never wait for (or hold) the write lock."""
        return make_read_session_factory(self.engine)

    _policy: Policy | None = field(default=None, repr=False)
    _policy_stamp: tuple[float, int] | None = field(default=None, repr=False)

    @property
    def policy(self) -> Policy:
        """The policy file, re-read when it changes on disk (staff edits reach every worker).

        A first load that fails raises; a later edit that fails validation is logged and
        the last good policy stays in force.
        """
        path = self.settings.policy_path
        try:
            stat = path.stat()
            stamp: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except OSError:
            stamp = None
        if self._policy is not None and stamp == self._policy_stamp:
            return self._policy
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            if self._policy is None:
                raise PolicyError(f"REMINDERS_POLICY_FILE: {exc}") from None
            log.error("policy file changed but is invalid; keeping the previous policy: %s", exc)
            self._policy_stamp = stamp
            return self._policy
        if self._policy is not None and policy.fingerprint() != self._policy.fingerprint():
            log.info(
                "policy file changed; now in force",
                extra={"fields": {"fingerprint": policy.fingerprint()}},
            )
        self._policy, self._policy_stamp = policy, stamp
        return policy

    def upgrade_schema(self) -> None:
        upgrade(self.engine)

    def require_schema(self) -> None:
        """For commands that only read: a database without a schema gets one (a fresh
        install), but one at another revision is never changed from here."""
        current = current_revision(self.engine)
        if current is None:
            self.upgrade_schema()
            return
        expected = head_revision()
        if current != expected:
            raise UsageError(
                f"the database schema is at revision {current}, this version needs {expected}: "
                "run `reminders db upgrade` first"
            )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
