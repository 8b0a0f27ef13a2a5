"""What an outbox row can be: its channel, its kind, and its status with the moves allowed.

The status is one of :class:`Status` (docs/design.md section 6). The moves between them are the
table :data:`MOVES`, each named by the event that makes it; every writer of ``messages.status``
(:mod:`reminders.outbox.store` for SQL updates, :mod:`reminders.outbox.delivery` for provider
reports) asks :func:`sources` or :func:`move` here, and a CHECK constraint keeps any other value
out of the table. The life of a message::

    planned -> sending -> sent -> delivered
       |          |         \\-> failed -> delivered (a late delivery report is proof)
       |          |-> planned   (a transient error; reconciled: the provider never had it; or
       |          |              given back before the call when its rate slot had passed)
       |          |-> failed    (a permanent error)
       |          \\-> sent      (reconciled: the provider has it; or a provider report says so)
       |-> sent       (re-queued after an in-doubt send, when a late report proves it went out)
       \\-> cancelled -> planned (the planner wants it again) | skipped | failed (before sending)

**In doubt** is not a status of its own: it is a ``sending`` row whose lease has expired, i.e.
the provider call began and no outcome was recorded (the process died, or the answer was lost).
The reconcile pass (:mod:`reminders.dispatch.reconcile`) moves each one on: to ``sent`` when the
provider has it, back to ``planned`` when it provably does not, or to ``failed`` with a staff
task when nobody can tell.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Channel = Literal["sms", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "email")


class Status(StrEnum):
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


MESSAGE_STATUSES: tuple[str, ...] = tuple(s.value for s in Status)

# event -> (from, to). Everything not listed is refused.
MOVES: dict[str, tuple[frozenset[Status], Status]] = {
    # The dispatcher, before the provider call (its rate slot already taken).
    "send": (frozenset({Status.PLANNED}), Status.SENDING),
    # Checks at send time, before any provider call.
    "cancel": (frozenset({Status.PLANNED}), Status.CANCELLED),
    "skip": (frozenset({Status.PLANNED}), Status.SKIPPED),
    "fail_unsent": (frozenset({Status.PLANNED}), Status.FAILED),
    "revive": (frozenset({Status.CANCELLED}), Status.PLANNED),
    # The row was marked too late for its rate slot: given back before any call began.
    "unsend": (frozenset({Status.SENDING}), Status.PLANNED),
    # The provider call's outcome.
    "accepted": (frozenset({Status.SENDING}), Status.SENT),
    "retry": (frozenset({Status.SENDING}), Status.PLANNED),
    "refused": (frozenset({Status.SENDING}), Status.FAILED),
    # Reconciliation of an in-doubt row.
    "reconciled_found": (frozenset({Status.SENDING}), Status.SENT),
    "reconciled_absent": (frozenset({Status.SENDING}), Status.PLANNED),
    "unresolved": (frozenset({Status.SENDING}), Status.FAILED),
    # Provider reports (status callbacks, event webhooks). A report of acceptance for a row
    # re-queued after an in-doubt send proves the earlier send went out: the re-send is
    # called off (only such rows: reminders.outbox.delivery checks ``resends``).
    "late_report": (frozenset({Status.PLANNED}), Status.SENT),
    "report_accepted": (frozenset({Status.SENDING}), Status.SENT),
    "report_delivered": (
        frozenset({Status.SENDING, Status.SENT, Status.FAILED}),
        Status.DELIVERED,
    ),
    "report_failed": (frozenset({Status.SENDING, Status.SENT}), Status.FAILED),
}

# No event leaves these.
FINAL = frozenset({Status.DELIVERED, Status.SKIPPED})
# The provider has (or had) the message: no event may take it back to planned or sending.
ACCEPTED = frozenset({Status.SENT, Status.DELIVERED})

# Went out, as far as we know (``sending`` may be in doubt).
SENT_STATUSES = ("sending", "sent", "delivered")
# Handed to a provider: the statuses a provider's delivery report may act on.
HANDED_OVER = frozenset({"sending", "sent", "delivered", "failed"})

# Messages to patients, planned from the policy: the planner owns these rows (it re-plans,
# revives and cancels them). The other kinds, ``alert`` (to on-call staff) and ``reply`` (an
# answer to an inbound message), have an explicit recipient.
PATIENT_KINDS = ("reminder", "checkin", "nudge")
# A text a staff member wrote on the patient's page (reminders.web.staff.conversation). It goes
# to the patient's own number, so it is checked at send time like the planned kinds (consent,
# opt-out, quiet hours unless ``data["override_quiet"]``), but the planner never touches it.
STAFF_KIND = "staff"
# Every kind sent to the patient's own address, behind the consent and opt-out checks.
TO_PATIENT_KINDS = (*PATIENT_KINDS, STAFF_KIND)


class IllegalMove(ValueError):
    """An event that may not happen to a message in its current status."""


def sources(event: str) -> tuple[str, ...]:
    """The statuses ``event`` may move a row from (for an UPDATE's WHERE clause)."""
    return tuple(sorted(s.value for s in MOVES[event][0]))


def target(event: str) -> str:
    return MOVES[event][1].value


def allowed(current: str, event: str) -> bool:
    origin, _ = MOVES[event]
    return current in {s.value for s in origin}


def move(current: str, event: str) -> str:
    """The status after ``event``; :class:`IllegalMove` when it may not happen now."""
    if event not in MOVES:
        raise IllegalMove(f"unknown message event {event!r}")
    if not allowed(current, event):
        raise IllegalMove(f"a {current!r} message cannot take the event {event!r}")
    return target(event)


def check_constraint_sql(column: str = "status") -> str:
    """The CHECK constraint's condition: the column holds one of the statuses."""
    values = ", ".join(f"'{s}'" for s in MESSAGE_STATUSES)
    return f"{column} IN ({values})"
