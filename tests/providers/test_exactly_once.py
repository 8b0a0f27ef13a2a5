"""Exactly once, through the real SDKs against the recording stand-in (tests/standin.py): a
lost answer is reconciled, never re-sent blindly; a message the provider never got is sent
again; email follows the in-doubt rule; provider reports settle in-doubt rows; the lookup the
reconciler makes is valid against Twilio's official spec (Prism).

Outcomes are counted from what the stand-in received, not from the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from reminders.db.models import Message, StaffTask
from reminders.providers.base import SentRequest
from reminders.providers.sendgrid.webhooks import apply_sendgrid_events
from reminders.providers.twilio.send import TwilioProvider
from reminders.providers.twilio.webhooks import apply_twilio_status
from reminders.runtime import Runtime
from reminders.worker import Worker
from tests.conftest import make_test_settings
from tests.providers.conftest import PrismServer, free_port
from tests.standin import Faults, ProviderStandIn

SID = "AC" + "0" * 32
TOKEN = "stand-in-token"
KEY = "SG.stand-in-key"
ONCALL_PHONE = "+14105550123"
ONCALL_EMAIL = "oncall@clinic.example.org"


@pytest.fixture
def standin() -> Iterator[ProviderStandIn]:
    with ProviderStandIn(account_sid=SID, auth_token=TOKEN, sendgrid_key=KEY) as server:
        yield server


def runtime_for(
    db_url: str, tmp_path: Path, standin: ProviderStandIn, **overrides: object
) -> Runtime:
    settings = make_test_settings(
        db_url,
        tmp_path,
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14105550000",
        twilio_base_url=standin.url,
        email_provider="sendgrid",
        sendgrid_api_key=KEY,
        sendgrid_base_url=standin.url,
        email_from="reminders@clinic.example.org",
        sms_rate_per_second=0,
        email_rate_per_second=0,
        oncall_emails=ONCALL_EMAIL,
        provider_timeout_seconds=0.5,
        **overrides,
    )
    runtime = Runtime(settings)
    runtime.upgrade_schema()
    return runtime


WorkerFor = Callable[..., tuple[Runtime, Worker]]


@pytest.fixture
def worker_for(db_url: str, tmp_path: Path, standin: ProviderStandIn) -> Iterator[WorkerFor]:
    """A worker whose providers are the stand-in (settings overridden by keyword), closed at
    the end of the test."""
    made: list[tuple[Runtime, Worker]] = []

    def make(**overrides: object) -> tuple[Runtime, Worker]:
        runtime = runtime_for(db_url, tmp_path, standin, **overrides)
        made.append((runtime, Worker(runtime)))
        return made[-1]

    yield make
    for runtime, worker in made:
        worker.close()
        runtime.close()


def queue_alert(runtime: Runtime, channel: str, n: int = 1) -> int:
    """A staff alert due now (no consent or quiet-hours checks): the simplest real message."""
    now = datetime.now(UTC)
    with runtime.session_factory() as db:
        row = Message(
            dedupe_key=f"test-alert-{channel}-{n}-{now.timestamp()}",
            rule="alert:crisis",
            kind="alert",
            channel=channel,
            template="staff_alert",
            due_at=now - timedelta(seconds=1),
            status="planned",
            to_address=ONCALL_PHONE if channel == "sms" else ONCALL_EMAIL,
            language="en",
            data={
                "summary": f"possible crisis {n}",
                "kind": "crisis",
                "patient_id": "p1",
                "link": "http://testserver/staff/tasks/1",
            },
        )
        db.add(row)
        db.commit()
        return row.id


def row(runtime: Runtime, message_id: int) -> Message:
    with runtime.session_factory() as db:
        msg = db.get(Message, message_id)
        assert msg is not None
        db.expunge(msg)
        return msg


def test_a_reset_after_acceptance_is_reconciled_to_exactly_one_sms(
    worker_for: WorkerFor, standin: ProviderStandIn
) -> None:
    runtime, worker = worker_for(reconcile_resend_after_seconds=0)
    mid = queue_alert(runtime, "sms")
    standin.set_faults(Faults(rate=1.0, kinds=("reset_after",)))
    assert worker.dispatch_step().in_doubt == 1
    doubtful = row(runtime, mid)
    assert doubtful.status == "sending" and (doubtful.reason or "").startswith("in doubt")
    standin.set_faults(Faults())
    # Nothing re-sends it blindly: another dispatch pass leaves it alone.
    assert worker.dispatch_step().handled == 0
    report = worker.reconcile_step()
    assert (report.found, report.resent) == (1, 0)
    settled = row(runtime, mid)
    accepted = [a for a in standin.accepted() if a.outbox_id == mid]
    assert settled.status == "sent" and settled.provider_message_id == accepted[0].provider_id
    for _ in range(2):
        worker.dispatch_step()
        worker.reconcile_step()
    assert standin.received_counts("sms") == {mid: 1}


def test_a_message_the_provider_never_got_is_sent_again_once_the_safe_delay_has_passed(
    worker_for: WorkerFor, standin: ProviderStandIn
) -> None:
    runtime, worker = worker_for(reconcile_resend_after_seconds=1.5)
    mid = queue_alert(runtime, "sms")
    # The connection is reset before Twilio took the message: the sender cannot tell.
    standin.set_faults(Faults(rate=1.0, kinds=("drop",)))
    assert worker.dispatch_step().in_doubt == 1
    standin.set_faults(Faults())
    # Too early to conclude anything from its absence: asked, and left in doubt.
    assert worker.reconcile_step().waiting == 1
    assert row(runtime, mid).status == "sending"
    assert standin.received_counts("sms") == {}
    lists = [r for r in standin.requests() if r.kind == "list"]
    assert lists, "the reconciler asked Twilio's message list"
    # Past the safe delay it is still absent: sent again, once.
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while row(runtime, mid).status == "sending" and datetime.now(UTC) < deadline:
        worker.reconcile_step(datetime.now(UTC) + timedelta(seconds=2))
    again = row(runtime, mid)
    assert again.status == "planned" and again.resends == 1
    assert (again.reason or "").startswith("reconciled: twilio has no such message")
    assert worker.dispatch_step().sent == 1
    for _ in range(2):
        worker.reconcile_step()
        worker.dispatch_step()
    assert standin.received_counts("sms") == {mid: 1}
    assert row(runtime, mid).status == "sent"


def test_an_email_without_any_word_from_sendgrid_is_sent_again_once_by_default(
    worker_for: WorkerFor, standin: ProviderStandIn
) -> None:
    runtime, worker = worker_for(email_in_doubt_window_seconds=0, max_attempts=2)
    mid = queue_alert(runtime, "email")
    # SendGrid took it, and the answer came too late for the client (1.0 s > 0.5 s).
    standin.set_faults(Faults(rate=1.0, kinds=("timeout",), timeout_seconds=1.0))
    assert worker.dispatch_step().in_doubt == 1
    report = worker.reconcile_step()
    assert report.resent == 1
    assert row(runtime, mid).resends == 1
    # Nothing more happens to it until it is sent again.
    assert worker.reconcile_step().handled == 0
    # The re-send's answer is lost too, and it was the last attempt allowed: staff are asked.
    assert worker.dispatch_step().in_doubt == 1
    assert worker.reconcile_step().unresolved == 1
    final = row(runtime, mid)
    assert final.status == "failed" and "unresolved" in (final.reason or "")
    assert standin.received_counts("email") == {mid: 2}  # the documented price of the rule
    with runtime.session_factory() as db:
        task = db.scalar(
            select(StaffTask).where(StaffTask.dedupe_key == f"message:{mid}:unresolved")
        )
        assert task is not None and task.kind == "delivery_failed"
        assert task.acknowledged_at is None


def test_with_the_task_rule_an_unanswered_email_is_never_sent_twice(
    worker_for: WorkerFor, standin: ProviderStandIn
) -> None:
    runtime, worker = worker_for(email_in_doubt_window_seconds=0, email_in_doubt_rule="task")
    mid = queue_alert(runtime, "email")
    standin.set_faults(Faults(rate=1.0, kinds=("reset_after",)))
    assert worker.dispatch_step().in_doubt == 1
    standin.set_faults(Faults())
    assert worker.reconcile_step().unresolved == 1
    worker.dispatch_step()
    assert standin.received_counts("email") == {mid: 1}
    assert row(runtime, mid).status == "failed"


def test_provider_reports_of_acceptance_settle_an_in_doubt_row(
    worker_for: WorkerFor, standin: ProviderStandIn
) -> None:
    runtime, worker = worker_for()
    sms, email = queue_alert(runtime, "sms"), queue_alert(runtime, "email", 2)
    standin.set_faults(Faults(rate=1.0, kinds=("reset_after",)))
    assert worker.dispatch_step().in_doubt == 2
    sid = next(a.provider_id for a in standin.accepted() if a.outbox_id == sms)
    # Twilio's "sent" (no delivery receipt from the carrier) proves acceptance.
    outcome = apply_twilio_status(
        runtime.session_factory,
        message_id=sms,
        status="sent",
        error_code=None,
        to=ONCALL_PHONE,
        sid=sid,
    )
    assert outcome == "applied"
    settled = row(runtime, sms)
    assert settled.status == "sent" and settled.provider_message_id == sid
    # SendGrid's "processed" does the same for email.
    event = {
        "email": ONCALL_EMAIL,
        "timestamp": 1,
        "event": "processed",
        "sg_event_id": "processed-1",
        "sg_message_id": "abc123.filter0001",
        "message_id": str(email),
    }
    assert apply_sendgrid_events(runtime.session_factory, [event]) == ["applied"]
    assert row(runtime, email).status == "sent"
    # Nothing is left for the reconciler, and nothing went out twice.
    assert worker.reconcile_step().handled == 0
    assert standin.received_counts() == {sms: 1, email: 1}
    # A later "sent" report on a delivered row changes nothing.
    apply_twilio_status(
        runtime.session_factory, message_id=sms, status="delivered", error_code=None, to=None
    )
    apply_twilio_status(
        runtime.session_factory, message_id=sms, status="sent", error_code=None, to=None
    )
    assert row(runtime, sms).status == "delivered"


def test_the_reconcilers_lookup_is_valid_against_the_official_spec(
    twilio_prism: PrismServer,
) -> None:
    mark = twilio_prism.checkpoint()
    provider = TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        public_url="https://reminders.clinic.example.org",
        from_number="+14105550000",
        base_url=twilio_prism.url,
    )
    try:
        found = provider.lookup(
            SentRequest(
                message_id=7,
                to="+14105550123",
                body="testing",
                subject=None,
                began_at=datetime(2026, 3, 2, 15, 0, tzinfo=UTC),
            )
        )
    finally:
        provider.close()
    # The request validated. (Prism then refuses its own example page: the spec's example has
    # relative URIs where the schema says format "uri", so the provider reports "cannot tell".)
    assert twilio_prism.validation_errors(since=mark) == []
    with open(twilio_prism.log_path, "rb") as fh:
        fh.seek(mark)
        log = fh.read().decode(errors="replace")
    assert "get /2010-04-01/Accounts/" + SID + "/Messages.json" in log
    assert "The request passed the validation rules" in log
    assert found is None or isinstance(found, list)


def test_the_lookup_matches_to_and_exact_text_since_the_day_before(
    standin: ProviderStandIn,
) -> None:
    provider = TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        public_url="http://testserver",
        from_number="+14105550000",
        base_url=standin.url,
    )
    began = datetime.now(UTC)
    try:
        wanted = standin.add_message(to="+14105550123", body="See you at 9", date_sent=began)
        standin.add_message(to="+14105550123", body="See you at 10", date_sent=began)
        standin.add_message(to="+14105550999", body="See you at 9", date_sent=began)
        standin.add_message(
            to="+14105550123", body="See you at 9", date_sent=began - timedelta(days=3)
        )
        sent = SentRequest(
            message_id=1, to="+14105550123", body="See you at 9", subject=None, began_at=began
        )
        assert provider.lookup(sent) == [wanted]
    finally:
        provider.close()
    unreachable = TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        public_url="http://testserver",
        from_number="+14105550000",
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    assert unreachable.lookup(sent) is None  # Twilio cannot be asked: nobody can tell
    unreachable.close()


def test_a_late_event_calls_off_a_resend_not_yet_made(
    worker_for: WorkerFor, standin: ProviderStandIn
) -> None:
    runtime, worker = worker_for(email_in_doubt_window_seconds=0)
    mid = queue_alert(runtime, "email")
    standin.set_faults(Faults(rate=1.0, kinds=("reset_after",)))
    assert worker.dispatch_step().in_doubt == 1
    standin.set_faults(Faults())
    assert worker.reconcile_step().resent == 1
    assert row(runtime, mid).status == "planned"
    # SendGrid's event for the first send arrives (its webhook was down until now).
    event = {
        "email": ONCALL_EMAIL,
        "timestamp": 1,
        "event": "processed",
        "sg_event_id": "late-1",
        "sg_message_id": "late123.filter0001",
        "message_id": str(mid),
    }
    assert apply_sendgrid_events(runtime.session_factory, [event]) == ["applied"]
    settled = row(runtime, mid)
    assert settled.status == "sent" and settled.provider_message_id == "late123"
    assert worker.dispatch_step().handled == 0
    assert standin.received_counts("email") == {mid: 1}
