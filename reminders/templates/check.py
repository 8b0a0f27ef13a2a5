"""Checking a template before it is saved or shipped: syntax, unknown variables (with their
line and a suggestion), a render against sample data, SMS size and sensitive words.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from jinja2 import TemplateSyntaxError, meta, nodes

from reminders.outbox.status import CHANNELS
from reminders.planning.policy import Policy
from reminders.settings import Settings
from reminders.templates.context import (
    DEFAULT_LANGUAGE,
    KNOWN_NAMES,
    VARIABLES,
    normalise_language,
    sample_context,
)
from reminders.templates.limits import MAX_SOURCE
from reminders.templates.render import TEXT_ENV, Rendered, render_source
from reminders.templates.sms import SmsInfo, sms_info
from reminders.templates.source import TemplateError, TemplateSource
from reminders.templates.store import file_templates

MAX_SMS_SEGMENTS = 2


@dataclass
class CheckResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sms: SmsInfo | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def _suggest(wrong: str) -> str:
    close = difflib.get_close_matches(wrong, KNOWN_NAMES, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _static_errors(part: str, tree: nodes.Template) -> list[tuple[int, str]]:
    """Unknown variables and unknown attributes of the known ones, with their lines."""
    undeclared = meta.find_undeclared_variables(tree)
    allowed = set(VARIABLES) | set(TEXT_ENV.globals)
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


# Words whose truth depends on when a message is read: "tomorrow" in a reminder that goes out
# on the session's day (quiet hours, a late booking) is wrong. "de la mañana" is "in the morning".
_RELATIVE_DAY = re.compile(r"(?<![\w])(tomorrow|(?<!la )ma[ñn]ana)(?![\w])", re.IGNORECASE)
# A preparation time written out ("6 hours") instead of taken from the policy.
_PREP_DURATION = re.compile(r"(?<![\w])\d+\s*(hours?|hrs?|horas?)(?![\w])", re.IGNORECASE)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def wording_warnings(part: str, text: str) -> list[str]:
    """Literal "tomorrow"/"mañana" and literal preparation hours in a template's own text."""
    warnings: list[str] = []
    plain = _JINJA.sub(lambda m: " " * len(m.group()), text)
    for number, line in enumerate(plain.splitlines(), start=1):
        for match in _RELATIVE_DAY.finditer(line):
            warnings.append(
                f"{part} line {number}: says {match.group()!r} literally, which is wrong when "
                "the message goes out on the session's day (quiet hours, a late booking): "
                "use {{ session.when }} (or {{ session.day }})"
            )
        for match in _PREP_DURATION.finditer(line):
            warnings.append(
                f"{part} line {number}: {match.group()!r} is written out; preparation times "
                "come from the policy and are given as clock times: use {{ prep.summary }}, "
                "{{ prep.lines }} or {{ prep.food_after }}..."
            )
    return warnings


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
    policy: Policy | None = None,
) -> CheckResult:
    """Validate a template before it is saved or shipped.

    Errors: syntax errors and unknown variables (with their line), anything that fails to
    render against sample data (confirmed and unconfirmed), including going over a limit
    of :mod:`reminders.templates.limits` (size, loops, time: "body line 2: template limit:
    range() over 1,000 items"), a missing email subject, an empty SMS. Warnings: an SMS
    above two segments, a sensitive word in an SMS or an email subject, a literal
    "tomorrow"/"mañana" or written-out preparation hours. ``sms`` is the encoding and size of
    the sample SMS. ``policy`` gives the sample's preparation (default: the built-in one).
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
        if len(text) > MAX_SOURCE:  # before parsing it: the parse is not metered
            problems.append((0, f"{part}: template limit: over {MAX_SOURCE // 1024} KB of text"))
            continue
        try:
            tree = TEXT_ENV.parse(text)
        except TemplateSyntaxError as exc:
            problems.append((exc.lineno, f"{part} line {exc.lineno}: syntax error: {exc.message}"))
            continue
        try:
            problems.extend(_static_errors(part, tree))
        except TemplateSyntaxError as exc:  # an unknown filter or test, found while analysing
            problems.append((exc.lineno, f"{part} line {exc.lineno}: syntax error: {exc.message}"))
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
    # Unconfirmed and confirmed, read the day before; and, for a template that says when the
    # session is or how to prepare, read late (every cut-off past). Each render costs time
    # from the console preview's budget (limits.PREVIEW_S).
    samples = [(False, False), (True, False)]
    if any(word in text for text in parts.values() for word in ("prep", "session")):
        samples.append((False, True))
    for confirmed, late in samples:
        try:
            context = sample_context(
                settings, language, confirmed=confirmed, late=late, policy=policy, channel=channel
            )
            renders.append(render_source(source, context))
        except TemplateError as exc:
            message = str(exc).removeprefix(f"template {source.id} (file) ")
            if message not in result.errors:
                result.errors.append(message)
    if result.errors:
        return result

    for part, text in parts.items():
        result.warnings.extend(wording_warnings(part, text))
    words = settings.sensitive_word_list
    if channel == "sms":
        sample = renders[0].text
        result.sms = sms_info(sample)
        # Size on time; a late send adds the call-us sentence, and truth beats length then.
        longest = max((sms_info(r.text) for r in renders[:2]), key=lambda info: info.segments)
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


def file_template_errors(settings: Settings) -> list[str]:
    """Every error in the template files in force (the clinic's folder over the built-in
    ones), one line each: what `reminders check` reports before a send would fail on it."""
    try:
        sources = file_templates(settings)
    except TemplateError as exc:
        return [str(exc)]
    return [
        f"{source.id} ({source.label}): {message}"
        for source in sources
        for message in check_template(source, settings).errors
    ]
