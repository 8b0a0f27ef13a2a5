"""`reminders tick` sends the demo clinic's due messages through the real Twilio and
SendGrid SDKs to Prism mock servers built from the official OpenAPI specs: every request
validates, and the outbox rows carry the provider ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reminders.cli import main
from reminders.clinic.demo import load_demo
from reminders.runtime import Runtime
from reminders.settings import load_settings
from tests.providers.conftest import PrismServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_providers(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    twilio_prism: PrismServer,
    sendgrid_prism: PrismServer,
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "REMINDERS_DATABASE_URL": db_url,
        "REMINDERS_SMS_PROVIDER": "twilio",
        "REMINDERS_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "REMINDERS_TWILIO_AUTH_TOKEN": "twilio-test-token",
        "REMINDERS_TWILIO_FROM_NUMBER": "+14105550000",
        "REMINDERS_TWILIO_BASE_URL": twilio_prism.url,
        "REMINDERS_SMS_RATE_PER_SECOND": "0",
        "REMINDERS_EMAIL_PROVIDER": "sendgrid",
        "REMINDERS_SENDGRID_API_KEY": "SG.test-key",
        "REMINDERS_SENDGRID_BASE_URL": sendgrid_prism.url,
        "REMINDERS_EMAIL_FROM": "reminders@clinic.example.org",
        "REMINDERS_EMAIL_RATE_PER_SECOND": "0",
        "REMINDERS_SECRET_KEY": "a-real-looking-secret-key-0123456789",
        "REMINDERS_PUBLIC_URL": "https://reminders.clinic.example.org",
    }.items():
        monkeypatch.setenv(key, value)


def test_demo_clinic_tick_through_real_sdks(
    real_providers: None,
    twilio_prism: PrismServer,
    sendgrid_prism: PrismServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marks = (twilio_prism.checkpoint(), sendgrid_prism.checkpoint())
    # The demo clinic as `reminders demo` loads it, placed around midday in New York so the
    # SMS are not held back by quiet hours.
    now = datetime.now(UTC).replace(hour=17, minute=0, second=0, microsecond=0)
    runtime = Runtime(load_settings())
    runtime.upgrade_schema()
    load_demo(runtime, now=now)
    runtime.close()
    capsys.readouterr()
    assert main(["tick", "--now", now.isoformat()]) == 0
    summary = capsys.readouterr().out
    assert main(["outbox", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    sent = [r for r in rows if r["status"] == "sent"]
    channels = {r["channel"] for r in sent}
    assert channels == {"sms", "email"}, summary
    assert all(r["provider_message_id"] for r in sent if r["channel"] == "sms")
    assert not [r for r in rows if r["status"] == "failed"], [
        r["reason"] for r in rows if r["status"] == "failed"
    ]
    assert twilio_prism.validation_errors(since=marks[0]) == []
    assert sendgrid_prism.validation_errors(since=marks[1]) == []
