"""Shared test helpers: a minimal app with the feature routers, and outbox rows to act on."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import Message, Patient
from reminders.providers.sendgrid import webhooks as sendgrid_webhooks
from reminders.providers.twilio import webhooks as twilio_webhooks
from reminders.runtime import Runtime
from reminders.settings import Settings
from reminders.web import unsubscribe

PHONE = "+14105550101"
EMAIL = "ana.diaz@example.com"
AUTH_TOKEN = "twilio-auth-token-for-tests"
PUBLIC_URL = "https://clinic.example.org/reminders"


def make_app(settings: Settings, engine: Engine) -> FastAPI:
    """Only this feature's routers, so other work in progress cannot break these tests."""
    app = FastAPI()
    app.state.runtime = Runtime(settings, _engine=engine)
    app.include_router(twilio_webhooks.router)
    app.include_router(sendgrid_webhooks.router)
    app.include_router(unsubscribe.router)
    return app


def add_patient(factory: sessionmaker[Session], patient_id: str = "p1") -> None:
    with factory() as db:
        db.add(
            Patient(
                id=patient_id,
                first_name="Ana",
                phone=PHONE,
                email=EMAIL,
                sms_consent=True,
                email_consent=True,
            )
        )
        db.commit()


def add_message(
    factory: sessionmaker[Session],
    *,
    channel: str,
    status: str = "sent",
    patient_id: str = "p1",
    key: str | None = None,
) -> int:
    now = datetime.now(UTC)
    with factory() as db:
        row = Message(
            dedupe_key=key or f"{channel}-{status}-{now.timestamp()}-{id(object())}",
            patient_id=patient_id,
            rule="reminder-1d",
            kind="reminder",
            channel=channel,
            template="reminder",
            due_at=now - timedelta(minutes=5),
            status=status,
            provider="test",
            sent_at=now if status != "planned" else None,
        )
        db.add(row)
        db.commit()
        return row.id


def get_message(factory: sessionmaker[Session], message_id: int) -> Message:
    with factory() as db:
        row = db.get(Message, message_id)
        assert row is not None
        db.expunge(row)
        return row


class SendGridSigner:
    """Signs event batches the way SendGrid does: ECDSA P-256 / SHA-256 over timestamp + body."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = self.key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "Content-Type": "application/json",
        }


def sg_event(kind: str, message_id: int | str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "abc.filter",
        "message_id": str(message_id),
        **extra,
    }


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()
