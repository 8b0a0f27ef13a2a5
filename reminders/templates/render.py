"""Message templates: sandboxed Jinja2, the template context, validation, versions (DESIGN 7).

A template is identified by (name, channel, language). Shipped defaults live under
``settings.templates_dir``::

    <lang>/<name>.sms.j2              SMS body
    <lang>/<name>.email.subject.j2    email subject (one line)
    <lang>/<name>.email.txt.j2        email plain-text body
    <lang>/<name>.email.html.j2       optional HTML body (else made from the text)

Staff versions live in ``template_versions``; the highest version of a (name, channel,
language) overrides the file. Languages fall back ``es-MX`` -> ``es`` -> ``en``, and at
each step a database version beats the file of the same language.

Rendering is on the dispatch hot path: compiled templates are cached by source text and
shipped files by modification time, so a message costs one small query and a render.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from reminders.db.models import AuditLog, Location, Patient, TemplateVersion, TreatmentSession
from reminders.db.types import utcnow
from reminders.outbox.status import CHANNELS, Channel
from reminders.planning.timecalc import recipient_zone
from reminders.settings import Settings
from reminders.templates.sms import SmsInfo, smart_encode, sms_info

DEFAULT_LANGUAGE = "en"
MAX_SMS_SEGMENTS = 2

# The template context (DESIGN 7): top-level name -> its attributes (None: a plain value).
VARIABLES: dict[str, tuple[str, ...] | None] = {
    "patient": ("first_name",),
    "session": ("date", "time", "kind", "series_number", "series_size", "confirmed"),
    "location": ("name", "address", "phone"),
    "clinic": ("name", "phone"),
    "reply": ("confirm", "reschedule"),
    "unsubscribe_url": None,
    "alert": ("summary", "kind", "patient_id", "link"),
    # The text of an automatic answer to a patient's reply (HELP, confirmations...), composed
    # by reminders.conversations and sent through the pass-through template "reply_text".
    "reply_text": None,
}
KNOWN_NAMES = sorted(
    [top for top, attrs in VARIABLES.items() if attrs is None]
    + [f"{top}.{attr}" for top, attrs in VARIABLES.items() for attr in attrs or ()]
)

_NAME_RE = re.compile(r"^[a-z0-9_]{1,100}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class TemplateError(Exception):
    """A template is missing, does not parse, or does not render; the message says where."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


@dataclass
class CheckResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sms: SmsInfo | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class TemplateSource:
    """One template's source text and where it came from."""

    name: str
    channel: Channel
    language: str
    body: str
    subject: str | None = None
    html: str | None = None
    origin: Literal["file", "db"] = "file"
    version: int | None = None

    @property
    def id(self) -> str:
        return f"{self.name}/{self.channel}/{self.language}"

    @property
    def label(self) -> str:
        return "file" if self.origin == "file" else f"db v{self.version}"


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    channel: Channel
    language: str
    source: str  # "file" or "db v3"


# --- Jinja environments and the compile cache ---------------------------------------------

_ENV_OPTIONS: dict[str, Any] = {
    "undefined": StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
    "auto_reload": False,
}
# Immutable: a template cannot call .append()/.update() on what it is given either.
_TEXT_ENV = ImmutableSandboxedEnvironment(autoescape=False, **_ENV_OPTIONS)
_HTML_ENV = ImmutableSandboxedEnvironment(autoescape=True, **_ENV_OPTIONS)
_TEMPLATE_FILENAME = "<template>"  # what Jinja puts in tracebacks for from_string templates


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> Template:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_part(source: str, *, html: bool, context: Mapping[str, Any], where: str) -> str:
    try:
        template = _compile(source, html)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{where} line {exc.lineno}: syntax error: {exc.message}") from None
    try:
        return template.render(context)
    except Exception as exc:  # noqa: BLE001 - template code can raise anything; report it with its line
        line = _template_line(exc.__traceback__)
        at = f" line {line}" if line else ""
        if isinstance(exc, SecurityError):
            what = f"not allowed: {exc}"
        elif isinstance(exc, UndefinedError):
            what = f"undefined variable: {exc.message}"
        else:
            what = f"{type(exc).__name__}: {exc}"
        raise TemplateError(f"{where}{at}: {what}") from None


# --- the context ---------------------------------------------------------------------------


def normalise_language(language: str | None) -> str:
    """``es_mx`` / ``ES-mx`` -> ``es-MX``; empty -> ``en``."""
    value = (language or "").strip().replace("_", "-")
    if not value:
        return DEFAULT_LANGUAGE
    head, *rest = value.split("-")
    tail = [part.upper() if len(part) == 2 else part for part in rest]
    return "-".join([head.lower(), *tail])


def language_chain(language: str | None) -> list[str]:
    """The languages tried in order: ``es-MX`` -> ``["es-MX", "es", "en"]``."""
    parts = normalise_language(language).split("-")
    chain = ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]
    if DEFAULT_LANGUAGE not in chain:
        chain.append(DEFAULT_LANGUAGE)
    return chain


@lru_cache(maxsize=256)
def babel_locale(language: str | None) -> Locale:
    for candidate in language_chain(language):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LANGUAGE)


@lru_cache(maxsize=256)
def _day_pattern(locale: Locale) -> str:
    """The locale's full date pattern without the year: "EEEE, MMMM d" / "EEEE, d 'de' MMMM"."""
    full = locale.date_formats["full"].pattern
    without_year = re.sub(r"(?:[\s,.]*(?:'de'|'del')?\s*)y+\.?(?:\s*'г'\.?)?$", "", full)
    return without_year if "y" not in without_year.replace("'", "") else full


# CLDR puts narrow no-break spaces in times ("9:00\u202fAM"): one such character would make
# an SMS UCS-2, and plain spaces read the same.
_ODD_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " "})


def format_day(moment: datetime, language: str | None) -> str:
    """ "Tuesday, December 1" (en), "martes, 1 de diciembre" (es), in ``moment``'s zone."""
    locale = babel_locale(language)
    return format_date(moment.date(), _day_pattern(locale), locale=locale).translate(_ODD_SPACES)


def format_clock(moment: datetime, language: str | None) -> str:
    """ "9:00 AM" (en), "9:00" (es), in ``moment``'s zone."""
    locale = babel_locale(language)
    wall = moment.replace(tzinfo=None)  # already local: format the wall clock as is
    return format_time(wall, "short", locale=locale).translate(_ODD_SPACES)


@lru_cache(maxsize=1024)
def display_phone(number: str | None, region: str) -> str:
    """``+14105550100`` -> ``(410) 555-0100`` for local numbers, international otherwise."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    same_region = phonenumbers.region_code_for_number(parsed) == region
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if same_region
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, fmt)


def build_context(
    settings: Settings,
    *,
    patient: Patient | None,
    session: TreatmentSession | None = None,
    location: Location | None = None,
    series_number: int | None = None,
    series_size: int | None = None,
    unsubscribe_url: str | None = None,
    language: str | None = None,
    alert: Mapping[str, Any] | None = None,
    reply_text: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The template variables of DESIGN 7; absent things are empty strings, never missing.

    Dates and times are in the patient's language (``language`` overrides it: pass the
    language of the template actually used, see :func:`render_for`) and local zone.
    ``reply_text`` is the composed answer the pass-through template ``reply_text`` sends.
    ``now`` is accepted for callers that pass their clock; the context does not depend on it.
    """
    del now
    lang = language or (patient.language if patient is not None else None) or DEFAULT_LANGUAGE
    region = settings.default_region
    session_vars: dict[str, Any] = {
        "date": "",
        "time": "",
        "kind": "",
        "series_number": "",
        "series_size": "",
        "confirmed": False,
    }
    if session is not None:
        zone = recipient_zone(patient_tz=patient.timezone if patient else None,
                              location_tz=location.timezone if location else None, default=settings.zone)
        local = session.starts_at.astimezone(zone)
        session_vars.update(
            date=format_day(local, lang),
            time=format_clock(local, lang),
            kind=session.kind or "",
            confirmed=session.status == "confirmed" or session.confirmed_at is not None,
        )
        if series_number is None:
            series_number = session.series_number
    if series_number is not None:
        session_vars["series_number"] = series_number
        if series_size is None and patient is not None:
            series_size = patient.initial_series_size
    if series_size is not None:
        session_vars["series_size"] = series_size
    alert_vars = {key: "" for key in VARIABLES["alert"] or ()}
    if alert:
        alert_vars.update({key: str(alert.get(key) or "") for key in alert_vars})
    return {
        "patient": {"first_name": (patient.first_name if patient is not None else "") or ""},
        "session": session_vars,
        "location": {
            "name": location.name if location is not None else "",
            "address": (location.address or "") if location is not None else "",
            "phone": display_phone(location.phone, region) if location is not None else "",
        },
        "clinic": {
            "name": settings.clinic_name,
            "phone": display_phone(settings.clinic_phone, region),
        },
        "reply": {"confirm": settings.confirm_keyword, "reschedule": settings.reschedule_keyword},
        "unsubscribe_url": unsubscribe_url or "",
        "alert": alert_vars,
        "reply_text": reply_text or "",
    }


def sample_context(
    settings: Settings,
    language: str | None = DEFAULT_LANGUAGE,
    *,
    now: datetime | None = None,
    confirmed: bool = False,
) -> dict[str, Any]:
    """Made-up data for previews and checks: patient Alex, a session tomorrow at 09:00 local."""
    zone = settings.zone
    today = (now or utcnow()).astimezone(zone).date()
    starts = datetime.combine(today + timedelta(days=1), time(9, 0), tzinfo=zone)
    patient = Patient(
        id="sample", first_name="Alex", language=normalise_language(language),
        timezone=None, initial_series_size=6,
    )  # fmt: skip
    location = Location(
        id="main", name="Main office", address="100 Main Street, Suite 200",
        phone=settings.clinic_phone, timezone=settings.timezone,
    )  # fmt: skip
    session = TreatmentSession(
        id="sample", patient_id="sample", location_id="main", starts_at=starts,
        duration_minutes=60, kind="infusion", status="confirmed" if confirmed else "scheduled",
        series_number=2, confirmed_at=None,
    )  # fmt: skip
    base = settings.public_url.rstrip("/")
    return build_context(
        settings,
        patient=patient,
        session=session,
        location=location,
        unsubscribe_url=f"{base}/unsubscribe/SAMPLE-TOKEN",
        language=language,
        alert={
            "summary": "Check-in score 2/10",
            "kind": "low_score",
            "patient_id": "p-1001",
            "link": f"{base}/staff/patients/p-1001",
        },
        reply_text=f"{settings.clinic_name}: thank you, your visit is confirmed.",
    )


# --- finding templates ----------------------------------------------------------------------

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
    folder = Path(settings.templates_dir) / language
    parts = {
        part: _read(folder / f"{name}{suffix}") for part, suffix in _FILE_SUFFIXES[channel].items()
    }
    if parts["body"] is None and parts.get("subject") is None:
        return None
    where = f"template {name}/{channel}/{language} (file)"
    if parts["body"] is None:
        raise TemplateError(f"{where}: missing {folder / (name + _FILE_SUFFIXES[channel]['body'])}")
    if channel == "email" and parts["subject"] is None:
        raise TemplateError(
            f"{where}: missing {folder / (name + _FILE_SUFFIXES['email']['subject'])}"
        )
    return TemplateSource(
        name=name,
        channel=channel,  # type: ignore[arg-type]
        language=language,
        body=parts["body"],
        subject=parts["subject"].strip() if parts.get("subject") is not None else None,  # type: ignore[union-attr]
        html=parts.get("html"),
    )


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


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise TemplateError(f"unknown channel {channel!r} (sms or email)")


def resolve_template(
    db: Session | None, settings: Settings, *, name: str, channel: str, language: str | None
) -> TemplateSource:
    """The live template for (name, channel, language), with language fallback.

    At each language of the chain a database version beats the shipped file; ``db=None``
    looks at the files only.
    """
    _check_channel(channel)
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
    """Every shipped template file set (raises TemplateError for an incomplete email set)."""
    root = Path(settings.templates_dir)
    keys: set[tuple[str, str, str]] = set()
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in folder.iterdir():
                for channel, suffixes in _FILE_SUFFIXES.items():
                    for suffix in suffixes.values():
                        if path.name.endswith(suffix):
                            keys.add((path.name[: -len(suffix)], channel, folder.name))
    found = [_file_source(settings, name, channel, lang) for name, channel, lang in sorted(keys)]
    return [source for source in found if source is not None]


def db_templates(db: Session) -> list[TemplateSource]:
    """The live (highest) database version of every staff-edited template."""
    rows = _latest_rows(db)
    return sorted((_from_row(row) for row in rows), key=lambda s: (s.name, s.channel, s.language))


def list_templates(db: Session | None, settings: Settings) -> list[TemplateInfo]:
    """All templates, each with where its live version comes from ("file" or "db v3")."""
    found: dict[tuple[str, str, str], str] = {}
    root = Path(settings.templates_dir)
    if root.is_dir():
        for folder in (p for p in root.iterdir() if p.is_dir()):
            for path in folder.iterdir():
                for channel, suffixes in _FILE_SUFFIXES.items():
                    suffix = suffixes["body"]
                    if path.name.endswith(suffix):
                        found[(path.name[: -len(suffix)], channel, folder.name)] = "file"
    if db is not None:
        for row in _latest_rows(db):
            found[(row.name, row.channel, row.language)] = f"db v{row.version}"
    return [
        TemplateInfo(name, channel, language, source)  # type: ignore[arg-type]
        for (name, channel, language), source in sorted(found.items())
    ]


# --- rendering ------------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)]")


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML paragraphs, with links made clickable."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    out = []
    for paragraph in paragraphs:
        escaped = str(escape(paragraph.strip()))
        linked = _URL_RE.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        out.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "\n".join(out)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def render_source(source: TemplateSource, context: Mapping[str, Any]) -> Rendered:
    where = f"template {source.id} ({source.label})"
    body = _tidy(_render_part(source.body, html=False, context=context, where=f"{where} body"))
    if source.channel == "sms":
        return Rendered(subject=None, text=smart_encode(body), html=None)
    raw_subject = source.subject or ""
    subject = _render_part(raw_subject, html=False, context=context, where=f"{where} subject")
    subject = " ".join(subject.split())  # one line: no header injection via a variable
    if source.html:
        html = _render_part(source.html, html=True, context=context, where=f"{where} html").strip()
    else:
        html = text_to_html(body)
    return Rendered(subject=subject, text=body, html=html)


def render(
    db: Session | None,
    settings: Settings,
    *,
    name: str,
    channel: str,
    language: str | None,
    context: Mapping[str, Any],
) -> Rendered:
    """Render the live template; raises TemplateError naming the template, line and cause.

    SMS text is made GSM-7 where only look-alikes stand in the way (see
    :func:`reminders.sms.smart_encode`), so "sesión" goes out as "sesion".
    """
    source = resolve_template(db, settings, name=name, channel=channel, language=language)
    return render_source(source, context)


def context_language(requested: str | None, template_language: str) -> str:
    """The language to format dates in: the patient's own locale when the template is in
    that language (``es-MX`` patient, ``es`` template -> ``es-MX``), else the template's."""
    wanted = normalise_language(requested)
    return wanted if wanted.split("-")[0] == template_language.split("-")[0] else template_language


def render_for(
    db: Session | None,
    settings: Settings,
    *,
    name: str,
    channel: str,
    patient: Patient | None,
    session: TreatmentSession | None = None,
    location: Location | None = None,
    series_number: int | None = None,
    series_size: int | None = None,
    unsubscribe_url: str | None = None,
    alert: Mapping[str, Any] | None = None,
    reply_text: str | None = None,
    language: str | None = None,
) -> Rendered:
    """Resolve the template for the patient's language, then build the context in the
    language of the template actually used (an English fallback gets English dates)."""
    wanted = language or (patient.language if patient is not None else None)
    source = resolve_template(db, settings, name=name, channel=channel, language=wanted)
    context = build_context(
        settings,
        patient=patient,
        session=session,
        location=location,
        series_number=series_number,
        series_size=series_size,
        unsubscribe_url=unsubscribe_url,
        language=context_language(wanted, source.language),
        alert=alert,
        reply_text=reply_text,
    )
    return render_source(source, context)


# --- checking -------------------------------------------------------------------------------


def _suggest(wrong: str) -> str:
    close = difflib.get_close_matches(wrong, KNOWN_NAMES, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _static_errors(part: str, tree: nodes.Template) -> list[tuple[int, str]]:
    """Unknown variables and unknown attributes of the known ones, with their lines."""
    undeclared = meta.find_undeclared_variables(tree)
    allowed = set(VARIABLES) | set(_TEXT_ENV.globals)
    problems: list[tuple[int, str]] = []
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared and node.name not in allowed:
            problems.append(
                (
                    node.lineno,
                    f"{part} line {node.lineno}: unknown variable {node.name!r}{_suggest(node.name)}",
                )
            )
    for lookup in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(lookup, nodes.Getattr | nodes.Getitem)
        target = lookup.node
        if not (isinstance(target, nodes.Name) and target.name in undeclared):
            continue
        attrs = VARIABLES.get(target.name)
        if attrs is None:
            continue
        if isinstance(lookup, nodes.Getattr):
            attr: object = lookup.attr
        elif isinstance(lookup, nodes.Getitem) and isinstance(lookup.arg, nodes.Const):
            attr = lookup.arg.value
        else:
            continue
        if attr not in attrs:
            full = f"{target.name}.{attr}"
            problems.append(
                (
                    lookup.lineno,
                    f"{part} line {lookup.lineno}: unknown variable {full!r}{_suggest(full)}",
                )
            )
    return problems


def sensitive_hits(text: str, words: Iterable[str]) -> list[str]:
    """The sensitive words found in ``text``: case-insensitive, at the start of a word
    (so "Ketamine's" and "depression," match, "undepressed" does not)."""
    return [w for w in words if re.search(r"(?<!\w)" + re.escape(w), text, re.IGNORECASE)]


def check_source(
    *,
    channel: str,
    subject: str | None,
    body: str,
    html: str | None,
    settings: Settings,
    language: str | None = DEFAULT_LANGUAGE,
) -> CheckResult:
    """Validate a template before it is saved or shipped.

    Errors: syntax errors and unknown variables (with their line), anything that fails to
    render against sample data (confirmed and unconfirmed), a missing email subject, an
    empty SMS. Warnings: an SMS above two segments, a sensitive word in an SMS or an
    email subject. ``sms`` is the encoding and size of the sample SMS.
    """
    result = CheckResult()
    if channel not in CHANNELS:
        result.errors.append(f"unknown channel {channel!r} (sms or email)")
        return result
    parts: dict[str, str] = {"body": body}
    if channel == "email":
        if not (subject or "").strip():
            result.errors.append("subject: an email template needs a subject")
        else:
            parts["subject"] = subject or ""
        if html is not None and html.strip():
            parts["html"] = html
    else:
        if (subject or "").strip() or (html or "").strip():
            result.errors.append("an SMS template has a body only (no subject or HTML)")
    if not body.strip():
        result.errors.append("body: the template is empty")

    problems: list[tuple[int, str]] = []
    for part, text in parts.items():
        try:
            tree = _TEXT_ENV.parse(text)
        except TemplateSyntaxError as exc:
            problems.append((exc.lineno, f"{part} line {exc.lineno}: syntax error: {exc.message}"))
            continue
        problems.extend(_static_errors(part, tree))
    result.errors.extend(dict.fromkeys(msg for _, msg in sorted(problems)))
    if result.errors:
        return result

    source = TemplateSource(
        name="check",
        channel=channel,
        language=normalise_language(language),
        body=body,
        subject=parts.get("subject"),
        html=parts.get("html"),
    )
    renders: list[Rendered] = []
    for confirmed in (False, True):
        try:
            renders.append(
                render_source(source, sample_context(settings, language, confirmed=confirmed))
            )
        except TemplateError as exc:
            message = str(exc).removeprefix(f"template {source.id} (file) ")
            if message not in result.errors:
                result.errors.append(message)
    if result.errors:
        return result

    words = settings.sensitive_word_list
    if channel == "sms":
        sample = renders[0].text
        result.sms = sms_info(sample)
        longest = max((sms_info(r.text) for r in renders), key=lambda info: info.segments)
        if not sample.strip():
            result.errors.append("body: renders to an empty message with sample data")
        if longest.segments > MAX_SMS_SEGMENTS:
            result.warnings.append(
                f"body: {longest.segments} SMS segments with sample data ({longest.line()}); "
                f"keep it to {MAX_SMS_SEGMENTS}"
            )
        checked = {"body": [body, *(r.text for r in renders)]}
    else:
        checked = {"subject": [subject or "", *(r.subject or "" for r in renders)]}
    for part, texts in checked.items():
        hits = dict.fromkeys(w for text in texts for w in sensitive_hits(text, words))
        for word in hits:
            where = "an SMS" if channel == "sms" else "an email subject"
            result.warnings.append(
                f"{part}: mentions {word!r}, a sensitive word: {where} can be read by others "
                "(lock screen, inbox list)"
            )
    return result


def check_template(source: TemplateSource, settings: Settings) -> CheckResult:
    return check_source(
        channel=source.channel,
        subject=source.subject,
        body=source.body,
        html=source.html,
        settings=settings,
        language=source.language,
    )


# --- saving versions ------------------------------------------------------------------------


def _validate_key(name: str, channel: str, language: str) -> None:
    if not _NAME_RE.match(name):
        raise TemplateError(f"bad template name {name!r}: use lower-case letters, digits and _")
    _check_channel(channel)
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
