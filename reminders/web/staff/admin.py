"""The policy (a readable table of rules for everyone; a validating YAML editor for admins),
its history (every save from the console is a version: diff with the file in use, revert),
and the audit log (admins), in words."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.engine import LOCK_WAIT_MS
from reminders.db.models import AuditLog, Patient, PolicyVersion
from reminders.errors import PolicyError
from reminders.logs import event
from reminders.planning.policy import Policy, load_policy, parse_policy
from reminders.web.deps import get_db, get_write_db, runtime_of, settings_of
from reminders.web.staff.common import Staff, admin, admin_posted, render, see_other, signed_in
from reminders.web.staff.i18n import console_language, translator
from reminders.web.staff.labels import readable
from reminders.web.staff.policy_words import describe_when, preparation_rows
from reminders.web.staff.templates import diff_lines

log = logging.getLogger(__name__)
router = APIRouter()
MAX_POLICY_BYTES = 256 * 1024


# The built-in policy is package data (read-only in an installed package, and replaced by
# every upgrade): edits go to a file of the clinic's own.
BUILT_IN_POLICY = (
    "This is the built-in policy, which cannot be edited here. To change it, run "
    "`reminders init` on the server and set REMINDERS_POLICY_FILE to the policy.yaml it writes."
)


def _words(request: Request, staff: Staff) -> Callable[[str], str]:
    return translator(console_language(request, staff.user.language))


def _policy_page(
    request: Request,
    staff: Staff,
    *,
    text: str | None = None,
    error: str | None = None,
    notice: str | None = None,
    note: str = "",
    status_code: int = 200,
) -> Response:
    settings = settings_of(request)
    path = settings.policy_path
    try:
        policy: Policy | None = load_policy(path)
        load_error = None
    except PolicyError as exc:
        policy, load_error = None, str(exc)
    on_disk = _read(path)
    if text is None:
        text = on_disk or ""
    t = translator(console_language(request, staff.user.language))
    rows = [{"rule": r, "when": describe_when(r, t)} for r in policy.rules] if policy else []
    prep_rows = preparation_rows(policy, t) if policy else []
    running = runtime_of(request).policy.fingerprint()
    latest = None
    if settings.policy_file is not None:
        record_as_found(request, on_disk)
        with runtime_of(request).read_session_factory() as db:
            latest = db.scalars(
                select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
            ).first()
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
            "note": note,
            "policy_path": path,
            "built_in": settings.policy_file is None,
            "stale": policy is not None and policy.fingerprint() != running,
            "latest": latest,
            "edited_outside": latest is not None and _same(latest.text, on_disk) is False,
        },
        staff=staff,
        status_code=status_code,
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("\n") == (b or "").rstrip("\n")


@router.get("/policy")
def policy_page(request: Request, done: str = "", staff: Staff = Depends(signed_in)) -> Response:
    t = _words(request, staff)
    notice = {
        "saved": t("Saved and validated. Workers apply it at their next pass."),
        "reverted": t("Reverted: the old version is in use again, saved as a new version."),
    }.get(done)
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


# --- versions ------------------------------------------------------------------------------------

AS_FOUND = "as found"


def record_as_found(request: Request, text: str | None) -> None:
    """The policy file as found, as version 1, when there is no history yet. It waits at most
    a moment for the write lock and is skipped when it cannot have it (a page never waits):
    the next page, or the first save, records it."""
    runtime = runtime_of(request)
    if not text:
        return
    with runtime.read_session_factory() as db:
        if db.scalar(select(PolicyVersion.id).limit(1)) is not None:
            return
    try:
        with runtime.session_factory() as db:
            db.connection(execution_options={LOCK_WAIT_MS: 100})
            if db.scalar(select(PolicyVersion.id).limit(1)) is None:
                db.add(PolicyVersion(version=1, text=text, actor="system", note=AS_FOUND))
                db.commit()
    except (OperationalError, IntegrityError):
        pass


def store_version(
    db: Session, text: str, *, actor: str, note: str | None, before: str | None
) -> int:
    """Add the next version (the file as it was, ``before``, first when there is no history
    yet); the caller commits. Returns the new version number."""
    latest = db.scalar(select(func.max(PolicyVersion.version))) or 0
    if latest == 0 and before:
        db.add(PolicyVersion(version=1, text=before, actor="system", note=AS_FOUND))
        latest = 1
    db.add(PolicyVersion(version=latest + 1, text=text, actor=actor, note=note))
    return latest + 1


def _check(text: str) -> Policy:
    """Validate policy text as a save does; PolicyError with what is wrong."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError("the policy is too large")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}") from None
    return parse_policy(raw, source="policy")


def _apply(
    request: Request, db: Session, text: str, policy: Policy, *, actor: str, note: str | None,
    action: str, detail: dict[str, object],
) -> int:  # fmt: skip
    """Write the file, reload it, then the version and the audit row in one short write."""
    runtime = runtime_of(request)
    path = settings_of(request).policy_path
    before_text, before = _read(path), runtime.policy.fingerprint()
    write_atomically(path, text if text.endswith("\n") else text + "\n")
    runtime.policy  # noqa: B018 - every worker re-reads the file when it changes, this one now
    for attempt in range(3):
        try:
            version = store_version(db, text, actor=actor, note=note, before=before_text)
            db.add(
                AuditLog(
                    actor=actor, action=action, entity="policy", entity_id=path.name,
                    detail={"version": version, "from": before, "to": policy.fingerprint(),
                            "rules": len(policy.rules), **detail},
                )
            )  # fmt: skip
            db.commit()
            return version
        except IntegrityError:  # another save took the number: take the next one
            db.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.post("/policy")
def policy_save(
    request: Request,
    text: str = Form(""),
    note: str = Form(""),
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_write_db),
) -> Response:
    """Validate, write the file, reload it; only then the short write of the version and the
    audit row."""
    text = text.replace("\r\n", "\n")
    try:
        policy = _check(text)
    except PolicyError as exc:
        return _policy_page(request, staff, text=text, error=str(exc), note=note, status_code=422)
    if settings_of(request).policy_file is None:
        return _policy_page(request, staff, text=text, error=BUILT_IN_POLICY, status_code=409)
    version = _apply(
        request, db, text, policy, actor=staff.user.email, note=note.strip()[:500] or None,
        action="policy.save", detail={},
    )  # fmt: skip
    event(log, "policy saved", user=staff.user.id, fingerprint=policy.fingerprint(), v=version)
    return see_other("/staff/policy?done=saved")


@router.get("/policy/history")
def policy_history(
    request: Request,
    v: int = 0,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    """Every version, who saved it and why; with ``v``, its differences from the file in use."""
    settings, t = settings_of(request), _words(request, staff)
    current = _read(settings.policy_path)
    built_in = settings.policy_file is None
    if not built_in:
        record_as_found(request, current)
        db.rollback()  # a fresh read: see the version just recorded
    versions = db.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc())).all()
    chosen = next((row for row in versions if row.version == v), None)
    if v and chosen is None:
        raise HTTPException(404, detail=t("There is no version {n}.").format(n=v))
    lines = []
    if chosen is not None:
        old, new = t("version {n}").format(n=chosen.version), t("the policy in use")
        lines = diff_lines(chosen.text, current or "", old, new)
    return render(
        request,
        "policy_history.html",
        {
            "versions": versions,
            "chosen": chosen,
            "lines": lines,
            "in_use": {row.version for row in versions if _same(row.text, current)},
            "built_in": built_in,
        },
        staff=staff,
    )


@router.post("/policy/revert")
def policy_revert(
    request: Request,
    version: int = Form(...),
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_db),
    writes: Session = Depends(get_write_db),
) -> Response:
    """Make an old version the policy in use again: checked like a save, written, and
    recorded as a new version ("revert to v2")."""
    t = _words(request, staff)
    if settings_of(request).policy_file is None:
        raise HTTPException(409, detail=t(BUILT_IN_POLICY))
    old = db.scalar(select(PolicyVersion).where(PolicyVersion.version == version))
    if old is None:
        raise HTTPException(404, detail=t("There is no version {n}.").format(n=version))
    text = old.text
    try:
        policy = _check(text)
    except PolicyError as exc:
        words = t("Version {n} cannot be used any more, so nothing was changed. What is wrong:")
        raise HTTPException(422, detail=f"{words.format(n=version)} {exc}") from None
    new = _apply(
        request, writes, text, policy, actor=staff.user.email, note=f"revert to v{version}",
        action="policy.revert", detail={"reverted_to": version},
    )  # fmt: skip
    event(log, "policy reverted", user=staff.user.id, version=new, reverted_to=version)
    return see_other("/staff/policy?done=reverted")


# --- the audit log -------------------------------------------------------------------------------

ACTIONS = {
    "template.save": "Template saved",
    "template.revert": "Template reverted to an earlier version",
    "template.test": "Test message sent to themself",
    "policy.save": "Policy saved",
    "policy.revert": "Policy reverted to an earlier version",
    "staff.add": "Staff account added",
    "staff.disable": "Staff account disabled",
    "staff.enable": "Staff account enabled",
    "staff.reset": "Staff password reset",
    "staff.reset_password": "Staff password reset",
    "staff.password": "Changed their own password",
    "task.acknowledge": "Inbox item acknowledged",
    "session.confirm": "Visit marked as confirmed",
    "session_confirmed": "Visit confirmed by the patient",
    "opt_out": "Patient stopped messages",
    "opt_in": "Patient allowed messages again",
    "unsubscribe": "Patient unsubscribed from emails",
    "clinic.import": "Clinic data imported",
    "clinic.sync": "Clinic data synchronised",
}
ENTITIES = {
    "template": "Template",
    "policy": "Policy",
    "staff_user": "Staff account",
    "staff_task": "Inbox item",
    "session": "Visit",
    "patient": "Patient",
    "opt_out": "Patient's messages",
    "clinic": "Clinic data",
}


@router.get("/audit")
def audit_log(
    request: Request,
    entity: str = "",
    actor: str = "",
    staff: Staff = Depends(admin),
    db: Session = Depends(get_db),
) -> Response:
    t = _words(request, staff)
    query = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(300)
    if entity:
        query = query.where(AuditLog.entity == entity)
    if actor:
        query = query.where(AuditLog.actor == actor)
    rows = db.scalars(query).all()
    patient_ids = {a.entity_id for a in rows if a.entity == "patient" and a.entity_id}
    names = {
        p.id: f"{p.first_name} {p.last_name}".strip()
        for p in db.scalars(select(Patient).where(Patient.id.in_(patient_ids)))
    }
    entities = sorted(set(db.scalars(select(AuditLog.entity).distinct())))
    return render(
        request,
        "audit.html",
        {
            "rows": [
                {
                    "a": a,
                    "action": t(ACTIONS[a.action]) if a.action in ACTIONS else readable(a.action),
                    "what": t(ENTITIES[a.entity]) if a.entity in ENTITIES else readable(a.entity),
                    "patient": names.get(a.entity_id or "") if a.entity == "patient" else None,
                }
                for a in rows
            ],
            "entity": entity,
            "actor": actor,
            "entities": [(e, t(ENTITIES[e]) if e in ENTITIES else readable(e)) for e in entities],
        },
        staff=staff,
    )
