"""Preparation as data: what a patient must do before a session (policy section
``preparation``), and its cut-offs as absolute times for one session. Pure: no database, no
clock.

Per session kind, overridable per location (field by field)::

    preparation:
      kinds:
        infusion:
          no_food: 6h                 # nothing to eat in the last 6 hours
          clear_liquids_until: 2h     # clear liquids only, until 2 hours before
          no_alcohol: 24h
          hold:                       # medications to stop, each with its own cut-off
            - {item: {en: "benzodiazepines (Xanax, Ativan)", es: "benzodiacepinas"},
               before: {day: -1, at: "20:00"}}
          bring: [{en: "a list of the medications you take now", es: "..."}]
          wear: {en: "comfortable clothes", es: "ropa cómoda"}
          arrive_early: 15m
          ride_home: true
          no_driving: next_day        # or a duration after the session ends ("12h"), or none
      locations:
        uptown: {infusion: {no_food: 8h}}

A cut-off is a duration before the start ("6h", elapsed time) or a local time on a day
relative to the session's (``{day: -1, at: "20:00"}`` = 8 PM the evening before,
``{day: 0, at: "00:00"}`` = midnight before the session), in the recipient's zone. Text that
staff write is a string (every language) or a mapping from language to text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from reminders.planning.units import Clock, Duration, parse_duration

CutoffKind = Literal["food", "liquids", "alcohol", "hold"]

# A message sent this soon after a cut-off still gives it as an instruction ("no alcohol from
# now on"): the day-before reminder (-1d) and a 24-hour alcohol cut-off fall at the same moment.
PREP_GRACE = timedelta(minutes=15)


def _text(value: Any) -> dict[str, str]:
    """A string (every language) or {language: text}; stored as a mapping ("*" = any)."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("text must not be empty")
        return {"*": value.strip()}
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for lang, text in value.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"the {lang!r} text must be a non-empty string")
            out[str(lang).strip().lower().replace("_", "-")] = text.strip()
        return out
    raise ValueError("text is a string or a mapping of language to text, like {en: ..., es: ...}")


Text = Annotated[dict[str, str], BeforeValidator(_text)]


class DayTime(BaseModel):
    """A local time on a day relative to the session's day (0 = the session's day)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    day: int = Field(le=0, ge=-7)
    at: Clock


CUTOFF_FORMS = (
    "a duration before the session like '6h', or a local time like {day: -1, at: '20:00'}"
)


def _cutoff(value: Any) -> Any:
    if value is None or isinstance(value, timedelta | DayTime):
        return value
    if isinstance(value, dict):
        return DayTime.model_validate(value)  # its own errors, not a union's two
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"{value!r} is not {CUTOFF_FORMS}") from None


Cutoff = Annotated[timedelta | DayTime | None, BeforeValidator(_cutoff)]


class HoldItem(BaseModel):
    """A medication to stop before the session, from ``before`` on."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    item: Text
    before: Annotated[timedelta | DayTime, BeforeValidator(_cutoff)]


def _no_driving(value: Any) -> Any:
    if value is None or value in ("none", False):
        return None
    if value == "next_day" or isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not next_day, none, or a duration after the session like '12h'"
        ) from None


class Preparation(BaseModel):
    """What the patient does before one kind of session. Every field may be absent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    no_food: Cutoff = None
    clear_liquids_until: Cutoff = None
    no_alcohol: Cutoff = None
    hold: list[HoldItem] = Field(default_factory=list, max_length=20)
    bring: list[Text] = Field(default_factory=list, max_length=20)
    wear: Text | None = None
    arrive_early: Duration | None = None
    ride_home: bool = False
    no_driving: Annotated[Literal["next_day"] | timedelta | None, BeforeValidator(_no_driving)] = (
        None
    )

    @model_validator(mode="after")
    def _coherent(self) -> Preparation:
        food, liquids = self.no_food, self.clear_liquids_until
        if isinstance(food, timedelta) and isinstance(liquids, timedelta) and liquids >= food:
            raise ValueError(
                "clear_liquids_until must be closer to the session than no_food "
                f"(clear liquids until {_hours(liquids)} before, food stops {_hours(food)} before)"
            )
        for name in ("no_food", "clear_liquids_until", "no_alcohol"):
            value = getattr(self, name)
            if isinstance(value, timedelta) and value > timedelta(days=7):
                raise ValueError(f"{name}: at most 7 days before the session")
        return self

    def merged(self, override: Mapping[str, Any]) -> Preparation:
        """This preparation with a location's fields replacing its own."""
        return Preparation.model_validate({**self.model_dump(exclude_unset=False), **override})


def _hours(value: timedelta) -> str:
    hours = value.total_seconds() / 3600
    return f"{hours:g} h"


class PreparationPolicy(BaseModel):
    """``preparation`` in the policy: per session kind, and per location (partial overrides)."""

    model_config = ConfigDict(extra="forbid")
    kinds: dict[str, Preparation] = Field(default_factory=dict)
    # location id -> session kind -> the fields that differ there (validated as a whole)
    locations: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_valid(self) -> PreparationPolicy:
        for location, kinds in self.locations.items():
            for kind, fields in kinds.items():
                base = self.kinds.get(kind, Preparation())
                try:
                    base.merged(fields)
                except ValidationError as exc:
                    problems = "; ".join(
                        ".".join(str(p) for p in err["loc"])
                        + (": " if err["loc"] else "")
                        + str(err["msg"]).removeprefix("Value error, ")
                        for err in exc.errors()
                    )
                    raise ValueError(f"locations.{location}.{kind}: {problems}") from None
        return self

    def all(self) -> list[Preparation]:
        """Every preparation in force somewhere (each kind, each location's version of it)."""
        found = list(self.kinds.values())
        for location, kinds in self.locations.items():
            found.extend(p for kind in kinds if (p := self.for_session(kind, location)) is not None)
        return found

    def for_session(self, kind: str, location_id: str | None) -> Preparation | None:
        """The preparation for a session of ``kind`` at ``location_id``, or None."""
        override = self.locations.get(location_id or "", {}).get(kind)
        base = self.kinds.get(kind)
        if override is None:
            return base
        return (base or Preparation()).merged(override)


# --- one session's preparation, as absolute times -------------------------------------------


@dataclass(frozen=True, slots=True)
class CutoffTime:
    """From ``at`` on, the patient must not ... (``what``; ``item`` names a held medication)."""

    what: CutoffKind
    at: datetime  # an aware UTC instant
    item: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class PrepPlan:
    """The preparation for one session: its cut-offs as instants, sorted, and the rest."""

    cutoffs: tuple[CutoffTime, ...]
    arrive_by: datetime | None
    ride_home: bool
    # The patient may drive again from this local day (next_day) or this instant (a duration).
    drive_again: date | datetime | None
    bring: tuple[Mapping[str, str], ...]
    wear: Mapping[str, str] | None

    @property
    def first_cutoff(self) -> CutoffTime | None:
        return self.cutoffs[0] if self.cutoffs else None

    def passed(self, now: datetime) -> tuple[CutoffTime, ...]:
        return tuple(c for c in self.cutoffs if c.at <= now)


def max_cutoff_lead(prep: Preparation) -> timedelta:
    """The longest a cut-off of ``prep`` can fall before the session (a day-relative time
    counts its whole day)."""
    specs = [prep.no_food, prep.clear_liquids_until, prep.no_alcohol]
    specs += [h.before for h in prep.hold]
    leads = [
        spec if isinstance(spec, timedelta) else timedelta(days=1 - spec.day)
        for spec in specs
        if spec is not None
    ]
    return max(leads, default=timedelta(0))


def cutoff_instant(spec: timedelta | DayTime, starts_at: datetime, tz: ZoneInfo) -> datetime:
    """A cut-off as an instant (UTC), never after the session starts."""
    starts_at = starts_at.astimezone(UTC)  # elapsed time: aware arithmetic in a zone is wall time
    if isinstance(spec, timedelta):
        return starts_at - spec
    day = starts_at.astimezone(tz).date() + timedelta(days=spec.day)
    # The wall-clock reading as in timecalc.to_local_instant (a gap reads as before it).
    return min(datetime.combine(day, spec.at, tzinfo=tz).astimezone(UTC), starts_at)


def plan_preparation(
    prep: Preparation, *, starts_at: datetime, duration_minutes: int, tz: ZoneInfo
) -> PrepPlan:
    """Every cut-off of ``prep`` for a session starting at ``starts_at`` in zone ``tz``."""
    starts_at = starts_at.astimezone(UTC)
    cutoffs: list[CutoffTime] = []
    for what, spec in (
        ("food", prep.no_food),
        ("liquids", prep.clear_liquids_until),
        ("alcohol", prep.no_alcohol),
    ):
        if spec is not None:
            cutoffs.append(CutoffTime(what, cutoff_instant(spec, starts_at, tz)))  # type: ignore[arg-type]
    for hold in prep.hold:
        cutoffs.append(CutoffTime("hold", cutoff_instant(hold.before, starts_at, tz), hold.item))
    cutoffs.sort(key=lambda c: c.at)
    drive_again: date | datetime | None = None
    ends_at = starts_at + timedelta(minutes=duration_minutes)
    if prep.no_driving == "next_day":
        drive_again = ends_at.astimezone(tz).date() + timedelta(days=1)
    elif isinstance(prep.no_driving, timedelta):
        drive_again = ends_at + prep.no_driving
    return PrepPlan(
        cutoffs=tuple(cutoffs),
        arrive_by=starts_at - prep.arrive_early if prep.arrive_early else None,
        ride_home=prep.ride_home,
        drive_again=drive_again,
        bring=tuple(prep.bring),
        wear=prep.wear,
    )


# The built-in preparation (docs/design.md section 7), used when a policy has no
# ``preparation`` section. The policy file `reminders init` writes spells it out.
DEFAULT_PREPARATION: dict[str, Any] = {
    "kinds": {
        "infusion": {
            "no_food": "6h",
            "clear_liquids_until": "2h",
            "no_alcohol": "24h",
            "bring": [
                {
                    "en": "a list of the medications you take now",
                    "es": "una lista de los medicamentos que toma actualmente",
                }
            ],
            "wear": {"en": "comfortable clothes", "es": "ropa cómoda"},
            "ride_home": True,
            "no_driving": "next_day",
        },
        "consultation": {
            "bring": [
                {
                    "en": "a list of the medications you take now",
                    "es": "una lista de los medicamentos que toma actualmente",
                }
            ]
        },
    }
}


def default_preparation() -> PreparationPolicy:
    return PreparationPolicy.model_validate(DEFAULT_PREPARATION)
