"""``reminders import`` on real SQLite and PostgreSQL (docs/design.md sections 3 and 5)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.cli import main
from reminders.clinic.demo import demo_clinic
from reminders.clinic.files import ImportInputError
from reminders.clinic.importer import ImportReport, import_data, import_path
from reminders.db.engine import session_scope
from reminders.db.models import AuditLog, Location, Patient, TreatmentSession
from reminders.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "data" / "clinic"
RowT = TypeVar("RowT")


def _import(factory: sessionmaker[Session], settings: Settings, path: Path) -> ImportReport:
    with session_scope(factory) as db:
        return import_path(db, settings, path)


def _get(db: Session, model: type[RowT], key: str) -> RowT:
    """The row with primary key ``key``, which the test expects to exist."""
    row = db.get(model, key)
    assert row is not None, f"{model.__name__} {key!r} missing"
    return row


def _settle(factory: sessionmaker[Session]) -> None:
    """Act as the planner: everyone planned, so later marks are visible."""
    with session_scope(factory) as db:
        db.execute(update(Patient).values(needs_plan=False))


def _dirty(factory: sessionmaker[Session]) -> set[str]:
    with session_scope(factory) as db:
        return set(db.scalars(select(Patient.id).where(Patient.needs_plan.is_(True))))


def _snapshot(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with session_scope(factory) as db:
        return {
            "locations": [
                tuple(r) for r in db.execute(select(Location.__table__).order_by(Location.id))
            ],
            "patients": [
                tuple(r) for r in db.execute(select(Patient.__table__).order_by(Patient.id))
            ],
            "sessions": [
                tuple(r)
                for r in db.execute(
                    select(TreatmentSession.__table__).order_by(TreatmentSession.id)
                )
            ],
        }


def _rejected(report: ImportReport) -> set[tuple[str, str, str]]:
    return {(r.entity, r.id, r.field) for r in report.rejections}


def test_good_json_is_stored(session_factory: sessionmaker[Session], settings: Settings) -> None:
    report = _import(session_factory, settings, DATA / "good.json")
    assert not report.rejections and not report.warnings
    assert {k: (c.inserted, c.rejected) for k, c in report.counts.items()} == {
        "locations": (2, 0), "patients": (3, 0), "sessions": (4, 0),
    }  # fmt: skip
    with session_scope(session_factory) as db:
        ana = db.get(Patient, "p1")
        assert ana is not None
        assert (ana.phone, ana.email, ana.language, ana.sms_consent) == (
            "+14105550101",
            "ana@example.com",
            "es",
            True,
        )
        assert ana.needs_plan
        chloe = db.get(Patient, "p3")
        assert chloe is not None and (
            chloe.initial_series_size,
            chloe.maintenance_interval_days,
        ) == (4, 35)
        west = db.get(Location, "west")
        assert west is not None and west.phone == "+13105550199"
        s1 = db.get(TreatmentSession, "s1")
        assert s1 is not None and s1.starts_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
        assert (s1.duration_minutes, s1.kind, s1.status, s1.confirmed_at) == (
            60,
            "infusion",
            "scheduled",
            None,
        )
        s2 = db.get(TreatmentSession, "s2")
        assert s2 is not None and s2.status == "confirmed" and s2.confirmed_at is not None
        assert (s2.phase, s2.series_number) == ("initial", 2)
        s3 = db.get(TreatmentSession, "s3")
        assert s3 is not None and s3.starts_at == datetime(2026, 12, 2, 17, 30, tzinfo=UTC)
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "clinic.import")).all()
        assert len(audit) == 1 and audit[0].actor == "import"
        assert (
            audit[0].detail is not None and audit[0].detail["counts"]["sessions"]["inserted"] == 4
        )


def test_reimport_changes_nothing_and_marks_nobody(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _import(session_factory, settings, DATA / "good.json")
    _settle(session_factory)
    before = _snapshot(session_factory)
    report = _import(session_factory, settings, DATA / "good.json")
    assert {k: (c.inserted, c.updated, c.unchanged) for k, c in report.counts.items()} == {
        "locations": (0, 0, 2), "patients": (0, 0, 3), "sessions": (0, 0, 4),
    }  # fmt: skip
    assert report.dirty_patients == 0
    assert _snapshot(session_factory) == before  # no updated_at churn, change_seq untouched
    assert _dirty(session_factory) == set()


def test_changed_session_marks_exactly_its_patient(
    session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    _import(session_factory, settings, DATA / "good.json")
    _settle(session_factory)
    data = json.loads((DATA / "good.json").read_text())
    data["sessions"][2]["starts_at"] = "2026-12-02T18:30:00Z"  # s3 of p2 moves
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    with session_scope(session_factory) as db:
        seq_before = _get(db, Patient, "p2").change_seq
        s1_before = _get(db, TreatmentSession, "s1").updated_at
    report = _import(session_factory, settings, changed)
    assert report.counts["sessions"].updated == 1 and report.counts["sessions"].unchanged == 3
    assert _dirty(session_factory) == {"p2"}
    with session_scope(session_factory) as db:
        assert _get(db, Patient, "p2").change_seq == seq_before + 1
        assert _get(db, TreatmentSession, "s3").starts_at == datetime(
            2026, 12, 2, 18, 30, tzinfo=UTC
        )
        assert _get(db, TreatmentSession, "s1").updated_at == s1_before


def test_changed_location_marks_its_patients(
    session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    _import(session_factory, settings, DATA / "good.json")
    _settle(session_factory)
    data = json.loads((DATA / "good.json").read_text())
    data["locations"][0]["timezone"] = "America/Chicago"  # "main": only p1's sessions are there
    data["patients"][2]["email_consent"] = False  # p3 itself changes
    path = tmp_path / "loc.json"
    path.write_text(json.dumps(data))
    _import(session_factory, settings, path)
    assert _dirty(session_factory) == {"p1", "p3"}


def test_bad_rows_reported_and_good_rows_kept(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    report = _import(session_factory, settings, DATA / "bad_rows.json")
    assert _rejected(report) == {
        ("location", "moon", "timezone"),
        ("patient", "p-badzone", "timezone"),
        ("patient", "p-noname", "first_name"),
        ("session", "s-naive", "starts_at"),
        ("session", "s-ghost", "patient_id"),
        ("session", "s-noloc", "location_id"),
        ("session", "s-nostart", "starts_at"),
        ("session", "s-status", "status"),
    }
    assert {(w.entity, w.id, w.field) for w in report.warnings} == {
        ("patient", "p-badphone", "phone"),
        ("patient", "p-badphone", "email"),
    }
    with session_scope(session_factory) as db:
        assert set(db.scalars(select(Patient.id))) == {"p1", "p-badphone"}
        assert set(db.scalars(select(TreatmentSession.id))) == {"s1", "s-badphone"}
        assert set(db.scalars(select(Location.id))) == {"main"}
        bo = db.get(Patient, "p-badphone")
        assert (
            bo is not None and bo.phone is None and bo.phone_problem == "unparseable phone number"
        )
        assert bo.email is None and bo.email_problem is not None and bo.sms_consent


def test_session_may_reference_a_patient_already_in_the_database(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _import(session_factory, settings, DATA / "good.json")
    with session_scope(session_factory) as db:
        report = import_data(
            db, settings,
            {"sessions": [{"id": "s9", "patient_id": "p2", "location_id": "west", "starts_at": "2027-01-05T10:00:00Z"},
                          {"id": "s10", "patient_id": "p-new", "starts_at": "2027-01-05T10:00:00Z"}]},
            source="test",
        )  # fmt: skip
    assert report.counts["sessions"].inserted == 1
    assert _rejected(report) == {("session", "s10", "patient_id")}


def test_csv_folder(session_factory: sessionmaker[Session], settings: Settings) -> None:
    report = _import(session_factory, settings, DATA / "csv_good")
    assert not report.rejections
    assert {k: c.inserted for k, c in report.counts.items()} == {
        "locations": 1,
        "patients": 2,
        "sessions": 2,
    }
    with session_scope(session_factory) as db:
        ana = db.get(Patient, "p1")
        ben = db.get(Patient, "p2")
        assert ana is not None and ben is not None
        assert (ana.email, ana.sms_consent, ana.email_consent, ana.timezone) == (
            "ana@example.com",
            True,
            True,
            None,
        )
        assert (ben.phone, ben.sms_consent, ben.timezone, ben.initial_series_size) == (
            "+14105550102", False, "America/Chicago", 6,
        )  # fmt: skip
        s2 = db.get(TreatmentSession, "s2")
        assert s2 is not None and (s2.duration_minutes, s2.kind, s2.status) == (
            60,
            "consultation",
            "scheduled",
        )
    again = _import(session_factory, settings, DATA / "csv_good")
    assert again.dirty_patients == 0 and not again.changed


def test_csv_bad_rows(session_factory: sessionmaker[Session], settings: Settings) -> None:
    report = _import(session_factory, settings, DATA / "csv_bad")
    assert _rejected(report) == {
        ("patient", "p-badzone", "timezone"),
        ("patient", "p-badbool", "sms_consent"),
        ("patient", "p-badplan", "initial_series_size"),
        ("session", "s-naive", "starts_at"),
        ("session", "s-ghost", "patient_id"),
        ("session", "s-dur", "duration_minutes"),
        ("session", "s-phase", "phase"),
        ("session", "s-phase", "series_number"),
    }
    assert report.counts["sessions"].rejected == 4
    with session_scope(session_factory) as db:
        assert set(db.scalars(select(Patient.id))) == {"p1", "p-badphone"}
        assert db.scalar(select(func.count()).select_from(TreatmentSession)) == 1


def test_clinic_confirmation_and_patient_confirmation(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _import(session_factory, settings, DATA / "good.json")
    confirmed_at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with session_scope(session_factory) as db:  # the patient replied "C" for s1
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == "s1")
            .values(status="confirmed", confirmed_at=confirmed_at)
        )
        s2_confirmed = _get(db, TreatmentSession, "s2").confirmed_at
    _settle(session_factory)
    report = _import(
        session_factory, settings, DATA / "good.json"
    )  # the clinic still says "scheduled"
    assert report.counts["sessions"].updated == 0 and _dirty(session_factory) == set()
    with session_scope(session_factory) as db:
        s1 = db.get(TreatmentSession, "s1")
        assert s1 is not None and (s1.status, s1.confirmed_at) == ("confirmed", confirmed_at)
        assert _get(db, TreatmentSession, "s2").confirmed_at == s2_confirmed


def test_unreadable_input_raises(
    session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    for path in (DATA / "broken.json", DATA / "notes.txt", tmp_path / "missing.json", tmp_path):
        with pytest.raises(ImportInputError), session_scope(session_factory) as db:
            import_path(db, settings, path)


def test_demo_clinic_imports_cleanly(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    now = datetime(2026, 3, 7, 23, 30, tzinfo=UTC)
    with session_scope(session_factory) as db:
        report = import_data(
            db, settings, demo_clinic(now, ZoneInfo("America/New_York")), source="demo"
        )
    assert not report.rejections
    assert {(w.id, w.field) for w in report.warnings} == {("demo-p4", "phone")}
    assert all(p["id"].startswith("demo-") for p in demo_clinic(now, ZoneInfo("UTC"))["patients"])


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("REMINDERS_DATABASE_URL", db_url)
    monkeypatch.setenv("REMINDERS_DRYRUN_DIR", str(tmp_path / "outbox"))
    return tmp_path


def test_cli_exit_codes(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(DATA / "good.json")]) == 0
    out = capsys.readouterr().out
    assert "sessions 4 inserted" in out

    assert main(["import", str(DATA / "bad_rows.json")]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "rejected session s-naive: field starts_at: needs an offset or Z" in captured.out
    assert sum(line.startswith("rejected ") for line in lines) == 8
    assert "warning patient p-badphone: field phone: unparseable phone number" in captured.out
    assert "12345" not in captured.out and "not-an-email" not in captured.out
    assert "555" not in captured.out and "@" not in captured.out

    assert main(["import", str(DATA / "broken.json")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("reminders: error: ") and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert main(["import", str(cli_env / "nope.json")]) == 2
    assert main(["import", str(DATA / "notes.txt")]) == 2


def test_cli_csv_folder_and_single_csv(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(DATA / "csv_good")]) == 0
    folder = cli_env / "one"
    folder.mkdir()
    shutil.copy(DATA / "csv_good" / "locations.csv", folder / "locations.csv")
    assert main(["import", str(folder / "locations.csv")]) == 0
    (folder / "people.csv").write_text("id,first_name\np1,Ana\n")
    assert main(["import", str(folder / "people.csv")]) == 2
    assert main(["import", str(DATA / "csv_bad")]) == 1


def test_a_consent_recorded_in_the_console_stands_until_the_clinic_changes_it(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    """Staff unticked SMS consent (the patient said so on the phone): a later import of the
    same clinic record keeps it; only a change of the clinic's own value overrides it."""

    def clinic(sms: bool, name: str = "Ana") -> None:
        data = {
            "patients": [
                {"id": "c1", "first_name": name, "phone": "410-555-0101", "sms_consent": sms,
                 "email_consent": True}
            ]
        }  # fmt: skip
        with session_scope(session_factory) as db:
            import_data(db, settings, data, source="test")

    def consent() -> tuple[bool, bool | None]:
        with session_scope(session_factory) as db:
            patient = _get(db, Patient, "c1")
            return patient.sms_consent, patient.clinic_sms_consent

    clinic(sms=True)
    assert consent() == (True, True)
    with session_scope(session_factory) as db:  # what the console's consent form does
        _get(db, Patient, "c1").sms_consent = False
    clinic(sms=True)
    assert consent() == (False, True)  # the clinic said nothing new
    clinic(sms=True, name="Ana María")
    assert consent() == (False, True)  # another field changed; consent still the staff's
    clinic(sms=False)
    assert consent() == (False, False)
    clinic(sms=True)  # the clinic's records now say yes: the latest statement wins
    assert consent() == (True, True)
