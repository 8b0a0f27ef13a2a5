"""The policy file (pydantic) and the time arithmetic it needs.

Everything here is pure: no database, no clock. Times go in and out as aware datetimes;
local wall-clock reasoning happens in the recipient's ``ZoneInfo``.

Offsets: ``d`` is calendar days at the same local wall-clock time (so ``-1d`` before a
09:00 session is 09:00 the day before, across daylight-saving changes); ``h`` and ``m``
are elapsed time. ``{day: N, at: "HH:MM"}`` fixes a local time N days after the session
(ends, for N >= 0) or before it (starts, for N < 0).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Channel = Literal["sms", "email"]
RuleKind = Literal["reminder", "checkin", "nudge"]
PRE_SESSION_KINDS = frozenset({"reminder"})

_OFFSET_RE = re.compile(r"^\s*(?P<sign>[+-])?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m)?\s*$")


class PolicyError(Exception):
    """The policy file is unreadable or invalid; the message names the rule and field."""


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


class FixedTime(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: int
    at: Clock


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Clock
    end: Clock

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


DEFAULT_QUIET: dict[Channel, QuietHours | None] = {"sms": QuietHours(start=time(21), end=time(8)), "email": None}


class SessionSelector(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kinds: list[str] = Field(default_factory=lambda: ["infusion"], min_length=1)
    phase: Literal["initial", "maintenance", "any"] = "any"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    kind: RuleKind
    sessions: SessionSelector = Field(default_factory=SessionSelector)
    when: Offset | FixedTime | None = None
    channels: list[Channel] = Field(min_length=1)
    template: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    fallback: Channel | None = None
    expires_after: Duration | None = None
    enabled: bool = True
    # Maintenance nudges only.
    lead: Days = 7
    every: Days = 7
    max: int = Field(default=3, ge=1, le=52)
    at: Clock = time(10, 0)

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict | Offset | FixedTime):
            return value
        return Offset.parse(value)

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        if self.kind != "nudge" and self.when is None:
            raise ValueError("'when' is required (an offset like '-1d' or {day: 1, at: '10:00'})")
        if self.kind == "reminder" and isinstance(self.when, Offset) and not self.when.before:
            raise ValueError("a reminder's 'when' must be before the session (negative, like '-1d')")
        if self.kind == "reminder" and isinstance(self.when, FixedTime) and self.when.day >= 0:
            raise ValueError("a reminder's fixed time must be on an earlier day (day: -1 or less)")
        if self.kind == "checkin" and self.when is not None:
            before = self.when.before if isinstance(self.when, Offset) else self.when.day < 0
            if before:
                raise ValueError("a check-in's 'when' must be after the session")
        if self.fallback is not None and self.fallback in self.channels:
            raise ValueError(f"fallback {self.fallback!r} is already one of the rule's channels")
        return self

    def applies_to(self, *, kind: str, phase: str) -> bool:
        if self.kind == "nudge" or not self.enabled:
            return False
        if kind not in self.sessions.kinds:
            return False
        return self.sessions.phase in ("any", phase)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quiet_hours: dict[Channel, QuietHours | None] = Field(default_factory=lambda: dict(DEFAULT_QUIET))
    min_lead: Duration = timedelta(hours=1)
    # How long before quiet hours begin a pre-session message moved to "the evening before" goes.
    quiet_margin: Duration = timedelta(minutes=15)
    checkin_expiry: Duration = timedelta(hours=24)
    nudge_expiry: Duration = timedelta(hours=24)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def quiet(self, channel: str) -> QuietHours | None:
        return self.quiet_hours.get(channel)  # type: ignore[call-overload]

    @property
    def nudge_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.kind == "nudge" and r.enabled]

    def expiry_for(self, rule: Rule) -> timedelta:
        if rule.expires_after is not None:
            return rule.expires_after
        return self.nudge_expiry if rule.kind == "nudge" else self.checkin_expiry

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def load_policy(path: Path | str) -> Policy:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"policy file {path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path}: not valid YAML: {exc}") from exc
    return parse_policy(raw, source=str(path))


def parse_policy(raw: Any, *, source: str = "policy") -> Policy:
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: expected a mapping with 'rules'")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{source}: " + "; ".join(_describe(err, raw) for err in exc.errors())) from None


def _describe(err: Any, raw: dict[str, Any]) -> str:
    loc = list(err["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules") or []
        name = rules[loc[1]].get("name") if loc[1] < len(rules) and isinstance(rules[loc[1]], dict) else None
        field = ".".join(str(p) for p in loc[2:] if not str(p).startswith(("function-", "Offset", "FixedTime"))) or "rule"
        label = f"rule {name!r}" if name else f"rule #{loc[1] + 1}"
        return f"{label} field '{field}': {_clean(err['msg'])}"
    return f"field '{where}': {_clean(err['msg'])}"


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


# --- time arithmetic -------------------------------------------------------------------------


def to_local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware UTC instant.

    A time that does not exist (spring-forward gap) is read with the offset from before
    the gap, so it lands the gap's length later (02:30 -> 03:30); an ambiguous one
    (fall-back) takes its first occurrence (PEP 495, fold=0).
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def shift(anchor: datetime, offset: Offset, tz: ZoneInfo) -> datetime:
    """Apply calendar days in local wall-clock time, then elapsed minutes."""
    result = anchor.astimezone(UTC)
    if offset.days:
        local = anchor.astimezone(tz)
        result = to_local_instant(local.date() + timedelta(days=offset.days), local.time().replace(tzinfo=None), tz)
    return result + timedelta(minutes=offset.minutes)


def fixed_local(anchor: datetime, fixed: FixedTime, tz: ZoneInfo) -> datetime:
    local_day = anchor.astimezone(tz).date() + timedelta(days=fixed.day)
    return to_local_instant(local_day, fixed.at, tz)


def quiet_period(instant: datetime, quiet: QuietHours, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The (start, end) of the quiet period containing ``instant``, or None when outside."""
    local = instant.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return None
    today = local.date()
    if quiet.start < quiet.end:
        start_day, end_day = today, today
    elif local.time().replace(tzinfo=None) >= quiet.start:
        start_day, end_day = today, today + timedelta(days=1)
    else:
        start_day, end_day = today - timedelta(days=1), today
    return to_local_instant(start_day, quiet.start, tz), to_local_instant(end_day, quiet.end, tz)


@dataclass(frozen=True)
class Placement:
    due_at: datetime
    note: str | None = None


def place_outside_quiet(
    due: datetime,
    *,
    pre_session: bool,
    session_start: datetime | None,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    min_lead: timedelta,
    margin: timedelta,
) -> Placement:
    """Move a due time out of quiet hours (DESIGN section 6).

    Pre-session messages go to the end of the quiet period when that is still ``min_lead``
    before the session, else to just before the period began (the evening before).
    Everything else goes to the end.
    """
    if quiet is None:
        return Placement(due)
    period = quiet_period(due, quiet, tz)
    if period is None:
        return Placement(due)
    start, end = period
    if not pre_session or session_start is None:
        return Placement(end, f"quiet hours: moved to {end.astimezone(tz):%H:%M} local")
    if end <= session_start - min_lead:
        return Placement(end, f"quiet hours: moved to their end, {end.astimezone(tz):%H:%M} local")
    earlier = start - margin
    return Placement(earlier, f"quiet hours: end is too close to the session; moved to {earlier.astimezone(tz):%H:%M} local the evening before")
