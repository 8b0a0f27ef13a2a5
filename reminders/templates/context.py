"""The template context (docs/design.md section 7): the variables a template may use, and their
values for one message, formatted for the patient's language (Babel) and local zone.

Absent things are empty strings, never missing, so a template renders the same way for
every message; :func:`sample_context` is made-up data for previews and checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

from reminders.db.models import Location, Patient, TreatmentSession
from reminders.db.types import utcnow
from reminders.planning.policy import Policy
from reminders.planning.prep import PreparationPolicy, default_preparation, plan_preparation
from reminders.planning.timecalc import recipient_zone
from reminders.settings import Settings
from reminders.templates.formats import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE
from reminders.templates.formats import babel_locale as babel_locale
from reminders.templates.formats import display_phone as display_phone
from reminders.templates.formats import format_clock as format_clock
from reminders.templates.formats import format_day as format_day
from reminders.templates.formats import language_chain as language_chain
from reminders.templates.formats import normalise_language as normalise_language
from reminders.templates.phrasing import PREP_KEYS, prep_context, session_when

# What a message calls a session of a kind; an SMS says "visit" unless the policy allows more.
KIND_LABELS = {
    "en": {"infusion": "infusion", "consultation": "consultation", "": "visit"},
    "es": {"infusion": "infusión", "consultation": "consulta", "": "cita"},
}


def session_label(kind: str, language: str, *, policy: Policy | None, channel: str | None) -> str:
    """ "visit" / "cita" in an SMS (HHS minimum necessary) unless ``policy.sms_names_treatment``;
    else the kind's name in the language (a kind with no translation: as the clinic wrote it)."""
    labels = KIND_LABELS.get(normalise_language(language).split("-")[0], KIND_LABELS["en"])
    named = channel != "sms" or (policy is not None and policy.sms_names_treatment)
    if not named or not kind:
        return labels[""]
    return labels.get(kind, kind.replace("_", " "))


# The template context (docs/design.md section 7): top-level name -> its attributes (None: a plain value).
VARIABLES: dict[str, tuple[str, ...] | None] = {
    "patient": ("first_name",),
    # when: "today at 1:00 PM" / "tomorrow, Saturday, March 20, at 1:00 PM" / "on Monday, ...",
    # relative to the moment the message is sent; day: "today"/"tomorrow"/""; label: what the
    # message calls the session ("visit" in an SMS unless the policy lets SMS name it).
    "session": (
        "when",
        "day",
        "weekday",
        "date",
        "time",
        "kind",
        "label",
        "series_number",
        "series_size",
        "confirmed",
    ),  # fmt: skip
    # The session's preparation (policy ``preparation``), with its cut-offs as local times;
    # a cut-off already past at send time is never an instruction (see `passed`).
    "prep": PREP_KEYS,
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


@lru_cache(maxsize=1)
def _built_in() -> PreparationPolicy:
    """The built-in preparation, for callers without a policy (read only)."""
    return default_preparation()


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
    policy: Policy | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """The template variables of docs/design.md section 7; absent things are empty strings, never missing.

    Dates and times are in the patient's language (``language`` overrides it: pass the
    language of the template actually used, see :func:`render_for`) and local zone, and
    relative to ``now``, the moment the message is sent ("today", "tomorrow", cut-offs
    already past). ``policy`` gives the preparation and whether an SMS (``channel``) may
    name the session's kind (without one: the built-in preparation, and no).
    ``reply_text`` is the composed answer the pass-through template ``reply_text`` sends.
    """
    now = now or utcnow()
    lang = language or (patient.language if patient is not None else None) or DEFAULT_LANGUAGE
    region = settings.default_region
    session_vars: dict[str, Any] = {key: "" for key in VARIABLES["session"] or ()}
    session_vars["confirmed"] = False
    location_phone = display_phone(location.phone, region) if location is not None else ""
    call = location_phone or display_phone(settings.clinic_phone, region)
    prep_vars = prep_context(
        None, now=now, starts_at=now, tz=settings.zone, language=lang, phone=call
    )
    if session is not None:
        zone = recipient_zone(
            patient_tz=patient.timezone if patient else None,
            location_tz=location.timezone if location else None,
            default=settings.zone,
        )
        session_vars.update(session_when(session.starts_at, now=now, tz=zone, language=lang))
        session_vars.update(
            kind=session.kind or "",
            label=session_label(session.kind or "", lang, policy=policy, channel=channel),
            confirmed=session.status == "confirmed" or session.confirmed_at is not None,
        )
        preparation = (policy.preparation if policy else _built_in()).for_session(
            session.kind or "", session.location_id
        )
        if preparation is not None:
            plan = plan_preparation(
                preparation,
                starts_at=session.starts_at,
                duration_minutes=session.duration_minutes or 0,
                tz=zone,
            )
            prep_vars = prep_context(
                plan, now=now, starts_at=session.starts_at, tz=zone, language=lang, phone=call
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
        "prep": prep_vars,
        "location": {
            "name": location.name if location is not None else "",
            "address": (location.address or "") if location is not None else "",
            "phone": location_phone,
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
    policy: Policy | None = None,
    channel: str | None = None,
    late: bool = False,
) -> dict[str, Any]:
    """Made-up data for previews and checks: patient Alex, a session tomorrow at 09:00 local,
    read today at 08:00 (``late``: at 08:00 on the session's day, every cut-off past)."""
    zone = settings.zone
    today = (now or utcnow()).astimezone(zone).date()
    starts = datetime.combine(today + timedelta(days=1), time(9, 0), tzinfo=zone)
    sent = datetime.combine(today + timedelta(days=1 if late else 0), time(8, 0), tzinfo=zone)
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
        now=sent,
        policy=policy,
        channel=channel,
    )


def context_language(requested: str | None, template_language: str) -> str:
    """The language to format dates in: the patient's own locale when the template is in
    that language (``es-MX`` patient, ``es`` template -> ``es-MX``), else the template's."""
    wanted = normalise_language(requested)
    return wanted if wanted.split("-")[0] == template_language.split("-")[0] else template_language
