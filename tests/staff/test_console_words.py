"""The console's words: English or Spanish per person, codes in plain words, error pages that
are pages, and confirming a visit by phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from reminders.db.models import AuditLog, Patient, StaffTask, StaffUser, TreatmentSession
from reminders.web.staff.common import TEMPLATE_DIR
from reminders.web.staff.i18n import browser_language, catalog, translator
from reminders.web.staff.labels import label
from tests.staff.conftest import SignedIn


def test_codes_have_words_in_both_languages_and_unknown_ones_are_readable() -> None:
    assert label("status", "skipped") == "Not sent"
    assert label("status", "failed", "es") == "No entregado"
    assert label("reason", "superseded").startswith("Not needed: a later reminder")
    assert label("reason", "no_phone: not a valid number", "es") == (
        "No hay número de móvil (not a valid number)"
    )
    assert label("reason", "provider_error 21610: unsubscribed recipient") == (
        "The text/email service refused it (21610: unsubscribed recipient)"
    )
    assert label("reason", "in doubt, unresolved after 2 h: no answer").startswith(
        "May or may not have reached the patient"
    )
    assert label("task", "prep_late", "es") == "Preparación fuera de plazo"
    assert label("rule", "infusion-day-before-sms") == "Day-before text"
    assert label("rule", "uptown_extra-reminder") == "Uptown extra reminder"
    assert label("status", None) == ""


def _request(accept_language: str) -> Request:
    headers = [(b"accept-language", accept_language.encode())] if accept_language else []
    return Request({"type": "http", "headers": headers, "method": "GET", "path": "/"})


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,es;q=0.5", "es"),
        ("de", "en"),
        ("", "en"),
        ("en;q=0.2, es;q=0.7", "es"),
    ],
)
def test_the_browser_language_picks_english_or_spanish(header: str, language: str) -> None:
    assert browser_language(_request(header)) == language


def test_every_text_in_the_pages_has_its_spanish() -> None:
    """A page string wrapped in t("...") without a Spanish entry would show in English."""
    spanish = catalog("es")
    missing = {
        text
        for page in TEMPLATE_DIR.glob("*.html")
        for text in re.findall(r"""\bt\(\s*"((?:[^"\\]|\\.)+)"\s*\)""", page.read_text())
        if text not in spanish
    }
    assert not missing, sorted(missing)
    assert all(value.strip() for value in spanish.values())
    assert translator("es")("Inbox") == "Bandeja de entrada"
    assert translator("en")("Inbox") == "Inbox"
    assert translator("es")("Some text nobody translated") == "Some text nobody translated"


def test_a_person_can_use_the_console_in_spanish(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    page = admin_client.client.get("/staff/policy")
    assert '<html lang="en">' in page.text and ">Inbox<" in page.text
    changed = admin_client.post(
        "/staff/account/language", {"language": "es", "next": "/staff/policy"}
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/staff/policy"
    page = admin_client.client.get("/staff/policy")
    assert '<html lang="es">' in page.text and ">Bandeja de entrada<" in page.text
    with factory() as db:
        assert db.scalars(select(StaffUser.language)).first() == "es"
    refused = admin_client.post("/staff/account/language", {"language": "fr"})
    assert refused.status_code == 400 and "<html" in refused.text
    assert "La consola está en inglés o en español." in refused.text


def test_console_errors_are_pages_and_scripts_still_get_json(admin_client: SignedIn) -> None:
    client = admin_client.client
    missing = client.get("/staff/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Not found" in missing.text and "Back to the console" in missing.text
    assert "Content-Security-Policy" in missing.headers
    spanish = client.get("/staff/no-such-page", headers={"accept-language": "es"})
    assert "No encontrado" in spanish.text  # the person chose no language: the browser's
    as_json = client.get("/staff/no-such-page", headers={"accept": "application/json"})
    assert as_json.status_code == 404 and as_json.json() == {"detail": "Not Found"}
    webhook = client.get("/webhooks/twilio/sms")
    assert webhook.headers["content-type"].startswith("application/json")  # not a console page


def test_a_staff_member_sees_an_admin_page_refused_in_words(staff_client: SignedIn) -> None:
    refused = staff_client.client.get("/staff/audit")
    assert refused.status_code == 403 and "You do not have access to this" in refused.text


@pytest.fixture
def visit(factory: sessionmaker[Session]) -> Callable[[str], str]:
    def make(status: str) -> str:
        with factory() as db:
            if db.get(Patient, "p-visit") is None:
                db.add(Patient(id="p-visit", first_name="Rosa", language="es"))
                db.flush()
            session_id = f"s-{status}"
            db.add(
                TreatmentSession(
                    id=session_id,
                    patient_id="p-visit",
                    starts_at=datetime.now(UTC) + timedelta(days=1),
                    status=status,
                )
            )
            db.flush()
            db.add(
                StaffTask(
                    kind="unconfirmed",
                    patient_id="p-visit",
                    session_id=session_id,
                    summary="not confirmed",
                    dedupe_key=f"unconfirmed:{session_id}",
                )
            )
            db.commit()
        return session_id

    return make


def test_a_visit_confirmed_by_phone(
    admin_client: SignedIn, factory: sessionmaker[Session], visit: Callable[[str], str]
) -> None:
    session_id = visit("scheduled")
    done = admin_client.post(f"/staff/sessions/{session_id}/confirm", {"next": "/staff/today"})
    assert done.status_code == 303 and done.headers["location"] == "/staff/today"
    with factory() as db:
        session = db.get(TreatmentSession, session_id)
        assert session is not None
        assert (session.status, session.confirmed_via) == ("confirmed", "phone")
        assert session.confirmed_at is not None
        task = db.scalars(select(StaffTask).where(StaffTask.session_id == session_id)).one()
        assert task.acknowledged_at is not None and task.note == "confirmed by phone"
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "session.confirm")).one()
        assert audit.entity_id == session_id and audit.detail == {
            "via": "phone",
            "was": "scheduled",
        }
    cancelled = visit("cancelled")
    refused = admin_client.post(f"/staff/sessions/{cancelled}/confirm", {})
    assert refused.status_code == 409 and "was cancelled or has already taken place" in refused.text
    assert admin_client.post("/staff/sessions/nope/confirm", {}).status_code == 404
    # Off-site targets are not followed.
    elsewhere = admin_client.post(
        f"/staff/sessions/{session_id}/confirm", {"next": "https://evil.example/"}
    )
    assert elsewhere.headers["location"] == "/staff/inbox"


def test_the_policy_reads_in_spanish_too(admin_client: SignedIn) -> None:
    admin_client.post("/staff/account/language", {"language": "es"})
    page = admin_client.client.get("/staff/policy").text
    assert "3 días antes de que empiece la cita" in page
    assert (
        "sin alcohol después de las 09:00 el día anterior, sin comida después de las 03:00" in page
    )
    assert "necesita quien le lleve a casa; no conducir hasta el día siguiente" in page


def test_every_policy_phrase_has_its_spanish() -> None:
    from reminders.defaults import POLICY_FILE
    from reminders.planning.policy import parse_policy
    from reminders.web.staff.policy_words import describe_when, preparation_rows

    raw = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    raw["rules"].append(
        {"name": "fixed", "kind": "checkin", "when": {"day": 1, "at": "10:00"}, "channels": ["sms"],
         "template": "checkin"}
    )  # fmt: skip
    raw["preparation"]["kinds"]["infusion"].update(
        arrive_early="15m",
        no_driving="12h",
        hold=[{"item": "lorazepam", "before": {"day": -2, "at": "20:00"}}],
    )
    policy = parse_policy(raw)
    spanish = catalog("es")
    missing: set[str] = set()

    def t(text: str) -> str:
        if text not in spanish:
            missing.add(text)
        return spanish.get(text, text)

    for rule in policy.rules:
        describe_when(rule, t)
    preparation_rows(policy, t)
    assert not missing, sorted(missing)
