"""Every page renders for an admin; accounts from the CLI; acknowledging; policy editing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.cli import main
from reminders.db.models import (
    AuditLog,
    CheckinScore,
    Message,
    Patient,
    StaffTask,
    StaffUser,
    TreatmentSession,
)
from reminders.defaults import POLICY_FILE
from reminders.runtime import Runtime
from reminders.web.staff import auth
from tests.staff.conftest import SignedIn, csrf_of, login
from tests.staff.test_security import PAGES, VALID_SMS


def _seed(factory: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    with factory() as db:
        db.add(
            Patient(
                id="p1",
                first_name="Ana",
                last_name="Rivera",
                phone="+14105550123",
                sms_consent=True,
                initial_series_size=2,
                maintenance_interval_days=28,
            )
        )
        db.flush()
        for n in range(2):
            db.add(
                TreatmentSession(
                    id=f"s{n}",
                    patient_id="p1",
                    starts_at=now - timedelta(days=10 - n),
                    status="completed",
                    kind="infusion",
                )
            )
        db.add(CheckinScore(patient_id="p1", score=2, recorded_at=now - timedelta(days=1)))
        db.add(
            StaffTask(id=1, kind="low_score", urgent=True, patient_id="p1", summary="score 2/10")
        )
        db.add(
            Message(
                dedupe_key="m1",
                patient_id="p1",
                rule="r",
                kind="reminder",
                channel="sms",
                template="day_before",
                due_at=now,
                status="failed",
                reason="invalid number",
            )
        )
        db.commit()


def test_every_page_renders_for_an_admin(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    _seed(factory)
    admin_client.post("/staff/templates/day_before/sms/en", {"body": VALID_SMS})
    for path in PAGES:
        response = admin_client.client.get(path, follow_redirects=True)
        assert response.status_code == 200, (path, response.text[:500])
    patient = admin_client.client.get("/staff/patients/p1").text
    assert "Series complete" in patient and "Maintenance due on" in patient


def test_staff_add_prints_a_one_time_password_that_must_be_changed(
    runtime: Runtime,
    app_client: TestClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    factory: sessionmaker[Session],
) -> None:
    settings = runtime.settings
    for key, value in {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_POLICY_FILE": str(settings.policy_file),
        "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }.items():
        monkeypatch.setenv(key, value)
    assert (
        main(["staff", "add", "Nurse@Clinic.test", "--role", "admin", "--phone", "(410) 555-0142"])
        == 0
    )
    out = capsys.readouterr().out
    password = out.split("nurse@clinic.test: ")[1].split()[0]
    assert main(["staff", "add", "nurse@clinic.test"]) != 0  # no duplicates
    with factory() as db:
        user = db.scalars(select(StaffUser)).one()
        assert user.role == "admin" and user.phone == "+14105550142"
        assert password not in (user.password_hash or "") and auth.must_change_password(user)

    response = login(app_client, "nurse@clinic.test", password)
    assert response.headers["location"] == "/staff/account/password"
    assert app_client.get("/staff/inbox").headers["location"] == "/staff/account/password"
    form = app_client.get("/staff/account/password")
    changed = app_client.post(
        "/staff/account/password",
        data={
            "csrf_token": csrf_of(form.text),
            "current": password,
            "password": "a brand new secret",
            "confirm": "a brand new secret",
        },
    )
    assert changed.status_code == 303
    assert app_client.get("/staff/inbox").status_code == 200
    app_client.cookies.clear()
    assert login(app_client, "nurse@clinic.test", password).status_code == 401  # one time only


def test_acknowledge_with_note_is_audited(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    _seed(factory)
    page = admin_client.client.get("/staff/inbox")
    assert 'class="task urgent' in page.text
    assert (
        admin_client.post("/staff/inbox/1/ack", {"note": ""}).status_code == 400
    )  # urgent needs a note
    assert admin_client.post("/staff/inbox/1/ack", {"note": "called, fine"}).status_code == 303
    assert admin_client.post("/staff/inbox/1/ack", {"note": "again"}).status_code == 303
    with factory() as db:
        task = db.get(StaffTask, 1)
        assert (
            task is not None
            and task.acknowledged_by == "admin@clinic.test"
            and task.note == "called, fine"
        )
        assert (
            len(db.scalars(select(AuditLog).where(AuditLog.action == "task.acknowledge")).all())
            == 1
        )


def test_policy_editor_validates_before_saving(
    admin_client: SignedIn, runtime: Runtime, factory: sessionmaker[Session]
) -> None:
    assert runtime.settings.policy_file is not None  # staff_settings sets one
    path = Path(runtime.settings.policy_file)
    original = path.read_text(encoding="utf-8")
    bad = original.replace("when: -1d", "when: +1d", 1)
    response = admin_client.post("/staff/policy", {"text": bad})
    assert response.status_code == 422 and "before the session" in response.text
    assert path.read_text(encoding="utf-8") == original
    assert admin_client.post("/staff/policy", {"text": "rules: [oops"}).status_code == 422
    good = original.replace("when: -2h", "when: -3h", 1)
    assert admin_client.post("/staff/policy", {"text": good}).status_code == 303
    assert path.read_text(encoding="utf-8") == good
    assert "3 hours before the session starts" in admin_client.client.get("/staff/policy").text
    with factory() as db:
        assert db.scalars(select(AuditLog).where(AuditLog.action == "policy.save")).one()


def test_the_preparation_is_shown_and_edited_with_the_policy(
    admin_client: SignedIn, runtime: Runtime
) -> None:
    assert runtime.settings.policy_file is not None
    path = Path(runtime.settings.policy_file)
    original = path.read_text(encoding="utf-8")
    page = admin_client.client.get("/staff/policy").text
    assert "<h2>Preparation</h2>" in page
    # The default, as clock times for a 9:00 AM session.
    assert (
        "no alcohol after 09:00 the day before, no food after 03:00, clear liquids until 07:00"
        in page
    )
    assert "ride home required; no driving until the next day" in page
    bad = original.replace("no_food: 6h", "no_food: 1h", 1)
    response = admin_client.post("/staff/policy", {"text": bad})
    assert response.status_code == 422
    assert (
        "preparation.kinds.infusion" in response.text and "closer to the session" in response.text
    )
    assert path.read_text(encoding="utf-8") == original
    stricter = original.replace("no_food: 6h", "no_food: 8h", 1).replace(
        "  locations: {}\n  # e.g.  uptown: {infusion",
        "  locations: {uptown: {infusion: {no_alcohol: 48h}}}\n  # e.g.  uptown: {infusion",
        1,
    )
    assert stricter.count("no_alcohol: 48h") == 1
    assert admin_client.post("/staff/policy", {"text": stricter}).status_code == 303
    page = admin_client.client.get("/staff/policy").text
    assert "no food after 01:00" in page and "no alcohol after 09:00 2 days before" in page
    assert "<td>uptown</td>" in page


def test_the_built_in_policy_is_shown_but_never_written(
    admin_client: SignedIn, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.settings, "policy_file", None)  # no REMINDERS_POLICY_FILE
    built_in = POLICY_FILE.read_text(encoding="utf-8")
    page = admin_client.client.get("/staff/policy")
    assert page.status_code == 200 and "infusion-day-before-sms" in page.text
    assert "reminders init" in page.text and "<textarea" not in page.text
    response = admin_client.post("/staff/policy", {"text": built_in.replace("-2h", "-3h", 1)})
    assert response.status_code == 409 and "REMINDERS_POLICY_FILE" in response.text
    assert POLICY_FILE.read_text(encoding="utf-8") == built_in


def test_send_me_a_test_queues_a_message_to_the_staff_member(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    assert admin_client.post("/staff/templates/day_before/sms/en/test").status_code == 303
    with factory() as db:
        msg = db.scalars(select(Message)).one()
        assert (msg.kind, msg.to_address, msg.rule, msg.status) == (
            "reply",
            "+14105550111",
            "test:day_before",
            "planned",
        )


def test_revert_makes_an_old_version_live(admin_client: SignedIn) -> None:
    admin_client.post("/staff/templates/day_before/sms/en", {"body": VALID_SMS + " one"})
    admin_client.post("/staff/templates/day_before/sms/en", {"body": VALID_SMS + " two"})
    assert (
        admin_client.post("/staff/templates/day_before/sms/en/revert", {"version": "1"}).status_code
        == 303
    )
    page = admin_client.client.get("/staff/templates/day_before/sms/en")
    assert "Live version: 3 (edited in the console)" in page.text and "confirm. one" in page.text
