"""The units the policy is written in: offsets ("-1d", "-2h30m"), durations ("24h") and
times of day ("10:00"), parsed with errors that say what was expected. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_OFFSET_RE = re.compile(
    r"^\s*(?P<sign>[+-])?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m)?\s*$"
)


@dataclass(frozen=True)
class Offset:
    """Calendar days (local wall clock) plus elapsed minutes; negative = before."""

    days: int = 0
    minutes: int = 0

    @classmethod
    def parse(cls, text: str | int | float) -> Offset:
        if isinstance(text, int | float) and not isinstance(text, bool):
            raise ValueError(f"offset {text!r} needs a unit, for example '-1d', '-2h' or '30m'")
        match = _OFFSET_RE.match(str(text))
        if not match or not any(match.group(k) for k in ("d", "h", "m")):
            raise ValueError(f"offset {text!r} is not like '-1d', '-2h', '+30m' or '-1d2h'")
        sign = -1 if match.group("sign") == "-" else 1
        days = int(match.group("d") or 0)
        minutes = int(match.group("h") or 0) * 60 + int(match.group("m") or 0)
        return cls(days=sign * days, minutes=sign * minutes)

    @property
    def before(self) -> bool:
        return self.days < 0 or (self.days == 0 and self.minutes < 0)

    def __str__(self) -> str:
        sign = "-" if self.before else "+"
        parts = ""
        if self.days:
            parts += f"{abs(self.days)}d"
        h, m = divmod(abs(self.minutes), 60)
        if h:
            parts += f"{h}h"
        if m or not parts:
            parts += f"{m}m"
        return sign + parts


def parse_duration(value: Any) -> timedelta:
    """'24h', '90m', '7d' (exact elapsed time, for expiries and leads)."""
    if isinstance(value, timedelta):
        return value
    offset = Offset.parse(value)
    if offset.before:
        raise ValueError(f"duration {value!r} must not be negative")
    return timedelta(days=offset.days, minutes=offset.minutes)


def _parse_clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads 10:00 unquoted as sexagesimal 600
        h, m = divmod(value, 60)
        return time(h, m)
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"time of day {value!r} is not like '10:00'")
    return time(int(match.group(1)), int(match.group(2)))


Clock = Annotated[time, BeforeValidator(_parse_clock)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _days(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    offset = Offset.parse(value)
    if offset.minutes:
        raise ValueError(f"{value!r} must be whole days")
    return abs(offset.days)


Days = Annotated[int, BeforeValidator(_days)]
