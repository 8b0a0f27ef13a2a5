"""Applying provider delivery reports to the outbox and to recipients.

Rules for a message's status (the moves are the ``report_*`` events of
:mod:`reminders.outbox.status`):

- Reports only act on messages handed to a provider (``sending``, ``sent``, ``delivered``,
  ``failed``); ``planned``, ``cancelled`` and ``skipped`` rows are never touched.
- A report that proves the provider accepted the message (Twilio ``queued``, ``sent``...;
  SendGrid ``processed``) settles a ``sending`` row as ``sent``: that is how a send whose
  answer was lost (in doubt) is settled without asking the provider. On a ``sent`` row it
  changes nothing, so it never races with the dispatcher's own write of ``sent``.
- ``delivered`` is final. A ``failed`` report after it changes nothing (for email a late
  bounce still marks the address unusable; that is a fact about the address, not the row).
- ``failed`` may still become ``delivered``: a delivery report is proof, and providers can
  report a temporary failure before a later success.

The functions change ORM objects and add rows; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from reminders.db.models import Message, Patient
from reminders.outbox.consent import normalise_address
from reminders.outbox.status import allowed, target

REASON_MAX = 200


def apply_accepted(message: Message, *, provider_message_id: str | None, at: datetime) -> bool:
    """The provider has the message: a ``sending`` row becomes ``sent`` (so does a row
    re-queued after an in-doubt send and not sent again yet: the re-send is called off);
    True if it changed."""
    if allowed(message.status, "report_accepted"):
        message.status = target("report_accepted")
    elif allowed(message.status, "late_report") and message.resends and message.sending_at:
        message.status = target("late_report")
        message.attempts = max(message.attempts, 1)
    else:
        return False
    if provider_message_id and not message.provider_message_id:
        message.provider_message_id = provider_message_id[:255]
    message.sent_at = message.sent_at or message.sending_at or at
    message.reason = None
    message.lease_owner = None
    message.lease_until = None
    return True


def apply_delivered(message: Message, *, at: datetime) -> bool:
    """Move to ``delivered``; True if the row changed."""
    late = apply_accepted(message, provider_message_id=None, at=at) and message.status == "sent"
    if not allowed(message.status, "report_delivered"):
        return late
    message.status = target("report_delivered")
    message.delivered_at = at
    message.sent_at = message.sent_at or message.sending_at or at
    message.reason = None
    message.lease_owner = None
    message.lease_until = None
    return True


def apply_failed(message: Message, *, error_code: str | None, reason: str) -> bool:
    """Move to ``failed`` with the provider's code; True if the row changed."""
    if not allowed(message.status, "report_failed"):
        return False
    message.status = target("report_failed")
    message.error_code = (error_code or None) and error_code[:64]
    message.reason = reason[:REASON_MAX]
    message.lease_owner = None
    message.lease_until = None
    return True


def note_deferred(message: Message, note: str) -> bool:
    """A delay report: no status change; the note shows on a ``sent`` row until it resolves."""
    if message.status != "sent":
        return False
    message.reason = note[:REASON_MAX]
    return True


def mark_address_unusable(
    db: Session, message: Message, *, channel: str, address: str | None, problem: str
) -> bool:
    """Record why the patient's phone or email cannot be used, if it is still the one reported.

    ``address`` is what the provider says it sent to; when it is unknown the message's
    patient's current address is taken as the one that failed.
    """
    if message.patient_id is None:
        return False
    patient = db.get(Patient, message.patient_id)
    if patient is None:
        return False
    current = patient.phone if channel == "sms" else patient.email
    if not current:
        return False
    if address is not None and normalise_address(channel, current) != normalise_address(
        channel, address
    ):
        return False
    if channel == "sms":
        patient.phone_problem = problem[:REASON_MAX]
    else:
        patient.email_problem = problem[:REASON_MAX]
    # A patient change like any other: the planner looks again (e.g. for a fallback channel).
    patient.needs_plan = True
    patient.change_seq = (patient.change_seq or 0) + 1
    return True
