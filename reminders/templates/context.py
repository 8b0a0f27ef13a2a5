"""The template context (docs/design.md section 7): the variables a template may use, and their
values for one message, formatted for the patient's language (Babel) and local zone.

Absent things are empty strings, never missing, so a template renders the same way for
every message; :func:`sample_context` is made-up data for previews and checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

from reminders.db.models import Location, Patient, TreatmentSession
from reminders.db.types import utcnow
from reminders.planning.timecalc import recipient_zone
from reminders.settings import Settings

DEFAULT_LANGUAGE = "en"

# The template context (docs/design.md section 7): top-level name -> its attributes (None: a plain value).
VARIABLES: dict[str, tuple[str, ...] | None] = {
    "patient": ("first_name",),
    "session": ("date", "time", "kind", "series_number", "series_size", "confirmed"),
    "location": ("name", "address", "phone"),
    "clinic": ("name", "phone"),
    "reply": ("confirm", "reschedule"),
    "unsubscribe_url": None,
    "alert": ("summary", "kind", "patient_id", "link"),
    # The text of an automatic answer to a patient's reply (HELP, confirmations...), composed
    # by reminders.conversations and sent through the pass-through template "reply_text".
    "reply_text": None,
}
KNOWN_NAMES = sorted(
    [top for top, attrs in VARIABLES.items() if attrs is None]
    + [f"{top}.{attr}" for top, attrs in VARIABLES.items() for attr in attrs or ()]
)


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


def build_context(
    settings: Settings,
    *,
    patient: Patient | None,
    session: TreatmentSession | None = None,
    location: Location | None = None,
    series_number: int | None = None,
    series_size: int | None = None,
    unsubscribe_url: str | None = None,
    language: str | None = None,
    alert: Mapping[str, Any] | None = None,
    reply_text: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The template variables of docs/design.md section 7; absent things are empty strings, never missing.

    Dates and times are in the patient's language (``language`` overrides it: pass the
    language of the template actually used, see :func:`render_for`) and local zone.
    ``reply_text`` is the composed answer the pass-through template ``reply_text`` sends.
    ``now`` is accepted for callers that pass their clock; the context does not depend on it.
    """
    del now
    lang = language or (patient.language if patient is not None else None) or DEFAULT_LANGUAGE
    region = settings.default_region
    session_vars: dict[str, Any] = {
        "date": "",
        "time": "",
        "kind": "",
        "series_number": "",
        "series_size": "",
        "confirmed": False,
    }
    if session is not None:
        zone = recipient_zone(
            patient_tz=patient.timezone if patient else None,
            location_tz=location.timezone if location else None,
            default=settings.zone,
        )
        local = session.starts_at.astimezone(zone)
        session_vars.update(
            date=format_day(local, lang),
            time=format_clock(local, lang),
            kind=session.kind or "",
            confirmed=session.status == "confirmed" or session.confirmed_at is not None,
        )
        if series_number is None:
            series_number = session.series_number
    if series_number is not None:
        session_vars["series_number"] = series_number
        if series_size is None and patient is not None:
            series_size = patient.initial_series_size
    if series_size is not None:
        session_vars["series_size"] = series_size
    alert_vars = {key: "" for key in VARIABLES["alert"] or ()}
    if alert:
        alert_vars.update({key: str(alert.get(key) or "") for key in alert_vars})
    return {
        "patient": {"first_name": (patient.first_name if patient is not None else "") or ""},
        "session": session_vars,
        "location": {
            "name": location.name if location is not None else "",
            "address": (location.address or "") if location is not None else "",
            "phone": display_phone(location.phone, region) if location is not None else "",
        },
        "clinic": {
            "name": settings.clinic_name,
            "phone": display_phone(settings.clinic_phone, region),
        },
        "reply": {"confirm": settings.confirm_keyword, "reschedule": settings.reschedule_keyword},
        "unsubscribe_url": unsubscribe_url or "",
        "alert": alert_vars,
        "reply_text": reply_text or "",
    }


def sample_context(
    settings: Settings,
    language: str | None = DEFAULT_LANGUAGE,
    *,
    now: datetime | None = None,
    confirmed: bool = False,
) -> dict[str, Any]:
    """Made-up data for previews and checks: patient Alex, a session tomorrow at 09:00 local."""
    zone = settings.zone
    today = (now or utcnow()).astimezone(zone).date()
    starts = datetime.combine(today + timedelta(days=1), time(9, 0), tzinfo=zone)
    patient = Patient(
        id="sample", first_name="Alex", language=normalise_language(language),
        timezone=None, initial_series_size=6,
    )  # fmt: skip
    location = Location(
        id="main", name="Main office", address="100 Main Street, Suite 200",
        phone=settings.clinic_phone, timezone=settings.timezone,
    )  # fmt: skip
    session = TreatmentSession(
        id="sample", patient_id="sample", location_id="main", starts_at=starts,
        duration_minutes=60, kind="infusion", status="confirmed" if confirmed else "scheduled",
        series_number=2, confirmed_at=None,
    )  # fmt: skip
    base = settings.public_url.rstrip("/")
    return build_context(
        settings,
        patient=patient,
        session=session,
        location=location,
        unsubscribe_url=f"{base}/unsubscribe/SAMPLE-TOKEN",
        language=language,
        alert={
            "summary": "Check-in score 2/10",
            "kind": "low_score",
            "patient_id": "p-1001",
            "link": f"{base}/staff/patients/p-1001",
        },
        reply_text=f"{settings.clinic_name}: thank you, your visit is confirmed.",
    )


def context_language(requested: str | None, template_language: str) -> str:
    """The language to format dates in: the patient's own locale when the template is in
    that language (``es-MX`` patient, ``es`` template -> ``es-MX``), else the template's."""
    wanted = normalise_language(requested)
    return wanted if wanted.split("-")[0] == template_language.split("-")[0] else template_language
