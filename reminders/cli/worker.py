"""``reminders db upgrade``, ``tick``, ``run``, ``demo`` and ``check``: the worker's commands
(docs/design.md section 3)."""

from __future__ import annotations

import argparse
from typing import Any

from reminders.cli.common import command, parse_instant
from reminders.clinic.demo import load_demo
from reminders.clinic.sync import describe_source
from reminders.errors import ConfigError
from reminders.runtime import Runtime
from reminders.templates.check import file_template_errors
from reminders.worker import run_daemon, run_tick


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    command(
        db_sub.add_parser("upgrade", help="create or upgrade the schema"),
        _cmd_db_upgrade,
        schema=None,
    )

    tick = sub.add_parser("tick", help="one full pass: sync, plan, dispatch")
    tick.add_argument(
        "--now", type=parse_instant, default=None, help="act as if the clock read this (ISO-8601)"
    )
    command(tick, _cmd_tick, schema="migrate", checks_providers=True)

    run = sub.add_parser("run", help="the daemon: periodic passes and the web server")
    command(run, _cmd_run, schema="migrate", checks_providers=True)

    demo = sub.add_parser("demo", help="load a demo clinic, then run the daemon")
    demo.add_argument("--no-run", action="store_true", help="load the demo clinic and stop")
    command(demo, _cmd_demo, schema="migrate", checks_providers=True)

    check = sub.add_parser("check", help="check settings, policy and templates; report providers")
    command(check, _cmd_check, schema=None)


def _cmd_db_upgrade(args: argparse.Namespace, rt: Runtime) -> int:
    rt.upgrade_schema()
    print("database schema is up to date")
    return 0


def _cmd_tick(args: argparse.Namespace, rt: Runtime) -> int:
    summary = run_tick(rt, now=args.now)
    print(summary.line())
    return 0


def _cmd_run(args: argparse.Namespace, rt: Runtime) -> int:
    problems = rt.settings.alerting_problems()
    if problems:
        raise ConfigError(problems[0])
    return run_daemon(rt)


DEMO_ONCALL = "oncall@demo.example"


def _cmd_demo(args: argparse.Namespace, rt: Runtime) -> int:
    s = rt.settings
    if s.alerting_problems() and s.sms_provider == "dryrun" and s.email_provider == "dryrun":
        # The demo's alerts go to the dry-run outbox like everything else it sends.
        rt.settings = s.model_copy(update={"oncall_emails": DEMO_ONCALL})
        print(f"demo: urgent alerts go to {DEMO_ONCALL} (dry-run; set REMINDERS_ONCALL_EMAILS)")
    report = load_demo(rt)
    print(report)
    if args.no_run:
        return 0
    return run_daemon(rt)


def _cmd_check(args: argparse.Namespace, rt: Runtime) -> int:
    lines, ok = configuration_report(rt)
    for line in lines:
        print(line)
    return 0 if ok else 1


def configuration_report(rt: Runtime) -> tuple[list[str], bool]:
    s = rt.settings
    lines: list[str] = []
    ok = True
    lines.append(f"database: {s.database_url.split('@')[-1]}")
    lines.append(f"policy: {s.policy_file or 'built-in'} ({len(rt.policy.rules)} rules)")
    lines.append(
        f"templates: {s.templates_dir}, over the built-in"
        if s.templates_dir
        else "templates: built-in"
    )
    template_errors = file_template_errors(s)
    if template_errors:
        ok = False
        lines += [f"template error: {error}" for error in template_errors[:5]]
        if len(template_errors) > 5:
            lines.append(f"... {len(template_errors) - 5} more: run reminders templates check")
    lines.append(f"sms provider: {s.sms_provider}; email provider: {s.email_provider}")
    missing = s.provider_problems()
    if missing:
        ok = False
        lines.append("missing: " + ", ".join(missing))
    alerting = s.alerting_problems()
    if alerting:
        ok = False
        lines += alerting
    elif s.crisis_screening:
        lines.append(
            f"crisis screening: on; on-call: {len(s.oncall_phone_list)} phone(s), "
            f"{len(s.oncall_email_list)} email(s)"
        )
    else:
        lines.append("crisis screening: OFF (REMINDERS_CRISIS_SCREENING=false)")
    try:
        s.secret_key_value()
    except Exception as exc:  # noqa: BLE001
        ok = False
        lines.append(str(exc))
    if s.clinic_source_url:
        try:
            lines.append(f"clinic source: {describe_source(s)}")
        except Exception as exc:  # noqa: BLE001
            ok = False
            lines.append(f"clinic source: {exc}")
    lines.append("configuration OK" if ok else "configuration has problems")
    return lines, ok
