"""Finding a patient (name, phone in any format, email, id; counts and pages) and recording
what a patient told staff (consent, language, an opt-out or opt-in by phone, a visit
confirmed), each audited with who and why and never the number itself; after "no consent"
the next text does not go."""

from __future__ import annotations

import ast
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import AuditLog, Message, OptOut, Patient, TreatmentSession
from reminders.db.types import utcnow
from reminders.runtime import Runtime
from reminders.web.staff import conversation, patients
from reminders.web.staff.i18n import catalog
from reminders.worker import run_tick
from tests.staff.conftest import SignedIn
from tests.staff.test_conversation import PHONE, URL, add_patient, sent_texts

STAFF_DIR = Path(patients.__file__).parent


def names_in(html: str) -> list[str]:
    return re.findall(r'href="/staff/patients/([^"?#]+)"', html)


def audits(factory: sessionmaker[Session]) -> list[AuditLog]:
    with factory() as db:
        return list(db.scalars(select(AuditLog).order_by(AuditLog.id)))


@pytest.mark.parametrize(
    "query",
    ["(410) 555-0101", "410.555.0101", "+1 410 555 0101", "4105550101", "0101", "ANA@Example.COM",
     "example.com", "riv", "ana RIVERA", "p1"],
)  # fmt: skip
def test_search_finds_by_phone_in_any_format_email_name_and_id(
    admin_client: SignedIn, factory: sessionmaker[Session], query: str
) -> None:
    add_patient(factory)
    add_patient(factory, pid="p2", first_name="Ben", last_name="Okafor", phone="+14105550202",
                email="ben@other.test")  # fmt: skip
    page = admin_client.client.get("/staff/patients", params={"q": query}).text
    assert names_in(page) == ["p1"], query
    assert "1 patient" in page


def test_search_misses_say_so_and_wildcards_are_literal(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    for query in ("%", "_", "zzz", "555-9999"):
        page = admin_client.client.get("/staff/patients", params={"q": query}).text
        assert names_in(page) == [] and "0 patients" in page and "No patient matches" in page


def test_120_patients_are_counted_and_paged_50_at_a_time(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    with factory() as db:
        db.add_all(
            Patient(
                id=f"p{n:03}", first_name="Pat", last_name=f"Number{n:03}", phone=f"+1410555{n:04}"
            )  # fmt: skip
            for n in range(120)
        )
        db.commit()
    first = admin_client.client.get("/staff/patients").text
    assert "120 patients" in first and "showing 1–50" in first and "Page 1 of 3" in first
    assert names_in(first) == [f"p{n:03}" for n in range(50)]
    assert 'href="?q=&amp;page=2"' in first and 'href="?q=&amp;page=3"' in first
    last = admin_client.client.get("/staff/patients?page=3").text
    assert names_in(last) == [f"p{n:03}" for n in range(100, 120)] and "showing 101–120" in last
    beyond = admin_client.client.get("/staff/patients?page=99").text
    assert names_in(beyond) == names_in(last)
    assert names_in(admin_client.client.get("/staff/patients?page=x").text) == names_in(first)
    searched = admin_client.client.get("/staff/patients", params={"q": "number0"}).text
    assert "100 patients" in searched and "Page 1 of 2" in searched  # Number000 to Number099
    assert 'href="?q=number0&amp;page=2"' in searched


def test_no_consent_then_the_next_day_before_text_does_not_go(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    starts = utcnow().replace(microsecond=0) + timedelta(days=2)
    add_patient(factory, email=None, email_consent=False, needs_plan=True)
    add_patient(factory, pid="p2", first_name="Ben", phone="+14105550202", email=None,
                needs_plan=True)  # fmt: skip
    with factory() as db:
        for pid in ("p1", "p2"):
            db.add(TreatmentSession(id=f"s-{pid}", patient_id=pid, starts_at=starts))
        db.commit()
    run_tick(runtime, now=utcnow())
    with factory() as db:
        planned = {
            m.patient_id: m.due_at
            for m in db.scalars(select(Message).where(Message.rule == "infusion-day-before-sms"))
        }
    assert set(planned) == {"p1", "p2"}

    response = admin_client.post(
        f"{URL}/contact",
        {"email_consent": "", "language": "en", "why": "She called: no more texts"},
    )
    assert response.status_code == 303 and response.headers["location"].endswith(
        "done=contact#records"
    )
    with factory() as db:
        patient = db.get(Patient, "p1")
        assert patient is not None and not patient.sms_consent and patient.needs_plan
    (audit,) = audits(factory)
    assert (audit.action, audit.actor, audit.entity_id) == (
        "patient.consent",
        "admin@clinic.test",
        "p1",
    )
    assert audit.detail == {"field": "sms_consent", "from": True, "to": False,
                            "why": "She called: no more texts"}  # fmt: skip

    run_tick(runtime, now=max(planned.values()) + timedelta(minutes=1))
    with factory() as db:
        texts = {
            m.patient_id: m
            for m in db.scalars(select(Message).where(Message.rule == "infusion-day-before-sms"))
        }
    assert texts["p1"].status == "skipped" and (texts["p1"].reason or "").startswith(
        "no_sms_consent"
    )
    assert texts["p2"].status == "sent"
    assert [t["patient_id"] for t in sent_texts(runtime)] == ["p2"]
    page = admin_client.client.get(URL).text
    assert "The patient has not agreed to texts" in page and "Not sent" in page


def test_a_consent_change_needs_a_why_and_a_language_change_does_not(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    keep = {"sms_consent": "1", "email_consent": "1"}
    refused = admin_client.post(f"{URL}/contact", {"sms_consent": "1", "language": "en"})
    assert refused.status_code == 400 and "Say why" in refused.text
    assert admin_client.post(f"{URL}/contact", {**keep, "language": "fr"}).status_code == 400
    same = admin_client.post(f"{URL}/contact", {**keep, "language": "en"})
    assert same.headers["location"].endswith("done=unchanged#records")
    assert audits(factory) == []
    changed = admin_client.post(f"{URL}/contact", {**keep, "language": "es"})
    assert changed.status_code == 303
    with factory() as db:
        patient = db.get(Patient, "p1")
        assert patient is not None and patient.language == "es" and patient.needs_plan
    (audit,) = audits(factory)
    assert audit.action == "patient.language"
    assert audit.detail == {"field": "language", "from": "en", "to": "es", "why": ""}
    page = admin_client.client.get(f"{URL}?done=contact").text
    assert "Saved." in page and '<option value="es" selected>' in page


def test_an_opt_out_taken_on_the_phone_is_recorded_and_audited(
    staff_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    form = {"channel": "sms", "action": "out", "why": "Asked on the phone, 3 PM call"}
    assert staff_client.post(f"{URL}/opt-out", {**form, "why": " "}).status_code == 400
    assert staff_client.post(f"{URL}/opt-out", {**form, "channel": "fax"}).status_code == 400
    assert staff_client.post(f"{URL}/opt-out", form).status_code == 303
    with factory() as db:
        row = db.scalars(select(OptOut)).one()
    assert (row.channel, row.address, row.active, row.source) == ("sms", PHONE, True, "staff_phone")
    (audit,) = audits(factory)
    assert (audit.action, audit.actor) == ("patient.opt_out", "frontdesk@clinic.test")
    assert audit.detail == {"field": "sms_opt_out", "from": False, "to": True,
                            "why": "Asked on the phone, 3 PM call"}  # fmt: skip
    assert PHONE not in json.dumps(audit.detail) and "4105550101" not in json.dumps(audit.detail)
    page = staff_client.client.get(URL).text
    assert "staff, from a phone call" in page and "asked for no more texts (STOP)" in page
    again = staff_client.post(f"{URL}/opt-out", form)
    assert (
        again.headers["location"].endswith("done=unchanged#records") and len(audits(factory)) == 1
    )
    back = staff_client.post(f"{URL}/opt-out", {**form, "action": "in", "why": "Wants them again"})
    assert back.status_code == 303
    with factory() as db:
        assert db.scalars(select(OptOut)).one().active is False
    assert [a.action for a in audits(factory)] == ["patient.opt_out", "patient.opt_in"]
    email = staff_client.post(f"{URL}/opt-out", {**form, "channel": "email"})
    assert email.status_code == 303
    with factory() as db:
        assert (
            db.scalars(select(OptOut).where(OptOut.channel == "email")).one().address
            == "ana@example.com"
        )


def test_a_visit_is_marked_confirmed_from_the_patient_page(
    staff_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    with factory() as db:
        db.add(TreatmentSession(id="s1", patient_id="p1", starts_at=utcnow() + timedelta(days=4)))
        db.commit()
    page = staff_client.client.get(URL).text
    assert 'action="/staff/sessions/s1/confirm"' in page and "Mark confirmed" in page
    done = staff_client.post("/staff/sessions/s1/confirm", {"next": f"{URL}#visits"})
    assert done.status_code == 303 and done.headers["location"] == f"{URL}#visits"
    page = staff_client.client.get(URL).text
    assert 'action="/staff/sessions/s1/confirm"' not in page and "Confirmed" in page


def _page_strings() -> set[str]:
    found: set[str] = set()
    for name in ("patient.html", "patients.html"):
        text = (STAFF_DIR / "pages" / name).read_text(encoding="utf-8")
        found |= {m[1] for m in re.findall(r"""\bt\((["'])(.*?)\1\)""", text)}
    for module in (patients, conversation):
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "HTTPException":
                found |= {
                    c.value
                    for kw in node.keywords
                    if kw.arg == "detail"
                    for c in ast.walk(kw.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and " " in c.value
                }
    shown: list[Any] = [
        *conversation.TEMPLATE_WORDS.values(), *conversation.SMS_PROBLEM_WORDS.values(),
        *patients.LANGUAGES.values(), *(w for _, w in patients.OPT_OUT_SOURCES),
        patients.WHERE_THE_PATIENT_IS,
    ]  # fmt: skip
    return found | set(shown)


def test_every_text_of_the_patient_pages_has_its_spanish() -> None:
    spanish = catalog("es")
    missing = sorted(s for s in _page_strings() if s not in spanish)
    assert not missing, missing


POSTS = ["reply", "template", "note", "contact", "opt-out"]


def test_the_forms_need_a_session_and_the_pages_token(
    staff_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    add_patient(factory)
    form = {"text": "Hi", "body": "Hi", "why": "x", "channel": "sms", "action": "out"}
    for name in POSTS:
        forged = staff_client.client.post(f"{URL}/{name}", data={**form, "csrf_token": "0" * 64})
        assert forged.status_code == 403, name
    staff_client.client.cookies.clear()
    for name in POSTS:
        response = staff_client.client.post(f"{URL}/{name}", data=form)
        assert response.status_code == 303 and "/staff/login" in response.headers["location"]
    for path in ("/staff/patients", URL):
        assert staff_client.client.get(path).status_code == 303
    assert audits(factory) == []
    with factory() as db:
        assert db.scalars(select(Message)).all() == [] and db.scalars(select(OptOut)).all() == []
