"""Messages stored but never processed: the process answered the provider, then died.

A webhook answers 200 once the message is stored; processing normally finishes in the same
request. If the process is killed in between (or processing outlived the webhook's time budget
and the process then stopped), the row stays with ``processed_at`` empty and no ``error``.
Every worker pass processes such rows once they are ``STRANDED_AFTER`` old; the claim in
:func:`process_inbound` makes a row that a webhook is still processing a no-op here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.conversations.inbound import process_inbound
from reminders.db.models import InboundMessage
from reminders.logs import event
from reminders.settings import Settings

log = logging.getLogger(__name__)

STRANDED_AFTER = timedelta(seconds=30)
BATCH = 100


def process_stranded(
    factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
) -> int:
    """Process stored messages nobody processed; returns how many were picked up."""
    with read_factory() as db:
        ids = list(
            db.scalars(
                select(InboundMessage.id)
                .where(
                    InboundMessage.processed_at.is_(None),
                    InboundMessage.error.is_(None),
                    InboundMessage.received_at <= now - STRANDED_AFTER,
                )
                .order_by(InboundMessage.received_at)
                .limit(BATCH)
            )
        )
    for inbound_id in ids:
        event(log, "stranded inbound message processed", logging.WARNING, inbound_id=inbound_id)
        process_inbound(factory, settings, inbound_id, now=now)
    return len(ids)
