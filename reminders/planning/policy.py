"""The policy file: rules, quiet hours and limits (pydantic), validated with errors that
name the rule and field. Pure: the arithmetic on these values is in
:mod:`reminders.planning.timecalc`.

Offsets: ``d`` is calendar days at the same local wall-clock time (so ``-1d`` before a
09:00 session is 09:00 the day before, across daylight-saving changes); ``h`` and ``m``
are elapsed time. ``{day: N, at: "HH:MM"}`` fixes a local time N days after the session
(ends, for N >= 0) or before it (starts, for N < 0).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reminders.errors import PolicyError
from reminders.outbox.status import Channel
from reminders.planning.prep import PreparationPolicy, default_preparation

# The policy's units, re-exported (``from reminders.planning.policy import Offset`` keeps working).
from reminders.planning.units import Clock as Clock
from reminders.planning.units import Days as Days
from reminders.planning.units import Duration as Duration
from reminders.planning.units import Offset as Offset
from reminders.planning.units import parse_duration as parse_duration

RuleKind = Literal["reminder", "checkin", "nudge"]
PRE_SESSION_KINDS = frozenset({"reminder"})


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


DEFAULT_QUIET: dict[Channel, QuietHours | None] = {
    "sms": QuietHours(start=time(21), end=time(8)),
    "email": None,
}


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
            raise ValueError(
                "a reminder's 'when' must be before the session (negative, like '-1d')"
            )
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


# --- the inbox: clinic hours and how soon an unread message pages on-call ---------------------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _day_keys(key: Any) -> list[int]:
    """'mon', 'mon-fri', 'sat,sun' -> weekdays (0 = Monday)."""
    days: list[int] = []
    for part in str(key).lower().split(","):
        ends = [d.strip() for d in part.split("-")]
        if len(ends) > 2 or any(d not in DAY_NAMES for d in ends):
            raise ValueError(
                f"day {key!r} is not one of {', '.join(DAY_NAMES)}, a range like 'mon-fri' "
                "or a list like 'sat,sun'"
            )
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        if last < first:
            raise ValueError(f"day range {part.strip()!r} runs backwards (write 'mon-fri')")
        days.extend(range(first, last + 1))
    return days


def _span(value: Any) -> tuple[int, int]:
    """'08:00-18:00' -> minutes of the day (start, end); the end may be '24:00'."""
    match = _SPAN_RE.match(str(value))
    if not match:
        raise ValueError(f"hours {value!r} are not like '08:00-18:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
        raise ValueError(f"hours {value!r}: not a time of day")
    if end <= start:
        raise ValueError(f"hours {value!r} end before they start (split a night over two days)")
    return start, end


class OpeningHours(BaseModel):
    """When the clinic reads messages, each week: ``{mon-fri: "08:00-18:00", sat: "09:00-12:00"}``.

    A day may have a list of spans (``["08:00-12:00", "13:00-17:00"]``); a day not named, or
    given ``null``, is closed. In the zone of whatever the hours belong to (the clinic's, or a
    location's).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # weekday (0 = Monday) -> sorted (start, end) minutes of the day
    days: dict[int, list[tuple[int, int]]]

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"days"}:
            return value  # already parsed (a dump of this model)
        if not isinstance(value, dict):
            raise ValueError("opening hours are a mapping like {mon-fri: '08:00-18:00'}")
        days: dict[int, list[tuple[int, int]]] = {}
        for key, spans in value.items():
            listed = [] if spans is None else spans if isinstance(spans, list) else [spans]
            for day in _day_keys(key):
                if day in days:
                    raise ValueError(f"{DAY_NAMES[day]} is given twice")
                days[day] = sorted(_span(s) for s in listed)
        for day, spans in days.items():
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                if start < end:
                    raise ValueError(f"{DAY_NAMES[day]}: hours overlap")
        if not any(days.values()):
            raise ValueError("the clinic must be open at some time of the week")
        return {"days": days}

    def is_open(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.days.get(local.weekday(), ()))

    def next_opening(self, local: datetime) -> datetime:
        """The next time the clinic opens, strictly after ``local`` (an aware local time)."""
        minute = local.hour * 60 + local.minute
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            for start, _end in self.days.get(day.weekday(), ()):
                if ahead == 0 and start <= minute:
                    continue
                if ahead > 0 and start == 0 and self._open_at_midnight_before(day.weekday()):
                    continue  # "mon: 22:00-24:00, tue: 00:00-02:00" is one span
                return datetime.combine(day, time(start // 60, start % 60), tzinfo=local.tzinfo)
        raise AssertionError("validated hours always open within a week")

    def _open_at_midnight_before(self, weekday: int) -> bool:
        return any(e == 24 * 60 for _, e in self.days.get((weekday - 1) % 7, ()))


def _hours(value: dict[str, Any]) -> OpeningHours:
    return OpeningHours.model_validate(value)


class ClinicHours(BaseModel):
    """The clinic's hours (its zone, REMINDERS_TIMEZONE) and per-location hours (the location's
    zone), keyed by location id."""

    model_config = ConfigDict(extra="forbid")
    default: OpeningHours = Field(default_factory=lambda: _hours({"mon-fri": "08:00-18:00"}))
    locations: dict[str, OpeningHours] = Field(default_factory=dict)


class InboxPolicy(BaseModel):
    """How long a patient's message may stay unread before on-call is paged (once)."""

    model_config = ConfigDict(extra="forbid")
    review_minutes_in_hours: int = Field(default=15, ge=1, le=120)
    review_minutes_out_of_hours: int = Field(default=10, ge=1, le=120)
    page_out_of_hours: bool = True
    # Only there to refuse ``false`` with a clear message: in-hours paging cannot be turned off.
    page_in_hours: bool = True

    @field_validator("page_in_hours")
    @classmethod
    def _always_in_hours(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError(
                "paging on-call about unread messages in clinic hours cannot be turned off "
                "(no patient message goes unread); only page_out_of_hours may be false"
            )
        return value


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quiet_hours: dict[Channel, QuietHours | None] = Field(
        default_factory=lambda: dict(DEFAULT_QUIET)
    )
    min_lead: Duration = timedelta(hours=1)
    # How long before quiet hours begin a pre-session message moved to "the evening before" goes.
    quiet_margin: Duration = timedelta(minutes=15)
    checkin_expiry: Duration = timedelta(hours=24)
    nudge_expiry: Duration = timedelta(hours=24)
    rules: list[Rule] = Field(min_length=1)
    clinic_hours: ClinicHours = Field(default_factory=ClinicHours)
    inbox: InboxPolicy = Field(default_factory=InboxPolicy)
    preparation: PreparationPolicy = Field(default_factory=default_preparation)
    # HHS minimum necessary: an SMS calls every session "your visit" unless the clinic opts in
    # to naming its kind ("your infusion"); emails name it.
    sms_names_treatment: bool = False

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
        return self.quiet_hours.get(cast(Channel, channel))

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
        raise PolicyError(
            f"{source}: " + "; ".join(_describe(err, raw) for err in exc.errors())
        ) from None


def _describe(err: Any, raw: dict[str, Any]) -> str:
    loc = list(err["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules") or []
        name = (
            rules[loc[1]].get("name")
            if loc[1] < len(rules) and isinstance(rules[loc[1]], dict)
            else None
        )
        field = (
            ".".join(
                str(p)
                for p in loc[2:]
                if not str(p).startswith(("function-", "Offset", "FixedTime"))
            )
            or "rule"
        )
        label = f"rule {name!r}" if name else f"rule #{loc[1] + 1}"
        return f"{label} field '{field}': {_clean(err['msg'])}"
    return f"field '{where}': {_clean(err['msg'])}"


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")
