"""The ``reminders`` command line (docs/design.md section 3).

Each command is ``func(args, runtime) -> exit status``, registered by the module of its
group (``worker``, ``outbox``, ``clinic``, ``templates``, ``inbound``, ``staff``,
``init``) with what
it needs first (:func:`reminders.cli.common.command`): the provider settings and policy
validated, the schema migrated or merely required. Expected failures (bad input, bad
configuration) print one line on stderr and exit non-zero, here, for every command; no
traceback. Unexpected failures print their type and a hint, never their message: see
:func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from reminders.cli import clinic, inbound, init, outbox, staff, templates, worker
from reminders.errors import ConfigError, PolicyError, UsageError
from reminders.logs import configure_logging, redact
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
    """Run one command; its exit status.

    Errors and what they print on stderr (one line each, never a traceback):

    - bad input or configuration (``ConfigError``, ``PolicyError``, ``UsageError``): the
      message, which names the setting, file, field or id at fault; exit 2;
    - the database cannot be used (``OperationalError``: unreachable, locked, auth): the
      driver's first line, redacted; exit 2;
    - anything else: ``unexpected <ExceptionType>`` and a hint, never the exception's text,
      exit 1. A database error's text quotes the row (PostgreSQL's ``DETAIL: Key
      (email)=(...)``, ``Failing row contains (...)``), other errors may quote data just as
      well, and this line lands in terminals, cron mails and CI logs. The log gets an
      ``unexpected error`` line with the type and the place (file, line, function): code,
      not data. With ``-v`` it also gets the traceback, through the log handler's redaction
      (phone numbers, addresses, PostgreSQL row details masked; SQL parameters are never in
      the message, see :func:`reminders.db.engine.make_engine`).
    """
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
        print(
            f"reminders: error: cannot use the database: {_first_line(exc.orig)}", file=sys.stderr
        )
        return 2
    except Exception as exc:  # noqa: BLE001 - an unexpected failure still gets one line, details in the log
        _log_unexpected(exc, verbose=args.verbose)
        kind = "database error" if isinstance(exc, SQLAlchemyError) else "error"
        hint = "details withheld (they may hold patient data)"
        hint += (
            "; the traceback is in the log above"
            if args.verbose
            else "; rerun with -v for the traceback"
        )
        print(f"reminders: error: unexpected {kind} {type(exc).__name__}: {hint}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.close()


def _first_line(error: BaseException | None) -> str:
    """The first line of a driver's message (later lines are PostgreSQL's DETAIL/CONTEXT), redacted."""
    lines = str(error).strip().splitlines()
    return redact(lines[0]) if lines else type(error).__name__


def _log_unexpected(exc: Exception, *, verbose: bool) -> None:
    """Type and place always; the traceback (redacted by the handler) only with ``-v``."""
    log = logging.getLogger("reminders")
    # The innermost frame of our own code (else the innermost at all): where to look.
    tb, ours = exc.__traceback__, None
    while tb is not None:
        if "/reminders/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            ours = tb
        if tb.tb_next is None:
            break
        tb = tb.tb_next
    tb = ours or tb
    where = (
        f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno} in {tb.tb_frame.f_code.co_name}"
        if tb
        else "?"
    )
    if verbose:
        log.error("unexpected error %s at %s", type(exc).__name__, where, exc_info=exc)
    else:
        log.error("unexpected error %s at %s (traceback with -v)", type(exc).__name__, where)
