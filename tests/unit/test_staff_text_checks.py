"""A staff member's text (kind "staff") at send time: consent and opt-out are checked exactly
as for a reminder and never overridden; quiet hours defer it, unless it was sent as urgent
(``data["override_quiet"]``), which only a staff text can be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reminders.db.models import Message, Patient
from reminders.defaults import POLICY_FILE
from reminders.dispatch.checks import Facts, Verdict, verdict_for
from reminders.outbox.status import PATIENT_KINDS, STAFF_KIND, TO_PATIENT_KINDS
from reminders.planning.policy import load_policy

NY = ZoneInfo("America/New_York")
POLICY = load_policy(POLICY_FILE)
NOON = datetime(2031, 3, 12, 12, 0, tzinfo=NY).astimezone(UTC)
NIGHT = datetime(2031, 3, 12, 23, 0, tzinfo=NY).astimezone(UTC)
PHONE = "+14105550101"


def _patient(**overrides: object) -> Patient:
    values: dict[str, object] = {
        "id": "p1", "first_name": "Ana", "phone": PHONE, "sms_consent": True,
        "timezone": "America/New_York", "language": "en",
    }  # fmt: skip
    values.update(overrides)
    return Patient(**values)


def _text(kind: str = STAFF_KIND, **extra: object) -> Message:
    return Message(
        id=7, dedupe_key="staff:p1:x", patient_id="p1", rule=kind, kind=kind, channel="sms",
        template="reply_text", due_at=NOON, not_after=NOON + timedelta(hours=24),
        status="planned", data={"text": "Hello", "by": "nurse@clinic.test", **extra},
    )  # fmt: skip


def _verdict(
    msg: Message, patient: Patient, now: datetime, facts: Facts | None = None
) -> tuple[Verdict, str | None]:
    return verdict_for(
        msg, patient, None, None, facts or Facts(), now, policy=POLICY, default_zone=NY
    )


def test_the_staff_kind_goes_to_the_patient_but_is_not_planned() -> None:
    assert STAFF_KIND in TO_PATIENT_KINDS and STAFF_KIND not in PATIENT_KINDS


def test_a_staff_text_in_the_day_goes_to_the_patients_number() -> None:
    verdict, address = _verdict(_text(), _patient(), NOON)
    assert (verdict.action, address) == ("send", PHONE)


@pytest.mark.parametrize("urgent", [False, True])
def test_no_consent_or_an_opt_out_stops_it_even_when_urgent(urgent: bool) -> None:
    verdict, address = _verdict(_text(override_quiet=urgent), _patient(sms_consent=False), NOON)
    assert (verdict.action, verdict.reason, address) == ("skip", "no_sms_consent", None)
    facts = Facts(opted_out={("sms", PHONE)})
    verdict, address = _verdict(_text(override_quiet=urgent), _patient(), NOON, facts)
    assert (verdict.action, verdict.reason, address) == ("skip", "sms_opted_out", None)


def test_quiet_hours_defer_it_to_their_end() -> None:
    verdict, address = _verdict(_text(), _patient(), NIGHT)
    assert verdict.action == "defer" and verdict.reason == "quiet_hours" and address is None
    assert verdict.defer_until == datetime(2031, 3, 13, 8, 0, tzinfo=NY)


def test_urgent_sends_it_in_quiet_hours() -> None:
    verdict, address = _verdict(_text(override_quiet=True), _patient(), NIGHT)
    assert (verdict.action, address) == ("send", PHONE)


def test_only_a_staff_text_can_override_quiet_hours() -> None:
    reminder = _text(kind="checkin", override_quiet=True)
    verdict, _ = _verdict(reminder, _patient(), NIGHT)
    assert verdict.action == "defer"
