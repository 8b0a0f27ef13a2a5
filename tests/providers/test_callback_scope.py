"""Audit item 7: a provider's callback changes only its own message.

A signed Twilio 21610 (or invalid-number) callback, or a SendGrid opt-out, bounce or drop,
acts on the address the message went to (``messages.sent_to``; for older rows the patient's
current address; ``to_address`` for staff alerts), never on an address the payload names.
A payload naming another address is logged with ids only. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import Message, OptOut, Patient
from reminders.settings import Settings
from tests.providers.helpers import (
    EMAIL,
    PHONE,
    SendGridSigner,
    add_message,
    add_patient,
    get_message,
    make_app,
    sg_event,
)
from tests.providers.test_webhooks import callback, sg_post, twilio_post

OTHER_PHONE = "+14105550177"
OTHER_EMAIL = "someone.else@example.com"
WARNING = "provider report names another address than its message's: ignored"


@pytest.fixture
def client(
    hook_settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    add_patient(session_factory)  # p1: PHONE, EMAIL
    with session_factory() as db:
        db.add(
            Patient(
                id="p2",
                first_name="Beto",
                phone=OTHER_PHONE,
                email=OTHER_EMAIL,
                sms_consent=True,
                email_consent=True,
            )
        )
        db.commit()
    with TestClient(make_app(hook_settings, engine)) as test_client:
        yield test_client


def set_columns(factory: sessionmaker[Session], message_id: int, **values: Any) -> None:
    with factory() as db:
        row = db.get(Message, message_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        db.commit()


def opted_out(factory: sessionmaker[Session], channel: str) -> set[str]:
    with factory() as db:
        return set(
            db.scalars(
                select(OptOut.address).where(OptOut.channel == channel, OptOut.active.is_(True))
            )
        )


def problems(factory: sessionmaker[Session]) -> dict[str, tuple[str | None, str | None]]:
    with factory() as db:
        return {p.id: (p.phone_problem, p.email_problem) for p in db.scalars(select(Patient))}


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == WARNING]


def assert_no_addresses_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in warnings(caplog):
        text = record.getMessage() + " " + repr(getattr(record, "fields", {}))
        for address in (PHONE, EMAIL, OTHER_PHONE, OTHER_EMAIL):
            assert address not in text


# --- Twilio ----------------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", [True, False], ids=["sent_to", "legacy_row"])
def test_21610_naming_another_number_opts_out_only_the_messages_recipient(
    client: TestClient,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    recorded: bool,
) -> None:
    mid = add_message(session_factory, channel="sms")
    if recorded:
        set_columns(session_factory, mid, sent_to=PHONE)
    caplog.set_level(logging.WARNING)
    response = twilio_post(client, mid, callback("failed", ErrorCode="21610", To=OTHER_PHONE))
    assert response.status_code == 200
    assert opted_out(session_factory, "sms") == {PHONE}
    assert get_message(session_factory, mid).status == "failed"
    [record] = warnings(caplog)
    assert getattr(record, "fields", {})["id"] == mid
    assert_no_addresses_logged(caplog)


def test_21610_acts_on_sent_to_even_when_the_patient_has_a_new_number(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    """The address the message went to is the one that said STOP, not the patient's new one,
    and not the one the callback names."""
    mid = add_message(session_factory, channel="sms")
    set_columns(session_factory, mid, sent_to="+14105550155")
    twilio_post(client, mid, callback("failed", ErrorCode="21610", To=OTHER_PHONE))
    assert opted_out(session_factory, "sms") == {"+14105550155"}


def test_21610_for_a_staff_alert_opts_out_its_to_address(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="sms")
    set_columns(session_factory, mid, patient_id=None, kind="alert", to_address="+14105550900")
    twilio_post(client, mid, callback("failed", ErrorCode="21610", To=OTHER_PHONE))
    assert opted_out(session_factory, "sms") == {"+14105550900"}


def test_invalid_number_naming_another_number_marks_only_the_messages_patient(
    client: TestClient, session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    mid = add_message(session_factory, channel="sms")
    set_columns(session_factory, mid, sent_to=PHONE)
    caplog.set_level(logging.WARNING)
    twilio_post(client, mid, callback("undelivered", ErrorCode="30006", To=OTHER_PHONE))
    marked = problems(session_factory)
    assert marked["p1"][0] and "30006" in (marked["p1"][0] or "")
    assert marked["p2"] == (None, None)
    assert len(warnings(caplog)) == 1
    assert_no_addresses_logged(caplog)


def test_matching_to_is_unchanged_and_not_warned_about(
    client: TestClient, session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    mid = add_message(session_factory, channel="sms")
    set_columns(session_factory, mid, sent_to=PHONE)
    caplog.set_level(logging.WARNING)
    twilio_post(client, mid, callback("failed", ErrorCode="21610"))  # To=PHONE
    assert opted_out(session_factory, "sms") == {PHONE}
    assert warnings(caplog) == []


# --- SendGrid --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("unsubscribe", {}),
        ("spamreport", {}),
        ("group_unsubscribe", {}),
        ("dropped", {"reason": "Unsubscribed Address"}),
    ],
)
@pytest.mark.parametrize("recorded", [True, False], ids=["sent_to", "legacy_row"])
def test_sendgrid_opt_out_naming_another_address_opts_out_only_the_messages_recipient(
    client: TestClient,
    signer: SendGridSigner,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    kind: str,
    extra: dict[str, str],
    recorded: bool,
) -> None:
    mid = add_message(session_factory, channel="email", status="delivered")
    if recorded:
        set_columns(session_factory, mid, sent_to=EMAIL)
    caplog.set_level(logging.WARNING)
    event = sg_event(kind, mid, f"scope-{kind}", email=OTHER_EMAIL, **extra)
    assert sg_post(client, signer, [event]).status_code == 200
    assert opted_out(session_factory, "email") == {EMAIL}
    [record] = warnings(caplog)
    assert getattr(record, "fields", {})["id"] == mid
    assert_no_addresses_logged(caplog)


def test_sendgrid_bounce_naming_another_address_marks_only_the_messages_patient(
    client: TestClient,
    signer: SendGridSigner,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mid = add_message(session_factory, channel="email")
    set_columns(session_factory, mid, sent_to=EMAIL)
    caplog.set_level(logging.WARNING)
    event = sg_event(
        "bounce", mid, "scope-bounce", email=OTHER_EMAIL, status="5.1.1", reason="user unknown"
    )
    sg_post(client, signer, [event])
    marked = problems(session_factory)
    assert "5.1.1" in (marked["p1"][1] or "")
    assert marked["p2"] == (None, None)
    assert opted_out(session_factory, "email") == set()
    assert len(warnings(caplog)) == 1
    assert_no_addresses_logged(caplog)


def test_sendgrid_dropped_invalid_naming_another_address_marks_only_the_messages_patient(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="email")
    event = sg_event("dropped", mid, "scope-dropped", email=OTHER_EMAIL, reason="Invalid")
    sg_post(client, signer, [event])
    marked = problems(session_factory)
    assert marked["p1"][1] is not None and marked["p2"] == (None, None)
    assert opted_out(session_factory, "email") == set()


def test_sendgrid_unsubscribe_for_a_staff_alert_opts_out_its_to_address(
    client: TestClient, signer: SendGridSigner, session_factory: sessionmaker[Session]
) -> None:
    mid = add_message(session_factory, channel="email")
    set_columns(
        session_factory, mid, patient_id=None, kind="alert", to_address="Oncall@Clinic.example"
    )
    sg_post(client, signer, [sg_event("unsubscribe", mid, "scope-alert", email=OTHER_EMAIL)])
    assert opted_out(session_factory, "email") == {"oncall@clinic.example"}


def test_sendgrid_matching_address_in_another_case_is_not_warned_about(
    client: TestClient,
    signer: SendGridSigner,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mid = add_message(session_factory, channel="email")
    set_columns(session_factory, mid, sent_to=EMAIL)
    caplog.set_level(logging.WARNING)
    sg_post(client, signer, [sg_event("spamreport", mid, "scope-case", email=EMAIL.upper())])
    assert opted_out(session_factory, "email") == {EMAIL}
    assert warnings(caplog) == []
