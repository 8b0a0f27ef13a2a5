"""Formatting for the patient's language and region: language tags and fallbacks, dates and
times (Babel, CLDR), phone numbers. Pure.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

DEFAULT_LANGUAGE = "en"


def normalise_language(language: str | None) -> str:
    """``es_mx`` / ``ES-mx`` -> ``es-MX``; empty -> ``en``."""
    value = (language or "").strip().replace("_", "-")
    if not value:
        return DEFAULT_LANGUAGE
    head, *rest = value.split("-")
    tail = [part.upper() if len(part) == 2 else part for part in rest]
    return "-".join([head.lower(), *tail])


def language_chain(language: str | None) -> list[str]:
    """The languages tried in order: ``es-MX`` -> ``["es-MX", "es", "en"]``."""
    parts = normalise_language(language).split("-")
    chain = ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]
    if DEFAULT_LANGUAGE not in chain:
        chain.append(DEFAULT_LANGUAGE)
    return chain


@lru_cache(maxsize=256)
def babel_locale(language: str | None) -> Locale:
    for candidate in language_chain(language):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LANGUAGE)


@lru_cache(maxsize=256)
def _day_pattern(locale: Locale) -> str:
    """The locale's full date pattern without the year: "EEEE, MMMM d" / "EEEE, d 'de' MMMM"."""
    full = locale.date_formats["full"].pattern
    without_year = re.sub(r"(?:[\s,.]*(?:'de'|'del')?\s*)y+\.?(?:\s*'г'\.?)?$", "", full)
    return without_year if "y" not in without_year.replace("'", "") else full


# CLDR puts narrow no-break spaces in times ("9:00\u202fAM"): one such character would make
# an SMS UCS-2, and plain spaces read the same.
_ODD_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " "})


def format_day(moment: datetime, language: str | None) -> str:
    """ "Tuesday, December 1" (en), "martes, 1 de diciembre" (es), in ``moment``'s zone."""
    locale = babel_locale(language)
    return format_date(moment.date(), _day_pattern(locale), locale=locale).translate(_ODD_SPACES)


def format_clock(moment: datetime, language: str | None) -> str:
    """ "9:00 AM" (en), "9:00" (es), in ``moment``'s zone."""
    locale = babel_locale(language)
    wall = moment.replace(tzinfo=None)  # already local: format the wall clock as is
    return format_time(wall, "short", locale=locale).translate(_ODD_SPACES)


@lru_cache(maxsize=1024)
def display_phone(number: str | None, region: str) -> str:
    """``+14105550100`` -> ``(410) 555-0100`` for local numbers, international otherwise."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    same_region = phonenumbers.region_code_for_number(parsed) == region
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if same_region
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, fmt)
