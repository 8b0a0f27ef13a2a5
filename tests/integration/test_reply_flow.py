"""Replies and the outbound engine together, over HTTP with real Twilio signatures:
STOP stops the next reminder and START resumes; a crisis reply at 3 a.m. from an
opted-out patient alerts on-call staff at once, and every message shows its status."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from reminders.db.models import Message, OptOut, Patient, TreatmentSession
from reminders.runtime import Runtime
from reminders.web.app import create_app
from reminders.worker import run_tick
from tests.conftest import make_test_settings

TOKEN = "flow-test-auth-token"
PHONE = "+14105550101"


def zone_at_local_hour(now: datetime, hour: int) -> str:
    """A fixed-offset zone where it is ``hour`` o'clock now (so quiet hours never interfere)."""
    offset = (hour - now.hour + 12) % 24 - 12
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = make_test_settings(
        db_url,
        tmp_path,
        twilio_auth_token=TOKEN,
        oncall_phones="+14105550900",
        oncall_emails="oncall@example.com",
    )
    rt = Runtime(settings)
    yield rt
    rt.close()


def post_sms(client: TestClient, body: str, sid: str) -> Any:
    """A signed inbound SMS; ``sid`` names it (the same name is the same MessageSid)."""
    params = {
        "MessageSid": "SM" + hashlib.md5(sid.encode()).hexdigest(),
        "AccountSid": "AC" + "0" * 32,
        "From": PHONE,
        "To": "+14105550000",
        "Body": body,
    }
    signature = RequestValidator(TOKEN).compute_signature(
        "http://testserver/webhooks/twilio/sms", params
    )
    return client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
    )


def dry_run(rt: Runtime, channel: str) -> list[dict[str, Any]]:
    path = Path(rt.settings.dryrun_dir) / f"{channel}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_stop_stops_the_next_reminder_and_start_resumes(runtime: Runtime) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with runtime.session_factory() as db:
        db.add(
            Patient(
                id="p1",
                first_name="Ana",
                phone=PHONE,
                sms_consent=True,
                language="en",
                timezone=zone_at_local_hour(now, 12),
            )
        )
        db.flush()
        for i, days in enumerate(
            (1, 3, 5), start=1
        ):  # day-before SMS due now, in 2 days, in 4 days
            db.add(
                TreatmentSession(
                    id=f"s{i}",
                    patient_id="p1",
                    starts_at=now + timedelta(days=days, minutes=1),
                    kind="consultation",
                )
            )
        db.commit()
    client = TestClient(create_app(runtime))
    run_tick(runtime, now=now + timedelta(minutes=1))
    assert [r["session_id"] for r in dry_run(runtime, "sms")] == ["s1"]

    assert post_sms(client, "STOP", "SM-stop").status_code == 200
    run_tick(runtime, now=now + timedelta(days=2, minutes=1))
    with runtime.session_factory() as db:
        s2 = db.scalar(select(Message).where(Message.session_id == "s2", Message.channel == "sms"))
        assert s2 is not None and s2.status == "skipped"
        assert s2.reason == "sms_opted_out; email fallback impossible: no_email"
        assert db.scalar(select(OptOut.active).where(OptOut.address == PHONE)) is True
    # The STOP confirmation itself did go out (a reply, not a reminder).
    assert [r["kind"] for r in dry_run(runtime, "sms")] == ["reminder", "reply"]

    assert post_sms(client, "START", "SM-start").status_code == 200
    run_tick(runtime, now=now + timedelta(days=4, minutes=1))
    sms = dry_run(runtime, "sms")
    assert [(r["kind"], r["session_id"]) for r in sms if r["kind"] == "reminder"] == [
        ("reminder", "s1"),
        ("reminder", "s3"),
    ]


def test_crisis_at_3am_from_opted_out_patient_alerts_staff(runtime: Runtime) -> None:
    from reminders.conversations.inbound import receive  # the webhook's handling, with a clock

    # 03:00 in New York; the patient opted out of SMS reminders earlier.
    night = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    with runtime.session_factory() as db:
        db.add(Patient(id="p1", first_name="Ana", phone=PHONE, sms_consent=True, language="en"))
        db.add(OptOut(channel="sms", address=PHONE, source="keyword"))
        db.commit()
    result = receive(
        runtime.session_factory,
        runtime.settings,
        channel="sms",
        from_address=PHONE,
        body="i cant go on anymore, i want to kill myself",
        provider_message_id="SM-crisis",
        now=night,
    )
    assert result.classification == "crisis"
    summary = run_tick(runtime, now=night + timedelta(seconds=5))
    assert summary.dispatch.sent == 3
    by_kind = {
        (r["kind"], r["channel"]): r for r in dry_run(runtime, "sms") + dry_run(runtime, "email")
    }
    assert by_kind[("alert", "sms")]["to"] == "+14105550900"
    assert by_kind[("alert", "email")]["to"] == "oncall@example.com"
    reply = by_kind[("reply", "sms")]
    assert reply["to"] == PHONE and "988" in reply["body"] and "911" in reply["body"]
    assert (
        "kill" not in by_kind[("alert", "sms")]["body"].lower()
    )  # staff alert carries no patient text
    with runtime.session_factory() as db:
        rows = db.scalars(select(Message).where(Message.kind.in_(("alert", "reply")))).all()
        assert len(rows) == 3 and {m.status for m in rows} == {"sent"}
        assert all(m.provider_message_id for m in rows)


def test_unconfirmed_infusion_is_flagged_and_optionally_alerts(db_url: str, tmp_path: Path) -> None:
    from reminders.conversations.safety import run_safety_checks
    from reminders.db.models import StaffTask

    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    for alert in (False, True):
        settings = make_test_settings(
            db_url, tmp_path, oncall_phones="+14105550900", unconfirmed_alert=alert
        )
        rt = Runtime(settings)
        with rt.session_factory() as db:
            pid = f"p-{alert}"
            db.add(Patient(id=pid, first_name="Ana", phone=PHONE, sms_consent=True))
            db.flush()
            db.add(
                TreatmentSession(
                    id=f"s-{alert}", patient_id=pid, starts_at=now + timedelta(hours=10)
                )
            )
            db.commit()
            assert run_safety_checks(db, settings, now) == 1
            assert run_safety_checks(db, settings, now + timedelta(minutes=5)) == 0  # flagged once
            task = db.scalar(select(StaffTask).where(StaffTask.session_id == f"s-{alert}"))
            assert task is not None and task.kind == "unconfirmed"
            alerts = db.scalars(
                select(Message).where(Message.kind == "alert", Message.patient_id == pid)
            ).all()
            assert len(alerts) == (1 if alert else 0)
        rt.close()
