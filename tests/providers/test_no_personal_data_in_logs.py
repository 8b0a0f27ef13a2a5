"""Across sends and callbacks, no number, address, token, secret or body reaches the logs."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from reminders.outbox.unsubscribe import make_token
from reminders.providers.base import OutgoingMessage, ProviderError
from reminders.providers.sendgrid.send import SendGridProvider
from reminders.providers.smtp.send import SmtpProvider
from reminders.providers.twilio.send import TwilioProvider
from tests.conftest import make_test_settings
from tests.providers.conftest import Reply, ScriptedServer, free_port
from tests.providers.helpers import (
    AUTH_TOKEN,
    EMAIL,
    PHONE,
    SendGridSigner,
    add_message,
    add_patient,
    body_of,
    make_app,
    sg_event,
)
from tests.providers.test_smtp import Handler

PUBLIC_URL = "https://clinic.example.org"
BODY = "Hola Ana, your infusion is tomorrow at 9:00"
API_KEY = "SG.super-secret-api-key"


def test_logs_hold_ids_only(
    caplog: pytest.LogCaptureFixture,
    scripted: ScriptedServer,
    db_url: str,
    tmp_path: Path,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> None:
    caplog.set_level(logging.DEBUG)
    signer = SendGridSigner()
    settings = make_test_settings(
        db_url,
        tmp_path,
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        sendgrid_webhook_public_key=signer.public_key,
    )
    add_patient(session_factory)
    sms_id = add_message(session_factory, channel="sms")
    email_id = add_message(session_factory, channel="email")
    token = make_token(settings, patient_id="p1", address=EMAIL)

    # Sends: success and failures through each adapter.
    twilio = TwilioProvider(
        account_sid="AC" + "1" * 32,
        auth_token=AUTH_TOKEN,
        public_url=PUBLIC_URL,
        from_number="+14105550100",
        base_url=scripted.url,
        rate_per_second=0,
    )
    sendgrid = SendGridProvider(
        api_key=API_KEY, from_email="r@clinic.example.org", base_url=scripted.url, rate_per_second=0
    )
    scripted.script(
        Reply(201, {"sid": "SM" + "c" * 32, "to": PHONE, "body": BODY}),
        Reply(
            400, {"code": 21610, "message": f"Attempt to send to unsubscribed recipient {PHONE}"}
        ),
        Reply(202, None, {"X-Message-Id": "xyz"}),
        Reply(
            400,
            {
                "errors": [
                    {"message": f"{EMAIL} is invalid", "field": "personalizations.0.to.0.email"}
                ]
            },
        ),
    )
    sms = OutgoingMessage(message_id=sms_id, channel="sms", to=PHONE, body=BODY)
    mail = OutgoingMessage(
        message_id=email_id,
        channel="email",
        to=EMAIL,
        body=BODY,
        subject="Tomorrow",
        html=f"<p>{BODY}</p>",
        unsubscribe_url=f"{PUBLIC_URL}/unsubscribe/{token}",
    )
    for provider, message in ((twilio, sms), (twilio, sms), (sendgrid, mail), (sendgrid, mail)):
        with contextlib.suppress(ProviderError):
            provider.send(message)
    handler, port = Handler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        SmtpProvider(
            host="127.0.0.1",
            port=port,
            security="none",
            from_email="r@clinic.example.org",
            rate_per_second=0,
        ).send(mail)
    finally:
        controller.stop()

    # Callbacks: Twilio status (good and forged), SendGrid events, unsubscribe.
    with TestClient(make_app(settings, engine)) as client:
        params = {
            "MessageSid": "SM" + "c" * 32,
            "MessageStatus": "failed",
            "ErrorCode": "21610",
            "To": PHONE,
            "Body": BODY,
        }
        url = f"{PUBLIC_URL}/webhooks/twilio/status?mid={sms_id}"
        sig = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        for signature in (sig, "forged"):
            client.post(
                f"/webhooks/twilio/status?mid={sms_id}",
                content=urlencode(params),
                headers={
                    "X-Twilio-Signature": signature,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        body = body_of(
            [
                sg_event("bounce", email_id, "l1", reason=f"550 {EMAIL} unknown"),
                sg_event("unsubscribe", email_id, "l2"),
            ]
        )
        client.post("/webhooks/sendgrid/events", content=body, headers=signer.headers(body))
        client.post(f"/unsubscribe/{token}", content="List-Unsubscribe=One-Click")

    # Left out: the test SMTP server and the test HTTP client (uvicorn.access is quiet in production).
    records = [r for r in caplog.records if not r.name.startswith(("mail.log", "asyncio", "httpx"))]
    assert any(r.name.startswith("reminders.") for r in records)
    text = "\n".join(
        f"{r.name} {r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in records
    )
    for secret in (
        PHONE,
        PHONE[2:],
        "410-555-0101",
        EMAIL,
        EMAIL.split("@")[0],
        BODY,
        "infusion",
        token,
        AUTH_TOKEN,
        API_KEY,
        sig,
    ):
        assert secret not in text, f"{secret!r} leaked into the logs"
