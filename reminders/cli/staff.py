"""``reminders staff add / reset-password / list / disable`` (issue 5).

``add`` and ``reset-password`` print a one-time password: it works once, for signing in
to the page that makes the person choose their own.
"""

from __future__ import annotations

import argparse
from typing import Any

import phonenumbers
from sqlalchemy import select

from reminders.cli.common import command
from reminders.db.engine import session_scope
from reminders.db.models import AuditLog, StaffUser
from reminders.errors import UsageError
from reminders.runtime import Runtime
from reminders.web.staff.auth import ROLES, find_user, new_one_time_password


def register(subparsers: Any) -> None:
    staff = subparsers.add_parser(
        "staff", help="staff console accounts: add, reset-password, list, disable"
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
    command(add, _cmd_add, schema="migrate")

    reset = sub.add_parser(
        "reset-password", help="print a new one-time password and unlock the account"
    )
    reset.add_argument("email")
    command(reset, _cmd_reset, schema="migrate")

    command(sub.add_parser("list", help="every account"), _cmd_list, schema="read")

    disable = sub.add_parser("disable", help="stop an account from signing in")
    disable.add_argument("email")
    command(disable, _cmd_disable, schema="migrate")


def _phone(value: str | None, region: str) -> str | None:
    if not value:
        return None
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise UsageError(f"--phone {value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise UsageError(f"--phone {value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _print_password(rt: Runtime, email: str, password: str) -> None:
    print(f"one-time password for {email}: {password}")
    print(
        f"sign in at {rt.settings.public_url.rstrip('/')}/staff/login; you will then choose your own password"
    )


def _cmd_add(args: argparse.Namespace, rt: Runtime) -> int:
    email = args.email.strip().lower()
    if "@" not in email:
        raise UsageError(f"{args.email!r} is not an email address")
    phone = _phone(args.phone, rt.settings.default_region)
    password, stored = new_one_time_password()
    with session_scope(rt.session_factory) as db:
        if find_user(db, email) is not None:
            raise UsageError(
                f"{email} already has an account (use `reminders staff reset-password`)"
            )
        db.add(StaffUser(email=email, role=args.role, phone=phone, password_hash=stored))
        db.add(
            AuditLog(
                actor="cli",
                action="staff.add",
                entity="staff_user",
                entity_id=email,
                detail={"role": args.role},
            )
        )
    _print_password(rt, email, password)
    return 0


def _cmd_reset(args: argparse.Namespace, rt: Runtime) -> int:
    password, stored = new_one_time_password()
    with session_scope(rt.session_factory) as db:
        user = find_user(db, args.email)
        if user is None:
            raise UsageError(f"no account for {args.email}")
        user.password_hash = stored
        user.failed_logins = 0
        user.locked_until = None
        user.active = True
        email = user.email
        db.add(
            AuditLog(
                actor="cli", action="staff.reset_password", entity="staff_user", entity_id=email
            )
        )
    _print_password(rt, email, password)
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
        user.active = False
        db.add(
            AuditLog(actor="cli", action="staff.disable", entity="staff_user", entity_id=user.email)
        )
    print(f"{args.email} can no longer sign in")
    return 0
