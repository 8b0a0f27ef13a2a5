"""SQLAlchemy 2.0 typed models: the clinic tables and the worker's own tables.

Times are stored as timezone-aware UTC (``UtcDateTime``), on SQLite too, so that
arithmetic never mixes naive and aware values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reminders.db.types import BigId, UtcDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


# --- clinic tables ---------------------------------------------------------------------------


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    # Why SMS is impossible for this patient (unparseable number, carrier said invalid).
    phone_problem: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    email_problem: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16), default="en")
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    email_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the clinic's records said at the last import or sync: a consent staff change in the
    # console stands until the clinic's own value changes (reminders.clinic.importer).
    clinic_sms_consent: Mapped[bool | None] = mapped_column(Boolean)
    clinic_email_consent: Mapped[bool | None] = mapped_column(Boolean)
    initial_series_size: Mapped[int] = mapped_column(Integer, default=6)
    maintenance_interval_days: Mapped[int] = mapped_column(Integer, default=28)
    # Set (and change_seq bumped) whenever the patient, their sessions or their location
    # change; the planner clears it only if change_seq is still what it read (incremental planning).
    needs_plan: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    change_seq: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TreatmentSession(Base):
    """A booked session (an infusion, a consultation...). Table ``sessions``."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    location_id: Mapped[str | None] = mapped_column(ForeignKey("locations.id"))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=60)
    kind: Mapped[str] = mapped_column(String(64), default="infusion")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    phase: Mapped[str | None] = mapped_column(String(16))  # as given; derived when null
    series_number: Mapped[int | None] = mapped_column(Integer)  # as given; derived when null
    confirmed_at: Mapped[datetime | None] = mapped_column()
    # How it was confirmed: sms | email | phone (staff, by phone) | clinic (the clinic's data).
    confirmed_via: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- worker tables ---------------------------------------------------------------------------


MESSAGE_STATUS_CHECK = (
    "status IN ('planned', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'skipped')"
)


class Message(Base):
    """The outbox: one row per message, written before anything is sent."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "status", "due_at"),
        Index("ix_messages_session", "session_id", "channel"),
        # The statuses and their moves are reminders.outbox.status (a unit test keeps this the
        # same as its list); no other value gets in.
        CheckConstraint(MESSAGE_STATUS_CHECK, name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    patient_id: Mapped[str | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    session_starts_at: Mapped[datetime | None] = mapped_column()
    rule: Mapped[str] = mapped_column(String(100))
    # reminder | checkin | nudge | alert (to staff) | reply (an answer to an inbound message)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    template: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column()
    # The last moment the message is still worth sending (session start, check-in expiry).
    not_after: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str | None] = mapped_column(String(500))
    # Explicit recipient (staff alerts, replies to unknown numbers); patients' come from the patient row.
    to_address: Mapped[str | None] = mapped_column(String(320))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column()
    provider: Mapped[str | None] = mapped_column(String(32))
    # Not indexed: callbacks find the row by our own id (echoed back by the providers).
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    # Free-form facts for rendering (alert details, the reply text to send, the planner's shifts).
    data: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    # The latest provider call: when it began and the address it went to (what reconciling an
    # in-doubt send asks the provider about), and how many times an in-doubt send was re-sent.
    sending_at: Mapped[datetime | None] = mapped_column()
    sent_to: Mapped[str | None] = mapped_column(String(320))
    resends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TemplateVersion(Base):
    """Staff-edited templates; the highest version of (name, channel, language) is live."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("name", "channel", "language", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(500))


class OptOut(Base):
    """A recipient's opt-out per channel (STOP, unsubscribe, spam report, carrier 21610)."""

    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(320))  # E.164 or lower-cased email
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboundMessage(Base):
    """A reply from a patient (or anyone), stored before it is processed."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        # The sweep for messages stored but never processed reads only these.
        Index(
            "ix_inbound_unprocessed",
            "received_at",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    provider_message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    from_address: Mapped[str] = mapped_column(String(320), index=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    patient_id: Mapped[str | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), index=True
    )
    match_note: Mapped[str | None] = mapped_column(String(500))
    # crisis | opt_out | opt_in | help | confirm | reschedule | checkin | review | free_text;
    # null = not processed yet
    classification: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[int | None] = mapped_column(Integer)
    checkin_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    processed_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(500))
    # The inbox item this message was filed on (its own, or the sender's open one it joined).
    # ``use_alter``: staff_tasks also points here (inbound_id), a cycle.
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_tasks.id", ondelete="SET NULL", use_alter=True), index=True
    )


class StaffTask(Base):
    """An item in the staff inbox: a reply to read, a call to make, an urgent alert."""

    __tablename__ = "staff_tasks"
    __table_args__ = (
        Index("ix_staff_tasks_open", "acknowledged_at", "urgent"),
        # One open inbox item per patient (or unknown sender): two messages processed at once
        # cannot both open one. Acknowledging frees the key.
        Index(
            "uq_staff_tasks_open_key",
            "open_key",
            unique=True,
            sqlite_where=text("acknowledged_at IS NULL"),
            postgresql_where=text("acknowledged_at IS NULL"),
        ),
        Index("ix_staff_tasks_page_due_at", "page_due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # crisis | low_score | review | reschedule | unconfirmed | free_text | unknown_sender |
    # delivery_failed | prep_late
    kind: Mapped[str] = mapped_column(String(32))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_id: Mapped[str | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    summary: Mapped[str] = mapped_column(String(500))
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_alert_at: Mapped[datetime | None] = mapped_column()
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))
    note: Mapped[str | None] = mapped_column(Text)
    # Inbox items for patients' messages: "patient:<id>" or "<channel>:<address>" (unknown
    # senders). Later messages from the same sender join the open item (inbound_messages.task_id).
    open_key: Mapped[str | None] = mapped_column(String(400))
    # What a page calls it: "suicide risk", "possible overdose"... (never the message text).
    category: Mapped[str | None] = mapped_column(String(100))
    # The risk screen's second tier: a person must read it soon (no 988 reply, paged if unread).
    urgent_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # When on-call is paged if nobody has acknowledged it (once; null = no unread page due).
    page_due_at: Mapped[datetime | None] = mapped_column()
    # Messages filed on this item; the acknowledgement names how many the person saw.
    message_count: Mapped[int] = mapped_column(Integer, default=0)


class CheckinScore(Base):
    """A patient's check-in answer (0-10): the mood trend."""

    __tablename__ = "checkin_scores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    score: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderEvent(Base):
    """Provider webhook events already applied (SendGrid ``sg_event_id``), for de-duplication."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedToken(Base):
    """Unsubscribe tokens that no longer work."""

    __tablename__ = "revoked_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="staff")  # admin | staff
    password_hash: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The console's language for this person: en | es (None: the browser's).
    language: Mapped[str | None] = mapped_column(String(8))


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(
        String(320)
    )  # a staff email, "system", "patient:<id>", "import"
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any] | None] = mapped_column()


class ProviderSlot(Base):
    """The next free send slot per provider, shared by every worker (the rate limit holds
    across processes, not just within one)."""

    __tablename__ = "provider_slots"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_slot: Mapped[datetime] = mapped_column()


class WorkerState(Base):
    """Small key/value facts shared by workers: last pass times, the policy fingerprint."""

    __tablename__ = "worker_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- staff console sessions and login throttling ----------------------------------------------


class StaffSession(Base):
    """A signed-in console session. The signed cookie carries a random token; this row, keyed
    by the token's SHA-256, says whether it still counts: not revoked (sign-out, a password
    change or reset, a disabled account) and not idle past ``REMINDERS_STAFF_IDLE_MINUTES``."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class LoginThrottle(Base):
    """Recent failed password checks per key (a client address, an account, an account from
    one address, a signed-in user's current-password checks), shared by every worker. The key
    is a hash: what an outsider typed as an email is never stored."""

    __tablename__ = "staff_login_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    blocked_until: Mapped[datetime | None] = mapped_column()


class StaffNote(Base):
    """A note staff wrote about a patient, shown in the patient's conversation."""

    __tablename__ = "staff_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(320))  # the staff member's email
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PolicyVersion(Base):
    """A saved version of the policy file (console edits): history, diff and revert."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    text: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(320))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskRead(Base):
    """Who has seen an inbox item (the inbox's unread state is per staff member)."""

    __tablename__ = "task_reads"

    task_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("staff_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[datetime] = mapped_column(default=utcnow)
