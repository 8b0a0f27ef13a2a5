"""Staff versions of templates: saving (validated first), reverting, history. Every
change is a new numbered version with who made it and an audit row; nothing is
overwritten.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reminders.db.models import AuditLog, TemplateVersion
from reminders.db.types import utcnow
from reminders.settings import Settings
from reminders.templates.check import check_source
from reminders.templates.context import normalise_language
from reminders.templates.source import TemplateError
from reminders.templates.store import check_channel

_NAME_RE = re.compile(r"^[a-z0-9_]{1,100}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _validate_key(name: str, channel: str, language: str) -> None:
    if not _NAME_RE.match(name):
        raise TemplateError(f"bad template name {name!r}: use lower-case letters, digits and _")
    check_channel(channel)
    if not _LANGUAGE_RE.match(language):
        raise TemplateError(f"bad language {language!r}: use a code like en, es or es-MX")


def _store(
    db: Session,
    settings: Settings,
    *,
    name: str,
    channel: str,
    language: str,
    subject: str | None,
    body: str,
    html: str | None,
    actor: str,
    note: str | None,
    action: str,
    detail: dict[str, Any],
) -> TemplateVersion:
    language = normalise_language(language)
    _validate_key(name, channel, language)
    if channel == "sms":
        subject = subject if (subject or "").strip() else None
        html = html if (html or "").strip() else None
    else:
        html = html if (html or "").strip() else None
    result = check_source(
        channel=channel, subject=subject, body=body, html=html, settings=settings, language=language
    )
    key = f"{name}/{channel}/{language}"
    if result.errors:
        raise TemplateError(f"template {key} not saved: " + "; ".join(result.errors))
    current = db.scalar(
        select(func.max(TemplateVersion.version)).where(
            TemplateVersion.name == name,
            TemplateVersion.channel == channel,
            TemplateVersion.language == language,
        )
    )
    # Two staff saving at once: the unique (name, channel, language, version) refuses one.
    row = TemplateVersion(
        name=name,
        channel=channel,
        language=language,
        version=(current or 0) + 1,
        subject=subject.strip() if subject is not None else None,
        body=body,
        html=html,
        created_by=actor,
        created_at=utcnow(),
        note=note,
    )
    db.add(row)
    db.add(
        AuditLog(
            actor=actor,
            action=action,
            entity="template",
            entity_id=key,
            detail={"version": row.version, **detail},
        )
    )
    db.flush()
    return row


def save_version(
    db: Session,
    settings: Settings,
    *,
    name: str,
    channel: str,
    language: str,
    subject: str | None,
    body: str,
    html: str | None,
    actor: str,
    note: str | None = None,
) -> TemplateVersion:
    """Store a new staff version (it becomes live); refuses an invalid template.

    Flushes but does not commit: the caller owns the transaction.
    """
    return _store(
        db, settings, name=name, channel=channel, language=language, subject=subject, body=body,
        html=html, actor=actor, note=note, action="template.save", detail={},
    )  # fmt: skip


def revert_to(
    db: Session,
    settings: Settings,
    *,
    name: str,
    channel: str,
    language: str,
    version: int,
    actor: str,
    note: str | None = None,
) -> TemplateVersion:
    """Make an old version live again by saving a copy of it as the newest version."""
    language = normalise_language(language)
    old = db.scalar(
        select(TemplateVersion).where(
            TemplateVersion.name == name,
            TemplateVersion.channel == channel,
            TemplateVersion.language == language,
            TemplateVersion.version == version,
        )
    )
    if old is None:
        raise TemplateError(f"template {name}/{channel}/{language} has no version {version}")
    return _store(
        db, settings, name=name, channel=channel, language=language, subject=old.subject,
        body=old.body, html=old.html, actor=actor, note=note or f"revert to v{version}",
        action="template.revert", detail={"reverted_to": version},
    )  # fmt: skip


def template_history(
    db: Session, *, name: str, channel: str, language: str
) -> list[TemplateVersion]:
    """Every stored version, newest first."""
    return list(
        db.scalars(
            select(TemplateVersion)
            .where(
                TemplateVersion.name == name,
                TemplateVersion.channel == channel,
                TemplateVersion.language == normalise_language(language),
            )
            .order_by(TemplateVersion.version.desc())
        )
    )
