"""What every command module shares: the command signature, argument types, and how a
command says what it needs done before it runs.

Each command sets ``func`` and ``schema`` on its parser (:func:`command`): ``"migrate"``
applies pending migrations first (the commands that write: docs/design.md section 3 names
``run``, ``tick`` and ``demo``; ``import``, ``inbound`` and the staff account changes
write too); ``"read"`` never changes an existing schema (a database that has none yet
gets one, so a fresh install's first command works; one at an older revision is refused
with a pointer to ``reminders db upgrade``); ``None`` does not touch the database first.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from reminders.runtime import Runtime

Command = Callable[[argparse.Namespace, Runtime], int]
Schema = Literal["migrate", "read"] | None


def command(
    parser: argparse.ArgumentParser,
    func: Command,
    *,
    schema: Schema,
    checks_providers: bool = False,
) -> None:
    """Make ``parser`` run ``func``; ``checks_providers``: provider settings and the policy
    are validated before anything else (the commands that send)."""
    parser.set_defaults(func=func, schema=schema, checks_providers=checks_providers)


def parse_instant(text: str) -> datetime:
    """ISO-8601 with an offset or Z; a naive time is refused (it would be ambiguous)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"time {text!r} needs an offset or Z (e.g. 2026-12-01T09:00:00-05:00)"
        )
    return value.astimezone(UTC)
