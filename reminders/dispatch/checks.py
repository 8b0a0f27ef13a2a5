"""The checks at send time, pure given the facts: is a claimed message still wanted,
can it reach the patient now, and is it inside quiet hours? A pass can run late (a worker
was down, quiet hours deferred it), so everything the planner decided is checked again
at the moment of sending. A staff member's text to a patient (kind ``staff``) gets the same
consent, opt-out and quiet-hours checks; only its quiet hours can be overridden ("urgent").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reminders.clinic.records import ACTIVE_SESSION_STATUSES
from reminders.db.models import Location, Message, Patient, TreatmentSession
from reminders.outbox.consent import contact_problem, normalise_address
from reminders.outbox.status import STAFF_KIND, TO_PATIENT_KINDS
from reminders.planning.policy import Policy
from reminders.planning.timecalc import place_outside_quiet, quiet_period, recipient_zone


@dataclass(frozen=True)
class Verdict:
    """What to do with a claimed message. ``action``: send | skip | cancel | defer | fallback."""

    action: str
    reason: str | None = None
    defer_until: datetime | None = None


SEND = Verdict("send")


@dataclass
class Facts:
    """What the send-time checks need about a batch, read in a few queries."""

    opted_out: set[tuple[str, str]] = field(default_factory=set)
    superseded: set[int] = field(default_factory=set)
    booked_patients: set[str] = field(default_factory=set)


def session_verdict(
    msg: Message, session: TreatmentSession | None, now: datetime
) -> Verdict | None:
    if msg.session_id is None:
        return None
    if session is None:
        return Verdict("cancel", "session_deleted")
    if session.status == "cancelled":
        return Verdict("cancel", "session_cancelled")
    if msg.kind == "reminder":
        if msg.session_starts_at is not None and session.starts_at != msg.session_starts_at:
            return Verdict("cancel", "rescheduled")
        if session.status not in ACTIVE_SESSION_STATUSES:
            return Verdict("cancel", f"session_{session.status}")
        if now >= session.starts_at:
            return Verdict("skip", "session_started")
    if msg.kind == "checkin" and session.status == "no_show":
        return Verdict("cancel", "session_no_show")
    return None


def quiet_verdict(
    msg: Message, *, now: datetime, policy: Policy, tz: Any, session_start: datetime | None
) -> Verdict | None:
    """Re-check quiet hours at send time (a late pass must not text at 2 a.m.)."""
    quiet = policy.quiet(msg.channel)
    if quiet is None or quiet_period(now, quiet, tz) is None:
        return None
    pre_session = msg.kind == "reminder"
    placement = place_outside_quiet(
        now,
        pre_session=pre_session,
        session_start=session_start,
        quiet=quiet,
        tz=tz,
        min_lead=policy.min_lead,
        margin=policy.quiet_margin,
    )
    limit = session_start if pre_session else msg.not_after
    if placement.due_at > now and (limit is None or placement.due_at < limit):
        return Verdict("defer", "quiet_hours", defer_until=placement.due_at)
    return Verdict("skip", "quiet_hours")


def verdict_for(
    msg: Message,
    patient: Patient | None,
    session: TreatmentSession | None,
    location: Location | None,
    facts: Facts,
    now: datetime,
    *,
    policy: Policy,
    default_zone: ZoneInfo,
) -> tuple[Verdict, str | None]:
    """What to do with a claimed message, and the address to send it to."""
    if msg.not_after is not None and now >= msg.not_after:
        return Verdict("skip", "session_started" if msg.kind == "reminder" else "expired"), None
    if msg.kind not in TO_PATIENT_KINDS:
        # Staff alerts and replies: explicit recipient, no consent or quiet-hours gate.
        return (SEND, msg.to_address) if msg.to_address else (Verdict("skip", "no_recipient"), None)
    if patient is None:
        return Verdict("cancel", "patient_deleted"), None
    found = session_verdict(msg, session, now)
    if found is not None:
        return found, None
    if msg.id in facts.superseded:
        return Verdict("skip", "superseded"), None
    if msg.kind == "nudge" and msg.patient_id in facts.booked_patients:
        return Verdict("cancel", "session_booked"), None

    def problem_on(channel: str) -> str | None:
        address = patient.phone if channel == "sms" else patient.email
        opted = (
            bool(address)
            and (channel, normalise_address(channel, address or "")) in facts.opted_out
        )
        return contact_problem(channel, patient, opted)

    problem = problem_on(msg.channel)
    if problem is not None:
        rule = policy.rule(msg.rule)
        if rule is not None and rule.fallback and rule.fallback != msg.channel:
            other_problem = problem_on(rule.fallback)
            if other_problem is None:
                return Verdict("fallback", problem), None
            return Verdict(
                "skip", f"{problem}; {rule.fallback} fallback impossible: {other_problem}"
            ), None
        return Verdict("skip", problem), None
    address = patient.phone if msg.channel == "sms" else patient.email
    if msg.kind == STAFF_KIND and (msg.data or {}).get("override_quiet") is True:
        # A staff member ticked "urgent: send now even in quiet hours" (consent and opt-out
        # were checked above: they are never overridden).
        return SEND, address
    tz = recipient_zone(
        patient_tz=patient.timezone,
        location_tz=location.timezone if location else None,
        default=default_zone,
    )
    quiet = quiet_verdict(
        msg, now=now, policy=policy, tz=tz, session_start=session.starts_at if session else None
    )
    if quiet is not None:
        return quiet, None
    return SEND, address
