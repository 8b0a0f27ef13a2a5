"""End to end over HTTP: Twilio-signed inbound SMS through the FastAPI app, both databases."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from reminders.conversations.replies import CRISIS_EN, CRISIS_ES
from reminders.db.models import (
    AuditLog,
    CheckinScore,
    InboundMessage,
    Message,
    OptOut,
    StaffTask,
    TreatmentSession,
)
from reminders.providers.twilio.webhooks import EMPTY_TWIML
from reminders.runtime import Runtime
from reminders.web.app import create_app
from tests.conftest import make_test_settings
from tests.conversations.helpers import FAMILY, P1, P2, TOKEN, sent_message, sign

ACCOUNT = "AC" + "0" * 32


def twilio_sid(label: str) -> str:
    """A well-formed MessageSid (SM + 32 hex digits) per label: the webhook refuses others."""
    return "SM" + hashlib.md5(label.encode()).hexdigest()  # noqa: S324 - an id, not a secret


def post_sms(
    client: TestClient,
    body: str,
    *,
    sender: str = P1,
    sid: str,
    extra: dict[str, str] | None = None,
) -> Any:
    """What Twilio posts for an inbound SMS, signed; ``sid`` names the message."""
    params = {
        "MessageSid": twilio_sid(sid),
        "AccountSid": ACCOUNT,
        "From": sender,
        "To": "+14105550000",
        "Body": body,
    }
    params.update(extra or {})
    return client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": sign(params)}
    )


def _replies(rt: Runtime) -> list[Message]:
    with rt.session_factory() as db:
        return list(db.scalars(select(Message).where(Message.kind == "reply").order_by(Message.id)))


def _data(message: Message) -> dict[str, Any]:
    """A planned message's template data (always set for replies and alerts)."""
    assert message.data is not None
    return message.data


def _tasks(rt: Runtime, kind: str | None = None) -> list[StaffTask]:
    with rt.session_factory() as db:
        q = select(StaffTask).order_by(StaffTask.id)
        if kind:
            q = q.where(StaffTask.kind == kind)
        return list(db.scalars(q))


def _inbound(rt: Runtime) -> list[InboundMessage]:
    with rt.session_factory() as db:
        return list(db.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_stop_records_opt_out_and_start_resumes(client: TestClient, clinic: Runtime) -> None:
    response = post_sms(client, "STOP", sid="SM-stop-1")
    assert response.status_code == 200
    assert response.text == EMPTY_TWIML
    assert response.headers["content-type"].startswith("text/xml")
    with clinic.session_factory() as db:
        row = db.scalars(select(OptOut)).one()
        assert (row.channel, row.address, row.active) == ("sms", P1, True)
    replies = _replies(clinic)
    assert len(replies) == 1
    assert replies[0].rule == "reply:opt_out" and replies[0].to_address == P1
    assert replies[0].status == "planned" and replies[0].template == "reply_text"
    assert "START" in _data(replies[0])["text"]

    # A second STOP changes nothing and sends no second confirmation.
    post_sms(client, "stop.", sid="SM-stop-2")
    assert len(_replies(clinic)) == 1

    post_sms(client, "Start", sid="SM-start-1")
    with clinic.session_factory() as db:
        assert db.scalars(select(OptOut)).one().active is False
        assert (
            db.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.entity == "opt_out")
            )
            == 2
        )
    assert [r.rule for r in _replies(clinic)] == ["reply:opt_out", "reply:opt_in"]
    assert [i.classification for i in _inbound(clinic)] == ["opt_out", "opt_out", "opt_in"]


def test_every_twilio_opt_out_keyword(client: TestClient, clinic: Runtime) -> None:
    for n, word in enumerate(
        ["STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "optout"]
    ):
        post_sms(client, word, sid=f"SM-kw-{n}")
        post_sms(client, "UNSTOP", sid=f"SM-kw-in-{n}")
    assert [i.classification for i in _inbound(clinic)] == ["opt_out", "opt_in"] * 7


def test_help_names_clinic_phone_frequency_and_stop(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "help", sid="SM-help")
    post_sms(client, "AYUDA", sender=P2, sid="SM-ayuda")
    en, es = (_data(r)["text"] for r in _replies(clinic))
    for text in (en, es):
        assert "Lakeside Clinic" in text and "+14105550100" in text
        assert "4 mensajes por visita" in text or "4 messages per visit" in text
        assert "STOP" in text
    assert "up to 4 messages per visit" in en


def test_c_confirms_the_next_open_session(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "c", sid="SM-c")
    with clinic.session_factory() as db:
        statuses = {
            s.id: (s.status, s.confirmed_at is not None)
            for s in db.scalars(select(TreatmentSession))
        }
        vias = {s.id: s.confirmed_via for s in db.scalars(select(TreatmentSession))}
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "session_confirmed")).one()
    # Not the cancelled one tomorrow, not the later one, not anyone else's.
    assert statuses["s1-next"] == ("confirmed", True)
    assert vias["s1-next"] == "sms" and vias["s1-later"] is None  # the Today page says "by text"
    assert statuses["s1-cancelled"] == ("cancelled", False)
    assert statuses["s1-later"] == ("scheduled", False)
    assert statuses["s2-next"] == ("scheduled", False)
    assert audit.entity_id == "s1-next" and audit.actor == "patient:p1"
    (reply,) = _replies(clinic)
    assert reply.rule == "reply:confirm" and "confirmed" in _data(reply)["text"]


def test_r_creates_a_reschedule_task(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "R", sender=P2, sid="SM-r")
    (task,) = _tasks(clinic)
    assert (task.kind, task.patient_id, task.session_id, task.urgent) == (
        "reschedule",
        "p2",
        "s2-next",
        False,
    )
    (reply,) = _replies(clinic)
    assert reply.language == "es" and "Gracias" in _data(reply)["text"]


def test_checkin_answer_stored_against_the_right_checkin(
    client: TestClient, clinic: Runtime, now: datetime
) -> None:
    with clinic.session_factory() as db:
        old = sent_message(
            db,
            patient_id="p1",
            kind="checkin",
            sent_at=now - timedelta(days=5),
            session_id="s1-past",
        )
        recent = sent_message(
            db,
            patient_id="p1",
            kind="checkin",
            sent_at=now - timedelta(hours=3),
            session_id="s1-past",
        )
        sent_message(db, patient_id="p2", kind="checkin", sent_at=now - timedelta(hours=1))
    post_sms(client, "7/10", sid="SM-score")
    with clinic.session_factory() as db:
        score = db.scalars(select(CheckinScore)).one()
        inbound = db.scalars(select(InboundMessage)).one()
    assert (score.patient_id, score.message_id, score.session_id, score.score) == (
        "p1",
        recent.id,
        "s1-past",
        7,
    )
    assert score.message_id != old.id
    assert (inbound.classification, inbound.score, inbound.checkin_message_id) == (
        "checkin",
        7,
        recent.id,
    )
    assert _tasks(clinic) == []  # a good score with no comment needs no one
    # The check-in is answered: another number is now free text.
    post_sms(client, "8", sid="SM-score-2")
    assert _inbound(clinic)[-1].classification == "free_text"


def test_a_number_without_an_outstanding_checkin_is_free_text(
    client: TestClient, clinic: Runtime
) -> None:
    post_sms(client, "seven", sid="SM-seven")
    assert _inbound(clinic)[0].classification == "free_text"
    assert _tasks(clinic, "free_text")


def test_low_score_and_big_drop_alert_on_call(
    client: TestClient, clinic: Runtime, now: datetime
) -> None:
    with clinic.session_factory() as db:
        sent_message(
            db, patient_id="p1", kind="checkin", sent_at=now - timedelta(hours=30), key="c1"
        )
    post_sms(client, "9", sid="SM-9")
    with clinic.session_factory() as db:
        sent_message(
            db, patient_id="p1", kind="checkin", sent_at=now - timedelta(hours=2), key="c2"
        )
    post_sms(client, "a 5", sid="SM-5")  # 9 -> 5: a drop of 4
    (task,) = _tasks(clinic)
    assert task.kind == "low_score" and task.urgent and "down 4" in task.summary
    with clinic.session_factory() as db:
        alerts = list(db.scalars(select(Message).where(Message.kind == "alert")))
    assert len(alerts) == 3
    assert (
        _replies(clinic)[-1].rule == "reply:checkin"
        and "988" in _data(_replies(clinic)[-1])["text"]
    )


def test_free_text_lands_in_the_inbox(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "Can I bring my sister to the next visit?", sid="SM-free")
    (task,) = _tasks(clinic)
    assert (task.kind, task.patient_id, task.urgent) == ("free_text", "p1", False)
    assert "sister" in task.summary
    assert task.page_due_at is not None  # paged if nobody reads it in time
    # No automatic answer to free text, but for the out-of-hours notice (this runs on the real
    # clock: tests/conversations/test_unread_paging.py pins both cases down).
    assert all(r.rule == "reply:after_hours" for r in _replies(clinic))


def test_unknown_number_goes_to_the_inbox(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "C", sender="+14105550777", sid="SM-unknown")
    (task,) = _tasks(clinic)
    assert task.kind == "unknown_sender" and task.patient_id is None
    assert _inbound(clinic)[0].match_note == "unknown sender"


def test_repeated_message_sid_is_processed_once(client: TestClient, clinic: Runtime) -> None:
    for _ in range(3):
        assert post_sms(client, "R", sid="SM-same").status_code == 200
    assert len(_inbound(clinic)) == 1
    assert len(_tasks(clinic)) == 1
    assert len(_replies(clinic)) == 1


def test_bad_or_missing_signature_refused_and_nothing_stored(
    client: TestClient, clinic: Runtime
) -> None:
    params = {"MessageSid": "SM-bad", "From": P1, "Body": "STOP"}
    assert client.post("/webhooks/twilio/sms", data=params).status_code == 403
    bad = sign({**params, "Body": "START"})
    assert (
        client.post(
            "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": bad}
        ).status_code
        == 403
    )
    wrong_token = sign(params, token="not-the-token")
    assert (
        client.post(
            "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": wrong_token}
        ).status_code
        == 403
    )
    # Signed for another URL (the Host header is not trusted).
    other = sign(params, url="http://evil.example/webhooks/twilio/sms")
    assert (
        client.post(
            "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": other}
        ).status_code
        == 403
    )
    assert _inbound(clinic) == [] and _replies(clinic) == []
    with clinic.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(OptOut)) == 0


def test_signature_checked_against_public_url_not_host(
    db_url: str, tmp_path: Path, now: datetime
) -> None:
    settings = make_test_settings(
        db_url, tmp_path, twilio_auth_token=TOKEN, public_url="https://clinic.example.com/"
    )
    rt = Runtime(settings)
    try:
        with TestClient(create_app(rt)) as client:
            params = {
                "MessageSid": twilio_sid("proxy"),
                "AccountSid": ACCOUNT,
                "From": P1,
                "Body": "hello",
            }
            # What the proxy's client saw is signed; the app is reached as http://testserver.
            good = sign(params, url="https://clinic.example.com/webhooks/twilio/sms")
            assert (
                client.post(
                    "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": good}
                ).status_code
                == 200
            )
            local = sign(params, url="http://testserver/webhooks/twilio/sms")
            params["MessageSid"] = twilio_sid("proxy-2")
            assert (
                client.post(
                    "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": local}
                ).status_code
                == 403
            )
        assert len(_inbound(rt)) == 1
    finally:
        rt.close()


def test_no_auth_token_refuses_everything(db_url: str, tmp_path: Path) -> None:
    rt = Runtime(make_test_settings(db_url, tmp_path))
    try:
        with TestClient(create_app(rt)) as client:
            params = {"MessageSid": "SM-x", "From": P1, "Body": "HELP"}
            for token in ("", TOKEN):
                headers = {"X-Twilio-Signature": sign(params, token=token or "x")}
                assert (
                    client.post("/webhooks/twilio/sms", data=params, headers=headers).status_code
                    == 403
                )
        assert _inbound(rt) == []
    finally:
        rt.close()


def test_crisis_alerts_on_call_and_replies(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "i cant go on anymore, I want to k1ll myself", sid="SM-crisis")
    (task,) = _tasks(clinic)
    assert (task.kind, task.urgent, task.patient_id, task.alert_count) == ("crisis", True, "p1", 1)
    with clinic.session_factory() as db:
        alerts = list(
            db.scalars(select(Message).where(Message.kind == "alert").order_by(Message.id))
        )
    assert sorted((a.channel, a.to_address) for a in alerts) == [
        ("email", "oncall@example.com"),
        ("sms", "+14105550900"),
        ("sms", "+14105550901"),
    ]
    for alert in alerts:
        assert (
            alert.status == "planned"
            and alert.template == "staff_alert"
            and alert.rule == "alert:crisis"
        )
        assert set(_data(alert)) >= {"summary", "kind", "patient_id", "link"}
        assert _data(alert)["link"].endswith(f"/staff/tasks/{task.id}")
        assert "k1ll" not in _data(alert)["summary"]  # no message text to personal phones
    (reply,) = _replies(clinic)
    assert CRISIS_EN in _data(reply)["text"] and "+14105550100" in _data(reply)["text"]


def test_spanish_crisis_reply(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "ya no aguanto, me quiero morir", sender=P2, sid="SM-crisis-es")
    (reply,) = _replies(clinic)
    assert reply.language == "es" and CRISIS_ES in _data(reply)["text"]
    assert "988" in _data(reply)["text"] and "911" in _data(reply)["text"]


def test_crisis_wins_over_keywords_and_scores(
    client: TestClient, clinic: Runtime, now: datetime
) -> None:
    with clinic.session_factory() as db:
        sent_message(db, patient_id="p1", kind="checkin", sent_at=now - timedelta(hours=1))
    post_sms(client, "2, I don't want to be here anymore", sid="SM-both")
    (inbound,) = _inbound(clinic)
    assert inbound.classification == "crisis" and inbound.score == 2  # the trend keeps the score


def test_family_phone_matches_the_recipient_of_the_latest_message(
    client: TestClient, clinic: Runtime, now: datetime
) -> None:
    with clinic.session_factory() as db:
        sent_message(
            db,
            patient_id="p3",
            kind="reminder",
            sent_at=now - timedelta(hours=5),
            session_id="s3-next",
        )
        sent_message(
            db,
            patient_id="p4",
            kind="reminder",
            sent_at=now - timedelta(hours=1),
            session_id="s4-next",
        )
    post_sms(client, "C", sender=FAMILY, sid="SM-family")
    (inbound,) = _inbound(clinic)
    assert inbound.patient_id == "p4"
    assert inbound.match_note is not None
    assert "shared number: 2 patients" in inbound.match_note and "p4" in inbound.match_note
    with clinic.session_factory() as db:
        s4_next = db.get(TreatmentSession, "s4-next")
        s3_next = db.get(TreatmentSession, "s3-next")
        assert s4_next is not None and s3_next is not None
        assert s4_next.status == "confirmed"
        assert s3_next.status == "scheduled"


def test_family_phone_without_messages_goes_to_staff(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "C", sender=FAMILY, sid="SM-family-2")
    (inbound,) = _inbound(clinic)
    assert inbound.match_note is not None
    assert inbound.patient_id is None and "no message sent" in inbound.match_note
    assert _tasks(clinic)[0].kind == "unknown_sender"


def test_national_number_format_is_normalised(client: TestClient, clinic: Runtime) -> None:
    post_sms(client, "R", sender="(410) 555-0101", sid="SM-national")
    assert _inbound(clinic)[0].patient_id == "p1"


def test_processing_error_keeps_row_and_answers_200(
    client: TestClient, clinic: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reminders.conversations import inbound as handle

    def boom(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(handle, "_confirm", boom)
    response = post_sms(client, "C", sid="SM-boom")
    assert response.status_code == 200 and response.text == EMPTY_TWIML
    (inbound,) = _inbound(clinic)
    assert inbound.error and "simulated failure" in inbound.error and inbound.processed_at is None
    with clinic.session_factory() as db:
        s1_next = db.get(TreatmentSession, "s1-next")
        assert s1_next is not None
        assert s1_next.status == "scheduled"  # rolled back
    (task,) = _tasks(clinic)
    assert task.inbound_id == inbound.id and not task.urgent
