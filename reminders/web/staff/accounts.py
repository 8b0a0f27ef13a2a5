"""Staff accounts in the console (admins only): the list, adding an account, disabling and
enabling one, and resetting a password. A new account and a reset get a one-time password,
shown once on the page that answers the form (never in a URL, never logged): it works for one
sign-in, which then asks for a password of their own.

The account changes themselves are the functions below, which ``reminders staff ...``
(:mod:`reminders.cli.staff`) calls too: disabling an account and resetting its password end
all of its console sessions (:func:`reminders.web.staff.sessions.revoke_all`), and each change
writes an audit row. Password hashing (argon2) runs before the write transaction opens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import phonenumbers
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import AuditLog, StaffSession, StaffUser
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.web.deps import get_db, get_write_db, settings_of
from reminders.web.staff import sessions, throttle
from reminders.web.staff.auth import (
    ROLES,
    find_user,
    must_change_password,
    new_one_time_password,
)
from reminders.web.staff.common import Staff, admin, admin_posted, render, see_other
from reminders.web.staff.i18n import console_language, translator

log = logging.getLogger(__name__)
router = APIRouter()

ROLE_NAMES = {"admin": "Admin", "staff": "Staff"}
ROLE_WORDS = {
    "admin": "Admin: edits templates, the policy and staff accounts",
    "staff": "Staff: reads, replies, acknowledges",
}


DONE = {"disabled": "{email} can no longer sign in.", "enabled": "{email} can sign in again."}


class AccountError(Exception):
    """A change refused, in words for the person asking."""


# --- the changes (shared with `reminders staff ...`) ---------------------------------------------


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise AccountError(f"{value.strip()!r} is not an email address")
    return email


def normalise_phone(value: str | None, region: str) -> str | None:
    """A mobile number in any usual format, as E.164; None for none."""
    if not value or not value.strip():
        return None
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise AccountError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise AccountError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def add_account(
    db: Session, *, email: str, role: str, phone: str | None, stored: str, actor: str
) -> StaffUser:
    """A new account with the password hash ``stored`` (the caller commits)."""
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}")
    if find_user(db, email) is not None:
        raise AccountError(f"{email} already has an account")
    user = StaffUser(email=email, role=role, phone=phone, password_hash=stored)
    db.add(user)
    db.add(
        AuditLog(
            actor=actor,
            action="staff.add",
            entity="staff_user",
            entity_id=email,
            detail={"role": role},
        )
    )
    db.flush()
    return user


def set_active(db: Session, user: StaffUser, *, active: bool, actor: str, now: datetime) -> None:
    """Disable (ending every session of the account) or enable it again; the caller commits.
    Enabling brings no old session back: they were revoked."""
    user.active = active
    if not active:
        sessions.revoke_all(db, user.id, now)
    db.add(
        AuditLog(
            actor=actor,
            action="staff.enable" if active else "staff.disable",
            entity="staff_user",
            entity_id=user.email,
        )
    )


def reset_password(
    db: Session,
    user: StaffUser,
    *,
    stored: str,
    actor: str,
    now: datetime,
    action: str = "staff.reset",
) -> None:
    """A new (one-time) password hash; every session of the account ends, its sign-in
    back-off is cleared. A disabled account stays disabled. The caller commits."""
    user.password_hash = stored
    user.failed_logins = 0
    user.locked_until = None
    sessions.revoke_all(db, user.id, now)
    throttle.clear(db, [throttle.login_keys(user.email, "").account])
    db.add(
        AuditLog(
            actor=actor,
            action=action,
            entity="staff_user",
            entity_id=user.email,
            detail={"active": user.active},
        )
    )


# --- the page ------------------------------------------------------------------------------------


def _words(request: Request, staff: Staff) -> Callable[[str], str]:
    return translator(console_language(request, staff.user.language))


def _page(
    request: Request,
    db: Session,
    staff: Staff,
    *,
    created: dict[str, str] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    last_seen = dict(
        db.execute(
            select(StaffSession.user_id, func.max(StaffSession.last_seen_at)).group_by(
                StaffSession.user_id
            )
        ).all()
    )
    users = db.scalars(select(StaffUser).order_by(StaffUser.email)).all()
    rows = [
        {
            "user": u,
            "last_seen": last_seen.get(u.id),
            "one_time": must_change_password(u),
            "me": u.id == staff.user.id,
        }
        for u in users
    ]
    return render(
        request,
        "accounts.html",
        {
            "rows": rows,
            "roles": ROLES,
            "role_words": ROLE_WORDS,
            "role_names": ROLE_NAMES,
            "created": created,
            "error": error,
            "form": form or {"email": "", "role": "staff", "phone": ""},
            "notice": notice,
        },
        staff=staff,
        status_code=status_code,
    )


@router.get("/accounts")
def accounts_page(
    request: Request,
    done: str = "",
    id: int = 0,  # noqa: A002
    staff: Staff = Depends(admin),
    db: Session = Depends(get_db),
) -> Response:
    notice = None
    changed = db.get(StaffUser, id) if done in DONE and id else None
    if changed is not None:
        notice = _words(request, staff)(DONE[done]).format(email=changed.email)
    return _page(request, db, staff, notice=notice)


@router.post("/accounts")
def account_add(
    request: Request,
    email: str = Form(""),
    role: str = Form("staff"),
    phone: str = Form(""),
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_db),
    writes: Session = Depends(get_write_db),
) -> Response:
    t = _words(request, staff)
    settings = settings_of(request)
    form = {"email": email, "role": role, "phone": phone}
    try:
        address = normalise_email(email)
        number = normalise_phone(phone, settings.default_region)
        if role not in ROLES:
            raise AccountError("choose a role: staff or admin")
        if find_user(db, address) is not None:
            raise AccountError(f"{address} already has an account")
    except AccountError as exc:
        return _page(request, db, staff, error=_plain(t, str(exc)), form=form, status_code=422)
    # argon2 first, with no transaction open; then one short write.
    password, stored = new_one_time_password(address, settings.clinic_name)
    try:
        user = add_account(
            writes, email=address, role=role, phone=number, stored=stored, actor=staff.user.email
        )
        writes.commit()
    except AccountError as exc:
        writes.rollback()
        return _page(request, db, staff, error=_plain(t, str(exc)), form=form, status_code=422)
    event(log, "staff account added", user=staff.user.id, account=user.id)
    db.rollback()  # see the new row
    return _page(request, db, staff, created={"email": address, "password": password})


def _account(db: Session, user_id: int, t: Callable[[str], str]) -> StaffUser:
    user = db.get(StaffUser, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=t("There is no such staff account."))
    return user


@router.post("/accounts/{user_id}/disable")
def account_disable(
    request: Request,
    user_id: int,
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_write_db),
) -> Response:
    return _set_active(request, user_id, staff, db, active=False)


@router.post("/accounts/{user_id}/enable")
def account_enable(
    request: Request,
    user_id: int,
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_write_db),
) -> Response:
    return _set_active(request, user_id, staff, db, active=True)


def _set_active(
    request: Request, user_id: int, staff: Staff, db: Session, *, active: bool
) -> Response:
    t = _words(request, staff)
    if user_id == staff.user.id and not active:
        raise HTTPException(
            status_code=409,
            detail=t("You cannot disable your own account: ask another admin to do it."),
        )
    user = _account(db, user_id, t)
    if user.active != active:
        set_active(db, user, active=active, actor=staff.user.email, now=utcnow())
        db.commit()
        event(log, "staff account changed", user=staff.user.id, account=user_id, active=active)
    return see_other(f"/staff/accounts?done={'enabled' if active else 'disabled'}&id={user_id}")


@router.post("/accounts/{user_id}/reset")
def account_reset(
    request: Request,
    user_id: int,
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_db),
    writes: Session = Depends(get_write_db),
) -> Response:
    t = _words(request, staff)
    if user_id == staff.user.id:
        raise HTTPException(
            status_code=409,
            detail=t("To change your own password, use the Password page."),
        )
    found = _account(db, user_id, t)
    email = found.email
    # argon2 first, with no transaction open; then one short write.
    password, stored = new_one_time_password(email, settings_of(request).clinic_name)
    user = _account(writes, user_id, t)
    reset_password(writes, user, stored=stored, actor=staff.user.email, now=utcnow())
    active = user.active
    writes.commit()
    event(log, "staff password reset", user=staff.user.id, account=user_id)
    db.rollback()
    return _page(
        request, db, staff, created={"email": email, "password": password, "reset": "1"},
        notice=None if active else t("This account is disabled: enable it before they can sign in."),
    )  # fmt: skip


def _plain(t: Callable[[str], str], message: str) -> str:
    """An AccountError's words in the console's language (the address or number kept)."""
    for english in (
        "{value} is not an email address",
        "{value} is not a phone number",
        "{value} is not a valid phone number",
        "{value} already has an account",
    ):
        tail = english.removeprefix("{value}")
        if message.endswith(tail):
            return t(english).format(value=message.removesuffix(tail))
    return t(message)
