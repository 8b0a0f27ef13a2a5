"""Finding templates. A template is identified by (name, channel, language). Template files
live in folders (``settings.template_dirs``: the clinic's ``REMINDERS_TEMPLATES_DIR``
overrides first, then the built-in defaults shipped in :mod:`reminders.defaults`)::

    <lang>/<name>.sms.j2              SMS body
    <lang>/<name>.email.subject.j2    email subject (one line)
    <lang>/<name>.email.txt.j2        email plain-text body
    <lang>/<name>.email.html.j2       optional HTML body (else made from the text)

Staff versions live in ``template_versions`` (see :mod:`reminders.templates.versions`);
the highest version of a (name, channel, language) overrides the file. Languages fall
back ``es-MX`` -> ``es`` -> ``en``, and at each step a database version beats the files of
the same language, and an override file beats the built-in one. Files are re-read only when their modification time changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from reminders import defaults
from reminders.db.models import TemplateVersion
from reminders.outbox.status import CHANNELS
from reminders.settings import Settings
from reminders.templates.context import language_chain
from reminders.templates.source import TemplateError, TemplateInfo, TemplateSource

_FILE_SUFFIXES: dict[str, dict[str, str]] = {
    "sms": {"body": ".sms.j2"},
    "email": {"subject": ".email.subject.j2", "body": ".email.txt.j2", "html": ".email.html.j2"},
}
_file_cache: dict[Path, tuple[int, str]] = {}


def _read(path: Path) -> str | None:
    """A template file's text, re-read only when its modification time changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    cached = _file_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    text = path.read_text(encoding="utf-8")
    _file_cache[path] = (mtime, text)
    return text


def _file_source(
    settings: Settings, name: str, channel: str, language: str
) -> TemplateSource | None:
    for root in settings.template_dirs:
        found = _file_source_in(root, name, channel, language)
        if found is not None:
            return found
    return None


def _origin(root: Path) -> Literal["built-in", "file"]:
    """The package's own templates, or the clinic's folder (REMINDERS_TEMPLATES_DIR)."""
    return "built-in" if root == defaults.TEMPLATES_DIR else "file"


def _file_source_in(root: Path, name: str, channel: str, language: str) -> TemplateSource | None:
    folder = root / language
    origin = _origin(root)
    parts = {
        part: _read(folder / f"{name}{suffix}") for part, suffix in _FILE_SUFFIXES[channel].items()
    }
    if parts["body"] is None and parts.get("subject") is None:
        return None
    where = f"template {name}/{channel}/{language} ({origin})"
    if parts["body"] is None:
        raise TemplateError(f"{where}: missing {folder / (name + _FILE_SUFFIXES[channel]['body'])}")
    subject = parts.get("subject")
    if channel == "email" and subject is None:
        raise TemplateError(
            f"{where}: missing {folder / (name + _FILE_SUFFIXES['email']['subject'])}"
        )
    return TemplateSource(
        name=name,
        channel=channel,  # type: ignore[arg-type]
        language=language,
        body=parts["body"],
        subject=subject.strip() if subject is not None else None,
        html=parts.get("html"),
        origin=origin,
    )


def _file_keys(settings: Settings, parts: str = "all") -> dict[tuple[str, str, str], str]:
    """(name, channel, language) of every template file in any template folder, with where
    the live one is ("file" or "built-in"); with ``parts="body"`` only body files count."""
    keys: dict[tuple[str, str, str], str] = {}
    for root in settings.template_dirs:
        origin = _origin(root)
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in folder.iterdir():
                for channel, suffixes in _FILE_SUFFIXES.items():
                    wanted = [suffixes["body"]] if parts == "body" else list(suffixes.values())
                    for suffix in wanted:
                        if path.name.endswith(suffix):
                            keys.setdefault(
                                (path.name[: -len(suffix)], channel, folder.name), origin
                            )
    return keys


def _from_row(row: TemplateVersion) -> TemplateSource:
    return TemplateSource(
        name=row.name,
        channel=row.channel,  # type: ignore[arg-type]
        language=row.language,
        body=row.body,
        subject=row.subject,
        html=row.html,
        origin="db",
        version=row.version,
    )


def _latest_rows(
    db: Session,
    *,
    languages: Iterable[str] | None = None,
    name: str | None = None,
    channel: str | None = None,
) -> list[TemplateVersion]:
    """The highest version of each (name, channel, language) matching the filters."""
    newer = aliased(TemplateVersion)
    latest = (
        select(func.max(newer.version))
        .where(
            newer.name == TemplateVersion.name,
            newer.channel == TemplateVersion.channel,
            newer.language == TemplateVersion.language,
        )
        .scalar_subquery()
    )
    query = select(TemplateVersion).where(TemplateVersion.version == latest)
    if name is not None:
        query = query.where(TemplateVersion.name == name)
    if channel is not None:
        query = query.where(TemplateVersion.channel == channel)
    if languages is not None:
        query = query.where(TemplateVersion.language.in_(list(languages)))
    return list(db.scalars(query))


def check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise TemplateError(f"unknown channel {channel!r} (sms or email)")


def resolve_template(
    db: Session | None, settings: Settings, *, name: str, channel: str, language: str | None
) -> TemplateSource:
    """The live template for (name, channel, language), with language fallback.

    At each language of the chain a database version beats the shipped file; ``db=None``
    looks at the files only.
    """
    check_channel(channel)
    chain = language_chain(language)
    rows = {}
    if db is not None:
        rows = {
            row.language: row
            for row in _latest_rows(db, languages=chain, name=name, channel=channel)
        }
    for lang in chain:
        if lang in rows:
            return _from_row(rows[lang])
        found = _file_source(settings, name, channel, lang)
        if found is not None:
            return found
    raise TemplateError(f"no template {name}/{channel} in any of {', '.join(chain)}")


def file_templates(settings: Settings) -> list[TemplateSource]:
    """The live file version of every template (raises TemplateError for an incomplete
    email set)."""
    found = [_file_source(settings, *key) for key in sorted(_file_keys(settings))]
    return [source for source in found if source is not None]


def db_templates(db: Session) -> list[TemplateSource]:
    """The live (highest) database version of every staff-edited template."""
    rows = _latest_rows(db)
    return sorted((_from_row(row) for row in rows), key=lambda s: (s.name, s.channel, s.language))


def list_templates(db: Session | None, settings: Settings) -> list[TemplateInfo]:
    """All templates, each with where its live version comes from ("built-in", "file" for the
    clinic's folder, or "db v3")."""
    found = _file_keys(settings, parts="body")
    if db is not None:
        for row in _latest_rows(db):
            found[(row.name, row.channel, row.language)] = f"db v{row.version}"
    return [
        TemplateInfo(name, channel, language, source)  # type: ignore[arg-type]
        for (name, channel, language), source in sorted(found.items())
    ]
