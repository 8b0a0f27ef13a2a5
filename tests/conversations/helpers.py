"""Shared set-up for the conversation tests: a clinic, an app and signed Twilio requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from reminders.db.models import Location, Message, Patient, TreatmentSession

TOKEN = "test-auth-token-0123456789"
SMS_URL = "http://testserver/webhooks/twilio/sms"
ONCALL_PHONES = "+14105550900,+14105550901"
ONCALL_EMAILS = "oncall@example.com"
INBOUND_SECRET = "inbound-secret-abc123"

P1 = "+14105550101"  # Ana (en)
P2 = "+14105550102"  # Beto (es)
FAMILY = "+14105550199"  # shared by Carla and Dani


def sign(params: dict[str, str], url: str = SMS_URL, token: str = TOKEN) -> str:
    # twilio ships no type information: its RequestValidator is Any.
    return cast(str, RequestValidator(token).compute_signature(url, params))


def post_sms(
    client: TestClient,
    body: str,
    *,
    sender: str = P1,
    sid: str,
    extra: dict[str, str] | None = None,
) -> Any:
    """A signed inbound SMS; ``sid`` names it (the same name gives the same MessageSid)."""
    params = {
        "MessageSid": "SM" + hashlib.md5(sid.encode()).hexdigest(),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+14105550000",
        "Body": body,
    }
    params.update(extra or {})
    return client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": sign(params)}
    )


def seed_clinic(db: Session, now: datetime) -> None:
    db.add(
        Location(
            id="main",
            name="Downtown",
            address="1 Main St",
            phone="+14105550100",
            timezone="America/New_York",
        )
    )
    db.add_all(
        [
            Patient(
                id="p1",
                first_name="Ana",
                phone=P1,
                email="ana@example.com",
                language="en",
                sms_consent=True,
                email_consent=True,
            ),
            Patient(
                id="p2",
                first_name="Beto",
                phone=P2,
                email="beto@example.com",
                language="es",
                sms_consent=True,
                email_consent=True,
            ),
            Patient(id="p3", first_name="Carla", phone=FAMILY, language="en", sms_consent=True),
            Patient(id="p4", first_name="Dani", phone=FAMILY, language="en", sms_consent=True),
        ]
    )
    db.flush()
    db.add_all(
        [
            TreatmentSession(
                id="s1-past",
                patient_id="p1",
                location_id="main",
                starts_at=now - timedelta(days=2),
                status="completed",
            ),
            TreatmentSession(
                id="s1-cancelled",
                patient_id="p1",
                location_id="main",
                starts_at=now + timedelta(days=1),
                status="cancelled",
            ),
            TreatmentSession(
                id="s1-next", patient_id="p1", location_id="main", starts_at=now + timedelta(days=2)
            ),
            TreatmentSession(
                id="s1-later",
                patient_id="p1",
                location_id="main",
                starts_at=now + timedelta(days=5),
            ),
            TreatmentSession(
                id="s2-next", patient_id="p2", location_id="main", starts_at=now + timedelta(days=3)
            ),
            TreatmentSession(
                id="s3-next", patient_id="p3", location_id="main", starts_at=now + timedelta(days=4)
            ),
            TreatmentSession(
                id="s4-next", patient_id="p4", location_id="main", starts_at=now + timedelta(days=4)
            ),
        ]
    )
    db.commit()


def sent_message(
    db: Session,
    *,
    patient_id: str,
    kind: str,
    sent_at: datetime,
    session_id: str | None = None,
    key: str | None = None,
) -> Message:
    msg = Message(
        dedupe_key=key or f"test:{patient_id}:{kind}:{sent_at.isoformat()}",
        patient_id=patient_id,
        session_id=session_id,
        rule=f"test-{kind}",
        kind=kind,
        channel="sms",
        template=kind,
        due_at=sent_at,
        status="sent",
        sent_at=sent_at,
    )
    db.add(msg)
    db.commit()
    return msg


def utc(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)
