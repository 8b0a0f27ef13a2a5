"""Turn an outbox row into an :class:`OutgoingMessage`: template, context, attachments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import Location, Message, Patient, TreatmentSession
from reminders.dispatch.ics import session_ics
from reminders.outbox.unsubscribe import unsubscribe_headers, unsubscribe_url
from reminders.planning.policy import Policy
from reminders.planning.timecalc import recipient_zone
from reminders.providers.base import Attachment, OutgoingMessage
from reminders.settings import Settings
from reminders.templates.context import build_context, context_language
from reminders.templates.render import render_source
from reminders.templates.source import TemplateSource
from reminders.templates.store import resolve_template

log = logging.getLogger(__name__)


def _calendar(
    settings: Settings, session: TreatmentSession, location: Location | None, patient: Patient
) -> Attachment:
    tz = recipient_zone(
        patient_tz=patient.timezone,
        location_tz=location.timezone if location else None,
        default=settings.zone,
    )
    return session_ics(
        session_id=session.id,
        starts_at=session.starts_at,
        duration_minutes=session.duration_minutes,
        summary=f"Appointment at {settings.clinic_name}",
        location_name=location.name if location else "",
        location_address=location.address if location else "",
        tz=tz,
        clinic_name=settings.clinic_name,
    )


def render_outgoing(
    source_for: Callable[[str, str, str | None], TemplateSource],
    settings: Settings,
    *,
    msg: Message,
    patient: Patient | None,
    session: TreatmentSession | None,
    location: Location | None,
    to_address: str,
    now: datetime,
    policy: Policy | None,
) -> tuple[OutgoingMessage, str]:
    """The message ready for its provider, and the language of the template actually used.

    ``source_for(name, channel, language)`` finds the live template (cached per pass).
    ``now`` is the moment of sending: the text says "today" or "tomorrow", and gives cut-off
    times, as they are true then."""
    data: dict[str, Any] = dict(msg.data or {})
    # A staff alert is read by staff, in the language it was queued in, not the patient's.
    if msg.kind == "alert":
        wanted = msg.language or "en"
    else:
        wanted = (patient.language if patient else None) or msg.language or "en"
    source = source_for(msg.template, msg.channel, wanted)
    patient_email = (
        msg.channel == "email"
        and patient is not None
        and msg.kind in ("reminder", "checkin", "nudge")
    )
    unsubscribe = (
        unsubscribe_url(settings, patient_id=patient.id, address=to_address)
        if patient_email and patient
        else None
    )
    context = build_context(
        settings,
        patient=patient,
        session=session,
        location=location,
        series_number=data.get("series_number"),
        series_size=data.get("series_size"),
        unsubscribe_url=unsubscribe,
        language=context_language(wanted, source.language),
        alert=data if msg.kind == "alert" else None,
        reply_text=data.get("text", ""),
        now=now,
        policy=policy,
        channel=msg.channel,
    )
    rendered = render_source(source, context)
    attachments: tuple[Attachment, ...] = ()
    if (
        msg.channel == "email"
        and msg.kind == "reminder"
        and session is not None
        and patient is not None
    ):
        attachments = (_calendar(settings, session, location, patient),)
    return OutgoingMessage(
        message_id=msg.id,
        channel=msg.channel,
        to=to_address,
        body=rendered.text,
        # A pass-through text may carry its own subject ("send me a test" of an email).
        subject=(data.get("subject") or rendered.subject)
        if msg.template == "reply_text"
        else rendered.subject,
        html=rendered.html,
        rule=msg.rule,
        kind=msg.kind,
        session_id=msg.session_id,
        patient_id=msg.patient_id,
        not_after=msg.not_after,
        attachments=attachments,
        headers=unsubscribe_headers(unsubscribe),
        unsubscribe_url=unsubscribe,
    ), source.language


class TemplateCache:
    """Template sources for one pass: one lookup per (name, channel, language), not per message.
    A staff edit is picked up by the next pass."""

    def __init__(self, settings: Settings, reader: sessionmaker[Session]) -> None:
        self.settings = settings
        self.reader = reader
        self._sources: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()

    def source(self, name: str, channel: str, language: str | None) -> Any:
        key = (name, channel, language)
        with self._lock:
            if key not in self._sources:
                with self.reader() as db:
                    self._sources[key] = resolve_template(
                        db, self.settings, name=name, channel=channel, language=language
                    )
            return self._sources[key]
