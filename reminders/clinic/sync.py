"""Sync from the clinic's own database through three configured, read-only SQL queries.

``REMINDERS_CLINIC_SOURCE_URL`` names the clinic database; ``REMINDERS_CLINIC_LOCATIONS_QUERY``
(optional), ``..._PATIENTS_QUERY`` and ``..._SESSIONS_QUERY`` each return the contract's
columns (docs/design.md section 5), e.g. ``SELECT appt_id AS id, client_no AS patient_id, ...``.
Rows go through the same validation and writer as ``reminders import``: only rows that
differ are updated, and only their patients are marked for re-planning. A bad row is
reported and skipped; the rest of the pass goes on.

The source is opened read-only: SQLite with ``?mode=ro`` (URI), PostgreSQL with
``SET TRANSACTION READ ONLY``, so a mistaken query cannot change the clinic's data.
Rows that disappear from the source are left as they are (clinics cancel, not delete).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from reminders.clinic.importer import ClinicWriteReport, apply_rows
from reminders.db.engine import normalise_url
from reminders.db.models import AuditLog
from reminders.errors import ConfigError
from reminders.logs import event
from reminders.settings import PREFIX, Settings

log = logging.getLogger(__name__)

# Columns a query must return; the others in the contract are optional (defaults apply).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "locations": ("id", "name"),
    "patients": ("id", "first_name"),
    "sessions": ("id", "patient_id", "starts_at"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "locations": ("address", "phone", "timezone"),
    "patients": (
        "last_name",
        "phone",
        "email",
        "timezone",
        "language",
        "sms_consent",
        "email_consent",
        "initial_series_size",
        "maintenance_interval_days",
    ),  # fmt: skip
    "sessions": ("location_id", "duration_minutes", "kind", "status", "phase", "series_number"),
}
QUERY_SETTINGS = {
    "locations": "clinic_locations_query",
    "patients": "clinic_patients_query",
    "sessions": "clinic_sessions_query",
}


class SourceError(Exception):
    """The clinic database could not be read (unreachable, a query failed); retry next pass."""


class SyncReport(ClinicWriteReport):
    pass


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def source_engine(url: str) -> Engine:
    """One read-only engine per source URL for the life of the process."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _make_read_only_engine(url)
            _engines[url] = engine
        return engine


def dispose_source_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _make_read_only_engine(url: str) -> Engine:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ConfigError(f"{PREFIX}CLINIC_SOURCE_URL: an SQLite source must be a file")
        if not database.startswith("file:"):
            database = "file:" + quote(database)
        query = {**parsed.query, "mode": "ro", "uri": "true"}
        return create_engine(parsed.set(database=database, query=query))
    return create_engine(parsed, pool_size=2, max_overflow=0, pool_pre_ping=True)


def _begin_read_only(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def _queries(settings: Settings) -> dict[str, str]:
    queries: dict[str, str] = {}
    for entity, name in QUERY_SETTINGS.items():
        value = getattr(settings, name)
        if value and value.strip():
            queries[entity] = value.strip().rstrip(";").strip()
        elif entity != "locations":
            raise ConfigError(
                f"{PREFIX}{name.upper()} is required when {PREFIX}CLINIC_SOURCE_URL is set"
            )
    return queries


def fetch_source_rows(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Run the configured queries in one read-only transaction; column names lower-cased."""
    assert settings.clinic_source_url
    queries = _queries(settings)
    engine = source_engine(settings.clinic_source_url)
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        with engine.connect() as conn, conn.begin():
            _begin_read_only(conn)
            for entity, sql in queries.items():
                try:
                    result = conn.execute(text(sql))
                except SQLAlchemyError as exc:
                    raise SourceError(f"clinic {entity} query failed: {_short(exc)}") from exc
                names = result.keys()  # column names (iterating ``result`` gives rows)
                keys = [k.lower() for k in names]
                rows[entity] = [dict(zip(keys, row, strict=True)) for row in result]
    except SourceError:
        raise
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read the clinic database: {_short(exc)}") from exc
    return rows


def sync_clinic_source(
    db: Session, settings: Settings, *, now: datetime | None = None
) -> SyncReport | None:
    """One sync pass into ``db`` (the caller commits); ``None`` when no source is configured.

    Raises :class:`SourceError` when the source cannot be read at all (nothing is written)."""
    if not settings.clinic_source_url:
        return None
    rows = fetch_source_rows(settings)
    report = SyncReport(source="clinic database")
    apply_rows(db, settings, rows, report, now=now)
    if report.changed or report.rejections:
        event(log, "clinic sync", rejected=len(report.rejections), dirty_patients=report.dirty_patients,
              **{f"{n}_{k}": v for n, c in report.counts.items() for k, v in vars(c).items()
                 if v and k != "unchanged"})  # fmt: skip
    if report.changed:
        db.add(AuditLog(actor="system", action="clinic.sync", entity="clinic", entity_id=None,
                        detail=report.as_dict()))  # fmt: skip
    return report


def describe_source(settings: Settings) -> str:
    """For ``reminders check``: one line saying the source is usable, or :class:`SourceError`
    (or :class:`ConfigError`) naming every query that fails or lacks a required column."""
    if not settings.clinic_source_url:
        return "not configured (data comes from `reminders import`)"
    queries = _queries(settings)
    engine = source_engine(settings.clinic_source_url)
    good: list[str] = []
    bad: list[str] = []
    try:
        with engine.connect() as conn, conn.begin():
            _begin_read_only(conn)
            for entity, sql in queries.items():
                try:
                    with conn.begin_nested():
                        wrapped = text(f"SELECT * FROM ({sql}) AS clinic_query LIMIT 0")
                        names = conn.execute(wrapped).keys()
                        columns = {k.lower() for k in names}
                except SQLAlchemyError as exc:
                    bad.append(f"{entity} query failed: {_short(exc)}")
                    continue
                missing = [c for c in REQUIRED_COLUMNS[entity] if c not in columns]
                absent = [c for c in OPTIONAL_COLUMNS[entity] if c not in columns]
                if missing:
                    bad.append(f"{entity} query lacks required column(s) {', '.join(missing)}")
                else:
                    note = f" (defaults for {', '.join(absent)})" if absent else ""
                    good.append(f"{entity} ok{note}")
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot connect to the clinic database: {_short(exc)}") from exc
    if bad:
        raise SourceError("; ".join(bad + good))
    if "locations" not in queries:
        good.append("no locations query")
    return f"{engine.url.get_backend_name()} database, read-only: " + "; ".join(good)


def _short(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]
