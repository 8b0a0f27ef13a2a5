"""Sync from a separate, real clinic database (SQLite file and PostgreSQL) with its own schema.

The clinic's tables and column names differ from ours; the configured queries map them to
the contract's columns, as an IT person would.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.clinic.sync import (
    SourceError,
    SyncReport,
    describe_source,
    dispose_source_engines,
    source_engine,
    sync_clinic_source,
)
from reminders.db.engine import session_scope
from reminders.db.models import Patient, TreatmentSession
from reminders.errors import ConfigError
from reminders.settings import Settings
from tests.conftest import make_test_settings
from tests.pgcluster import PgCluster

_counter = itertools.count()

LOCATIONS_SQL = (
    "SELECT site_code AS id, site_name AS name, street AS address, tz AS timezone FROM clinic_sites"
)
PATIENTS_SQL = """
    SELECT client_no AS id, given AS first_name, family AS last_name, mobile AS phone,
           mail AS email, lang AS language, texts_ok AS sms_consent, mail_ok AS email_consent,
           home_tz AS timezone, series AS initial_series_size, interval_days AS maintenance_interval_days
    FROM clients
"""
SESSIONS_SQL = """
    SELECT appt_id AS id, client_no AS patient_id, site_code AS location_id, begins AS starts_at,
           mins AS duration_minutes, appt_type AS kind, state AS status
    FROM appointments;
"""


def _schema(timestamp: str, boolean: str) -> list[str]:
    return [
        "CREATE TABLE clinic_sites (site_code VARCHAR(20) PRIMARY KEY, site_name TEXT, street TEXT, tz TEXT)",
        f"""CREATE TABLE clients (client_no VARCHAR(20) PRIMARY KEY, given TEXT, family TEXT, mobile TEXT,
            mail TEXT, lang TEXT, texts_ok {boolean}, mail_ok {boolean}, home_tz TEXT,
            series INTEGER, interval_days INTEGER)""",
        f"""CREATE TABLE appointments (appt_id VARCHAR(20) PRIMARY KEY, client_no VARCHAR(20),
            site_code VARCHAR(20), begins {timestamp}, mins INTEGER, appt_type TEXT, state TEXT)""",
    ]


SEED = [
    "INSERT INTO clinic_sites VALUES ('DT', 'Downtown', '1 Main St', 'America/New_York')",
    "INSERT INTO clients VALUES ('C1', 'Ana', 'Diaz', '410-555-0101', 'Ana@Example.com', 'es', {t}, {t},"
    " NULL, 6, 28)",
    "INSERT INTO clients VALUES ('C2', 'Ben', 'Carter', 'n/a', NULL, 'en', {t}, {f}, NULL, 4, 35)",
    "INSERT INTO clients VALUES ('C3', 'Cy', 'Bad', NULL, NULL, 'en', {f}, {f}, 'Mars/Olympus', 6, 28)",
    "INSERT INTO appointments VALUES ('A1', 'C1', 'DT', '2026-12-01T09:00:00-05:00', 60, 'infusion', 'scheduled')",
    "INSERT INTO appointments VALUES ('A2', 'C2', 'DT', '2026-12-02T14:00:00+00:00', 45, 'consultation', 'confirmed')",
    "INSERT INTO appointments VALUES ('A3', 'C1', 'DT', '2026-12-03T09:00:00-05:00', 60, 'infusion', 'maybe')",
    "INSERT INTO appointments VALUES ('A4', 'C9', 'DT', '2026-12-04T09:00:00-05:00', 60, 'infusion', 'scheduled')",
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def clinic_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The clinic's own database (URL, and a writable engine for the test to change it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'clinic.db'}"
        schema, t, f = _schema("TEXT", "INTEGER"), "1", "0"
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database(f"clinic{os.getpid()}_{next(_counter)}")
        schema, t, f = _schema("TIMESTAMPTZ", "BOOLEAN"), "true", "false"
    writer = create_engine(url)
    with writer.begin() as conn:
        for stmt in schema + [s.format(t=t, f=f) for s in SEED]:
            conn.execute(text(stmt))
    yield url, writer
    writer.dispose()
    dispose_source_engines()


def _settings(db_url: str, tmp_path: Path, source_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "clinic_source_url": source_url,
        "clinic_locations_query": LOCATIONS_SQL,
        "clinic_patients_query": PATIENTS_SQL,
        "clinic_sessions_query": SESSIONS_SQL,
    }
    values.update(overrides)
    return make_test_settings(db_url, tmp_path, **values)


def _sync(factory: sessionmaker[Session], settings: Settings) -> SyncReport | None:
    with session_scope(factory) as db:
        return sync_clinic_source(db, settings)


def _dirty(factory: sessionmaker[Session]) -> set[str]:
    with session_scope(factory) as db:
        return set(db.scalars(select(Patient.id).where(Patient.needs_plan.is_(True))))


def _settle(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as db:
        db.execute(update(Patient).values(needs_plan=False))


def test_no_source_configured(session_factory: sessionmaker[Session], settings: Settings) -> None:
    assert _sync(session_factory, settings) is None
    assert "not configured" in describe_source(settings)


def test_sync_maps_validates_and_picks_up_changes(
    session_factory: sessionmaker[Session],
    db_url: str,
    tmp_path: Path,
    clinic_source: tuple[str, Engine],
) -> None:
    source_url, writer = clinic_source
    settings = _settings(db_url, tmp_path, source_url)

    report = _sync(session_factory, settings)
    assert report is not None
    # Bad rows are reported, the others stored.
    assert {(r.entity, r.id, r.field) for r in report.rejections} == {
        ("patient", "C3", "timezone"),
        ("session", "A3", "status"),
        ("session", "A4", "patient_id"),
    }
    assert {(w.entity, w.id, w.field) for w in report.warnings} == {("patient", "C2", "phone")}
    with session_scope(session_factory) as db:
        assert set(db.scalars(select(Patient.id))) == {"C1", "C2"}
        ana = db.get(Patient, "C1")
        assert ana is not None
        assert (ana.phone, ana.email, ana.language, ana.sms_consent) == (
            "+14105550101",
            "ana@example.com",
            "es",
            True,
        )
        ben = db.get(Patient, "C2")
        assert (
            ben is not None
            and ben.phone is None
            and ben.phone_problem == "unparseable phone number"
        )
        assert (ben.sms_consent, ben.email_consent, ben.initial_series_size, ben.maintenance_interval_days) == (
            True, False, 4, 35,
        )  # fmt: skip
        a1 = db.get(TreatmentSession, "A1")
        assert (
            a1 is not None
            and a1.starts_at == datetime(2026, 12, 1, 14, tzinfo=UTC)
            and a1.location_id == "DT"
        )
        a2 = db.get(TreatmentSession, "A2")
        assert a2 is not None and (a2.kind, a2.status, a2.duration_minutes) == (
            "consultation",
            "confirmed",
            45,
        )
        assert a2.confirmed_at is not None
        assert set(db.scalars(select(TreatmentSession.id))) == {"A1", "A2"}

    # Nothing changed in the source: nothing written, nobody marked.
    _settle(session_factory)
    again = _sync(session_factory, settings)
    assert again is not None and not again.changed and again.dirty_patients == 0
    assert again.counts["sessions"].unchanged == 2
    assert str(again).startswith(
        "clinic database: locations 0 inserted"
    )  # the worker logs str(report)
    assert _dirty(session_factory) == set()

    # The clinic moves A1, fixes A3's status; the next pass picks up exactly that.
    with writer.begin() as conn:
        conn.execute(
            text(
                "UPDATE appointments SET begins = '2026-12-01T11:00:00-05:00' WHERE appt_id = 'A1'"
            )
        )
        conn.execute(text("UPDATE appointments SET state = 'scheduled' WHERE appt_id = 'A3'"))
    third = _sync(session_factory, settings)
    assert third is not None
    assert (third.counts["sessions"].updated, third.counts["sessions"].inserted) == (1, 1)
    assert _dirty(session_factory) == {"C1"}
    with session_scope(session_factory) as db:
        a1 = db.get(TreatmentSession, "A1")
        assert a1 is not None
        assert a1.starts_at == datetime(2026, 12, 1, 16, tzinfo=UTC)

    # A changed patient row marks that patient only.
    _settle(session_factory)
    with writer.begin() as conn:
        conn.execute(text("UPDATE clients SET lang = 'es' WHERE client_no = 'C2'"))
    _sync(session_factory, settings)
    assert _dirty(session_factory) == {"C2"}


def test_source_is_opened_read_only(
    session_factory: sessionmaker[Session],
    db_url: str,
    tmp_path: Path,
    clinic_source: tuple[str, Engine],
) -> None:
    source_url, writer = clinic_source
    sneaky = "DELETE FROM appointments RETURNING appt_id AS id, client_no AS patient_id, begins AS starts_at"
    if writer.dialect.name == "postgresql":
        sneaky = f"WITH gone AS ({sneaky}) SELECT * FROM gone"
    settings = _settings(db_url, tmp_path, source_url, clinic_sessions_query=sneaky)
    with pytest.raises(SourceError):
        _sync(session_factory, settings)
    with writer.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM appointments")).scalar() == 4
    assert source_engine(source_url) is source_engine(source_url)  # one engine per URL


def test_describe_source(db_url: str, tmp_path: Path, clinic_source: tuple[str, Engine]) -> None:
    source_url, _ = clinic_source
    line = describe_source(_settings(db_url, tmp_path, source_url))
    assert "read-only" in line and "sessions ok" in line and "patients ok" in line

    missing = _settings(
        db_url, tmp_path, source_url,
        clinic_sessions_query="SELECT appt_id AS id, client_no AS patient_id FROM appointments",
    )  # fmt: skip
    with pytest.raises(SourceError, match="sessions query lacks required column\\(s\\) starts_at"):
        describe_source(missing)

    broken = _settings(
        db_url, tmp_path, source_url, clinic_patients_query="SELECT nope FROM no_such_table"
    )
    with pytest.raises(SourceError, match="patients query failed") as failed:
        describe_source(broken)
    assert "sessions ok" in str(failed.value)  # a failed query doesn't hide the others

    with pytest.raises(ConfigError, match="REMINDERS_CLINIC_SESSIONS_QUERY"):
        describe_source(_settings(db_url, tmp_path, source_url, clinic_sessions_query=None))
