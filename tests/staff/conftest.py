"""Fixtures for the staff console's HTTP tests: an app over each database backend, accounts,
and a signed-in client (with the CSRF token of its session)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import StaffUser
from reminders.defaults import POLICY_FILE
from reminders.runtime import Runtime
from reminders.settings import Settings
from reminders.web.app import create_app
from reminders.web.staff.auth import hash_password
from tests.conftest import make_test_settings

PASSWORD = "correct horse battery"
_CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def staff_settings(db_url: str, tmp_path: Path) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return make_test_settings(
        db_url,
        tmp_path,
        policy_file=policy,
        clinic_name="Lakeside Clinic",
        clinic_phone="+14105550100",
    )


@pytest.fixture
def runtime(staff_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(staff_settings)
    yield rt
    rt.close()


@pytest.fixture
def factory(runtime: Runtime) -> sessionmaker[Session]:
    return runtime.session_factory


@pytest.fixture
def app_client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), follow_redirects=False) as c:
        yield c


@pytest.fixture
def make_user(factory: sessionmaker[Session]) -> Callable[..., str]:
    def make(email: str, role: str = "staff", phone: str | None = None) -> str:
        with factory() as db:
            db.add(
                StaffUser(
                    email=email, role=role, phone=phone, password_hash=hash_password(PASSWORD)
                )
            )
            db.commit()
        return email

    return make


@dataclass
class SignedIn:
    client: TestClient
    csrf: str

    # The responses are Any: starlette types TestClient against httpx2, which is not installed.
    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: object) -> Any:
        return self.client.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


def login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/staff/login")
    return client.post(
        "/staff/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": "/staff/inbox",
        },
    )


def sign_in(client: TestClient, email: str) -> SignedIn:
    response = login(client, email)
    assert response.status_code == 303, response.text
    page = client.get("/staff/inbox")
    assert page.status_code == 200
    return SignedIn(client, csrf_of(page.text))


@pytest.fixture
def admin_client(app_client: TestClient, make_user: Callable[..., str]) -> SignedIn:
    return sign_in(app_client, make_user("admin@clinic.test", "admin", "+14105550111"))


@pytest.fixture
def staff_client(app_client: TestClient, make_user: Callable[..., str]) -> SignedIn:
    return sign_in(app_client, make_user("frontdesk@clinic.test", "staff"))
