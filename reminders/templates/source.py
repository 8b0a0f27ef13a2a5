"""A template's identity and source text: (name, channel, language), and where its live
version comes from (a shipped file or a staff version in the database).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reminders.outbox.status import Channel


class TemplateError(Exception):
    """A template is missing, does not parse, or does not render; the message says where."""


@dataclass(frozen=True)
class TemplateSource:
    """One template's source text and where it came from."""

    name: str
    channel: Channel
    language: str
    body: str
    subject: str | None = None
    html: str | None = None
    # "built-in": shipped in the package; "file": the clinic's REMINDERS_TEMPLATES_DIR;
    # "db": a staff version.
    origin: Literal["built-in", "file", "db"] = "file"
    version: int | None = None

    @property
    def id(self) -> str:
        return f"{self.name}/{self.channel}/{self.language}"

    @property
    def label(self) -> str:
        return f"db v{self.version}" if self.origin == "db" else self.origin


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    channel: Channel
    language: str
    source: str  # "built-in", "file" or "db v3"
