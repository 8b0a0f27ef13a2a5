"""Rendering: sandboxed Jinja2 (``ImmutableSandboxedEnvironment``, ``StrictUndefined``,
autoescape for HTML email); errors name the template, the line and the cause.

Every render is limited in size, steps and time (:mod:`reminders.templates.limits`): a
template over a limit fails with an error naming the limit, like any other template error.

Rendering is on the dispatch hot path: compiled templates are cached by source text (and
shipped files by modification time, see :mod:`reminders.templates.store`), so a message
costs one small query and a render.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from markupsafe import escape
from sqlalchemy.orm import Session

from reminders.db.models import Location, Patient, TreatmentSession
from reminders.planning.policy import Policy
from reminders.settings import Settings
from reminders.templates.context import build_context, context_language
from reminders.templates.limits import (
    MAX_SOURCE,
    RENDER_S,
    LimitedEnvironment,
    LimitError,
    render_budget,
    render_capped,
)
from reminders.templates.sms import smart_encode
from reminders.templates.source import TemplateError, TemplateSource
from reminders.templates.store import resolve_template


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


_ENV_OPTIONS: dict[str, Any] = {
    "undefined": StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
    "auto_reload": False,
}
# Immutable: a template cannot call .append()/.update() on what it is given either; limited:
# it cannot ask for a huge value, endless loops or more than its time.
TEXT_ENV = LimitedEnvironment(autoescape=False, **_ENV_OPTIONS)
_HTML_ENV = LimitedEnvironment(autoescape=True, **_ENV_OPTIONS)
_TEMPLATE_FILENAME = "<template>"  # what Jinja puts in tracebacks for from_string templates


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> Template:
    return (_HTML_ENV if html else TEXT_ENV).from_string(source)


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_part(source: str, *, html: bool, context: Mapping[str, Any], where: str) -> str:
    if len(source) > MAX_SOURCE:
        raise TemplateError(f"{where}: template limit: source over {MAX_SOURCE // 1024} KB")
    try:
        template = _compile(source, html)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{where} line {exc.lineno}: syntax error: {exc.message}") from None
    try:
        return render_capped(template, context)
    except Exception as exc:  # noqa: BLE001 - template code can raise anything; report it with its line
        line = _template_line(exc.__traceback__)
        at = f" line {line}" if line else ""
        if isinstance(exc, LimitError):
            what = f"template limit: {exc}"
        elif isinstance(exc, SecurityError):
            what = f"not allowed: {exc}"
        elif isinstance(exc, UndefinedError):
            what = f"undefined variable: {exc.message}"
        else:
            what = f"{type(exc).__name__}: {exc}"
        raise TemplateError(f"{where}{at}: {what}") from None


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


def render_source(
    source: TemplateSource, context: Mapping[str, Any], *, seconds: float = RENDER_S
) -> Rendered:
    """Render every part of ``source`` within ``seconds`` (less if an enclosing
    :func:`~reminders.templates.limits.render_budget` has less left)."""
    with render_budget(seconds):
        return _render_source(source, context)


def _render_source(source: TemplateSource, context: Mapping[str, Any]) -> Rendered:
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
    :func:`reminders.templates.sms.smart_encode`), so "sesión" goes out as "sesion".
    """
    source = resolve_template(db, settings, name=name, channel=channel, language=language)
    return render_source(source, context)


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
    now: datetime | None = None,
    policy: Policy | None = None,
) -> Rendered:
    """Resolve the template for the patient's language, then build the context in the
    language of the template actually used (an English fallback gets English dates), as
    the message would read if sent at ``now`` (default: now) under ``policy``."""
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
        now=now,
        policy=policy,
        channel=channel,
    )
    return render_source(source, context)
