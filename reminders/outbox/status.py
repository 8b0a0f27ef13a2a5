"""What an outbox row can be: its channel, its kind and its status.

A message is ``planned`` until the dispatcher marks it ``sending`` (just before the provider
call), then ``sent``; provider reports move it to ``delivered`` or ``failed`` (see
:mod:`reminders.outbox.delivery`). ``cancelled`` and ``skipped`` are end states that never
went out; like ``failed`` they carry a reason.
"""

from __future__ import annotations

from typing import Literal

Channel = Literal["sms", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "email")

MESSAGE_STATUSES = ("planned", "sending", "sent", "delivered", "failed", "cancelled", "skipped")
# Went out, as far as we know (``sending`` may be in doubt).
SENT_STATUSES = ("sending", "sent", "delivered")
# Handed to a provider: the statuses a provider's delivery report may act on.
HANDED_OVER = frozenset({"sending", "sent", "delivered", "failed"})

# Messages to patients, planned from the policy. The other kinds, ``alert`` (to on-call
# staff) and ``reply`` (an answer to an inbound message), have an explicit recipient.
PATIENT_KINDS = ("reminder", "checkin", "nudge")
