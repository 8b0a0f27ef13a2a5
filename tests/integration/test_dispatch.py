"""The dispatcher against real databases: leases, retries, permanent errors, bad templates,
crash recovery. The provider here is a scripted stand-in at the provider boundary; the
real adapters are tested against local HTTP servers in tests/providers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import Message, Patient, TemplateVersion, TreatmentSession
from reminders.dispatch.dispatcher import Dispatcher
from reminders.outbox.consent import is_opted_out
from reminders.outbox.store import claim_due
from reminders.planning.plan_pass import plan_pass
from reminders.providers.base import OutgoingMessage, PermanentError, Provider, TransientError
from reminders.providers.dryrun import DryRunProvider
from reminders.runtime import Runtime
from reminders.settings import Settings

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 10:00 in New York: not quiet


class ScriptedProvider(Provider):
    """Answers each send with the next scripted outcome (an id or an exception)."""

    name: ClassVar[str] = "scripted"
    channel: ClassVar[str] = "sms"

    def __init__(self, outcomes: list[object]) -> None:
        super().__init__()
        self.outcomes = outcomes
        self.sent: list[OutgoingMessage] = []
        self.lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> str:
        with self.lock:
            self.sent.append(message)
            outcome = self.outcomes.pop(0) if self.outcomes else f"ok-{message.message_id}"
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)


@pytest.fixture
def clinic(session_factory: sessionmaker[Session], settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    with session_factory() as db:
        for i in range(3):
            db.add(
                Patient(
                    id=f"p{i}",
                    first_name=f"P{i}",
                    phone=f"+1410555010{i}",
                    email=f"p{i}@example.com",
                    sms_consent=True,
                    email_consent=True,
                    language="en",
                )
            )
            # Day-before SMS due at NOW - 1 minute; no other SMS due yet.
            db.add(
                TreatmentSession(
                    id=f"s{i}",
                    patient_id=f"p{i}",
                    starts_at=NOW + timedelta(days=1, minutes=-1),
                    duration_minutes=60,
                    kind="infusion",
                    status="scheduled",
                )
            )
        db.commit()
        plan_pass(db, policy=runtime.policy, default_tz=settings.zone, now=NOW)
    yield runtime
    runtime.close()


def make_dispatcher(runtime: Runtime, sms: Provider, owner: str = "w1") -> Dispatcher:
    email = DryRunProvider(channel="email", directory=runtime.settings.dryrun_dir)
    return Dispatcher(
        settings=runtime.settings,
        policy=runtime.policy,
        session_factory=runtime.session_factory,
        providers={"sms": sms, "email": email},
        owner=owner,
    )


def sms_rows(runtime: Runtime) -> list[Message]:
    with runtime.session_factory() as db:
        return list(
            db.scalars(
                select(Message)
                .where(Message.channel == "sms", Message.due_at <= NOW)
                .order_by(Message.patient_id)
            )
        )


def test_transient_errors_retry_with_backoff_then_succeed(clinic: Runtime) -> None:
    provider = ScriptedProvider([TransientError("busy", code="20429", retry_after=120), "SM1"])
    d = make_dispatcher(clinic, provider)
    report = d.run_pass(NOW)
    assert report.retrying == 1 and report.sent == 2 + 3  # two SMS and the three prep emails
    retrying = next(m for m in sms_rows(clinic) if m.status == "planned")
    assert retrying.next_attempt_at is not None and retrying.next_attempt_at >= NOW + timedelta(
        seconds=120
    )
    assert retrying.error_code == "20429" and retrying.attempts == 1
    assert d.run_pass(NOW + timedelta(seconds=30)).handled == 0  # not before its backoff
    report = d.run_pass(NOW + timedelta(minutes=5))
    assert report.sent == 1
    assert [m.status for m in sms_rows(clinic)] == ["sent"] * 3
    assert len(provider.sent) == 4  # three messages, one of them twice
    d.close()


def test_permanent_error_fails_once_and_is_never_retried(clinic: Runtime) -> None:
    provider = ScriptedProvider([PermanentError("blocked", code="21610", effect="opted_out")])
    d = make_dispatcher(clinic, provider)
    d.run_pass(NOW)
    failed = [m for m in sms_rows(clinic) if m.status == "failed"]
    assert (
        len(failed) == 1 and failed[0].error_code == "21610" and "21610" in (failed[0].reason or "")
    )
    with clinic.session_factory() as db:
        patient = db.get(Patient, failed[0].patient_id)
        assert patient is not None and is_opted_out(db, "sms", patient.phone or "")
        # The rule falls back to email: that copy was queued and sent in the same pass.
        fallback = db.scalar(
            select(Message).where(
                Message.patient_id == patient.id,
                Message.channel == "email",
                Message.rule == failed[0].rule,
            )
        )
        assert fallback is not None and fallback.status == "sent"
    for later in (5, 60, 600):
        d.run_pass(NOW + timedelta(minutes=later))
    assert len([m for m in provider.sent if m.message_id == failed[0].id]) == 1
    d.close()


def test_transient_errors_give_up_before_the_message_is_stale(clinic: Runtime) -> None:
    provider = ScriptedProvider([TransientError("down", code="503")] * 50)
    d = make_dispatcher(clinic, provider)
    at = NOW
    for _ in range(12):
        d.run_pass(at)
        at += timedelta(hours=2)
    rows = sms_rows(clinic)
    assert {m.status for m in rows} <= {"failed", "skipped"}
    for m in rows:
        assert m.reason and ("gave_up" in m.reason or m.reason == "session_started")
    d.close()


def test_a_broken_template_fails_that_message_only(clinic: Runtime) -> None:
    with clinic.session_factory() as db:
        # A staff version stored without going through the checker (e.g. an old bad row).
        db.add(
            TemplateVersion(
                name="day_before",
                channel="sms",
                language="en",
                version=99,
                body="Hi {{ patient.first_name }",
                created_by="test",
            )
        )
        db.add(
            Patient(id="px", first_name="X", phone="+14105550199", sms_consent=True, language="en")
        )
        db.commit()
    provider = ScriptedProvider([])
    d = make_dispatcher(clinic, provider)
    report = d.run_pass(NOW)
    assert report.failed == 3 and report.sent == 3  # the SMS fail; the emails go on
    rows = sms_rows(clinic)
    assert all(m.status == "failed" and (m.reason or "").startswith("template_error") for m in rows)
    assert provider.sent == []
    d.close()


def test_expired_lease_is_reclaimed_but_sending_in_doubt_is_not_resent(clinic: Runtime) -> None:
    with clinic.session_factory() as db:
        ids = claim_due(db, now=NOW, owner="crashed", limit=10, lease=timedelta(seconds=60))
        assert len(ids) == 6  # three prep emails and three day-before SMS
        in_doubt = next(m.id for m in sms_rows(clinic))
        # The crashed worker had marked one SMS as sending (handed to the provider) before dying.
        db.execute(update(Message).where(Message.id == in_doubt).values(status="sending"))
        db.commit()
    provider = ScriptedProvider([])
    d = make_dispatcher(clinic, provider, owner="w2")
    assert d.run_pass(NOW + timedelta(seconds=30)).handled == 0  # leases still held
    report = d.run_pass(NOW + timedelta(seconds=90))
    assert report.sent == 5 and len(provider.sent) == 2
    assert in_doubt not in {m.message_id for m in provider.sent}
    with clinic.session_factory() as db:
        message = db.get(Message, in_doubt)
        assert message is not None
        assert message.status == "sending"
    d.close()


def test_session_cancelled_after_planning_is_caught_at_send_time(clinic: Runtime) -> None:
    with clinic.session_factory() as db:
        db.execute(
            update(TreatmentSession).where(TreatmentSession.id == "s0").values(status="cancelled")
        )
        db.commit()
    provider = ScriptedProvider([])
    d = make_dispatcher(clinic, provider)
    d.run_pass(NOW)
    rows = {m.patient_id: m for m in sms_rows(clinic)}
    assert rows["p0"].status == "cancelled" and rows["p0"].reason == "session_cancelled"
    assert {m.patient_id for m in provider.sent} == {"p1", "p2"}
    d.close()


def test_quiet_hours_are_checked_again_at_send_time(clinic: Runtime, settings: Settings) -> None:
    provider = ScriptedProvider([])
    d = make_dispatcher(clinic, provider)
    night = NOW.replace(hour=7)  # 02:00 in New York, the session is the next morning
    with clinic.session_factory() as db:
        db.execute(
            update(Message)
            .where(Message.channel == "sms")
            .values(due_at=night - timedelta(minutes=1))
        )
        db.commit()
    report = d.run_pass(night)
    assert provider.sent == [] and report.deferred >= 3  # no SMS at 2 a.m.; the emails may go
    rows = sms_rows(clinic)
    assert rows and all(m.status in ("planned", "skipped") for m in rows)
    deferred = [m for m in rows if m.status == "planned"]
    for m in deferred:  # moved to 08:00 local, still before the session
        assert m.due_at.astimezone(settings.zone).hour == 8
    d.close()


def test_dry_run_lines_carry_the_contract_fields(clinic: Runtime, settings: Settings) -> None:
    d = make_dispatcher(clinic, DryRunProvider(channel="sms", directory=settings.dryrun_dir))
    d.run_pass(NOW)
    lines = [json.loads(x) for x in Path(settings.dryrun_dir, "sms.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        for key in (
            "message_id",
            "channel",
            "to",
            "body",
            "subject",
            "rule",
            "kind",
            "session_id",
            "patient_id",
            "sent_at",
        ):
            assert key in line
        assert line["to"].startswith("+1410555010")
    d.close()


def test_a_timeout_after_sending_leaves_the_message_in_doubt_not_resent(clinic: Runtime) -> None:
    from reminders.outbox.settle import count_in_doubt
    from reminders.providers.base import OutcomeUnknown

    provider = ScriptedProvider([OutcomeUnknown("no answer", code="timeout")])
    d = make_dispatcher(clinic, provider)
    assert d.run_pass(NOW).in_doubt == 1
    for later in (5, 60, 600):
        d.run_pass(NOW + timedelta(minutes=later))
    doubtful = [m for m in sms_rows(clinic) if m.status == "sending"]
    assert len(doubtful) == 1 and (doubtful[0].reason or "").startswith("in doubt")
    assert len([m for m in provider.sent if m.message_id == doubtful[0].id]) == 1
    with clinic.session_factory() as db:
        assert count_in_doubt(db, NOW + timedelta(seconds=1)) == 1
    d.close()
