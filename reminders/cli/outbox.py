"""``reminders outbox`` and ``reminders plan``: what went out, what will, and why (docs/design.md section 3)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from reminders.cli.common import command, parse_instant
from reminders.db.models import Location, Message, Patient, TreatmentSession
from reminders.errors import UsageError
from reminders.planning.planner import SessionFacts, derive_series, plan_session
from reminders.planning.timecalc import recipient_zone
from reminders.runtime import Runtime


def register(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="list messages")
    outbox.add_argument("--status", help="only this status")
    outbox.add_argument("--patient", help="only this patient id")
    outbox.add_argument(
        "--limit", type=int, default=None, help="at most this many (newest due first)"
    )
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    command(outbox, _cmd_outbox, schema="read")

    plan = sub.add_parser("plan", help="a session's message timeline with reasons")
    plan.add_argument("--session", required=True, help="the session id")
    plan.add_argument("--now", type=parse_instant, default=None, help=argparse.SUPPRESS)
    plan.add_argument("--json", action="store_true")
    command(plan, _cmd_plan, schema="read")


def _cmd_outbox(args: argparse.Namespace, rt: Runtime) -> int:
    rows = list_outbox(rt, status=args.status, patient_id=args.patient, limit=args.limit)
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    if not rows:
        print("no messages")
        return 0
    print(
        f"{'id':>6}  {'due (local)':<22} {'channel':<7} {'status':<10} {'rule':<26} {'patient':<12} reason"
    )
    for row in rows:
        print(
            f"{row['id']:>6}  {row['due_local']:<22} {row['channel']:<7} {row['status']:<10} "
            f"{row['rule']:<26} {row['patient_id'] or '-':<12} {row['reason'] or ''}"
        )
    return 0


def _cmd_plan(args: argparse.Namespace, rt: Runtime) -> int:
    report = describe_session_plan(rt, session_id=args.session, now=args.now)
    if args.json:
        print(json.dumps(report, default=str, indent=2))
        return 0
    print(report["text"])
    return 0


def message_json(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "patient_id": msg.patient_id,
        "session_id": msg.session_id,
        "rule": msg.rule,
        "kind": msg.kind,
        "channel": msg.channel,
        "due_at": msg.due_at.isoformat(),
        "status": msg.status,
        "reason": msg.reason,
        "provider_message_id": msg.provider_message_id,
        "template": msg.template,
        "attempts": msg.attempts,
        "sent_at": msg.sent_at.isoformat() if msg.sent_at else None,
        "error_code": msg.error_code,
    }


def list_outbox(
    rt: Runtime,
    *,
    status: str | None = None,
    patient_id: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    q = select(Message).order_by(Message.due_at, Message.id)
    if status:
        q = q.where(Message.status == status)
    if patient_id:
        q = q.where(Message.patient_id == patient_id)
    if limit:
        q = q.limit(limit)
    tz = rt.settings.zone
    rows = []
    with rt.session_factory() as db:
        for msg in db.scalars(q):
            row = message_json(msg)
            row["due_local"] = f"{msg.due_at.astimezone(tz):%Y-%m-%d %H:%M %Z}"
            rows.append(row)
    return rows


def describe_session_plan(
    rt: Runtime, *, session_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The session, its current status, and every message it gets with rule and reason."""
    now = now or datetime.now(UTC)
    with rt.session_factory() as db:
        session = db.get(TreatmentSession, session_id)
        if session is None:
            raise UsageError(f"no session with id {session_id!r}")
        patient = db.get(Patient, session.patient_id)
        assert patient is not None
        location = db.get(Location, session.location_id) if session.location_id else None
        tz = recipient_zone(
            patient_tz=patient.timezone,
            location_tz=location.timezone if location else None,
            default=rt.settings.zone,
        )
        facts = [
            SessionFacts(
                s.id,
                s.patient_id,
                s.starts_at,
                s.duration_minutes,
                s.kind,
                s.status,
                s.phase,
                s.series_number,
                s.location_id,
            )
            for s in db.scalars(
                select(TreatmentSession).where(TreatmentSession.patient_id == patient.id)
            )
        ]
        position = derive_series(facts, patient.initial_series_size)[session.id]
        this = next(f for f in facts if f.id == session.id)
        expected = {pm.dedupe_key: pm for pm in plan_session(this, position, rt.policy, tz)}
        messages = list(
            db.scalars(
                select(Message)
                .where(Message.session_id == session.id)
                .order_by(Message.due_at, Message.id)
            )
        )
    timeline: list[dict[str, Any]] = []
    for msg in messages:
        row = message_json(msg)
        row["due_local"] = msg.due_at.astimezone(tz).isoformat()
        row["note"] = (msg.data or {}).get("note")
        timeline.append(row)
    seen = {m.dedupe_key for m in messages}
    for key, pm in expected.items():
        if key not in seen:
            timeline.append(
                {
                    "id": None,
                    "rule": pm.rule,
                    "kind": pm.kind,
                    "channel": pm.channel,
                    "due_at": pm.due_at.isoformat(),
                    "due_local": pm.due_at.astimezone(tz).isoformat(),
                    "status": "not planned yet",
                    "note": pm.data.get("note"),
                    "reason": "stale (its time has passed)"
                    if pm.not_after and pm.not_after <= now
                    else "next plan pass",
                }
            )
    timeline.sort(key=lambda r: r["due_at"])
    info = {
        "id": session.id,
        "patient_id": session.patient_id,
        "status": session.status,
        "kind": session.kind,
        "starts_at": session.starts_at.isoformat(),
        "starts_local": session.starts_at.astimezone(tz).isoformat(),
        "duration_minutes": session.duration_minutes,
        "phase": position.phase,
        "series_number": position.series_number,
        "series_size": position.series_size,
        "timezone": str(tz),
    }
    lines = [
        f"session {session.id} ({session.kind}, {session.status}) for patient {session.patient_id}",
        f"starts {info['starts_local']} [{tz}], {session.duration_minutes} min, "
        f"{position.phase} #{position.series_number or '-'} of {position.series_size}",
    ]
    for row in timeline:
        extra = "; ".join(x for x in (row.get("reason"), row.get("note")) if x)
        lines.append(
            f"  {row['due_local'][:16]}  {row['channel']:<5} {row['status']:<15} {row['rule']}"
            + (f"  ({extra})" if extra else "")
        )
    if not timeline:
        lines.append("  no messages")
    return {
        "session": info,
        "status": session.status,
        "messages": timeline,
        "text": "\n".join(lines),
    }
