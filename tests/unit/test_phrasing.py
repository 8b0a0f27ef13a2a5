"""Phrases true at the moment a message is sent (reminders.templates.phrasing): when a session
is, relative to ``now``, and its preparation with cut-offs said relative to ``now``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reminders.planning.prep import PREP_GRACE, CutoffTime, PrepPlan
from reminders.templates.formats import format_clock
from reminders.templates.phrasing import moment_phrase, pick_text, prep_context, session_when

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
PHONE = "(410) 555-0100"
# 2027-03-19 is a Friday: the session is "tomorrow, Saturday, March 20".
NOW = datetime(2027, 3, 19, 10, 0, tzinfo=NY)
START = datetime(2027, 3, 20, 13, 0, tzinfo=NY)
SESSION_DAY = date(2027, 3, 20)
ALLOWED = set(map(chr, range(32, 127))) | set("áéíóúñÁÉÍÓÚÑ")
PREP_KEYS = {
    "food", "liquids", "alcohol", "food_after", "liquids_until", "alcohol_after", "hold",
    "bring", "wear", "arrive_by", "ride_home", "drive_again", "ride", "passed", "late",
    "lines", "summary",
}  # fmt: skip


def ny(month: int, day: int, hour: int, minute: int = 0, year: int = 2027) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def texts_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts_of(v)]
    if isinstance(value, list):
        return [t for v in value for t in texts_of(v)]
    return []


def assert_sms_safe(value: Any) -> None:
    for text in texts_of(value):
        odd = set(text) - ALLOWED
        assert not odd, f"{text!r} has {odd!r}"


def plan(
    *cutoffs: CutoffTime,
    arrive_by: datetime | None = None,
    ride_home: bool = False,
    drive_again: date | datetime | None = None,
    bring: tuple[dict[str, str], ...] = (),
    wear: dict[str, str] | None = None,
) -> PrepPlan:
    return PrepPlan(
        cutoffs=tuple(sorted(cutoffs, key=lambda c: c.at)),
        arrive_by=arrive_by,
        ride_home=ride_home,
        drive_again=drive_again,
        bring=bring,
        wear=wear,
    )


def prep(p: PrepPlan | None, *, now: datetime = NOW, language: str = "en") -> dict[str, Any]:
    out = prep_context(p, now=now, starts_at=START, tz=NY, language=language, phone=PHONE)
    assert set(out) == PREP_KEYS
    assert_sms_safe(out)
    return out


# The usual infusion: food 6 h, clear liquids 2 h, alcohol 24 h before a 1 PM session.
FOOD = CutoffTime("food", ny(3, 20, 7))
LIQUIDS = CutoffTime("liquids", ny(3, 20, 11))
ALCOHOL = CutoffTime("alcohol", ny(3, 19, 13))
XANAX = CutoffTime("hold", ny(3, 19, 20), {"en": "Xanax", "es": "Xanax (alprazolam)"})


# --- session_when ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts_at", "language", "when", "day"),
    [
        (ny(3, 19, 13), "en", "today at 1:00 PM", "today"),
        (ny(3, 20, 13), "en", "tomorrow, Saturday, March 20, at 1:00 PM", "tomorrow"),
        (ny(3, 18, 13), "en", "yesterday at 1:00 PM", "yesterday"),
        (ny(3, 22, 9), "en", "on Monday, March 22, at 9:00 AM", ""),
        (ny(3, 19, 13), "es", "hoy a las 13:00", "hoy"),
        (ny(3, 20, 13), "es", "mañana, sábado 20 de marzo, a las 13:00", "mañana"),
        (ny(3, 18, 13), "es", "ayer a las 13:00", "ayer"),
        (ny(3, 22, 9), "es", "el lunes 22 de marzo a las 9:00", ""),
        (ny(3, 20, 1), "es", "mañana, sábado 20 de marzo, a la 1:00", "mañana"),
        (ny(3, 19, 13, 30), "es", "hoy a las 13:30", "hoy"),
        (ny(3, 22, 1, 30), "es", "el lunes 22 de marzo a la 1:30", ""),
    ],
)
def test_session_when_examples(starts_at: datetime, language: str, when: str, day: str) -> None:
    phrase = session_when(starts_at, now=NOW, tz=NY, language=language)
    assert phrase["when"] == when
    assert phrase["day"] == day
    assert_sms_safe(phrase)


def test_session_when_parts() -> None:
    assert session_when(START, now=NOW, tz=NY, language="en") == {
        "when": "tomorrow, Saturday, March 20, at 1:00 PM",
        "day": "tomorrow",
        "weekday": "Saturday",
        "date": "Saturday, March 20",
        "time": "1:00 PM",
    }
    assert session_when(START, now=NOW, tz=NY, language="es") == {
        "when": "mañana, sábado 20 de marzo, a las 13:00",
        "day": "mañana",
        "weekday": "sábado",
        "date": "sábado 20 de marzo",
        "time": "13:00",
    }


def test_spanish_rules_with_the_regional_format() -> None:
    """es-MX: Spanish words, but Mexico's 12-hour clock; 1 p.m. takes "la"."""
    phrase = session_when(ny(3, 19, 13), now=NOW, tz=NY, language="es_mx")
    clock = format_clock(ny(3, 19, 13), "es-MX")
    assert clock.startswith("1:00") and clock != "13:00"
    assert phrase["time"] == clock
    assert phrase["when"] == f"hoy a la {clock}"
    other = session_when(ny(3, 22, 9), now=NOW, tz=NY, language="es-MX")
    assert other["when"] == f"el lunes 22 de marzo a las {format_clock(ny(3, 22, 9), 'es-MX')}"
    assert "\u202f" not in phrase["when"] and "\u00a0" not in phrase["when"]
    assert_sms_safe([phrase, other])


def test_other_languages_are_phrased_in_english() -> None:
    assert session_when(START, now=NOW, tz=NY, language="fr")["when"] == (
        "tomorrow, Saturday, March 20, at 1:00 PM"
    )
    assert session_when(START, now=NOW, tz=NY, language="en-GB")["when"] == (
        "tomorrow, Saturday, 20 March, at 13:00"
    )


def test_days_change_at_local_midnight_not_utc() -> None:
    # 23:30 in New York is 03:30 UTC the next day.
    late = datetime(2027, 3, 20, 3, 30, tzinfo=UTC)
    assert session_when(ny(3, 20, 0, 15), now=late, tz=NY, language="en")["day"] == "tomorrow"
    assert session_when(ny(3, 19, 20, 30), now=late, tz=NY, language="en")["day"] == "today"
    # The session is on the same UTC date as now but on the next local date.
    assert ny(3, 19, 20, 30).astimezone(UTC).date() == late.date()
    # Just after local midnight, the evening before is yesterday.
    early = ny(3, 20, 0, 10).astimezone(UTC)
    assert session_when(ny(3, 19, 23, 50), now=early, tz=NY, language="en")["when"] == (
        "yesterday at 11:50 PM"
    )
    assert session_when(ny(3, 21, 0, 0), now=early, tz=NY, language="en")["day"] == "tomorrow"
    assert session_when(ny(3, 22, 0, 0), now=early, tz=NY, language="en")["day"] == ""


def test_the_recipient_zone_decides_the_day() -> None:
    now = datetime(2027, 3, 20, 5, 0, tzinfo=UTC)  # 22:00 in Los Angeles, 01:00 in New York
    starts = datetime(2027, 3, 20, 7, 30, tzinfo=UTC)  # 00:30 in LA, 03:30 in New York
    assert session_when(starts, now=now, tz=LA, language="en")["when"] == (
        "tomorrow, Saturday, March 20, at 12:30 AM"
    )
    assert session_when(starts, now=now, tz=NY, language="en")["when"] == "today at 3:30 AM"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        session_when(datetime(2027, 3, 20, 13), now=NOW, tz=NY, language="en")


# --- moment_phrase ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "now", "session_day", "en", "es"),
    [
        (ny(3, 20, 7), NOW, SESSION_DAY, "7:00 AM", "las 7:00"),
        (ny(3, 20, 1), NOW, SESSION_DAY, "1:00 AM", "la 1:00"),
        (ny(3, 19, 13), NOW, SESSION_DAY, "1:00 PM today", "las 13:00 de hoy"),
        (ny(3, 20, 13), NOW, date(2027, 3, 21), "1:00 PM tomorrow", "las 13:00 de mañana"),
        (ny(3, 18, 13), NOW, SESSION_DAY, "1:00 PM yesterday", "las 13:00 de ayer"),
        (ny(3, 26, 13), ny(3, 22, 9), None, "1:00 PM Friday", "las 13:00 del viernes"),
        (ny(3, 16, 13), ny(3, 22, 9), None, "1:00 PM Tuesday", "las 13:00 del martes"),
        (
            ny(3, 12, 13),
            ny(3, 22, 9),
            None,
            "1:00 PM Friday, March 12",
            "las 13:00 del viernes 12 de marzo",
        ),
        (ny(3, 20, 1), NOW, None, "1:00 AM tomorrow", "la 1:00 de mañana"),
    ],
)
def test_moment_phrase_examples(
    at: datetime, now: datetime, session_day: date | None, en: str, es: str
) -> None:
    assert moment_phrase(at, now=now, tz=NY, language="en", session_day=session_day) == en
    assert moment_phrase(at, now=now, tz=NY, language="es", session_day=session_day) == es


@pytest.mark.parametrize(
    ("days", "named_by_weekday"), [(6, True), (7, False), (-6, True), (-7, False)]
)
def test_weekday_alone_within_six_days(days: int, named_by_weekday: bool) -> None:
    at = NOW + timedelta(days=days)
    phrase = moment_phrase(at, now=NOW, tz=NY, language="en", session_day=None)
    expected = f"10:00 AM {at.strftime('%A')}"
    if not named_by_weekday:
        expected += f", {at.strftime('%B')} {at.day}"
    assert phrase == expected


# --- prep_context ----------------------------------------------------------------------------


def test_no_plan_gives_the_same_keys_all_empty() -> None:
    out = prep(None)
    assert all(not value for value in out.values())
    assert out["hold"] == [] and out["lines"] == [] and out["late"] is False


def test_future_cutoffs_are_instructions() -> None:
    out = prep(plan(FOOD, LIQUIDS, ALCOHOL))
    assert out["food_after"] == "7:00 AM"
    assert out["liquids_until"] == "11:00 AM"
    assert out["alcohol_after"] == "1:00 PM today"
    assert out["food"] == "Nothing to eat after 7:00 AM."
    assert out["liquids"] == (
        "Clear liquids only (water, clear juice, tea or coffee without milk) until 11:00 AM, "
        "then nothing to drink."
    )
    assert out["alcohol"] == "No alcohol after 1:00 PM today."
    assert out["summary"] == (
        "Nothing to eat after 7:00 AM, clear liquids only until 11:00 AM and no alcohol after "
        "1:00 PM today."
    )
    assert out["passed"] == "" and out["late"] is False


def test_future_cutoffs_in_spanish() -> None:
    out = prep(plan(FOOD, LIQUIDS, ALCOHOL, XANAX), language="es")
    assert out["food"] == "No coma nada después de las 7:00."
    assert out["liquids"] == (
        "Solo líquidos claros (agua, jugo claro, té o café sin leche) hasta las 11:00; "
        "después, nada de beber."
    )
    assert out["alcohol"] == "Nada de alcohol después de las 13:00 de hoy."
    assert out["hold"] == ["No tome Xanax (alprazolam) después de las 20:00 de hoy."]
    assert out["summary"] == (
        "No coma después de las 7:00, solo líquidos claros hasta las 11:00, sin "
        "alcohol después de las 13:00 de hoy y no tome Xanax (alprazolam) después de las "
        "20:00 de hoy."
    )


def test_a_cutoff_just_past_is_from_now_on_and_then_passed() -> None:
    just_before = prep(plan(FOOD), now=FOOD.at - timedelta(microseconds=1))
    assert just_before["food"] == "Nothing to eat after 7:00 AM."
    assert just_before["late"] is False
    # Within PREP_GRACE of the cut-off: an instruction with no time in it, and not late.
    for after in (timedelta(0), PREP_GRACE - timedelta(microseconds=1)):
        at_cutoff = prep(plan(FOOD), now=FOOD.at + after)
        assert at_cutoff["food"] == "Nothing more to eat from now on."
        assert at_cutoff["food_after"] == "" and at_cutoff["late"] is False
        assert at_cutoff["summary"] == "Nothing more to eat from now on."
    spanish = prep(plan(FOOD), now=FOOD.at, language="es")
    assert spanish["food"] == "No coma nada a partir de ahora."
    at_cutoff = prep(plan(FOOD), now=FOOD.at + PREP_GRACE)
    assert at_cutoff["food"] == "" and at_cutoff["food_after"] == ""
    assert at_cutoff["late"] is True
    assert at_cutoff["passed"] == (
        "Please eat nothing more. If you have eaten since 7:00 AM, call us at "
        "(410) 555-0100 before you come in."
    )


def test_passed_cutoffs_are_one_sentence_never_an_instruction() -> None:
    out = prep(plan(FOOD, LIQUIDS, ALCOHOL), now=ny(3, 20, 8))
    assert out["food"] == out["alcohol"] == ""
    assert out["passed"] == (
        "Please eat nothing more and have no more alcohol. If you have eaten since 7:00 AM or "
        "had alcohol since 1:00 PM yesterday, call us at (410) 555-0100 before you come in."
    )
    assert out["summary"] == "Clear liquids only until 11:00 AM. " + out["passed"]
    assert not any("Nothing to eat" in line or "No alcohol" in line for line in out["lines"])


def test_food_and_liquids_passed_are_two_facts() -> None:
    out = prep(plan(FOOD, LIQUIDS, XANAX), now=ny(3, 20, 12))
    assert out["passed"] == (
        "Please eat nothing more, drink nothing more and take no more Xanax. If you have eaten "
        "since 7:00 AM, had anything to drink since 11:00 AM or taken Xanax since 8:00 PM "
        "yesterday, call us at (410) 555-0100 before you come in."
    )
    assert out["food"] == out["liquids"] == "" and out["hold"] == []
    assert out["summary"] == out["passed"]


def test_passed_in_spanish() -> None:
    out = prep(plan(FOOD, LIQUIDS, ALCOHOL), now=ny(3, 20, 12), language="es")
    assert out["passed"] == (
        "Por favor, no coma nada más, no beba nada más y no tome más alcohol. Si ya comió "
        "algo desde las 7:00, bebió algo desde las 11:00 o tomó alcohol desde las 13:00 de "
        "ayer, llámenos al (410) 555-0100 antes de venir."
    )
    hold = prep(plan(XANAX), now=ny(3, 20, 12), language="es")
    assert hold["passed"] == (
        "Por favor, no tome más Xanax (alprazolam). Si ya tomó Xanax (alprazolam) desde las "
        "20:00 de ayer, llámenos al (410) 555-0100 antes de venir."
    )


def test_lines_in_order() -> None:
    p = plan(
        FOOD,
        LIQUIDS,
        ALCOHOL,
        XANAX,
        arrive_by=ny(3, 20, 12, 45),
        ride_home=True,
        drive_again=date(2027, 3, 21),
        bring=({"en": "a list of your medications", "es": "una lista de sus medicamentos"},),
        wear={"*": "comfortable clothes"},
    )
    out = prep(p, now=ny(3, 20, 8))
    assert out["lines"] == [
        "Clear liquids only (water, clear juice, tea or coffee without milk) until 11:00 AM, "
        "then nothing to drink.",
        "Please eat nothing more, have no more alcohol and take no more Xanax. If you have "
        "eaten since 7:00 AM, had alcohol since 1:00 PM yesterday or taken Xanax since "
        "8:00 PM yesterday, call us at (410) 555-0100 before you come in.",
        "Please arrive by 12:45 PM.",
        "Bring a list of your medications.",
        "Wear comfortable clothes.",
        "Arrange a ride home, and do not drive until tomorrow.",
    ]
    assert out["summary"].endswith(" Have a ride home.")
    es = prep(p, language="es")
    assert es["lines"][4:] == [
        "Por favor, llegue a las 12:45.",
        "Traiga una lista de sus medicamentos.",
        "Use comfortable clothes.",
        "Organice quién le lleve a casa y no maneje hasta el domingo.",
    ]
    assert es["summary"].endswith(". Tenga quien le lleve a casa.")
    assert es["bring"] == ["una lista de sus medicamentos"] and es["arrive_by"] == "12:45"


def test_arrive_at_one_takes_the_singular_article() -> None:
    out = prep(plan(arrive_by=ny(3, 20, 13, 15)), language="es-MX")
    assert out["lines"] == [f"Por favor, llegue a la {out['arrive_by']}."]
    out = prep(plan(arrive_by=ny(3, 20, 1, 0)), language="es")
    assert out["lines"] == ["Por favor, llegue a la 1:00."]


@pytest.mark.parametrize(
    ("now", "drive_again", "en", "es"),
    [
        (NOW, date(2027, 3, 20), "tomorrow", "mañana"),
        (NOW, date(2027, 3, 21), "Sunday", "el domingo"),
        (ny(3, 12, 9), date(2027, 3, 21), "Sunday, March 21", "el domingo 21 de marzo"),
        (NOW, ny(3, 21, 1), "1:00 AM Sunday", "la 1:00 del domingo"),
        (NOW, ny(3, 20, 13), "1:00 PM tomorrow", "las 13:00 de mañana"),
    ],
)
def test_drive_again(now: datetime, drive_again: date | datetime, en: str, es: str) -> None:
    p = plan(ride_home=True, drive_again=drive_again)
    english, spanish = prep(p, now=now), prep(p, now=now, language="es")
    assert english["drive_again"] == en
    assert english["ride"] == f"Arrange a ride home, and do not drive until {en}."
    assert spanish["drive_again"] == es
    assert spanish["ride"] == f"Organice quién le lleve a casa y no maneje hasta {es}."


def test_ride_without_a_drive_again() -> None:
    out = prep(plan(ride_home=True))
    assert out["ride"] == "Arrange a ride home; you should not drive yourself after your visit."
    assert out["summary"] == "Have a ride home."
    assert prep(plan(drive_again=date(2027, 3, 21)))["ride"] == ""


def test_staff_texts_follow_the_language_chain() -> None:
    texts = {"en": "water", "es": "agua", "es-mx": "agüita"}
    assert pick_text(texts, "es-MX") == "agüita"
    assert pick_text(texts, "es-AR") == "agua"
    assert pick_text(texts, "fr") == "water"
    assert pick_text({"*": "any", "de": "Wasser"}, "es") == "any"
    assert pick_text({"de": "Wasser", "it": "acqua"}, "es") == "Wasser"
    assert pick_text(None, "es") == ""


# --- daylight-saving days --------------------------------------------------------------------


def wall(instant: datetime) -> str:
    """The local wall time of ``instant`` in New York, as a patient's clock reads it."""
    local = instant.astimezone(NY)
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def test_spring_forward_cutoff() -> None:
    starts = datetime(2026, 3, 8, 9, 0, tzinfo=NY)  # EDT; clocks jumped 02:00 EST -> 03:00 EDT
    food = CutoffTime("food", starts.astimezone(UTC) - timedelta(hours=6))
    now = datetime(2026, 3, 7, 18, 0, tzinfo=NY)
    out = prep_context(plan(food), now=now, starts_at=starts, tz=NY, language="en", phone=PHONE)
    # 6 elapsed hours before 09:00 EDT is 07:00 UTC, the instant the clocks jumped: 3:00 AM.
    assert out["food_after"] == wall(food.at) == "3:00 AM"
    assert session_when(starts, now=now, tz=NY, language="en")["when"] == (
        "tomorrow, Sunday, March 8, at 9:00 AM"
    )


def test_fall_back_cutoffs() -> None:
    starts = datetime(2026, 11, 1, 9, 0, tzinfo=NY)  # EST; 1:00-2:00 AM happened twice
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 1:30 AM EDT
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 1:30 AM EST, an hour later
    one = starts.astimezone(UTC) - timedelta(hours=8)  # 1:00 AM EST
    now = datetime(2026, 10, 31, 12, 0, tzinfo=NY)
    for at in (first, second, one):
        phrase = moment_phrase(at, now=now, tz=NY, language="en", session_day=starts.date())
        assert phrase == wall(at)
    assert wall(first) == wall(second) == "1:30 AM"
    assert moment_phrase(one, now=now, tz=NY, language="es", session_day=starts.date()) == "la 1:00"
    food = CutoffTime("food", one)
    out = prep_context(plan(food), now=now, starts_at=starts, tz=NY, language="es", phone=PHONE)
    assert out["food"] == "No coma nada después de la 1:00."
    passed = prep_context(
        plan(food), now=second, starts_at=starts, tz=NY, language="es", phone=PHONE
    )
    assert "Si ya comió algo desde la 1:00," in passed["passed"]


# --- properties ------------------------------------------------------------------------------

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney"]
WORDS = {"en": ("today", "tomorrow", "yesterday"), "es": ("hoy", "mañana", "ayer")}
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    instants,
    st.integers(min_value=-10 * 24 * 60, max_value=10 * 24 * 60),
    st.sampled_from(ZONES).map(ZoneInfo),
    st.sampled_from(["en", "es", "es-MX", "en-GB"]),
)
def test_relative_day_matches_local_dates(
    now: datetime, minutes: int, tz: ZoneInfo, language: str
) -> None:
    starts = now + timedelta(minutes=minutes)
    phrase = session_when(starts, now=now, tz=tz, language=language)
    today, tomorrow, yesterday = WORDS[language[:2]]
    delta = (starts.astimezone(tz).date() - now.astimezone(tz).date()).days
    assert (phrase["day"] == today) == (delta == 0)
    assert (phrase["day"] == tomorrow) == (delta == 1)
    assert (phrase["day"] == yesterday) == (delta == -1)
    assert (phrase["day"] == "") == (abs(delta) > 1)
    assert phrase["time"] in phrase["when"]
    assert phrase["time"] == format_clock(starts.astimezone(tz), language)
    on_day = moment_phrase(
        starts, now=now, tz=tz, language=language, session_day=starts.astimezone(tz).date()
    )
    assert on_day.endswith(phrase["time"])
    assert_sms_safe(phrase)
