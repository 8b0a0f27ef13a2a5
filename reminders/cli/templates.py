"""``reminders templates list / show / check / preview`` (docs/design.md sections 3 and 7)."""

from __future__ import annotations

import argparse
from typing import Any

from reminders.cli.common import command, parse_instant
from reminders.db.engine import session_scope
from reminders.db.models import Location, Patient, TreatmentSession
from reminders.errors import PolicyError, UsageError
from reminders.outbox.status import CHANNELS
from reminders.planning.policy import Policy
from reminders.runtime import Runtime
from reminders.templates.check import check_template
from reminders.templates.context import DEFAULT_LANGUAGE, context_language, sample_context
from reminders.templates.render import render_for, render_source
from reminders.templates.sms import sms_info
from reminders.templates.source import TemplateError, TemplateSource
from reminders.templates.store import db_templates, file_templates, list_templates, resolve_template

# Templates other modules send outside the policy rules (crisis alerts to on-call staff).
REQUIRED_TEMPLATES = (("staff_alert", "sms"), ("staff_alert", "email"))


def register(subparsers: Any) -> None:
    templates = subparsers.add_parser(
        "templates", help="message templates: list, show, check, preview"
    )
    sub = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="every template and where its live version comes from")
    command(listing, _cmd_list, schema="read")

    show = sub.add_parser("show", help="the live source of a template")
    show.add_argument("name")
    show.add_argument("--channel", choices=CHANNELS, help="only this channel (default: both)")
    show.add_argument("--language", default=DEFAULT_LANGUAGE, help="language, e.g. en, es, es-MX")
    command(show, _cmd_show, schema="read")

    check = sub.add_parser(
        "check", help="validate shipped and staff templates; exit 1 on any error"
    )
    check.add_argument("--all", action="store_true", help="check every template (the default)")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these templates")
    command(check, _cmd_check, schema="read")

    preview = sub.add_parser("preview", help="render a template with sample or real data")
    preview.add_argument("name")
    preview.add_argument("--channel", choices=CHANNELS, required=True)
    preview.add_argument("--language", default=None, help="default: the patient's, else en")
    preview.add_argument("--patient", help="use this patient from the database")
    preview.add_argument("--session", help="use this session (and its patient and location)")
    preview.add_argument(
        "--now",
        type=parse_instant,
        default=None,
        help="render as if sent at this moment (ISO-8601; default: now): today/tomorrow and "
        "preparation cut-offs are relative to it",
    )
    command(preview, _cmd_preview, schema="read")


def _cmd_list(args: argparse.Namespace, rt: Runtime) -> int:
    with session_scope(rt.session_factory) as db:
        rows = list_templates(db, rt.settings)
    if not rows:
        print(
            f"no templates (looked in {', '.join(map(str, rt.settings.template_dirs))} and the database)"
        )
        return 0
    print(f"{'name':<24} {'channel':<7} {'language':<8} source")
    for row in rows:
        print(f"{row.name:<24} {row.channel:<7} {row.language:<8} {row.source}")
    return 0


def _print_source(source: TemplateSource) -> None:
    print(f"== {source.id} ({source.label}) ==")
    if source.subject is not None:
        print(f"-- subject --\n{source.subject}")
    print(f"-- body --\n{source.body.rstrip()}")
    if source.html:
        print(f"-- html --\n{source.html.rstrip()}")


def _cmd_show(args: argparse.Namespace, rt: Runtime) -> int:
    channels = [args.channel] if args.channel else list(CHANNELS)
    found: list[TemplateSource] = []
    with session_scope(rt.session_factory) as db:
        for channel in channels:
            try:
                found.append(
                    resolve_template(
                        db, rt.settings, name=args.name, channel=channel, language=args.language
                    )
                )
            except TemplateError as exc:
                if args.channel:
                    raise UsageError(str(exc)) from None
    if not found:
        raise UsageError(f"no template named {args.name!r}")
    for source in found:
        _print_source(source)
    return 0


def _cmd_check(args: argparse.Namespace, rt: Runtime) -> int:
    settings = rt.settings
    wanted = set(args.names)
    errors = 0
    warnings = 0

    def report(template_id: str, level: str, message: str) -> None:
        nonlocal errors, warnings
        if level == "error":
            errors += 1
        else:
            warnings += 1
        print(f"{template_id}: {level}: {message}")

    sources: list[TemplateSource] = []
    try:
        sources.extend(file_templates(settings))
    except TemplateError as exc:
        report("files", "error", str(exc))
    with session_scope(rt.session_factory) as db:
        sources.extend(db_templates(db))
        if wanted:
            unknown = wanted - {s.name for s in sources}
            for name in sorted(unknown):
                report(name, "error", "no such template")
            sources = [s for s in sources if s.name in wanted]

        for source in sources:
            label = f"{source.id} ({source.label})"
            result = check_template(source, settings)
            for message in result.errors:
                report(label, "error", message)
            for message in result.warnings:
                report(label, "warning", message)
            if result.ok and not result.warnings:
                print(f"{label}: ok" + (f" ({result.sms.line()})" if result.sms else ""))

        # Every template a rule or an alert sends must exist in English, the last fallback.
        needed: dict[tuple[str, str], str] = {key: "staff alerts" for key in REQUIRED_TEMPLATES}
        try:
            for rule in rt.policy.rules:
                for rule_channel in [*rule.channels, *([rule.fallback] if rule.fallback else [])]:
                    needed.setdefault((rule.template, rule_channel), f"policy rule {rule.name}")
        except PolicyError as exc:
            report("policy", "warning", f"cannot read the policy to cross-check templates: {exc}")
        for (name, channel), user in sorted(needed.items()):
            if wanted and name not in wanted:
                continue
            try:
                found = resolve_template(
                    db, settings, name=name, channel=channel, language=DEFAULT_LANGUAGE
                )
            except TemplateError:
                report(
                    f"{name}/{channel}/{DEFAULT_LANGUAGE}", "error", f"missing, but {user} sends it"
                )
                continue
            if found.language != DEFAULT_LANGUAGE:  # pragma: no cover - chain always ends in en
                report(found.id, "error", f"no {DEFAULT_LANGUAGE} version")

    print(f"{len(sources)} templates checked: {errors} errors, {warnings} warnings")
    return 1 if errors else 0


def _policy(rt: Runtime) -> Policy | None:
    """The policy in force, for the preparation; None (the built-in one) when it is broken:
    `reminders check` reports that."""
    try:
        return rt.policy
    except PolicyError:
        return None


def _cmd_preview(args: argparse.Namespace, rt: Runtime) -> int:
    settings = rt.settings
    with session_scope(rt.session_factory) as db:
        try:
            if args.patient or args.session:
                rendered, used = _render_real(db, rt, args)
            else:
                source = resolve_template(
                    db, settings, name=args.name, channel=args.channel, language=args.language
                )
                language = context_language(args.language, source.language)
                context = sample_context(
                    settings, language, now=args.now, policy=_policy(rt), channel=args.channel
                )
                rendered = render_source(source, context)
                used = source
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
    print(f"== {used.id} ({used.label}) ==")
    if rendered.subject is not None:
        print(f"Subject: {rendered.subject}\n")
    print(rendered.text)
    if rendered.html is not None:
        print(f"\n-- html --\n{rendered.html}")
    if args.channel == "sms":
        print(f"\n[{sms_info(rendered.text).line()}]")
    return 0


def _render_real(db: Any, rt: Runtime, args: argparse.Namespace) -> tuple[Any, TemplateSource]:
    session = location = None
    if args.session:
        session = db.get(TreatmentSession, args.session)
        if session is None:
            raise UsageError(f"no session {args.session!r}")
        if args.patient and args.patient != session.patient_id:
            raise UsageError(f"session {args.session!r} belongs to another patient")
        location = db.get(Location, session.location_id) if session.location_id else None
    patient_id = args.patient or (session.patient_id if session is not None else None)
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise UsageError(f"no patient {patient_id!r}")
    language = args.language or patient.language
    source = resolve_template(
        db, rt.settings, name=args.name, channel=args.channel, language=language
    )
    rendered = render_for(
        db,
        rt.settings,
        name=args.name,
        channel=args.channel,
        patient=patient,
        session=session,
        location=location,
        unsubscribe_url=f"{rt.settings.public_url.rstrip('/')}/unsubscribe/PREVIEW",
        language=language,
        now=args.now,
        policy=_policy(rt),
    )
    return rendered, source
