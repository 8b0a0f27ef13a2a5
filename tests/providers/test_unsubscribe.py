"""Unsubscribe tokens and the one-click endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import AuditLog, OptOut, Patient
from reminders.outbox.unsubscribe import make_token, read_token, revoke_token, unsubscribe_url
from reminders.settings import Settings
from tests.conftest import make_test_settings
from tests.providers.helpers import EMAIL, add_patient, make_app


@pytest.fixture
def client(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    add_patient(session_factory)
    with TestClient(make_app(settings, engine)) as test_client:
        yield test_client


def opt_outs(factory: sessionmaker[Session]) -> list[tuple[str, str, bool, str]]:
    with factory() as db:
        return [(o.channel, o.address, o.active, o.source) for o in db.scalars(select(OptOut))]


def test_token_is_opaque_and_round_trips(tmp_path: Path) -> None:
    settings = make_test_settings("sqlite://", tmp_path)
    token = make_token(settings, patient_id="p1", address="Ana.Diaz@Example.com")
    assert "ana" not in token.lower() and "example" not in token.lower()
    content = read_token(settings, token)
    assert content is not None and content.patient_id == "p1"
    assert unsubscribe_url(settings, patient_id="p1", address=EMAIL).startswith(
        "http://testserver/unsubscribe/"
    )
    other = make_test_settings("sqlite://", tmp_path, secret_key="another-secret-key-0123456789")
    assert read_token(other, token) is None  # signed with our key only
    assert read_token(settings, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None


def test_get_shows_a_form_and_changes_nothing(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    token = make_token(settings, patient_id="p1", address=EMAIL)
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert '<form method="post">' in page.text and "<button" in page.text
    assert EMAIL not in page.text
    assert opt_outs(session_factory) == []


def test_one_click_post_records_the_opt_out(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    token = make_token(settings, patient_id="p1", address=EMAIL)
    for _ in range(2):  # idempotent
        response = client.post(
            f"/unsubscribe/{token}",
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
    assert opt_outs(session_factory) == [("email", EMAIL, True, "unsubscribe")]
    with session_factory() as db:
        audits = list(db.scalars(select(AuditLog).where(AuditLog.action == "unsubscribe")))
        assert len(audits) == 2 and audits[0].actor == "patient:p1"


def test_token_for_an_old_address_opts_out_nothing(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    token = make_token(settings, patient_id="p1", address="old@example.com")
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    assert opt_outs(session_factory) == []


def test_forged_and_revoked_tokens_are_404(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    assert client.get("/unsubscribe/forged.token").status_code == 404
    assert client.post("/unsubscribe/forged.token").status_code == 404
    token = make_token(settings, patient_id="p1", address=EMAIL)
    with session_factory() as db:
        assert revoke_token(settings, token, db=db)
        assert revoke_token(settings, token, db=db)  # twice is fine
        db.commit()
    assert client.get(f"/unsubscribe/{token}").status_code == 404
    assert client.post(f"/unsubscribe/{token}").status_code == 404
    assert opt_outs(session_factory) == []
    with session_factory() as db:
        assert db.scalar(select(func.count()).select_from(AuditLog)) == 0
        assert db.get(Patient, "p1") is not None
