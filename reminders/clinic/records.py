"""Validation of one raw clinic row (JSON value, CSV string or SQL column) into a typed record.

Pure functions shared by ``reminders import`` and the clinic-database sync (docs/design.md section 5).
Each ``validate_*`` returns the record plus field problems that did not reject the row
(an unusable phone number or email), or a list of :class:`RowError` when the row is rejected.
Messages name the field, never its value: phone numbers and emails are health information.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

SESSION_STATUSES = ("scheduled", "confirmed", "cancelled", "completed", "no_show")
# Still to happen: these sessions get reminders, and they count as "booked".
ACTIVE_SESSION_STATUSES = ("scheduled", "confirmed")
PHASES = ("initial", "maintenance")
UNPARSEABLE_PHONE = "unparseable phone number"
INVALID_EMAIL = "invalid email address"

_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


@dataclass(frozen=True)
class RowError:
    """One problem with one row: ``entity`` is location/patient/session."""

    entity: str
    id: str
    field: str
    reason: str

    def line(self, verb: str = "rejected") -> str:
        return f"{verb} {self.entity} {self.id}: field {self.field}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"entity": self.entity, "id": self.id, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class LocationRecord:
    id: str
    name: str
    address: str = ""
    phone: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class PatientRecord:
    id: str
    first_name: str
    last_name: str = ""
    phone: str | None = None
    phone_problem: str | None = None
    email: str | None = None
    email_problem: str | None = None
    timezone: str | None = None
    language: str = "en"
    sms_consent: bool = False
    email_consent: bool = False
    initial_series_size: int = 6
    maintenance_interval_days: int = 28


@dataclass(frozen=True)
class SessionRecord:
    id: str
    patient_id: str
    starts_at: datetime  # aware, UTC
    location_id: str | None = None
    duration_minutes: int = 60
    kind: str = "infusion"
    status: str = "scheduled"
    phase: str | None = None
    series_number: int | None = None


Record = LocationRecord | PatientRecord | SessionRecord


@dataclass
class Validated:
    """A row's outcome: ``record`` when accepted (``warnings`` = fields dropped), else ``errors``."""

    record: Any = None
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record is not None


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- field parsers: each returns the value or raises _Bad(reason) --------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _text(
    value: Any, *, max_len: int, required: bool = False, default: str | None = None
) -> str | None:
    if _blank(value):
        if required:
            raise _Bad("required")
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
        raise _Bad("must be text")
    text = str(value).strip()
    if len(text) > max_len:
        raise _Bad(f"longer than {max_len} characters")
    return text


def _positive_int(value: Any, default: int | None) -> int | None:
    if _blank(value):
        return default
    if isinstance(value, bool):
        raise _Bad("must be a positive whole number")
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+]?\d{1,9}", text):
            raise _Bad("must be a positive whole number")
        number = int(text)
    elif isinstance(value, float | Decimal):
        if value != int(value):
            raise _Bad("must be a positive whole number")
        number = int(value)
    if not isinstance(number, int) or number <= 0 or number > 1_000_000:
        raise _Bad("must be a positive whole number")
    return number


def _bool(value: Any, default: bool = False) -> bool:
    if _blank(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Bad("must be true/false (or yes/no, 1/0)")


def _zone(value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise _Bad("must be an IANA time zone name")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad(
            f"unknown time zone {name!r} (use an IANA name such as America/New_York)"
        ) from None
    return name


def parse_starts_at(value: Any) -> datetime:
    """ISO-8601 with an offset or ``Z`` (or an aware datetime from a database): aware UTC."""
    if _blank(value):
        raise _Bad("required")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Bad("not an ISO-8601 time (e.g. 2026-12-01T09:00:00-05:00)") from None
    else:
        raise _Bad("must be an ISO-8601 time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Bad(
            "needs an offset or Z (e.g. 2026-12-01T09:00:00-05:00); naive times are ambiguous"
        )
    return parsed.astimezone(UTC)


def normalise_phone(value: Any, region: str) -> tuple[str | None, str | None]:
    """``(E.164, None)``, ``(None, None)`` when absent, ``(None, problem)`` when unusable."""
    if _blank(value):
        return None, None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, UNPARSEABLE_PHONE
    try:
        number = phonenumbers.parse(str(value).strip(), region)
    except phonenumbers.NumberParseException:
        return None, UNPARSEABLE_PHONE
    if not phonenumbers.is_valid_number(number):
        return None, UNPARSEABLE_PHONE
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def normalise_email(value: Any) -> tuple[str | None, str | None]:
    if _blank(value):
        return None, None
    if not isinstance(value, str):
        return None, INVALID_EMAIL
    text = value.strip().lower()
    if len(text) > 320 or not _EMAIL.match(text):
        return None, INVALID_EMAIL
    return text, None


# --- rows --------------------------------------------------------------------------------------


class _Checker:
    """Collects one problem per field so a row reports everything wrong with it at once."""

    def __init__(self, entity: str, row_id: str) -> None:
        self.entity = entity
        self.row_id = row_id
        self.errors: list[RowError] = []
        self.warnings: list[RowError] = []

    def __call__(self, name: str, parse: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return parse(*args, **kwargs)
        except _Bad as bad:
            self.errors.append(RowError(self.entity, self.row_id, name, bad.reason))
            return None

    def warn(self, name: str, reason: str | None) -> None:
        if reason:
            self.warnings.append(
                RowError(self.entity, self.row_id, name, reason + "; kept without it")
            )

    def result(self, build: Any) -> Validated:
        if self.errors:
            return Validated(errors=self.errors, warnings=[])
        return Validated(record=build(), warnings=self.warnings)


def _start(entity: str, raw: Any, label: str) -> tuple[_Checker, str | None]:
    if not isinstance(raw, Mapping):
        check = _Checker(entity, label)
        check.errors.append(RowError(entity, label, "-", "not an object"))
        return check, None
    try:
        row_id = _text(raw.get("id"), max_len=64, required=True)
    except _Bad as bad:
        check = _Checker(entity, label)
        check.errors.append(RowError(entity, label, "id", bad.reason))
        return check, None
    return _Checker(entity, str(row_id)), row_id


def validate_location(raw: Mapping[str, Any], *, region: str, label: str = "?") -> Validated:
    check, row_id = _start("location", raw, label)
    if row_id is None:
        return check.result(None)
    name = check("name", _text, raw.get("name"), max_len=200, default=row_id)
    address = check("address", _text, raw.get("address"), max_len=400, default="")
    timezone = check("timezone", _zone, raw.get("timezone"))
    phone, problem = normalise_phone(raw.get("phone"), region)
    check.warn("phone", problem)
    return check.result(lambda: LocationRecord(row_id, name, address, phone, timezone))


def _care_plan(raw: Mapping[str, Any], key: str) -> Any:
    plan = raw.get("care_plan")
    if isinstance(plan, Mapping) and key in plan:
        return plan[key]
    return raw.get(key)


def validate_patient(raw: Mapping[str, Any], *, region: str, label: str = "?") -> Validated:
    check, row_id = _start("patient", raw, label)
    if row_id is None:
        return check.result(None)
    if (
        "care_plan" in raw
        and not _blank(raw["care_plan"])
        and not isinstance(raw["care_plan"], Mapping)
    ):
        check.errors.append(RowError("patient", row_id, "care_plan", "must be an object"))
    first = check("first_name", _text, raw.get("first_name"), max_len=100, required=True)
    last = check("last_name", _text, raw.get("last_name"), max_len=100, default="")
    timezone = check("timezone", _zone, raw.get("timezone"))
    language = check("language", _text, raw.get("language"), max_len=16, default="en")
    sms = check("sms_consent", _bool, raw.get("sms_consent"))
    email_ok = check("email_consent", _bool, raw.get("email_consent"))
    series = check("initial_series_size", _positive_int, _care_plan(raw, "initial_series_size"), 6)
    interval = check(
        "maintenance_interval_days", _positive_int, _care_plan(raw, "maintenance_interval_days"), 28
    )
    phone, phone_problem = normalise_phone(raw.get("phone"), region)
    email, email_problem = normalise_email(raw.get("email"))
    check.warn("phone", phone_problem)
    check.warn("email", email_problem)
    return check.result(
        lambda: PatientRecord(
            id=row_id,
            first_name=first,
            last_name=last,
            phone=phone,
            phone_problem=phone_problem,
            email=email,
            email_problem=email_problem,
            timezone=timezone,
            language=language,
            sms_consent=sms,
            email_consent=email_ok,
            initial_series_size=series,
            maintenance_interval_days=interval,
        )
    )


def _choice(value: Any, choices: tuple[str, ...], default: str | None) -> str | None:
    if _blank(value):
        return default
    text = str(value).strip().lower()
    if text not in choices:
        raise _Bad("must be one of " + ", ".join(choices))
    return text


def validate_session(raw: Mapping[str, Any], *, label: str = "?") -> Validated:
    """Shape and values only; whether the patient and location exist is checked by the writer."""
    check, row_id = _start("session", raw, label)
    if row_id is None:
        return check.result(None)
    patient_id = check("patient_id", _text, raw.get("patient_id"), max_len=64, required=True)
    location_id = check("location_id", _text, raw.get("location_id"), max_len=64)
    starts_at = check("starts_at", parse_starts_at, raw.get("starts_at"))
    duration = check("duration_minutes", _positive_int, raw.get("duration_minutes"), 60)
    kind = check("kind", _text, raw.get("kind"), max_len=64, default="infusion")
    status = check("status", _choice, raw.get("status"), SESSION_STATUSES, "scheduled")
    phase = check("phase", _choice, raw.get("phase"), PHASES, None)
    series_number = check("series_number", _positive_int, raw.get("series_number"), None)
    return check.result(
        lambda: SessionRecord(
            id=row_id,
            patient_id=patient_id,
            starts_at=starts_at,
            location_id=location_id,
            duration_minutes=duration,
            kind=kind,
            status=status,
            phase=phase,
            series_number=series_number,
        )
    )
