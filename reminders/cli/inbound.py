"""``reminders inbound --from NUMBER --body TEXT``: one inbound SMS through the webhook's handling."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from reminders.cli.common import command, parse_instant
from reminders.conversations.inbound import receive
from reminders.errors import UsageError
from reminders.runtime import Runtime


def _cmd_inbound(args: argparse.Namespace, rt: Runtime) -> int:
    if not args.sender.strip():
        raise UsageError("--from must not be empty")
    result = receive(
        rt.session_factory,
        rt.settings,
        channel=args.channel,
        from_address=args.sender,
        body=args.body,
        provider_message_id=args.sid or f"cli-{uuid.uuid4().hex}",
        now=args.now,
    )
    print(f"inbound: {result.inbound_id}{' (already processed)' if result.duplicate else ''}")
    print(f"classification: {result.classification or 'unprocessed'}")
    print(f"patient: {result.patient_id or 'unknown'}")
    if result.match_note:
        print(f"match: {result.match_note}")
    if result.task_ids:
        print(f"staff tasks: {', '.join(str(t) for t in result.task_ids)}")
    if result.alert_count:
        print(f"staff alerts queued: {result.alert_count}")
    print(f"reply: {result.reply_text or '(none)'}")
    if result.error:
        print(f"error: {result.error}")
        return 1
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "inbound", help="feed one inbound SMS through the webhook's handling; print class and reply"
    )
    parser.add_argument(
        "--from",
        dest="sender",
        required=True,
        help="the sender's number (or email with --channel email)",
    )
    parser.add_argument("--body", required=True, help="the message text")
    parser.add_argument(
        "--now", type=parse_instant, default=None, help="act as if the clock read this (ISO-8601)"
    )
    parser.add_argument("--sid", default=None, help="provider message id (default: a fresh one)")
    parser.add_argument(
        "--channel", choices=("sms", "email"), default="sms", help=argparse.SUPPRESS
    )
    command(parser, _cmd_inbound, schema="migrate")
