"""Staff template versions on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import session_scope
from reminders.db.models import AuditLog, Patient, TemplateVersion, TreatmentSession
from reminders.settings import Settings
from reminders.templates.context import sample_context
from reminders.templates.render import render, render_for
from reminders.templates.source import TemplateError
from reminders.templates.store import db_templates, list_templates, resolve_template
from reminders.templates.versions import revert_to, save_version, template_history

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _save(
    db: Session,
    settings: Settings,
    body: str,
    *,
    language: str = "en",
    actor: str = "nurse@clinic.test",
) -> TemplateVersion:
    return save_version(
        db, settings, name="ride_home", channel="sms", language=language,
        subject=None, body=body, html=None, actor=actor,
    )  # fmt: skip


def _render_ride_home(db: Session, settings: Settings, language: str) -> str:
    context = sample_context(settings, language, now=NOW)
    return render(
        db, settings, name="ride_home", channel="sms", language=language, context=context
    ).text


def test_db_version_overrides_the_file_and_is_audited(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as db:
        assert "Arrange a ride home" in _render_ride_home(db, settings, "en")
        row = _save(db, settings, "{{ clinic.name }}: v1 at {{ session.time }}")
        assert row.version == 1

    with session_scope(session_factory) as db:
        assert _render_ride_home(db, settings, "en") == f"{settings.clinic_name}: v1 at 9:00 AM"
        _save(db, settings, "{{ clinic.name }}: v2")

    with session_scope(session_factory) as db:
        assert _render_ride_home(db, settings, "en") == f"{settings.clinic_name}: v2"
        sources = {(i.name, i.channel, i.language): i.source for i in list_templates(db, settings)}
        assert sources[("ride_home", "sms", "en")] == "db v2"
        assert sources[("ride_home", "sms", "es")] == "built-in"
        assert [t.id for t in db_templates(db)] == ["ride_home/sms/en"]
        audit = db.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [(a.actor, a.action, a.entity, a.entity_id, a.detail) for a in audit] == [
            ("nurse@clinic.test", "template.save", "template", "ride_home/sms/en", {"version": 1}),
            ("nurse@clinic.test", "template.save", "template", "ride_home/sms/en", {"version": 2}),
        ]


def test_revert_creates_a_new_version_copying_the_old(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as db:
        _save(db, settings, "{{ clinic.name }}: first")
        _save(db, settings, "{{ clinic.name }}: second")
    with session_scope(session_factory) as db:
        row = revert_to(
            db,
            settings,
            name="ride_home",
            channel="sms",
            language="en",
            version=1,
            actor="admin@clinic.test",
        )
        assert row.version == 3
    with session_scope(session_factory) as db:
        assert _render_ride_home(db, settings, "en") == f"{settings.clinic_name}: first"
        history = template_history(db, name="ride_home", channel="sms", language="en")
        assert [(h.version, h.body, h.created_by) for h in history] == [
            (3, "{{ clinic.name }}: first", "admin@clinic.test"),
            (2, "{{ clinic.name }}: second", "nurse@clinic.test"),
            (1, "{{ clinic.name }}: first", "nurse@clinic.test"),
        ]
        last = db.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
        assert last is not None
        assert (last.action, last.detail) == ("template.revert", {"version": 3, "reverted_to": 1})
        with pytest.raises(TemplateError, match="no version 9"):
            revert_to(
                db, settings, name="ride_home", channel="sms", language="en", version=9, actor="a"
            )


def test_invalid_template_is_refused_and_nothing_stored(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as db:
        with pytest.raises(TemplateError) as info:
            _save(db, settings, "Hi {{ patient.first_name }}\n{{ patient.last_nam }}")
        assert "ride_home/sms/en" in str(info.value)
        assert "line 2" in str(info.value) and "patient.last_nam" in str(info.value)
        with pytest.raises(TemplateError, match="syntax error"):
            _save(db, settings, "{% if %}")
        with pytest.raises(TemplateError, match="bad template name"):
            save_version(db, settings, name="../x", channel="sms", language="en", subject=None,
                         body="x", html=None, actor="a")  # fmt: skip
    with session_scope(session_factory) as db:
        assert db.scalars(select(TemplateVersion)).all() == []
        assert db.scalars(select(AuditLog)).all() == []


def test_language_fallback_with_db_versions(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as db:
        _save(db, settings, "{{ clinic.name }}: english staff version")
    with session_scope(session_factory) as db:
        # An English staff version does not beat the shipped Spanish file for a Spanish patient.
        assert "Hola" in _render_ride_home(db, settings, "es")
        # A French patient falls back to English, and gets the staff version.
        assert (
            _render_ride_home(db, settings, "fr")
            == f"{settings.clinic_name}: english staff version"
        )
        _save(
            db, settings, "{{ clinic.name }}: versión en español, {{ session.time }}", language="es"
        )
    with session_scope(session_factory) as db:
        source = resolve_template(db, settings, name="ride_home", channel="sms", language="es-MX")
        assert (source.language, source.label) == ("es", "db v1")
        assert (
            _render_ride_home(db, settings, "es-MX")
            == f"{settings.clinic_name}: version en español, 9:00 a.m."
        )


def test_email_version_with_html(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as db:
        save_version(
            db, settings, name="checkin", channel="email", language="en",
            subject="{{ clinic.name }}: hello", body="Hi {{ patient.first_name }}",
            html="<p>Hi <b>{{ patient.first_name }}</b></p>", actor="a", note="bolder",
        )  # fmt: skip
    with session_scope(session_factory) as db:
        db.add(Patient(id="p1", first_name="<Ana>", language="en"))
        db.flush()
        patient = db.get(Patient, "p1")
        rendered = render_for(db, settings, name="checkin", channel="email", patient=patient)
        assert rendered.subject == f"{settings.clinic_name}: hello"
        assert rendered.html == "<p>Hi <b>&lt;Ana&gt;</b></p>"
        assert rendered.text == "Hi <Ana>"


def test_render_for_a_stored_session(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as db:
        db.add(Patient(id="p2", first_name="Luz", language="es", timezone="America/Chicago"))
        db.flush()
        db.add(
            TreatmentSession(
                id="s2", patient_id="p2", starts_at=datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
            )
        )
    with session_scope(session_factory) as db:
        patient = db.get(Patient, "p2")
        session = db.get(TreatmentSession, "s2")
        text = render_for(
            db, settings, name="ride_home", channel="sms", patient=patient, session=session
        ).text
        assert "Hola Luz" in text and "a las 9:00" in text
