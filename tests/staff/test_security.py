"""Security of the staff console, on SQLite and PostgreSQL: sign-in is required everywhere,
roles are enforced, CSRF tokens are required, patient text is escaped, guessing is slowed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import Type, extract_parameters
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import (
    AuditLog,
    InboundMessage,
    Message,
    Patient,
    StaffTask,
    StaffUser,
    TemplateVersion,
)
from reminders.runtime import Runtime
from reminders.web.staff import auth
from tests.conftest import PRODUCTION_HASHER
from tests.staff.conftest import PASSWORD, SignedIn, csrf_of, login, sign_in

PAGES = [
    "/staff",
    "/staff/",
    "/staff/inbox",
    "/staff/inbox?task=1",
    "/staff/tasks/1",
    "/staff/outbox",
    "/staff/outbox?status=failed&channel=sms",
    "/staff/outbox/failed",
    "/staff/patients",
    "/staff/patients/p1",
    "/staff/templates",
    "/staff/templates/day_before/sms/en",
    "/staff/templates/day_before/sms/en/history",
    "/staff/templates/day_before/sms/en/diff?a=0&b=1",
    "/staff/policy",
    "/staff/audit",
    "/staff/account/password",
]
POSTS = [
    "/staff/logout",
    "/staff/account/password",
    "/staff/templates/day_before/sms/en",
    "/staff/templates/day_before/sms/en/preview",
    "/staff/templates/day_before/sms/en/revert",
    "/staff/templates/day_before/sms/en/test",
    "/staff/inbox/1/ack",
    "/staff/inbox/bulk-ack",
    "/staff/policy",
    "/staff/policy/revert",
    "/staff/account/language",
    "/staff/sessions/s1/confirm",
    "/staff/patients/p1/reply",
    "/staff/patients/p1/template",
    "/staff/patients/p1/note",
    "/staff/patients/p1/contact",
    "/staff/patients/p1/opt-out",
    "/staff/accounts",
    "/staff/accounts/1/disable",
    "/staff/accounts/1/enable",
    "/staff/accounts/1/reset",
]
VALID_SMS = "{{ clinic.name }}: see you {{ session.date }} at {{ session.time }}. Reply {{ reply.confirm }} to confirm."


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_to_login_when_signed_out(app_client: TestClient, path: str) -> None:
    response = app_client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/login?next=")


@pytest.mark.parametrize("path", POSTS)
def test_every_post_redirects_to_login_when_signed_out(app_client: TestClient, path: str) -> None:
    response = app_client.post(path, data={"csrf_token": "x"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/login")


def test_a_forged_cookie_is_not_a_session(app_client: TestClient) -> None:
    app_client.cookies.set(auth.SESSION_COOKIE, "eyJ1IjoxfQ.forged.sig", path="/staff")
    assert app_client.get("/staff/inbox").status_code == 303


def test_login_sets_a_hardened_cookie_and_logout_ends_it(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("a@clinic.test")
    response = login(app_client, "a@clinic.test")
    assert response.status_code == 303 and response.headers["location"] == "/staff/inbox"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/staff" in cookie
    assert "secure" not in cookie  # public_url is http in tests
    page = app_client.get("/staff/inbox")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    out = app_client.post("/staff/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert app_client.get("/staff/inbox").status_code == 303


def test_cookie_is_secure_when_public_url_is_https(
    runtime: Runtime, make_user: Callable[..., str]
) -> None:
    from reminders.web.app import create_app

    runtime.settings.public_url = "https://clinic.example"
    make_user("s@clinic.test")
    with TestClient(
        create_app(runtime), base_url="https://testserver", follow_redirects=False
    ) as client:
        response = login(client, "s@clinic.test")
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_login_without_csrf_token_is_refused(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("a@clinic.test")
    app_client.get("/staff/login")
    response = app_client.post(
        "/staff/login", data={"email": "a@clinic.test", "password": PASSWORD}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", POSTS)
def test_post_without_csrf_token_is_refused(admin_client: SignedIn, path: str) -> None:
    client = admin_client.client
    assert (
        client.post(path, data={"body": VALID_SMS, "note": "x", "version": "1"}).status_code == 403
    )
    assert client.post(path, data={"csrf_token": "0" * 64, "body": VALID_SMS}).status_code == 403
    assert client.get("/staff/inbox").status_code == 200  # still signed in


def test_post_with_csrf_token_of_another_session_is_refused(
    app_client: TestClient, make_user: Callable[..., str], factory: sessionmaker[Session]
) -> None:
    make_user("a@clinic.test", "admin")
    first = sign_in(app_client, "a@clinic.test")
    app_client.cookies.clear()
    second = sign_in(app_client, "a@clinic.test")
    assert first.csrf != second.csrf
    response = app_client.post(
        "/staff/templates/day_before/sms/en", data={"csrf_token": first.csrf, "body": VALID_SMS}
    )
    assert response.status_code == 403
    with factory() as db:
        assert db.scalar(select(TemplateVersion)) is None


def test_staff_role_cannot_save_a_template_or_policy(
    staff_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    page = staff_client.client.get("/staff/templates/day_before/sms/en")
    assert page.status_code == 200 and "Only admins can save" in page.text
    assert (
        staff_client.post("/staff/templates/day_before/sms/en", {"body": VALID_SMS}).status_code
        == 403
    )
    assert (
        staff_client.post("/staff/templates/day_before/sms/en/revert", {"version": "1"}).status_code
        == 403
    )
    assert staff_client.post("/staff/policy", {"text": "rules: []"}).status_code == 403
    assert staff_client.client.get("/staff/audit").status_code == 403
    # ...but may preview
    assert (
        staff_client.post(
            "/staff/templates/day_before/sms/en/preview", {"body": VALID_SMS}
        ).status_code
        == 200
    )
    with factory() as db:
        assert db.scalar(select(TemplateVersion)) is None


def test_admin_saves_a_template_version_with_audit(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    response = admin_client.post(
        "/staff/templates/day_before/sms/en", {"body": VALID_SMS, "note": "shorter"}
    )
    assert response.status_code == 303
    with factory() as db:
        row = db.scalars(select(TemplateVersion)).one()
        assert (row.version, row.created_by, row.note) == (1, "admin@clinic.test", "shorter")
        assert db.scalars(select(AuditLog).where(AuditLog.action == "template.save")).one()
    page = admin_client.client.get("/staff/templates/day_before/sms/en/history")
    assert "v1" in page.text and "admin@clinic.test" in page.text
    diff = admin_client.client.get("/staff/templates/day_before/sms/en/diff?a=0&b=1")
    assert diff.status_code == 200 and 'class="add"' in diff.text


def test_an_invalid_template_cannot_be_saved(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    response = admin_client.post(
        "/staff/templates/day_before/sms/en", {"body": "Hi {{ patient.frist_name }}"}
    )
    assert response.status_code == 422
    assert "unknown variable" in response.text and "patient.first_name" in response.text
    with factory() as db:
        assert db.scalar(select(TemplateVersion)) is None


def test_patient_supplied_text_is_escaped(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    evil = '<script>alert("x")</script>'
    with factory() as db:
        db.add(
            Patient(
                id="p1",
                first_name=evil,
                last_name="<img src=x onerror=alert(1)>",
                phone="+14105550199",
                sms_consent=True,
            )
        )
        db.flush()
        inbound = InboundMessage(
            channel="sms",
            from_address="+14105550199",
            body=f"help {evil}",
            patient_id="p1",
            classification="crisis",
        )
        db.add(inbound)
        db.flush()
        db.add(
            StaffTask(
                kind="crisis",
                urgent=True,
                patient_id="p1",
                inbound_id=inbound.id,
                summary=f"crisis words: {evil}",
            )
        )
        db.add(
            Message(
                dedupe_key="k1",
                patient_id="p1",
                rule="r",
                kind="reminder",
                channel="sms",
                template="day_before",
                due_at=datetime.now(UTC),
                status="failed",
                reason=f"provider said {evil}",
                body=evil,
            )
        )
        db.commit()
    client = admin_client.client
    for path in (
        "/staff/inbox",
        "/staff/patients/p1",
        "/staff/patients?q=script",
        "/staff/outbox",
        "/staff/outbox/failed",
        "/staff/templates/day_before/sms/en?x=1",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
    assert "&lt;script&gt;alert" in client.get("/staff/inbox").text
    preview = admin_client.post(
        "/staff/templates/day_before/sms/en/preview",
        {"body": "Hi {{ patient.first_name }}", "patient": "p1"},
    )
    assert "&lt;script&gt;" in preview.text and "<script>alert" not in preview.text


def test_lock_grows_with_more_failures() -> None:
    assert auth.lock_length(4) == timedelta(0)
    assert auth.lock_length(5) == auth.FIRST_LOCK
    assert auth.lock_length(6) == auth.FIRST_LOCK * 2
    assert auth.lock_length(50) == auth.MAX_LOCK


def test_production_hashing_cost_and_a_weaker_hash_is_upgraded_at_login(
    app_client: TestClient, make_user: Callable[..., str], factory: sessionmaker[Session]
) -> None:
    """The suite hashes cheaply (tests/conftest.py); this is the cost the code ships with."""
    make_user("a@clinic.test")  # hashed with the suite's cheap profile
    cheap = auth.use_hasher(PRODUCTION_HASHER)
    try:
        stored = auth.hash_password(PASSWORD)
        params = extract_parameters(stored)
        assert params.type is Type.ID and params.time_cost >= 3
        assert params.memory_cost >= 64 * 1024 and params.parallelism >= 1
        assert auth.verify_password(stored, PASSWORD) and not auth.verify_password(stored, "wrong")
        with factory() as db:
            before = db.scalars(select(StaffUser)).one().password_hash
        assert before is not None
        assert extract_parameters(before).memory_cost < params.memory_cost
        assert login(app_client, "a@clinic.test", PASSWORD).status_code == 303
        with factory() as db:
            after = db.scalars(select(StaffUser)).one().password_hash
        assert after is not None
        assert extract_parameters(after) == params and auth.verify_password(after, PASSWORD)
    finally:
        auth.use_hasher(cheap)


def test_unknown_email_and_open_redirect(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    assert login(app_client, "nobody@clinic.test").status_code == 401
    make_user("a@clinic.test")
    page = app_client.get("/staff/login?next=https://evil.example/")
    response = app_client.post(
        "/staff/login",
        data={
            "email": "a@clinic.test",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example",
        },
    )
    assert response.headers["location"] == "/staff/inbox"
