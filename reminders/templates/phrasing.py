"""Phrases that must be true when a message is SENT: when a session is ("today at 1:00 PM",
"mañana, sábado 20 de marzo, a las 13:00") and its preparation, with each cut-off said
relative to the send moment ("Nothing to eat after 7:00 AM.", "No alcohol after 1:00 PM
today."), and cut-offs already passed said as such ("Please eat nothing more. If you have
eaten since 7:00 AM, call us at ... before you come in."). A cut-off passed less than
``PREP_GRACE`` (15 minutes) ago is still an instruction, from now on ("No alcohol from now
on."): the day-before reminder and a 24-hour alcohol cut-off fall at the same moment.

Pure: no database, no clock; ``now`` (the send moment) is always passed in. Every datetime
passed in must be aware; it is converted to the recipient's zone ``tz`` before local dates
are compared ("today" is the local date of ``now`` in ``tz``).

Languages: English and Spanish (usted) are phrased by hand, chosen by the primary subtag
(``es-MX`` follows the Spanish rules), while dates and times are formatted with the full
locale (``es-MX`` -> "1:00 p.m."). Templates only ship in English and Spanish, so any other
language is phrased AND formatted in English (``en``), and staff-written texts are picked for
English too, so a message never mixes two languages in one sentence.

Output is plain text an SMS can carry as GSM-7, apart from the Spanish letters (á é í ó ú ñ):
Babel's narrow no-break spaces are replaced by :func:`format_clock` / :func:`format_day`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date

from reminders.planning.prep import PREP_GRACE, CutoffTime, PrepPlan
from reminders.templates.formats import (
    babel_locale,
    format_clock,
    format_day,
    language_chain,
    normalise_language,
)

__all__ = ["PREP_KEYS", "moment_phrase", "pick_text", "prep_context", "session_when"]

# Days relative to today, by phrasing language.
_RELATIVE = {
    "en": {0: "today", 1: "tomorrow", -1: "yesterday"},
    "es": {0: "hoy", 1: "mañana", -1: "ayer"},
}
# Within this many days of today (either way), a day is named by its weekday alone.
_WEEK = 6

# Sentences and clauses, by phrasing language. ``{t}`` is a moment phrase (Spanish ones
# carry their article: "las 7:00"), ``{item}`` a staff-written text.
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "food": "Nothing to eat after {t}.",
        "liquids": "Clear liquids only (water, clear juice, tea or coffee without milk) "
        "until {t}, then nothing to drink.",
        "alcohol": "No alcohol after {t}.",
        "hold": "Do not take {item} after {t}.",
        "short_food": "nothing to eat after {t}",
        "short_liquids": "clear liquids only until {t}",
        "short_alcohol": "no alcohol after {t}",
        "short_hold": "no {item} after {t}",
        "stop_food": "eat nothing more",
        "stop_liquids": "drink nothing more",
        "stop_alcohol": "have no more alcohol",
        "stop_hold": "take no more {item}",
        "did_food": "eaten since {t}",
        "did_liquids": "had anything to drink since {t}",
        "did_alcohol": "had alcohol since {t}",
        "did_hold": "taken {item} since {t}",
        "now_food": "Nothing more to eat from now on.",
        "now_liquids": "Nothing more to drink from now on.",
        "now_alcohol": "No alcohol from now on.",
        "now_hold": "Do not take {item} from now on.",
        "short_now_food": "nothing more to eat from now on",
        "short_now_liquids": "nothing more to drink from now on",
        "short_now_alcohol": "no alcohol from now on",
        "short_now_hold": "no {item} from now on",
        "passed": "Please {stops}. If you have {dids}, call us at {phone} before you come in.",
        "and": "and",
        "or": "or",
        "arrive": "Please arrive by {t}.",
        "bring": "Bring {item}.",
        "wear": "Wear {item}.",
        "ride": "Arrange a ride home, and do not drive until {when}.",
        "ride_plain": "Arrange a ride home; you should not drive yourself after your visit.",
        "ride_short": "Have a ride home.",
        "medication": "your medication",
    },
    "es": {
        "food": "No coma nada después de {t}.",
        "liquids": "Solo líquidos claros (agua, jugo claro, té o café sin leche) hasta {t}; "
        "después, nada de beber.",
        "alcohol": "Nada de alcohol después de {t}.",
        "hold": "No tome {item} después de {t}.",
        "short_food": "no coma después de {t}",
        "short_liquids": "solo líquidos claros hasta {t}",
        "short_alcohol": "sin alcohol después de {t}",
        "short_hold": "no tome {item} después de {t}",
        "stop_food": "no coma nada más",
        "stop_liquids": "no beba nada más",
        "stop_alcohol": "no tome más alcohol",
        "stop_hold": "no tome más {item}",
        "did_food": "comió algo desde {t}",
        "did_liquids": "bebió algo desde {t}",
        "did_alcohol": "tomó alcohol desde {t}",
        "did_hold": "tomó {item} desde {t}",
        "now_food": "No coma nada a partir de ahora.",
        "now_liquids": "No beba nada a partir de ahora.",
        "now_alcohol": "Nada de alcohol a partir de ahora.",
        "now_hold": "No tome {item} a partir de ahora.",
        "short_now_food": "no coma nada a partir de ahora",
        "short_now_liquids": "no beba nada a partir de ahora",
        "short_now_alcohol": "nada de alcohol a partir de ahora",
        "short_now_hold": "no tome {item} a partir de ahora",
        "passed": "Por favor, {stops}. Si ya {dids}, llámenos al {phone} antes de venir.",
        "and": "y",
        "or": "o",
        "arrive": "Por favor, llegue a {t}.",
        "bring": "Traiga {item}.",
        "wear": "Use {item}.",
        "ride": "Organice quién le lleve a casa y no maneje hasta {when}.",
        "ride_plain": "Organice quién le lleve a casa; no maneje usted después de su cita.",
        "ride_short": "Tenga quien le lleve a casa.",
        "medication": "su medicamento",
    },
}
# The order instructions are listed in (holds keep the plan's order, by cut-off time).
_KIND_ORDER = {"food": 0, "liquids": 1, "alcohol": 2, "hold": 3}
_LEADING_HOUR = re.compile(r"\D*(\d+)")


# --- languages and small pieces --------------------------------------------------------------


def _languages(language: str | None) -> tuple[str, str]:
    """(phrasing rules "en"/"es", the language to format dates and pick texts in)."""
    full = normalise_language(language)
    primary = full.split("-")[0]
    if primary in _WORDS:
        return primary, full
    return "en", "en"


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {moment!r}")
    return moment.astimezone(tz)


def _article(clock: str) -> str:
    """Spanish "la" before one o'clock ("la 1:00", "la 1:30 p. m."), "las" otherwise."""
    match = _LEADING_HOUR.match(clock)
    return "la" if match is not None and int(match.group(1)) == 1 else "las"


def _clock(local: datetime, rules: str, fmt: str) -> str:
    """The time after a preposition: "7:00 AM" (en), "las 7:00" / "la 1:00" (es)."""
    clock = format_clock(local, fmt)
    return f"{_article(clock)} {clock}" if rules == "es" else clock


def _weekday(day: date, fmt: str) -> str:
    return format_date(day, "EEEE", locale=babel_locale(fmt))


def _date(day: date, rules: str, fmt: str) -> str:
    """ "Saturday, March 20" (en, as format_day), "sábado 20 de marzo" (es: no comma)."""
    text = format_day(datetime.combine(day, time()), fmt)
    if rules == "es":
        weekday = _weekday(day, fmt)
        if text.startswith(weekday + ","):
            text = weekday + text[len(weekday) + 1 :]
    return text


def _day_phrase(day: date, today: date, rules: str, fmt: str) -> str:
    """A day relative to today, to follow "until" / "hasta": "tomorrow", "Sunday", "Sunday,
    March 21" (en); "mañana", "el domingo", "el domingo 21 de marzo" (es)."""
    delta = (day - today).days
    if delta in _RELATIVE[rules]:
        return _RELATIVE[rules][delta]
    name = _weekday(day, fmt) if abs(delta) <= _WEEK else _date(day, rules, fmt)
    return f"el {name}" if rules == "es" else name


def _join(items: list[str], conjunction: str) -> str:
    """ "a", "a and b", "a, b and c" (no serial comma, in either language)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def pick_text(texts: Mapping[str, str] | None, language: str | None) -> str:
    """A staff-written text in ``language``: the first of :func:`language_chain` present
    (``es-MX``, ``es``, ``en``), else the any-language text ``"*"``, else the first one."""
    if not texts:
        return ""
    by_language = {key.lower(): value for key, value in texts.items()}
    for candidate in [*language_chain(language), "*"]:
        if candidate.lower() in by_language:
            return by_language[candidate.lower()]
    return next(iter(texts.values()))


# --- public phrases --------------------------------------------------------------------------


def session_when(
    starts_at: datetime, *, now: datetime, tz: ZoneInfo, language: str | None
) -> dict[str, str]:
    """When a session is, relative to ``now``, in the recipient's zone ``tz``.

    ``when`` follows "see you " / "le esperamos ": "today at 1:00 PM", "tomorrow, Saturday,
    March 20, at 1:00 PM", "yesterday at 1:00 PM", "on Monday, March 22, at 9:00 AM" (en);
    "hoy a las 13:00", "mañana, sábado 20 de marzo, a las 13:00", "ayer a la 1:00",
    "el lunes 22 de marzo a las 9:00" (es). Also ``day`` (the relative word, or "" for
    other days), ``weekday``, ``date`` (without relative words) and ``time``.
    """
    rules, fmt = _languages(language)
    local = _local(starts_at, tz)
    delta = (local.date() - _local(now, tz).date()).days
    day = _RELATIVE[rules].get(delta, "")
    clock = format_clock(local, fmt)
    date_text = _date(local.date(), rules, fmt)
    if rules == "es":
        at = f"a {_article(clock)} {clock}"
        if delta == 1:
            when = f"{day}, {date_text}, {at}"
        else:
            when = f"{day} {at}" if day else f"el {date_text} {at}"
    elif delta == 1:
        when = f"{day}, {date_text}, at {clock}"
    else:
        when = f"{day} at {clock}" if day else f"on {date_text}, at {clock}"
    return {
        "when": when,
        "day": day,
        "weekday": _weekday(local.date(), fmt),
        "date": date_text,
        "time": clock,
    }


def moment_phrase(
    at: datetime, *, now: datetime, tz: ZoneInfo, language: str | None, session_day: date | None
) -> str:
    """A cut-off time, to follow "after" / "until" / "since" ("después de" / "hasta" / "desde").

    On the session's local day (``session_day``) the time alone: "7:00 AM", "las 7:00", "la
    1:00". Otherwise with its day relative to ``now``: "1:00 PM today" / "tomorrow" /
    "yesterday", "1:00 PM Friday" within 6 days either way, "1:00 PM Friday, March 12"
    further; "las 13:00 de hoy" / "de mañana" / "de ayer", "las 13:00 del viernes", "las 13:00
    del viernes 12 de marzo". ``session_day=None`` always names the day.
    """
    rules, fmt = _languages(language)
    local = _local(at, tz)
    clock = _clock(local, rules, fmt)
    if session_day is not None and local.date() == session_day:
        return clock
    delta = (local.date() - _local(now, tz).date()).days
    relative = _RELATIVE[rules].get(delta)
    if rules == "es":
        if relative is not None:
            return f"{clock} de {relative}"
        name = (
            _weekday(local.date(), fmt) if abs(delta) <= _WEEK else _date(local.date(), rules, fmt)
        )
        return f"{clock} del {name}"
    if relative is not None:
        return f"{clock} {relative}"
    name = _weekday(local.date(), fmt) if abs(delta) <= _WEEK else _date(local.date(), rules, fmt)
    return f"{clock} {name}"


def _empty() -> dict[str, Any]:
    return {
        "food": "",
        "liquids": "",
        "alcohol": "",
        "food_after": "",
        "liquids_until": "",
        "alcohol_after": "",
        "hold": [],
        "bring": [],
        "wear": "",
        "arrive_by": "",
        "ride_home": False,
        "drive_again": "",
        "ride": "",
        "passed": "",
        "late": False,
        "lines": [],
        "summary": "",
    }


# The template variable ``prep``'s attributes (reminders.templates.context.VARIABLES).
PREP_KEYS: tuple[str, ...] = tuple(_empty())


def _in_order(cutoffs: Iterable[CutoffTime]) -> list[CutoffTime]:
    """Food, liquids, alcohol, then the holds (the plan's order, by time); stable."""
    return sorted(cutoffs, key=lambda cutoff: _KIND_ORDER[cutoff.what])


def prep_context(
    plan: PrepPlan | None,
    *,
    now: datetime,
    starts_at: datetime,
    tz: ZoneInfo,
    language: str | None,
    phone: str,
) -> dict[str, Any]:
    """A session's preparation for a message sent at ``now``: future cut-offs as
    instructions, passed ones as one sentence asking the patient to stop now and to call
    ``phone`` if they already did it (never as an instruction). ``plan=None`` (no
    preparation for the session kind) gives the same keys, all empty.

    Keys: ``food``/``liquids``/``alcohol`` (sentences) and ``food_after``/``liquids_until``/
    ``alcohol_after`` (their moment phrases), ``hold`` (sentences), ``bring`` (texts),
    ``wear``, ``arrive_by`` (a time), ``ride_home`` (bool), ``drive_again`` (a day or a
    moment), ``ride`` (sentence), ``passed`` (sentence), ``late`` (a cut-off has passed),
    ``lines`` (everything, for an email's list) and ``summary`` (one paragraph for an SMS).
    """
    out = _empty()
    if plan is None:
        return out
    rules, fmt = _languages(language)
    words = _WORDS[rules]
    session_day = _local(starts_at, tz).date()
    today = _local(now, tz).date()

    def moment(at: datetime, on_session_day: date | None = session_day) -> str:
        return moment_phrase(at, now=now, tz=tz, language=fmt, session_day=on_session_day)

    def item_of(cutoff: CutoffTime) -> str:
        return pick_text(cutoff.item, fmt) or words["medication"]

    clauses: list[str] = []
    stops: list[str] = []
    dids: list[str] = []
    for cutoff in _in_order(plan.cutoffs):
        kind, when = cutoff.what, moment(cutoff.at)
        item = item_of(cutoff) if kind == "hold" else ""
        if cutoff.at + PREP_GRACE <= now:
            stops.append(words[f"stop_{kind}"].format(item=item))
            dids.append(words[f"did_{kind}"].format(item=item, t=when))
            continue
        if cutoff.at <= now:  # just past: still an instruction, from now on (no time given)
            sentence = words[f"now_{kind}"].format(item=item)
            if kind == "hold":
                out["hold"].append(sentence)
            else:
                out[kind] = sentence
            clauses.append(words[f"short_now_{kind}"].format(item=item))
            continue
        sentence = words[kind].format(item=item, t=when)
        if kind == "hold":
            out["hold"].append(sentence)
        else:
            out[kind] = sentence
            out[{"food": "food_after", "liquids": "liquids_until"}.get(kind, "alcohol_after")] = (
                when
            )
        clauses.append(words[f"short_{kind}"].format(item=item, t=when))
    if stops:
        out["late"] = True
        out["passed"] = words["passed"].format(
            stops=_join(stops, words["and"]), dids=_join(dids, words["or"]), phone=phone
        )

    out["bring"] = [pick_text(texts, fmt) for texts in plan.bring]
    out["wear"] = pick_text(plan.wear, fmt)
    arrive = ""
    if plan.arrive_by is not None:
        arrive_local = _local(plan.arrive_by, tz)
        out["arrive_by"] = format_clock(arrive_local, fmt)
        arrive = words["arrive"].format(t=_clock(arrive_local, rules, fmt))
    out["ride_home"] = plan.ride_home
    if isinstance(plan.drive_again, datetime):
        out["drive_again"] = moment(plan.drive_again, None)
    elif isinstance(plan.drive_again, date):
        out["drive_again"] = _day_phrase(plan.drive_again, today, rules, fmt)
    if plan.ride_home:
        out["ride"] = (
            words["ride"].format(when=out["drive_again"])
            if out["drive_again"]
            else words["ride_plain"]
        )

    out["lines"] = [
        line
        for line in (
            out["food"],
            out["liquids"],
            out["alcohol"],
            *out["hold"],
            out["passed"],
            arrive,
            *(words["bring"].format(item=item) for item in out["bring"]),
            words["wear"].format(item=out["wear"]) if out["wear"] else "",
            out["ride"],
        )
        if line
    ]
    summary: list[str] = []
    if clauses:
        sentence = _join(clauses, words["and"])
        summary.append(sentence[:1].upper() + sentence[1:] + ".")
    if out["passed"]:
        summary.append(out["passed"])
    if plan.ride_home:
        summary.append(words["ride_short"])
    out["summary"] = " ".join(summary)
    return out
