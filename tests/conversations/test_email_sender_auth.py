"""Emailed replies act only when SendGrid's SPF/DKIM results vouch for the ``From:`` address.

A forged ``From:`` (the patient's address, sent from elsewhere) is stored, screened for crisis
language and filed for staff, saying why; it never confirms, reschedules, opts out or in, or
records a check-in score (reminders.providers.sendgrid.inbound_auth, classify.for_sender).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from reminders.conversations.inbound import receive
from reminders.conversations.matching import match_inbound, verdict_note
from reminders.db.models import (
    AuditLog,
    CheckinScore,
    InboundMessage,
    Message,
    OptOut,
    StaffTask,
    TreatmentSession,
)
from reminders.providers.sendgrid.inbound_auth import (
    aligned,
    dkim_results,
    domain_of,
    sender_verdict,
    store_with_verdict,
)
from reminders.runtime import Runtime
from tests.conversations.helpers import INBOUND_SECRET, sent_message

URL = f"/webhooks/sendgrid/inbound/{INBOUND_SECRET}"
ANA = "Ana Diaz <ana@example.com>"
NOT_ACTED_ON = "not acted on automatically"


def _post(
    client: TestClient,
    text: str,
    *,
    spf: str | None,
    dkim: str | None,
    envelope_from: str | None = "ana@example.com",
    sender: str = ANA,
    message_id: str = "<m1@mail.example.com>",
    headers: str = "",
) -> Any:  # a response
    data = {
        "from": sender,
        "to": "replies@clinic.example",
        "subject": "Re: Your visit",
        "text": text,
        "headers": f"Message-ID: {message_id}\n{headers}",
    }
    if spf is not None:
        data["SPF"] = spf
    if dkim is not None:
        data["dkim"] = dkim
    if envelope_from is not None:
        data["envelope"] = json.dumps({"to": ["replies@clinic.example"], "from": envelope_from})
    response = client.post(URL, data=data, files={"attachment-info": (None, "{}")})
    assert response.status_code == 200
    return response


def _inbound(rt: Runtime) -> InboundMessage:
    with rt.session_factory() as db:
        return db.scalars(select(InboundMessage)).one()


def _tasks(rt: Runtime) -> list[StaffTask]:
    with rt.session_factory() as db:
        return list(db.scalars(select(StaffTask).order_by(StaffTask.id)))


def _messages(rt: Runtime, kind: str) -> list[Message]:
    with rt.session_factory() as db:
        return list(db.scalars(select(Message).where(Message.kind == kind).order_by(Message.id)))


def _session_status(rt: Runtime, session_id: str = "s1-next") -> str:
    with rt.session_factory() as db:
        session = db.get(TreatmentSession, session_id)
        assert session is not None
        return session.status


def _assert_not_acted_on(rt: Runtime, reason: str) -> None:
    """Filed for a person, saying why; no confirmation, no reply saying anything."""
    why = f"sender not verified ({reason}): {NOT_ACTED_ON}"
    inbound = _inbound(rt)
    assert inbound.classification == "free_text" and inbound.patient_id == "p1"
    assert inbound.match_note == why
    assert _session_status(rt) != "confirmed"
    (task,) = _tasks(rt)
    assert task.kind == "free_text" and why in task.summary
    with rt.session_factory() as db:
        assert (
            db.scalars(select(AuditLog).where(AuditLog.action == "session_confirmed")).all() == []
        )
    for reply in _messages(rt, "reply"):  # at most the out-of-hours notice: no visit details
        assert reply.rule == "reply:after_hours"


# --- through the webhook -----------------------------------------------------------------


def test_forged_confirmation_is_filed_not_confirmed(client: TestClient, clinic: Runtime) -> None:
    _post(client, "C", spf="fail", dkim="none")
    _assert_not_acted_on(clinic, "dkim none; spf fail")


def test_spf_pass_for_another_envelope_domain_is_not_verified(
    client: TestClient, clinic: Runtime
) -> None:
    _post(client, "C", spf="pass", dkim="none", envelope_from="bounces@mailer.attacker.test")
    _assert_not_acted_on(clinic, "dkim none; spf pass for another domain")


def test_dkim_pass_for_another_domain_is_not_verified(client: TestClient, clinic: Runtime) -> None:
    # A forged Authentication-Results line in the headers changes nothing.
    forged = "Authentication-Results: mx.sendgrid.net; dkim=pass header.d=example.com\n"
    _post(client, "C", spf="softfail", dkim="{@attacker.test : pass}", headers=forged)
    _assert_not_acted_on(clinic, "dkim pass for another domain; spf softfail")


def test_missing_results_are_not_verified(client: TestClient, clinic: Runtime) -> None:
    _post(client, "C", spf=None, dkim=None, envelope_from=None)
    _assert_not_acted_on(clinic, "dkim none; spf none")


def test_genuine_confirmation_confirms(client: TestClient, clinic: Runtime) -> None:
    _post(client, "C", spf="softfail", dkim="{@example.com : pass}")
    inbound = _inbound(clinic)
    assert inbound.classification == "confirm"
    assert inbound.match_note == "sender verified (dkim pass; spf softfail)"
    assert _session_status(clinic) == "confirmed"
    (reply,) = _messages(clinic, "reply")
    assert reply.data is not None and "is confirmed" in reply.data["text"]
    assert _tasks(clinic) == []


def test_genuine_confirmation_by_aligned_spf_confirms(client: TestClient, clinic: Runtime) -> None:
    _post(client, "C", spf="pass", dkim="none", envelope_from="bounce@mail.example.com")
    assert _inbound(clinic).classification == "confirm"
    assert _session_status(clinic) == "confirmed"


def test_unverified_stop_does_not_opt_out(client: TestClient, clinic: Runtime) -> None:
    _post(client, "STOP", spf="fail", dkim="{@example.com : fail}")
    with clinic.session_factory() as db:
        assert db.scalars(select(OptOut)).all() == []
    inbound = _inbound(clinic)
    assert inbound.classification == "free_text"
    (task,) = _tasks(clinic)
    assert f"sender not verified (dkim fail; spf fail): {NOT_ACTED_ON}" in task.summary


def test_verified_stop_opts_out(client: TestClient, clinic: Runtime) -> None:
    _post(client, "STOP", spf="pass", dkim="{@example.com : pass}")
    with clinic.session_factory() as db:
        assert db.scalars(select(OptOut)).one().active


def test_unverified_crisis_still_pages_oncall_staff(
    client: TestClient, clinic: Runtime, now: datetime
) -> None:
    with clinic.session_factory() as db:
        sent_message(db, patient_id="p1", kind="checkin", sent_at=now - timedelta(hours=1))
    _post(client, "2. I want to kill myself", spf="fail", dkim="none")
    inbound = _inbound(clinic)
    assert inbound.classification == "crisis"
    assert inbound.score is None  # no score recorded from an unverified sender
    assert len(_messages(clinic, "alert")) == 3  # two on-call phones and one email
    (task,) = _tasks(clinic)
    assert task.urgent and task.kind == "crisis" and task.alert_count > 0
    with clinic.session_factory() as db:
        assert db.scalars(select(CheckinScore)).all() == []


def test_unverified_checkin_score_is_not_recorded(
    client: TestClient, clinic: Runtime, now: datetime
) -> None:
    with clinic.session_factory() as db:
        sent_message(db, patient_id="p1", kind="checkin", sent_at=now - timedelta(hours=1))
    _post(client, "8", spf="none", dkim="none")
    inbound = _inbound(clinic)
    assert (inbound.classification, inbound.score) == ("free_text", None)
    with clinic.session_factory() as db:
        assert db.scalars(select(CheckinScore)).all() == []


def test_unverified_reschedule_is_filed_only(client: TestClient, clinic: Runtime) -> None:
    _post(client, "R", spf="fail", dkim="none")
    _assert_not_acted_on(clinic, "dkim none; spf fail")


def test_email_without_a_recorded_verdict_is_not_acted_on(clinic: Runtime, now: datetime) -> None:
    """Fed in without the webhook (``reminders inbound --channel email``): fails closed."""
    result = receive(
        clinic.session_factory,
        clinic.settings,
        channel="email",
        from_address="ana@example.com",
        body="C",
        provider_message_id="cli-1",
        now=now,
    )
    assert result.classification == "free_text"
    assert result.match_note == f"sender not verified (no verdict recorded): {NOT_ACTED_ON}"
    assert _session_status(clinic) != "confirmed"


def test_sms_is_unaffected(clinic: Runtime, now: datetime) -> None:
    result = receive(
        clinic.session_factory,
        clinic.settings,
        channel="sms",
        from_address="+14105550101",
        body="C",
        provider_message_id="SM-c",
        now=now,
    )
    assert result.classification == "confirm" and result.match_note is None
    assert _session_status(clinic) == "confirmed"


def test_a_verdict_is_only_ever_downgraded(clinic: Runtime) -> None:
    """A second post with the same Message-ID cannot vouch for the body stored first."""
    unverified = verdict_note(False, "dkim none; spf fail")
    verified = verdict_note(True, "dkim pass; spf pass")

    def store(note: str, authenticated: bool, pid: str) -> str | None:
        store_with_verdict(
            clinic.session_factory,
            from_address="ana@example.com",
            body="C",
            provider_message_id=pid,
            note=note,
            authenticated=authenticated,
            received_at=datetime.now(UTC),
            region="US",
        )
        with clinic.session_factory() as db:
            row = db.scalars(
                select(InboundMessage).where(InboundMessage.provider_message_id == pid)
            ).one()
            return row.match_note

    assert store(unverified, False, "email:a") == unverified
    assert store(verified, True, "email:a") == unverified
    assert store(verified, True, "email:b") == verified
    assert store(unverified, False, "email:b") == unverified


def test_match_inbound_keeps_the_verdict_and_the_match_note(clinic: Runtime) -> None:
    verified = verdict_note(True, "dkim pass; spf none")
    with clinic.session_factory() as db:
        row = InboundMessage(
            channel="email", from_address="nobody@example.org", body="hi", match_note=verified
        )
        db.add(row)
        db.flush()
        patient, note = match_inbound(db, row)
        assert patient is None and note == f"{verified}; unknown sender"
        row.match_note = note  # as processing stores it: still read as this verdict
        assert match_inbound(db, row)[1] == note
        db.rollback()


# --- the verdict parser ------------------------------------------------------------------


def _fields(**values: str) -> dict[str, str]:
    return dict(values)


@pytest.mark.parametrize(
    ("dkim", "sender", "authenticated", "reason"),
    [
        ("{@example.com : pass}", "ana@example.com", True, "dkim pass"),
        ("{@example.com : pass}", "ana@Mail.Example.com", True, "dkim pass"),
        ("{@mail.example.com : pass}", "ana@example.com", True, "dkim pass"),
        ("{@a.com : pass, @b.com : fail}", "x@a.com", True, "dkim pass"),
        ("{@a.com : pass, @b.com : fail}", "x@b.com", False, "dkim pass for another domain"),
        ("{@b.com : fail, @b.com : neutral}", "x@b.com", False, "dkim fail/neutral"),
        ("{@notexample.com : pass}", "ana@example.com", False, "dkim pass for another domain"),
        ("{@a.example.com : pass}", "x@b.example.com", False, "dkim pass for another domain"),
        ("{@com : pass}", "x@example.com", False, "dkim pass for another domain"),
        ("{@example.com : temperror}", "ana@example.com", False, "dkim temperror"),
        ("{@example.com : weird}", "ana@example.com", False, "dkim unreadable"),
        ("none", "ana@example.com", False, "dkim none"),
        ("{}", "ana@example.com", False, "dkim none"),
        ("", "ana@example.com", False, "dkim none"),
        ("pass", "ana@example.com", False, "dkim unreadable"),
    ],
)
def test_dkim(dkim: str, sender: str, authenticated: bool, reason: str) -> None:
    verdict = sender_verdict(_fields(dkim=dkim, SPF="none"), sender.lower())
    assert (verdict.authenticated, verdict.reason) == (authenticated, f"{reason}; spf none")


@pytest.mark.parametrize(
    ("spf", "envelope", "authenticated", "reason"),
    [
        ("pass", '{"to": ["r@c.example"], "from": "ana@example.com"}', True, "spf pass"),
        ("Pass (sender authorized)", '{"from": "<b@bounce.example.com>"}', True, "spf pass"),
        ("pass", '{"from": "b@attacker.test"}', False, "spf pass for another domain"),
        ("pass", '{"from": ""}', False, "spf pass without an envelope sender"),
        ("pass", "not json", False, "spf pass without an envelope sender"),
        ("pass", "", False, "spf pass without an envelope sender"),
        ("pass", '["ana@example.com"]', False, "spf pass without an envelope sender"),
        ("fail", '{"from": "ana@example.com"}', False, "spf fail"),
        ("softfail", '{"from": "ana@example.com"}', False, "spf softfail"),
        ("neutral", '{"from": "ana@example.com"}', False, "spf neutral"),
        ("temperror", '{"from": "ana@example.com"}', False, "spf temperror"),
        ("permerror", '{"from": "ana@example.com"}', False, "spf permerror"),
        ("none", '{"from": "ana@example.com"}', False, "spf none"),
        ("", '{"from": "ana@example.com"}', False, "spf none"),
        ("?!", '{"from": "ana@example.com"}', False, "spf unreadable"),
        ("passed", '{"from": "ana@example.com"}', False, "spf unreadable"),
    ],
)
def test_spf(spf: str, envelope: str, authenticated: bool, reason: str) -> None:
    verdict = sender_verdict(_fields(SPF=spf, envelope=envelope, dkim="none"), "ana@example.com")
    assert (verdict.authenticated, verdict.reason) == (authenticated, f"dkim none; {reason}")


def test_missing_fields_and_field_name_case() -> None:
    assert sender_verdict({}, "ana@example.com").reason == "dkim none; spf none"
    assert not sender_verdict({}, "ana@example.com").authenticated
    lower = sender_verdict(
        {"spf": "pass", "envelope": '{"from": "ana@example.com"}'}, "a@example.com"
    )
    assert lower.authenticated


def test_no_usable_from_domain_is_never_verified() -> None:
    fields = _fields(dkim="{@localhost : pass}", SPF="pass", envelope='{"from": "a@localhost"}')
    verdict = sender_verdict(fields, "a@localhost")
    assert not verdict.authenticated and verdict.reason.startswith("no sender domain")


def test_reasons_and_notes_name_no_address() -> None:
    fields = _fields(
        dkim="{@attacker.test : pass}", SPF="pass", envelope='{"from": "x@attacker.test"}'
    )
    verdict = sender_verdict(fields, "ana@example.com")
    assert verdict.reason == "dkim pass for another domain; spf pass for another domain"
    for text in (verdict.reason, verdict.note):
        assert "@" not in text and "example" not in text and "attacker" not in text
    assert verdict.note == (
        "sender not verified (dkim pass for another domain; spf pass for another domain): "
        + NOT_ACTED_ON
    )
    assert verdict_note(True, "dkim pass; spf none") == "sender verified (dkim pass; spf none)"


def test_parser_helpers() -> None:
    assert dkim_results("{@a.com : pass, @b.com : fail}") == [("a.com", "pass"), ("b.com", "fail")]
    assert dkim_results("{@A.com. : PASS}") == [("a.com", "pass")]
    assert dkim_results("none") == [] and dkim_results("garbage") is None
    assert domain_of("Ana <ana@Example.COM.>") == "example.com"
    assert domain_of("ana@bücher.example") == "xn--bcher-kva.example"
    assert domain_of("no-at-sign") == "" and domain_of("@example.com") == ""
    assert aligned("example.com", "example.com") and aligned("em.example.com", "example.com")
    assert not aligned("badexample.com", "example.com") and not aligned("", "example.com")
