"""The policy (a readable table of rules for everyone; a validating YAML editor for admins)
and the audit log (admins)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import AuditLog
from reminders.errors import PolicyError
from reminders.logs import event
from reminders.planning.policy import FixedTime, Offset, Policy, Rule, load_policy, parse_policy
from reminders.planning.prep import DayTime, Preparation, plan_preparation
from reminders.web.deps import get_db, get_write_db, runtime_of, settings_of
from reminders.web.staff.common import Staff, admin, admin_posted, render, see_other, signed_in

log = logging.getLogger(__name__)
router = APIRouter()
MAX_POLICY_BYTES = 256 * 1024


def _amount(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def describe_offset(offset: Offset) -> str:
    parts = []
    if offset.days:
        parts.append(_amount(abs(offset.days), "day"))
    hours, minutes = divmod(abs(offset.minutes), 60)
    if hours:
        parts.append(_amount(hours, "hour"))
    if minutes:
        parts.append(_amount(minutes, "minute"))
    span = " ".join(parts) or "0 minutes"
    return (
        f"{span} before the session starts" if offset.before else f"{span} after the session ends"
    )


def describe_when(rule: Rule) -> str:
    if rule.kind == "nudge":
        return (
            f"{_amount(rule.lead, 'day')} before maintenance is due, at {rule.at:%H:%M}, "
            f"then every {_amount(rule.every, 'day')}, at most {rule.max} times"
        )
    when = rule.when
    if isinstance(when, FixedTime):
        day = abs(when.day)
        side = "before the session" if when.day < 0 else "after the session"
        return f"{_amount(day, 'day')} {side}, at {when.at:%H:%M}"
    if isinstance(when, Offset):
        return describe_offset(when)
    return ""


def _span(delta: timedelta) -> str:
    return describe_offset(Offset(minutes=int(delta.total_seconds() // 60))).removesuffix(
        " after the session ends"
    )


def _days_before(days: int) -> str:
    return {0: "the session's day", 1: "the day before"}.get(days, f"{days} days before")


def _cutoff_text(spec: timedelta | DayTime | None) -> str:
    """ "6 hours before" / "20:00 the day before"."""
    if spec is None:
        return ""
    if isinstance(spec, DayTime):
        return f"{spec.at:%H:%M} {_days_before(-spec.day)}"
    return f"{_span(spec)} before"


def _text_of(text: Mapping[str, str]) -> str:
    return " / ".join(value if lang == "*" else f"{lang}: {value}" for lang, value in text.items())


EXAMPLE_START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
CUTOFF_WORDS = {
    "food": "no food after",
    "liquids": "clear liquids until",
    "alcohol": "no alcohol after",
}


def _example(prep: Preparation) -> str:
    """The cut-offs for a session at 09:00 (no daylight-saving change)."""
    plan = plan_preparation(prep, starts_at=EXAMPLE_START, duration_minutes=60, tz=ZoneInfo("UTC"))
    parts = []
    for cutoff in plan.cutoffs:
        what = CUTOFF_WORDS.get(cutoff.what) or f"stop {_text_of(cutoff.item or {})} at"
        days = (EXAMPLE_START.date() - cutoff.at.date()).days
        parts.append(f"{what} {cutoff.at:%H:%M}" + (f" {_days_before(days)}" if days else ""))
    return ", ".join(parts)


def describe_preparation(prep: Preparation) -> dict[str, str]:
    """A row of the policy page's preparation table, in plain words ("—" for nothing)."""
    if prep.no_driving == "next_day":
        driving = "no driving until the next day"
    elif isinstance(prep.no_driving, timedelta):
        driving = f"no driving for {_span(prep.no_driving)} after"
    else:
        driving = ""
    ride = "; ".join(p for p in ("ride home required" if prep.ride_home else "", driving) if p)
    hold = [f"{_text_of(h.item)} (from {_cutoff_text(h.before)})" for h in prep.hold]
    row = {
        "food": _cutoff_text(prep.no_food),
        "liquids": _cutoff_text(prep.clear_liquids_until),
        "alcohol": _cutoff_text(prep.no_alcohol),
        "hold": "; ".join(hold),
        "bring": "; ".join(_text_of(b) for b in prep.bring),
        "wear": _text_of(prep.wear) if prep.wear else "",
        "arrive": f"{_span(prep.arrive_early)} early" if prep.arrive_early else "",
        "ride": ride,
        "example": _example(prep),
    }
    return {key: value or "—" for key, value in row.items()}


def preparation_rows(policy: Policy) -> list[dict[str, str]]:
    rows = [
        {"kind": kind, "where": "every location", **describe_preparation(prep)}
        for kind, prep in policy.preparation.kinds.items()
    ]
    for location, kinds in policy.preparation.locations.items():
        for kind in kinds:
            prep = policy.preparation.for_session(kind, location)
            if prep is not None:
                rows.append({"kind": kind, "where": location, **describe_preparation(prep)})
    return rows


# The built-in policy is package data (read-only in an installed package, and replaced by
# every upgrade): edits go to a file of the clinic's own.
BUILT_IN_POLICY = (
    "This is the built-in policy, which cannot be edited here. To change it, run "
    "`reminders init` on the server and set REMINDERS_POLICY_FILE to the policy.yaml it writes."
)


def _policy_page(
    request: Request,
    staff: Staff,
    *,
    text: str | None = None,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    settings = settings_of(request)
    path = settings.policy_path
    try:
        policy: Policy | None = load_policy(path)
        load_error = None
    except PolicyError as exc:
        policy, load_error = None, str(exc)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
    rows = [{"rule": r, "when": describe_when(r)} for r in policy.rules] if policy else []
    prep_rows = preparation_rows(policy) if policy else []
    running = runtime_of(request).policy.fingerprint()
    return render(
        request,
        "policy.html",
        {
            "policy": policy,
            "rows": rows,
            "prep_rows": prep_rows,
            "text": text,
            "error": error or load_error,
            "notice": notice,
            "policy_path": path,
            "built_in": settings.policy_file is None,
            "stale": policy is not None and policy.fingerprint() != running,
        },
        staff=staff,
        status_code=status_code,
    )


@router.get("/policy")
def policy_page(request: Request, done: str = "", staff: Staff = Depends(signed_in)) -> Response:
    notice = (
        "Saved and validated. Workers apply it at their next pass." if done == "saved" else None
    )
    return _policy_page(request, staff, notice=notice)


def write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename: a reader never sees half a policy."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@router.post("/policy")
def policy_save(
    request: Request,
    text: str = Form(""),
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_write_db),
) -> Response:
    """Validate, write the file, reload it; only then the short write of the audit row."""
    text = text.replace("\r\n", "\n")
    if len(text.encode()) > MAX_POLICY_BYTES:
        return _policy_page(
            request, staff, text=text, error="the policy is too large", status_code=422
        )
    try:
        raw = yaml.safe_load(text)
        policy = parse_policy(raw, source="policy")
    except yaml.YAMLError as exc:
        return _policy_page(
            request, staff, text=text, error=f"not valid YAML: {exc}", status_code=422
        )
    except PolicyError as exc:
        return _policy_page(request, staff, text=text, error=str(exc), status_code=422)
    if settings_of(request).policy_file is None:
        return _policy_page(request, staff, text=text, error=BUILT_IN_POLICY, status_code=409)
    runtime = runtime_of(request)
    path = settings_of(request).policy_path
    before = runtime.policy.fingerprint()
    write_atomically(path, text if text.endswith("\n") else text + "\n")
    # Every worker re-reads the file when it changes (Runtime.policy), this one at once.
    runtime.policy  # noqa: B018
    db.add(
        AuditLog(
            actor=staff.user.email,
            action="policy.save",
            entity="policy",
            entity_id=path.name,
            detail={"from": before, "to": policy.fingerprint(), "rules": len(policy.rules)},
        )
    )
    db.commit()
    event(log, "policy saved", user=staff.user.id, fingerprint=policy.fingerprint())
    return see_other("/staff/policy?done=saved")


@router.get("/audit")
def audit_log(
    request: Request,
    entity: str = "",
    actor: str = "",
    staff: Staff = Depends(admin),
    db: Session = Depends(get_db),
) -> Response:
    query = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(300)
    if entity:
        query = query.where(AuditLog.entity == entity)
    if actor:
        query = query.where(AuditLog.actor == actor)
    entities = sorted(set(db.scalars(select(AuditLog.entity).distinct())))
    return render(
        request,
        "audit.html",
        {"rows": db.scalars(query).all(), "entity": entity, "actor": actor, "entities": entities},
        staff=staff,
    )
