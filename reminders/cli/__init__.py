"""The ``reminders`` command line (docs/design.md section 3).

Each command is ``func(args, runtime) -> exit status``, registered by the module of its
group (``worker``, ``outbox``, ``clinic``, ``templates``, ``inbound``, ``staff``,
``init``) with what
it needs first (:func:`reminders.cli.common.command`): the provider settings and policy
validated, the schema migrated or merely required. Expected failures (bad input, bad
configuration) print one line on stderr and exit non-zero, here, for every command; no
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from reminders.cli import clinic, inbound, init, outbox, staff, templates, worker
from reminders.errors import ConfigError, PolicyError, UsageError
from reminders.logs import configure_logging
from reminders.runtime import Runtime
from reminders.settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reminders",
        description="Reminder and follow-up worker for infusion and mental-health clinics. "
        "Every setting is a REMINDERS_* environment variable (see README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (worker, outbox, clinic, templates, inbound, staff, init):
        group.register(sub)
    return parser


def prepare(args: argparse.Namespace, rt: Runtime) -> None:
    """What the command needs before it runs, in this order: the provider settings and the
    policy validated before anything is touched, then the schema."""
    if args.checks_providers:
        rt.settings.check_providers()
        _ = rt.policy
    if args.schema == "migrate":
        rt.upgrade_schema()
    elif args.schema == "read":
        rt.require_schema()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    runtime: Runtime | None = None
    try:
        runtime = Runtime(load_settings())
        prepare(args, runtime)
        return int(args.func(args, runtime))
    except (ConfigError, PolicyError, UsageError) as exc:
        print(f"reminders: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OperationalError as exc:
        print(f"reminders: error: cannot use the database: {exc.orig}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - an unexpected failure still gets one line, details in the log
        logging.getLogger("reminders").exception("unexpected error")
        print(f"reminders: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.close()
