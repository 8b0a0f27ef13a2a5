"""The ``reminders`` command line (DESIGN section 3).

Each command is ``func(args, runtime) -> exit status``. Expected failures (bad input, bad
configuration) print one line on stderr and exit non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from reminders.errors import ConfigError, PolicyError, UsageError
from reminders.runtime import Runtime
from reminders.settings import load_settings

Command = Callable[[argparse.Namespace, Runtime], int]


def parse_instant(text: str) -> datetime:
    """ISO-8601 with an offset or Z; a naive time is refused (it would be ambiguous)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs an offset or Z (e.g. 2026-12-01T09:00:00-05:00)")
    return value.astimezone(UTC)


def _cmd_db_upgrade(args: argparse.Namespace, rt: Runtime) -> int:
    rt.upgrade_schema()
    print("database schema is up to date")
    return 0


def _cmd_tick(args: argparse.Namespace, rt: Runtime) -> int:
    from reminders.worker import run_tick

    rt.settings.check_providers()
    _ = rt.policy  # validate the policy before touching anything
    rt.upgrade_schema()
    summary = run_tick(rt, now=args.now)
    print(summary.line())
    return 0


def _cmd_run(args: argparse.Namespace, rt: Runtime) -> int:
    from reminders.worker import run_daemon

    rt.settings.check_providers()
    _ = rt.policy  # validate the policy before touching anything
    rt.upgrade_schema()
    return run_daemon(rt)


def _cmd_demo(args: argparse.Namespace, rt: Runtime) -> int:
    from reminders.clinic.demo import load_demo
    from reminders.worker import run_daemon

    rt.settings.check_providers()
    _ = rt.policy  # validate the policy before touching anything
    rt.upgrade_schema()
    report = load_demo(rt)
    print(report)
    if args.no_run:
        return 0
    return run_daemon(rt)


def _cmd_outbox(args: argparse.Namespace, rt: Runtime) -> int:
    from reminders.cli.reports import list_outbox

    rows = list_outbox(rt, status=args.status, patient_id=args.patient, limit=args.limit)
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    if not rows:
        print("no messages")
        return 0
    print(f"{'id':>6}  {'due (local)':<22} {'channel':<7} {'status':<10} {'rule':<26} {'patient':<12} reason")
    for row in rows:
        print(
            f"{row['id']:>6}  {row['due_local']:<22} {row['channel']:<7} {row['status']:<10} "
            f"{row['rule']:<26} {row['patient_id'] or '-':<12} {row['reason'] or ''}"
        )
    return 0


def _cmd_plan(args: argparse.Namespace, rt: Runtime) -> int:
    from reminders.cli.reports import describe_session_plan

    report = describe_session_plan(rt, session_id=args.session, now=args.now)
    if args.json:
        print(json.dumps(report, default=str, indent=2))
        return 0
    print(report["text"])
    return 0


def _cmd_check(args: argparse.Namespace, rt: Runtime) -> int:
    from reminders.cli.reports import configuration_report

    lines, ok = configuration_report(rt)
    for line in lines:
        print(line)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reminders",
        description="Reminder and follow-up worker for infusion and mental-health clinics. "
        "Every setting is a REMINDERS_* environment variable (see README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=_cmd_db_upgrade)

    tick = sub.add_parser("tick", help="one full pass: sync, plan, dispatch")
    tick.add_argument("--now", type=parse_instant, default=None, help="act as if the clock read this (ISO-8601)")
    tick.set_defaults(func=_cmd_tick)

    sub.add_parser("run", help="the daemon: periodic passes and the web server").set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="load a demo clinic, then run the daemon")
    demo.add_argument("--no-run", action="store_true", help="load the demo clinic and stop")
    demo.set_defaults(func=_cmd_demo)

    outbox = sub.add_parser("outbox", help="list messages")
    outbox.add_argument("--status", help="only this status")
    outbox.add_argument("--patient", help="only this patient id")
    outbox.add_argument("--limit", type=int, default=None, help="at most this many (newest due first)")
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    outbox.set_defaults(func=_cmd_outbox)

    plan = sub.add_parser("plan", help="a session's message timeline with reasons")
    plan.add_argument("--session", required=True, help="the session id")
    plan.add_argument("--now", type=parse_instant, default=None, help=argparse.SUPPRESS)
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=_cmd_plan)

    sub.add_parser("check", help="check settings, policy and templates; report providers").set_defaults(
        func=_cmd_check
    )

    _register_plugins(sub)
    return parser


def _register_plugins(sub: Any) -> None:
    """Commands that live beside their feature (import, templates, inbound, staff).
    Imported here, not at the top: those modules import helpers from this one."""
    from reminders.cli import clinic as clinic_cli
    from reminders.cli import inbound as conversations_cli
    from reminders.cli import staff as staff_cli
    from reminders.cli import templates as templates_cli

    for module in (clinic_cli, templates_cli, conversations_cli, staff_cli):
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from reminders.logs import configure_logging

    configure_logging(verbose=args.verbose)
    runtime: Runtime | None = None
    try:
        runtime = Runtime(load_settings())
        return int(args.func(args, runtime))
    except (ConfigError, PolicyError, UsageError) as exc:
        print(f"reminders: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - an unexpected failure still gets one line, details in the log
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            print(f"reminders: error: cannot use the database: {exc.orig}", file=sys.stderr)
            return 2
        logging.getLogger("reminders").exception("unexpected error")
        print(f"reminders: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.close()


if __name__ == "__main__":
    sys.exit(main())
