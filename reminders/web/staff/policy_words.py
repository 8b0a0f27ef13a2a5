"""The policy in words for the policy page: when each rule sends, and each kind's preparation
with the cut-offs it gives a 9:00 AM session. In the reader's language (``t``, from
:mod:`reminders.web.staff.i18n`; the Spanish is in ``catalog/es_policy.json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from reminders.planning.policy import FixedTime, Offset, Policy, Rule
from reminders.planning.prep import DayTime, Preparation, plan_preparation

Translate = Callable[[str], str]
EXAMPLE_START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def _amount(n: int, unit: str, t: Translate) -> str:
    """ "1 day", "3 hours" (``unit`` singular: day, hour, minute)."""
    return t(f"{{n}} {unit}" if n == 1 else f"{{n}} {unit}s").format(n=n)


def _span(days: int, minutes: int, t: Translate) -> str:
    parts = []
    if days:
        parts.append(_amount(abs(days), "day", t))
    hours, rest = divmod(abs(minutes), 60)
    if hours:
        parts.append(_amount(hours, "hour", t))
    if rest:
        parts.append(_amount(rest, "minute", t))
    return " ".join(parts) or _amount(0, "minute", t)


def describe_offset(offset: Offset, t: Translate) -> str:
    span = _span(offset.days, offset.minutes, t)
    side = "{span} before the session starts" if offset.before else "{span} after the session ends"
    return t(side).format(span=span)


def describe_when(rule: Rule, t: Translate) -> str:
    if rule.kind == "nudge":
        return t(
            "{lead} before maintenance is due, at {at}, then every {every}, at most {max} times"
        ).format(
            lead=_amount(rule.lead, "day", t),
            at=f"{rule.at:%H:%M}",
            every=_amount(rule.every, "day", t),
            max=rule.max,
        )
    when = rule.when
    if isinstance(when, FixedTime):
        side = (
            "{days} before the session, at {at}"
            if when.day < 0
            else ("{days} after the session, at {at}")
        )
        return t(side).format(days=_amount(abs(when.day), "day", t), at=f"{when.at:%H:%M}")
    if isinstance(when, Offset):
        return describe_offset(when, t)
    return ""


def _duration(delta: timedelta, t: Translate) -> str:
    return _span(0, int(delta.total_seconds() // 60), t)


def _days_before(days: int, t: Translate) -> str:
    if days == 0:
        return t("the session's day")
    if days == 1:
        return t("the day before")
    return t("{n} days before").format(n=days)


def _cutoff_text(spec: timedelta | DayTime | None, t: Translate) -> str:
    """ "6 hours before" / "20:00 the day before"."""
    if spec is None:
        return ""
    if isinstance(spec, DayTime):
        return f"{spec.at:%H:%M} {_days_before(-spec.day, t)}"
    return t("{span} before").format(span=_duration(spec, t))


def _text_of(text: Mapping[str, str]) -> str:
    return " / ".join(value if lang == "*" else f"{lang}: {value}" for lang, value in text.items())


CUTOFF_WORDS = {
    "food": "no food after {at}",
    "liquids": "clear liquids until {at}",
    "alcohol": "no alcohol after {at}",
    "hold": "stop {item} at {at}",
}


def _example(prep: Preparation, t: Translate) -> str:
    """The cut-offs for a session at 09:00 (no daylight-saving change)."""
    plan = plan_preparation(prep, starts_at=EXAMPLE_START, duration_minutes=60, tz=ZoneInfo("UTC"))
    parts = []
    for cutoff in plan.cutoffs:
        days = (EXAMPLE_START.date() - cutoff.at.date()).days
        at = f"{cutoff.at:%H:%M}" + (f" {_days_before(days, t)}" if days else "")
        parts.append(t(CUTOFF_WORDS[cutoff.what]).format(item=_text_of(cutoff.item or {}), at=at))
    return ", ".join(parts)


def describe_preparation(prep: Preparation, t: Translate) -> dict[str, str]:
    """A row of the policy page's preparation table, in plain words ("—" for nothing)."""
    if prep.no_driving == "next_day":
        driving = t("no driving until the next day")
    elif isinstance(prep.no_driving, timedelta):
        driving = t("no driving for {span} after").format(span=_duration(prep.no_driving, t))
    else:
        driving = ""
    ride = "; ".join(p for p in (t("ride home required") if prep.ride_home else "", driving) if p)
    hold = [
        t("{item} (from {when})").format(item=_text_of(h.item), when=_cutoff_text(h.before, t))
        for h in prep.hold
    ]
    early = prep.arrive_early
    row = {
        "food": _cutoff_text(prep.no_food, t),
        "liquids": _cutoff_text(prep.clear_liquids_until, t),
        "alcohol": _cutoff_text(prep.no_alcohol, t),
        "hold": "; ".join(hold),
        "bring": "; ".join(_text_of(b) for b in prep.bring),
        "wear": _text_of(prep.wear) if prep.wear else "",
        "arrive": t("{span} early").format(span=_duration(early, t)) if early else "",
        "ride": ride,
        "example": _example(prep, t),
    }
    return {key: value or "—" for key, value in row.items()}


def preparation_rows(policy: Policy, t: Translate) -> list[dict[str, str]]:
    rows = [
        {"kind": kind, "where": "every location", **describe_preparation(prep, t)}
        for kind, prep in policy.preparation.kinds.items()
    ]
    for location, kinds in policy.preparation.locations.items():
        for kind in kinds:
            prep = policy.preparation.for_session(kind, location)
            if prep is not None:
                rows.append({"kind": kind, "where": location, **describe_preparation(prep, t)})
    return rows
