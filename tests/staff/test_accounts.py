"""Staff accounts in the console (admins only): add one and see its one-time password once,
disable and enable it, reset its password; sessions end, every change is audited, an admin
cannot disable themself, and nobody else gets in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import AuditLog, StaffSession, StaffUser
from reminders.web.staff import auth
from tests.staff.conftest import SignedIn, csrf_of, login, sign_in

_ONE_TIME = re.compile(r'<code class="secret" id="one-time-password">([^<]+)</code>')


def one_time_password(html: str) -> str:
    match = _ONE_TIME.search(html)
    assert match, "no one-time password on the page"
    return match.group(1)


@pytest.fixture
def other_client(app_client: TestClient) -> Iterator[TestClient]:
    """A second browser on the same console."""
    with TestClient(app_client.app, follow_redirects=False) as client:
        yield client


def signed_out(client: TestClient) -> bool:
    response = client.get("/staff/inbox")
    return response.status_code == 303 and "/staff/login" in response.headers["location"]


def user_id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as db:
        user = db.scalars(select(StaffUser).where(StaffUser.email == email)).one()
        return user.id


def actions(factory: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    with factory() as db:
        return [
            (a.actor, a.action, a.entity_id)
            for a in db.scalars(select(AuditLog).order_by(AuditLog.id))
        ]


def test_an_admin_adds_an_account_and_sees_its_one_time_password_once(
    admin_client: SignedIn, other_client: TestClient, factory: sessionmaker[Session]
) -> None:
    added = admin_client.post(
        "/staff/accounts",
        {"email": " Nurse@Clinic.test ", "role": "staff", "phone": "(410) 555-0142"},
    )
    assert added.status_code == 200
    password = one_time_password(added.text)
    assert "Account created for nurse@clinic.test" in added.text
    with factory() as db:
        user = db.scalars(select(StaffUser).where(StaffUser.email == "nurse@clinic.test")).one()
        assert (user.role, user.phone, user.active) == ("staff", "+14105550142", True)
        assert auth.must_change_password(user) and password not in (user.password_hash or "")
    assert actions(factory) == [("admin@clinic.test", "staff.add", "nurse@clinic.test")]
    # Shown once: the list does not show it again.
    listing = admin_client.client.get("/staff/accounts").text
    assert password not in listing and "nurse@clinic.test" in listing
    assert "has not chosen a password yet" in listing and "Staff: reads" in listing
    # It works for the first sign-in, which asks for a password of their own.
    response = login(other_client, "nurse@clinic.test", password)
    assert response.headers["location"] == "/staff/account/password"
    # Refused, in words: a second account for the same address, a wrong address or number.
    again = admin_client.post("/staff/accounts", {"email": "nurse@clinic.test", "role": "admin"})
    assert again.status_code == 422 and "nurse@clinic.test already has an account" in again.text
    wrong = admin_client.post("/staff/accounts", {"email": "nobody", "role": "staff"})
    assert wrong.status_code == 422 and "is not an email address" in wrong.text
    bad_phone = admin_client.post(
        "/staff/accounts", {"email": "x@clinic.test", "role": "staff", "phone": "12"}
    )
    assert bad_phone.status_code == 422 and "is not a valid phone number" in bad_phone.text
    with factory() as db:
        assert len(db.scalars(select(StaffUser)).all()) == 2


def test_disable_ends_the_sessions_and_enable_lets_them_sign_in_again(
    admin_client: SignedIn,
    other_client: TestClient,
    make_user: Callable[..., str],
    factory: sessionmaker[Session],
) -> None:
    email = make_user("frontdesk@clinic.test")
    frontdesk = sign_in(other_client, email)
    uid = user_id(factory, email)
    disabled = admin_client.post(f"/staff/accounts/{uid}/disable")
    assert disabled.status_code == 303
    page = admin_client.client.get(disabled.headers["location"]).text
    assert "frontdesk@clinic.test can no longer sign in." in page and "Disabled" in page
    assert signed_out(frontdesk.client)
    assert login(other_client, email).status_code == 401
    with factory() as db:
        sessions = db.scalars(select(StaffSession).where(StaffSession.user_id == uid)).all()
        assert sessions and all(s.revoked_at is not None for s in sessions)
    enabled = admin_client.post(f"/staff/accounts/{uid}/enable")
    assert enabled.status_code == 303
    assert "can sign in again" in admin_client.client.get(enabled.headers["location"]).text
    assert login(other_client, email).status_code == 303
    assert [a for a in actions(factory) if a[1] != "staff.add"] == [
        ("admin@clinic.test", "staff.disable", email),
        ("admin@clinic.test", "staff.enable", email),
    ]


def test_reset_gives_a_new_one_time_password_and_ends_the_sessions(
    admin_client: SignedIn,
    other_client: TestClient,
    make_user: Callable[..., str],
    factory: sessionmaker[Session],
) -> None:
    email = make_user("frontdesk@clinic.test")
    frontdesk = sign_in(other_client, email)
    uid = user_id(factory, email)
    reset = admin_client.post(f"/staff/accounts/{uid}/reset")
    assert reset.status_code == 200
    password = one_time_password(reset.text)
    assert f"New one-time password for {email}" in reset.text
    # The cookie of the reset account no longer works, nor does the old password.
    assert signed_out(frontdesk.client)
    other_client.cookies.clear()
    assert login(other_client, email).status_code == 401
    response = login(other_client, email, password)
    assert response.headers["location"] == "/staff/account/password"
    assert actions(factory) == [("admin@clinic.test", "staff.reset", email)]
    # A second reset makes the first one-time password useless.
    again = one_time_password(admin_client.post(f"/staff/accounts/{uid}/reset").text)
    assert again != password
    with factory() as db:
        stored = db.get(StaffUser, uid)
        assert stored is not None
        assert auth.verify_password(stored.password_hash, again)
        assert not auth.verify_password(stored.password_hash, password)


def test_an_admin_cannot_disable_or_reset_themself(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    me = user_id(factory, "admin@clinic.test")
    refused = admin_client.post(f"/staff/accounts/{me}/disable")
    assert refused.status_code == 409 and "You cannot disable your own account" in refused.text
    assert admin_client.post(f"/staff/accounts/{me}/reset").status_code == 409
    assert admin_client.client.get("/staff/accounts").status_code == 200  # still signed in
    with factory() as db:
        user = db.get(StaffUser, me)
        assert user is not None and user.active
    assert actions(factory) == []
    assert admin_client.post("/staff/accounts/999999/disable").status_code == 404


def test_only_admins_and_only_with_the_csrf_token(
    staff_client: SignedIn,
    make_user: Callable[..., str],
    factory: sessionmaker[Session],
    app_client: TestClient,
) -> None:
    other = user_id(factory, make_user("other@clinic.test"))
    page = staff_client.client.get("/staff/accounts")
    assert page.status_code == 403 and "You do not have access to this" in page.text
    assert page.headers["content-type"].startswith("text/html")
    for path in ("/staff/accounts", f"/staff/accounts/{other}/disable"):
        response = staff_client.post(path, {"email": "x@clinic.test", "role": "admin"})
        assert response.status_code == 403, path
    # An admin's form without its token.
    admin = sign_in(app_client, make_user("boss@clinic.test", "admin"))
    assert csrf_of(admin.client.get("/staff/accounts").text) == admin.csrf
    forged = admin.client.post(f"/staff/accounts/{other}/disable", data={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    with factory() as db:
        assert all(u.active for u in db.scalars(select(StaffUser)))
        assert db.scalar(select(AuditLog)) is None
