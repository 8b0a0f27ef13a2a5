"""Opt-outs per channel and address: STOP/START, unsubscribe links, spam reports,
provider refusals (Twilio 21610). One place that writes and reads them, and says whether a
patient can be reached on a channel at all (:func:`contact_problem`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.db.models import OptOut
from reminders.db.types import utcnow


def normalise_address(channel: str, address: str) -> str:
    address = address.strip()
    return address.lower() if channel == "email" else address


def is_opted_out(db: Session, channel: str, address: str) -> bool:
    return bool(
        db.scalar(
            select(
                exists().where(
                    OptOut.channel == channel,
                    OptOut.address == normalise_address(channel, address),
                    OptOut.active.is_(True),
                )
            )
        )
    )


def set_opt_out(
    db: Session,
    *,
    channel: str,
    address: str,
    source: str,
    active: bool = True,
    at: datetime | None = None,
) -> bool:
    """Opt out (``active``) or back in; True when this changed anything.

    An opt-in for an address that never opted out changes nothing. A concurrent insert of
    the same opt-out loses gracefully (the unique key on channel and address decides).
    """
    address = normalise_address(channel, address)
    if not address:
        return False
    at = at or utcnow()
    row = db.scalar(select(OptOut).where(OptOut.channel == channel, OptOut.address == address))
    if row is None:
        if not active:
            return False
        try:
            with db.begin_nested():
                db.add(
                    OptOut(
                        channel=channel,
                        address=address,
                        active=True,
                        source=source,
                        created_at=at,
                        updated_at=at,
                    )
                )
        except IntegrityError:
            return False
        return True
    if row.active == active:
        return False
    row.active = active
    row.source = source
    row.updated_at = at
    return True


class Contact(Protocol):
    """What decides whether a patient can be reached (a :class:`Patient` is one)."""

    @property
    def phone(self) -> str | None: ...
    @property
    def phone_problem(self) -> str | None: ...
    @property
    def sms_consent(self) -> bool: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_problem(self) -> str | None: ...
    @property
    def email_consent(self) -> bool: ...


def contact_problem(channel: str, patient: Contact, opted_out: bool) -> str | None:
    """Why this patient cannot get a message on this channel now, or None."""
    if channel == "sms":
        if not patient.phone:
            return f"no_phone: {patient.phone_problem}" if patient.phone_problem else "no_phone"
        if patient.phone_problem:
            return f"phone_unusable: {patient.phone_problem}"
        if not patient.sms_consent:
            return "no_sms_consent"
        if opted_out:
            return "sms_opted_out"
        return None
    if not patient.email:
        return "no_email"
    if patient.email_problem:
        return f"email_unusable: {patient.email_problem}"
    if not patient.email_consent:
        return "no_email_consent"
    if opted_out:
        return "email_opted_out"
    return None
