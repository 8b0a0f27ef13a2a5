"""``reminders import``: upsert locations, patients and sessions from JSON or CSV (docs/design.md section 5).

The writer (:func:`apply_rows`) is shared with the clinic-database sync. It validates every row,
stores the valid ones even when others are rejected, and writes in batches: existing rows are
read with one ``IN`` query per chunk of ids, compared in Python, and only rows that differ are
updated. Unchanged rows are not touched, so importing the same data twice changes nothing
(no ``updated_at`` churn) and marks no patient for re-planning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from reminders.clinic.changes import mark_patients_dirty
from reminders.clinic.files import ENTITIES, read_path
from reminders.clinic.records import (
    LocationRecord,
    PatientRecord,
    RowError,
    SessionRecord,
    Validated,
    validate_location,
    validate_patient,
    validate_session,
)
from reminders.db.engine import among
from reminders.db.models import AuditLog, Location, Patient, TreatmentSession
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.settings import Settings

log = logging.getLogger(__name__)

SINGULAR = {"locations": "location", "patients": "patient", "sessions": "session"}
LOCATIONS = cast(Table, Location.__table__)
PATIENTS = cast(Table, Patient.__table__)
SESSIONS = cast(Table, TreatmentSession.__table__)
CHUNK = 900  # ids per IN (...) query on SQLite: below its historic 999-variable limit
PG_CHUNK = 10_000  # ids per = ANY(array) query on PostgreSQL

LOCATION_COLUMNS = ("name", "address", "phone", "timezone")
PATIENT_COLUMNS = (
    "first_name", "last_name", "phone", "phone_problem", "email", "email_problem", "timezone",
    "language", "sms_consent", "email_consent", "initial_series_size", "maintenance_interval_days",
    "clinic_sms_consent", "clinic_email_consent",
)  # fmt: skip
CONSENTS = ("sms_consent", "email_consent")
SESSION_COLUMNS = (
    "patient_id", "location_id", "starts_at", "duration_minutes", "kind", "status", "phase",
    "series_number", "confirmed_at",
)  # fmt: skip


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def text(self) -> str:
        return (
            f"{self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )


@dataclass
class ClinicWriteReport:
    """What one import or sync pass did. ``warnings`` are accepted rows that lost a field
    (an unusable phone number or email); ``rejections`` are rows not stored."""

    source: str
    counts: dict[str, Counts] = field(default_factory=lambda: {e: Counts() for e in ENTITIES})
    rejections: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    dirty_patients: int = 0

    @property
    def changed(self) -> bool:
        return any(c.inserted or c.updated for c in self.counts.values())

    def summary(self) -> str:
        parts = "; ".join(f"{name} {self.counts[name].text()}" for name in ENTITIES)
        return f"{self.source}: {parts}; {self.dirty_patients} patients to re-plan"

    def __str__(self) -> str:
        return self.summary()

    def lines(self) -> list[str]:
        """The summary, then one line per rejected row and per dropped field (no values)."""
        return (
            [self.summary()]
            + [r.line("rejected") for r in self.rejections]
            + [w.line("warning") for w in self.warnings]
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "counts": {name: asdict(c) for name, c in self.counts.items()},
            "rejected": len(self.rejections),
            "warnings": len(self.warnings),
            "dirty_patients": self.dirty_patients,
        }


class ImportReport(ClinicWriteReport):
    pass


# --- writing ------------------------------------------------------------------------------------


def import_path(db: Session, settings: Settings, path: Path | str) -> ImportReport:
    """Read and upsert ``path``; the caller commits. Raises :class:`ImportInputError`."""
    path = Path(path)
    data = read_path(path)
    return import_data(db, settings, data, source=path.name or str(path))


def import_data(
    db: Session, settings: Settings, data: Mapping[str, Sequence[Any]], *, source: str
) -> ImportReport:
    """Upsert already-parsed rows (the JSON import format) and record one audit entry."""
    report = ImportReport(source=source)
    apply_rows(db, settings, data, report)
    db.add(
        AuditLog(
            actor="import",
            action="clinic.import",
            entity="clinic",
            entity_id=source[:255],
            detail=report.as_dict(),
        )
    )
    event(log, "clinic import", source=source, **{
        f"{name}_{k}": v for name, c in report.counts.items() for k, v in asdict(c).items() if v
    })  # fmt: skip
    return report


def apply_rows(
    db: Session,
    settings: Settings,
    data: Mapping[str, Sequence[Any]],
    report: ClinicWriteReport,
    *,
    now: datetime | None = None,
) -> None:
    """Validate and upsert rows into the clinic tables, marking changed patients dirty."""
    now = now or utcnow()
    region = settings.default_region
    locations: dict[str, LocationRecord] = _validated(
        data.get("locations") or [], "locations", report,
        lambda raw, label: validate_location(raw, region=region, label=label),
    )  # fmt: skip
    patients: dict[str, PatientRecord] = _validated(
        data.get("patients") or [], "patients", report,
        lambda raw, label: validate_patient(raw, region=region, label=label),
    )  # fmt: skip
    sessions: dict[str, SessionRecord] = _validated(
        data.get("sessions") or [], "sessions", report,
        lambda raw, label: validate_session(raw, label=label),
    )  # fmt: skip
    sessions = _check_references(db, sessions, patients, locations, report)

    dirty: set[str] = set()
    changed_locations = _upsert(
        db, LOCATIONS, LOCATION_COLUMNS, locations, report.counts["locations"], now
    )
    existing_patients = _existing(db, PATIENTS, PATIENT_COLUMNS, list(patients))
    patient_rows = {
        pid: _merge_patient(rec, existing_patients.get(pid)) for pid, rec in patients.items()
    }
    changed_patients = _write(
        db, PATIENTS, PATIENT_COLUMNS, patient_rows, existing_patients,
        report.counts["patients"], now,
    )  # fmt: skip
    dirty.update(changed_patients)
    existing_sessions = _existing(db, SESSIONS, SESSION_COLUMNS, list(sessions))
    session_rows = {
        sid: _merge_session(rec, existing_sessions.get(sid), now) for sid, rec in sessions.items()
    }
    changed_sessions = _write(
        db, SESSIONS, SESSION_COLUMNS, session_rows, existing_sessions,
        report.counts["sessions"], now,
    )  # fmt: skip
    for sid in changed_sessions:
        dirty.add(session_rows[sid]["patient_id"])
        old = existing_sessions.get(sid)
        if old is not None:
            dirty.add(old["patient_id"])  # a session moved to another patient
    if changed_locations:
        dirty.update(_patients_at(db, changed_locations))
    if dirty:
        mark_patients_dirty(db, dirty)
    report.dirty_patients = len(dirty)


def _validated(
    rows: Iterable[Any], entity: str, report: ClinicWriteReport, validate: Any
) -> dict[str, Any]:
    accepted: dict[str, Any] = {}
    counts = report.counts[entity]
    for number, raw in enumerate(rows, start=1):
        outcome: Validated = validate(raw, f"(row {number})")
        if not outcome.ok:
            counts.rejected += 1
            report.rejections.extend(outcome.errors)
            continue
        record = outcome.record
        if record.id in accepted:
            counts.rejected += 1
            report.rejections.append(
                RowError(
                    SINGULAR[entity],
                    record.id,
                    "id",
                    f"duplicate id (row {number}); first one kept",
                )
            )
            continue
        report.warnings.extend(outcome.warnings)
        accepted[record.id] = record
    return accepted


def _chunks(db: Session, ids: Sequence[str]) -> Iterable[list[str]]:
    size = PG_CHUNK if db.get_bind().dialect.name == "postgresql" else CHUNK
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _existing_ids(db: Session, table: Table, ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(db, sorted(set(ids))):
        found.update(db.execute(select(table.c.id).where(among(db, table.c.id, chunk))).scalars())
    return found


def _check_references(
    db: Session,
    sessions: dict[str, SessionRecord],
    patients: Mapping[str, PatientRecord],
    locations: Mapping[str, LocationRecord],
    report: ClinicWriteReport,
) -> dict[str, SessionRecord]:
    """Reject sessions whose patient or location is neither in this input nor in the database."""
    known_patients = set(patients) | _existing_ids(
        db, PATIENTS, {s.patient_id for s in sessions.values()} - set(patients)
    )
    known_locations = set(locations) | _existing_ids(
        db, LOCATIONS,
        {s.location_id for s in sessions.values() if s.location_id} - set(locations),
    )  # fmt: skip
    kept: dict[str, SessionRecord] = {}
    for sid, rec in sessions.items():
        errors = []
        if rec.patient_id not in known_patients:
            errors.append(
                RowError("session", sid, "patient_id", f"unknown patient {rec.patient_id}")
            )
        if rec.location_id and rec.location_id not in known_locations:
            errors.append(
                RowError("session", sid, "location_id", f"unknown location {rec.location_id}")
            )
        if errors:
            report.counts["sessions"].rejected += 1
            report.rejections.extend(errors)
        else:
            kept[sid] = rec
    return kept


def _existing(
    db: Session, table: Table, columns: Sequence[str], ids: list[str]
) -> dict[str, dict[str, Any]]:
    cols = [table.c.id, *(table.c[name] for name in columns)]
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(db, ids):
        for row in db.execute(select(*cols).where(among(db, table.c.id, chunk))).mappings():
            found[row["id"]] = dict(row)
    return found


def _upsert(
    db: Session,
    table: Table,
    columns: Sequence[str],
    records: Mapping[str, Any],
    counts: Counts,
    now: datetime,
) -> list[str]:
    existing = _existing(db, table, columns, list(records))
    rows = {rid: {name: getattr(rec, name) for name in columns} for rid, rec in records.items()}
    return _write(db, table, columns, rows, existing, counts, now)


def _write(
    db: Session,
    table: Table,
    columns: Sequence[str],
    rows: Mapping[str, dict[str, Any]],
    existing: Mapping[str, dict[str, Any]],
    counts: Counts,
    now: datetime,
) -> list[str]:
    """Insert new ids, update only differing rows; returns the ids inserted or updated."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for rid, values in rows.items():
        old = existing.get(rid)
        if old is None:
            inserts.append({"id": rid, **values, "updated_at": now})
        elif any(old[name] != values[name] for name in columns):
            updates.append(
                {
                    "b_id": rid,
                    **{f"v_{name}": values[name] for name in columns},
                    "v_updated_at": now,
                }
            )
        else:
            counts.unchanged += 1
    if inserts:
        db.execute(insert(table), inserts)
    if updates:
        assigned = {
            name: bindparam(f"v_{name}", type_=table.c[name].type)
            for name in (*columns, "updated_at")
        }
        stmt = update(table).where(table.c.id == bindparam("b_id")).values(assigned)
        db.execute(stmt, updates)
    counts.inserted += len(inserts)
    counts.updated += len(updates)
    return [row["id"] for row in inserts] + [row["b_id"] for row in updates]


def _merge_patient(rec: PatientRecord, old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The clinic's row, keeping a consent staff recorded in the console (the patient said so
    on the phone) for as long as the clinic's own value has not changed since the last import:
    the most recent statement wins."""
    values = {
        name: getattr(rec, name) for name in PATIENT_COLUMNS if not name.startswith("clinic_")
    }
    for name in CONSENTS:
        values[f"clinic_{name}"] = values[name]
        said_before = old[f"clinic_{name}"] if old is not None else None
        if old is not None and said_before is not None and said_before == values[name]:
            values[name] = old[name]
    return values


def _merge_session(
    rec: SessionRecord, old: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The clinic's row, reconciled with what the worker knows about the session.

    A patient's confirmation (reply ``C``) is not undone by a clinic system that only knows
    "scheduled" for the same start time; it lapses when the session is moved. When the clinic
    itself marks a session confirmed, ``confirmed_at`` records when we first saw that.
    """
    values = {name: getattr(rec, name) for name in SESSION_COLUMNS if name != "confirmed_at"}
    if old is None:
        values["confirmed_at"] = now if rec.status == "confirmed" else None
        return values
    same_time = old["starts_at"] == rec.starts_at
    if rec.status == "scheduled" and old["status"] == "confirmed" and same_time:
        values["status"] = "confirmed"
    if values["status"] == "confirmed":
        values["confirmed_at"] = old["confirmed_at"] or now
    elif not same_time:
        values["confirmed_at"] = None
    else:
        values["confirmed_at"] = old["confirmed_at"]
    return values


def _patients_at(db: Session, location_ids: Iterable[str]) -> set[str]:
    table = SESSIONS
    found: set[str] = set()
    for chunk in _chunks(db, sorted(set(location_ids))):
        query = select(table.c.patient_id).where(among(db, table.c.location_id, chunk)).distinct()
        found.update(db.execute(query).scalars())
    return found
