"""Row validation for clinic data (docs/design.md section 5): pure, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from reminders.clinic.records import (
    INVALID_EMAIL,
    UNPARSEABLE_PHONE,
    LocationRecord,
    PatientRecord,
    SessionRecord,
    Validated,
    normalise_phone,
    parse_starts_at,
    validate_location,
    validate_patient,
    validate_session,
)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _fields(outcome: Validated) -> set[str]:
    return {e.field for e in outcome.errors}


# --- patients ---------------------------------------------------------------------------------


def test_patient_json_row_is_normalised() -> None:
    out = validate_patient(
        {
            "id": "p1",
            "first_name": " Ana ",
            "last_name": "Diaz",
            "phone": "410-555-0101",
            "email": " Ana@Example.COM ",
            "timezone": None,
            "language": "es",
            "sms_consent": True,
            "email_consent": True,
            "care_plan": {"initial_series_size": 4, "maintenance_interval_days": 35},
        },
        region="US",
    )
    assert out.ok and not out.warnings
    rec = out.record
    assert isinstance(rec, PatientRecord)
    assert (rec.first_name, rec.phone, rec.email, rec.language) == (
        "Ana",
        "+14105550101",
        "ana@example.com",
        "es",
    )
    assert (rec.initial_series_size, rec.maintenance_interval_days) == (4, 35)
    assert rec.sms_consent is True and rec.phone_problem is None


def test_patient_defaults() -> None:
    rec = validate_patient({"id": "p1", "first_name": "Ana"}, region="US").record
    assert rec == PatientRecord(id="p1", first_name="Ana")
    assert (rec.language, rec.sms_consent, rec.email_consent) == ("en", False, False)
    assert (rec.initial_series_size, rec.maintenance_interval_days) == (6, 28)


def test_patient_csv_strings() -> None:
    row = {
        "id": "p2", "first_name": "Ben", "last_name": "", "phone": "(410) 555-0102", "email": "",
        "timezone": "America/Chicago", "language": "", "sms_consent": "Yes", "email_consent": "0",
        "initial_series_size": "8", "maintenance_interval_days": "",
    }  # fmt: skip
    rec = validate_patient(row, region="US").record
    assert rec.phone == "+14105550102" and rec.email is None and rec.email_problem is None
    assert (rec.sms_consent, rec.email_consent, rec.language) == (True, False, "en")
    assert (rec.initial_series_size, rec.maintenance_interval_days) == (8, 28)
    assert rec.timezone == "America/Chicago"


def test_national_number_uses_the_default_region() -> None:
    assert validate_patient(
        {"id": "p", "first_name": "X", "phone": "020 7946 0018"}, region="GB"
    ).record.phone == ("+442079460018")


def test_bad_phone_keeps_the_patient_without_leaking_the_number() -> None:
    out = validate_patient(
        {
            "id": "p9",
            "first_name": "Bo",
            "phone": "410-555-01",
            "email": "bo@",
            "sms_consent": "true",
        },
        region="US",
    )
    assert out.ok
    assert out.record.phone is None and out.record.phone_problem == UNPARSEABLE_PHONE
    assert out.record.email is None and out.record.email_problem == INVALID_EMAIL
    assert {(w.entity, w.id, w.field) for w in out.warnings} == {
        ("patient", "p9", "phone"),
        ("patient", "p9", "email"),
    }
    for warning in out.warnings:
        assert "555" not in warning.line() and "bo@" not in warning.line()


def test_rejections_name_entity_id_field() -> None:
    out = validate_patient(
        {
            "id": "p3",
            "timezone": "Mars/Olympus",
            "sms_consent": "perhaps",
            "care_plan": {"initial_series_size": 0},
        },
        region="US",
    )
    assert not out.ok
    assert {e.entity for e in out.errors} == {"patient"} and {e.id for e in out.errors} == {"p3"}
    assert _fields(out) == {"first_name", "timezone", "sms_consent", "initial_series_size"}
    assert out.errors[0].line().startswith("rejected patient p3: field ")


def test_missing_or_long_id_rejected() -> None:
    out = validate_patient({"first_name": "Ana"}, region="US", label="(row 4)")
    assert [(e.id, e.field, e.reason) for e in out.errors] == [("(row 4)", "id", "required")]
    assert _fields(validate_patient({"id": "x" * 65, "first_name": "A"}, region="US")) == {"id"}
    assert validate_patient({"id": "x" * 64, "first_name": "A"}, region="US").ok


def test_non_object_row_rejected() -> None:
    # A JSON row that is not an object: the wrong type on purpose.
    out = validate_session(["s1"], label="(row 2)")  # type: ignore[arg-type]
    assert not out.ok and out.errors[0].id == "(row 2)"


# --- locations --------------------------------------------------------------------------------


def test_location() -> None:
    rec = validate_location(
        {"id": "main", "name": "Downtown", "phone": "+14105550100", "timezone": "America/New_York"},
        region="US",
    ).record
    assert rec == LocationRecord("main", "Downtown", "", "+14105550100", "America/New_York")
    bad = validate_location({"id": "moon", "name": "Moon", "timezone": "Moon/Base"}, region="US")
    assert not bad.ok and _fields(bad) == {"timezone"}


# --- sessions ---------------------------------------------------------------------------------


def test_session_defaults_and_utc() -> None:
    rec = validate_session(
        {"id": "s1", "patient_id": "p1", "starts_at": "2026-12-01T09:00:00-05:00"}
    ).record
    assert rec == SessionRecord(
        id="s1", patient_id="p1", starts_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    )
    assert (rec.duration_minutes, rec.kind, rec.status, rec.phase, rec.series_number) == (
        60, "infusion", "scheduled", None, None,
    )  # fmt: skip
    assert rec.starts_at.utcoffset() == timedelta(0)


def test_session_z_and_optional_fields() -> None:
    rec = validate_session(
        {
            "id": "s2",
            "patient_id": "p1",
            "location_id": "main",
            "starts_at": "2026-12-01T09:00:00Z",
            "duration_minutes": "45",
            "kind": "consultation",
            "status": "No_Show",
            "phase": "maintenance",
            "series_number": 7,
        }  # fmt: skip
    ).record
    assert rec.starts_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert (rec.duration_minutes, rec.kind, rec.status, rec.phase, rec.series_number) == (
        45, "consultation", "no_show", "maintenance", 7,
    )  # fmt: skip


def test_session_rejections() -> None:
    naive = validate_session({"id": "s9", "patient_id": "p1", "starts_at": "2026-12-01T09:00:00"})
    assert [(e.entity, e.id, e.field) for e in naive.errors] == [("session", "s9", "starts_at")]
    assert (
        naive.errors[0].line().startswith("rejected session s9: field starts_at: needs an offset")
    )
    assert _fields(validate_session({"id": "s", "starts_at": "2026-12-01T09:00:00Z"})) == {
        "patient_id"
    }
    assert _fields(validate_session({"id": "s", "patient_id": "p"})) == {"starts_at"}
    assert _fields(validate_session({"id": "s", "patient_id": "p", "starts_at": "tomorrow"})) == {
        "starts_at"
    }
    many = validate_session(
        {
            "id": "s",
            "patient_id": "p",
            "starts_at": "2026-12-01T09:00:00Z",
            "duration_minutes": 0,
            "status": "maybe",
            "phase": "final",
            "series_number": "1.5",
        }  # fmt: skip
    )
    assert _fields(many) == {"duration_minutes", "status", "phase", "series_number"}
    assert _fields(validate_session({"id": "s", "patient_id": "p", "starts_at": "2026-12-01T09:00:00Z",
                                     "duration_minutes": True})) == {"duration_minutes"}  # fmt: skip


# --- properties -------------------------------------------------------------------------------

zones = st.sampled_from(
    ["UTC", "America/New_York", "Europe/Madrid", "Asia/Kolkata", "Australia/Lord_Howe"]
)


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    zones,
)
def test_aware_times_round_trip_to_the_same_instant(instant: datetime, zone: str) -> None:
    local = instant.astimezone(ZoneInfo(zone))
    parsed = parse_starts_at(local.isoformat())
    assert parsed == instant and parsed.tzinfo is UTC


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)))
def test_naive_times_are_always_rejected(naive: datetime) -> None:
    out = validate_session({"id": "s", "patient_id": "p", "starts_at": naive.isoformat()})
    assert not out.ok and _fields(out) == {"starts_at"}


@given(st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_fixed_offsets_accepted(minutes: int) -> None:
    value = datetime(2026, 3, 8, 2, 30, tzinfo=timezone(timedelta(minutes=minutes)))
    assert parse_starts_at(value.isoformat()) == value


@given(st.text(max_size=30))
def test_any_phone_text_gives_e164_or_a_problem_without_the_number(text: str) -> None:
    out = validate_patient({"id": "p", "first_name": "A", "phone": text}, region="US")
    assert out.ok  # a phone never rejects the patient
    rec = out.record
    if rec.phone is not None:
        assert E164.match(rec.phone) and rec.phone_problem is None
    elif text.strip():
        assert rec.phone_problem == UNPARSEABLE_PHONE
        # The warning never quotes the number: it reads the same for any unparseable text
        # (a substring check failed on "pho", which "phone" contains).
        reference = validate_patient(
            {"id": "p", "first_name": "A", "phone": "not a number"}, region="US"
        )
        assert [w.reason for w in out.warnings] == [w.reason for w in reference.warnings]


@given(
    st.from_regex(r"\A[2-9]\d{2}[2-9]\d{2}\d{4}\Z"),
    st.sampled_from(["{}", "({}) {}-{}", "+1 {} {} {}", "1-{}-{}-{}"]),
)
def test_us_number_formats_agree(digits: str, pattern: str) -> None:
    text = (
        pattern.format(digits)
        if pattern == "{}"
        else pattern.format(digits[:3], digits[3:6], digits[6:])
    )
    phone, problem = normalise_phone(text, "US")
    plain, _ = normalise_phone(digits, "US")
    assert phone == plain
    assert (phone is None) == (problem is not None)
