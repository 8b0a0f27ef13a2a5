"""``reminders staff add / reset-password / list / disable`` (issue 5).

``add`` and ``reset-password`` print a one-time password: it works once, for signing in
to the page that makes the person choose their own. With ``--password-stdin`` they read it
instead (it must pass the password policy, like every password). ``reset-password`` and
``disable`` end the account's console sessions; ``reset-password`` keeps a disabled account
disabled.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from reminders.cli.common import command
from reminders.db.engine import session_scope
from reminders.db.models import StaffUser
from reminders.errors import UsageError
from reminders.runtime import Runtime
from reminders.web.staff.accounts import (
    AccountError,
    add_account,
    normalise_phone,
    reset_password,
    set_active,
)
from reminders.web.staff.auth import ROLES, find_user, new_one_time_password, one_time_hash
from reminders.web.staff.strength import weakness

PASSWORD_STDIN_HELP = (
    "read the one-time password from standard input instead of making one "
    "(it must pass the password policy)"
)


def register(subparsers: Any) -> None:
    staff = subparsers.add_parser(
        "staff", help="staff console accounts: add, reset-password, list, disable, enable"
    )
    sub = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")

    add = sub.add_parser("add", help="create an account and print a one-time password")
    add.add_argument("email")
    add.add_argument(
        "--role",
        choices=ROLES,
        default="staff",
        help="admin: may edit templates and the policy; staff: reads, acknowledges (default)",
    )
    add.add_argument("--phone", help="their mobile, E.164 (for 'send me a test' by SMS)")
    add.add_argument("--password-stdin", action="store_true", help=PASSWORD_STDIN_HELP)
    command(add, _cmd_add, schema="migrate")

    reset = sub.add_parser(
        "reset-password",
        help="print a new one-time password and end the account's sessions "
        "(a disabled account stays disabled)",
    )
    reset.add_argument("email")
    reset.add_argument("--password-stdin", action="store_true", help=PASSWORD_STDIN_HELP)
    command(reset, _cmd_reset, schema="migrate")

    command(sub.add_parser("list", help="every account"), _cmd_list, schema="read")

    disable = sub.add_parser("disable", help="stop an account from signing in and end its sessions")
    disable.add_argument("email")
    command(disable, _cmd_disable, schema="migrate")

    enable = sub.add_parser("enable", help="let a disabled account sign in again")
    enable.add_argument("email")
    command(enable, _cmd_enable, schema="migrate")


def _phone(value: str | None, region: str) -> str | None:
    try:
        return normalise_phone(value, region)
    except AccountError as exc:
        raise UsageError(f"--phone {exc}") from None


def _one_time_password(args: argparse.Namespace, rt: Runtime, email: str) -> tuple[str, str]:
    """The one-time password (made, or read from stdin and checked) and the value to store."""
    clinic = rt.settings.clinic_name
    if not args.password_stdin:
        return new_one_time_password(email, clinic)
    password = sys.stdin.readline().rstrip("\r\n")
    problem = weakness(password, email=email, clinic_name=clinic)
    if problem:
        raise UsageError(f"password refused: {problem}")
    return password, one_time_hash(password)


def _print_password(rt: Runtime, email: str, password: str, *, chosen: bool = False) -> None:
    if chosen:
        print(f"one-time password for {email} set")
    else:
        print(f"one-time password for {email}: {password}")
    print(
        f"sign in at {rt.settings.public_url.rstrip('/')}/staff/login; you will then choose your own password"
    )


def _cmd_add(args: argparse.Namespace, rt: Runtime) -> int:
    email = args.email.strip().lower()
    if "@" not in email:
        raise UsageError(f"{args.email!r} is not an email address")
    phone = _phone(args.phone, rt.settings.default_region)
    password, stored = _one_time_password(args, rt, email)
    with session_scope(rt.session_factory) as db:
        try:
            add_account(db, email=email, role=args.role, phone=phone, stored=stored, actor="cli")
        except AccountError as exc:
            raise UsageError(f"{exc} (use `reminders staff reset-password`)") from None
    _print_password(rt, email, password, chosen=args.password_stdin)
    return 0


def _cmd_reset(args: argparse.Namespace, rt: Runtime) -> int:
    with session_scope(rt.session_factory) as db:
        user = find_user(db, args.email)
        if user is None:
            raise UsageError(f"no account for {args.email}")
        email, active, user_id = user.email, user.active, user.id
    # The hashing runs with no transaction open; then one short write.
    password, stored = _one_time_password(args, rt, email)
    now = datetime.now(UTC)
    with session_scope(rt.session_factory) as db:
        user = find_user(db, email)
        if user is None or user.id != user_id:
            raise UsageError(f"no account for {args.email}")
        active = user.active  # a disabled account stays disabled
        reset_password(db, user, stored=stored, actor="cli", now=now, action="staff.reset_password")
    _print_password(rt, email, password, chosen=args.password_stdin)
    print(f"every console session of {email} has ended")
    if not active:
        print(
            f"{email} is disabled and stays disabled: the password works once "
            f"`reminders staff enable {email}` lets them sign in again"
        )
    return 0


def _cmd_list(args: argparse.Namespace, rt: Runtime) -> int:
    with session_scope(rt.session_factory) as db:
        users = db.scalars(select(StaffUser).order_by(StaffUser.email)).all()
        if not users:
            print("no accounts (add one with `reminders staff add EMAIL --role admin`)")
        for u in users:
            state = "active" if u.active else "disabled"
            if u.locked_until is not None:
                state += f", locked until {u.locked_until:%Y-%m-%d %H:%M} UTC"
            print(f"{u.email:<40} {u.role:<6} {state}")
    return 0


def _cmd_disable(args: argparse.Namespace, rt: Runtime) -> int:
    with session_scope(rt.session_factory) as db:
        user = find_user(db, args.email)
        if user is None:
            raise UsageError(f"no account for {args.email}")
        set_active(db, user, active=False, actor="cli", now=datetime.now(UTC))
    print(f"{args.email} can no longer sign in; their console sessions have ended")
    return 0


def _cmd_enable(args: argparse.Namespace, rt: Runtime) -> int:
    with session_scope(rt.session_factory) as db:
        user = find_user(db, args.email)
        if user is None:
            raise UsageError(f"no account for {args.email}")
        set_active(db, user, active=True, actor="cli", now=datetime.now(UTC))
    print(f"{args.email} can sign in again")
    return 0
