"""SendGrid Inbound Parse: secret in the URL (or basic auth), multipart form, matched by email."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from reminders.db.models import InboundMessage, Message, OptOut, TreatmentSession
from reminders.runtime import Runtime
from reminders.web.app import create_app
from tests.conftest import make_test_settings
from tests.conversations.helpers import INBOUND_SECRET

URL = f"/webhooks/sendgrid/inbound/{INBOUND_SECRET}"


def _post(
    client: TestClient,
    text: str,
    *,
    sender: str = "Ana Diaz <Ana@Example.com>",
    url: str = URL,
    message_id: str = "<abc@mail.example.com>",
    headers: dict[str, str] | None = None,
) -> Any:  # a response: starlette types TestClient against httpx2, not installed here
    data = {
        "from": sender,
        "to": "replies@clinic.example",
        "subject": "Re: Your visit",
        "text": text,
        "headers": f"Message-ID: {message_id}\nSubject: Re: Your visit\n",
        # A sender verified by SendGrid (tests/conversations/test_email_sender_auth.py).
        "SPF": "pass",
        "dkim": "{@example.com : pass}",
        "envelope": '{"to": ["replies@clinic.example"], "from": "ana@example.com"}',
    }
    return client.post(url, data=data, files={"attachment-info": (None, "{}")}, headers=headers)


def test_email_confirmation_matched_by_address(client: TestClient, clinic: Runtime) -> None:
    quoted = "C\n\nOn Mon, Dec 1, 2026 at 9:00 AM Clinic <x@y> wrote:\n> I want to kill myself (quoted, not the patient's)\n"
    assert _post(client, quoted).status_code == 200
    with clinic.session_factory() as db:
        inbound = db.scalars(select(InboundMessage)).one()
        assert (inbound.channel, inbound.patient_id, inbound.classification) == (
            "email",
            "p1",
            "confirm",
        )
        session = db.get(TreatmentSession, "s1-next")
        assert session is not None
        assert session.status == "confirmed"
        reply = db.scalars(select(Message).where(Message.kind == "reply")).one()
        assert (reply.channel, reply.to_address) == ("email", "ana@example.com")
    # SendGrid retries: the same Message-ID is handled once.
    _post(client, quoted)
    with clinic.session_factory() as db:
        assert len(db.scalars(select(InboundMessage)).all()) == 1


def test_email_stop_opts_out_of_email(client: TestClient, clinic: Runtime) -> None:
    _post(client, "unsubscribe\n\nSent from my phone")
    with clinic.session_factory() as db:
        row = db.scalars(select(OptOut)).one()
        assert (row.channel, row.address, row.active) == ("email", "ana@example.com", True)


def test_email_crisis_alerts(client: TestClient, clinic: Runtime) -> None:
    _post(client, "I can't do this anymore.\nThanks for everything.", message_id="<c@x>")
    with clinic.session_factory() as db:
        assert db.scalars(select(InboundMessage)).one().classification == "crisis"
        assert len(db.scalars(select(Message).where(Message.kind == "alert")).all()) == 3


def test_wrong_secret_refused_and_nothing_stored(client: TestClient, clinic: Runtime) -> None:
    assert _post(client, "C", url="/webhooks/sendgrid/inbound/wrong").status_code == 403
    assert _post(client, "C", url="/webhooks/sendgrid/inbound").status_code == 401
    with clinic.session_factory() as db:
        assert db.scalars(select(InboundMessage)).all() == []


def test_basic_auth_variant(client: TestClient, clinic: Runtime) -> None:
    auth = base64.b64encode(f"sendgrid:{INBOUND_SECRET}".encode()).decode()
    response = _post(
        client, "R", url="/webhooks/sendgrid/inbound", headers={"Authorization": f"Basic {auth}"}
    )
    assert response.status_code == 200
    with clinic.session_factory() as db:
        assert db.scalars(select(InboundMessage)).one().classification == "reschedule"


def test_no_secret_configured_is_not_found(db_url: str, tmp_path: Path) -> None:
    rt = Runtime(make_test_settings(db_url, tmp_path))
    try:
        with TestClient(create_app(rt)) as client:
            assert _post(client, "C", url="/webhooks/sendgrid/inbound/anything").status_code == 404
            assert _post(client, "C", url="/webhooks/sendgrid/inbound").status_code == 404
    finally:
        rt.close()
