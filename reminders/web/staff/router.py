"""The staff console under ``/staff`` (issue 5): login, then templates, outbox, inbox,
patients, policy and the audit log. Each area lives in its own module in this package; this
one holds the router, sign-in and sign-out, the account page and the static files.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from reminders.db.models import AuditLog, StaffUser
from reminders.logs import event
from reminders.web.deps import get_write_db, runtime_of, settings_of
from reminders.web.staff import admin, auth, inbox, outbox, patients, templates
from reminders.web.staff.common import (
    PASSWORD_PATH,
    STATIC_DIR,
    Staff,
    posted,
    render,
    safe_next,
    see_other,
    signed_in,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/staff")

STATIC_FILES = {"staff.css": "text/css", "staff.js": "text/javascript"}


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
def index(staff: Staff = Depends(signed_in)) -> Response:
    return see_other("/staff/inbox")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise HTTPException(status_code=404)
    return FileResponse(
        STATIC_DIR / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"}
    )


def _login_page(
    request: Request, *, error: str | None, next_url: str, email: str = "", status_code: int = 200
) -> Response:
    settings = settings_of(request)
    seed = auth.login_seed(request, settings)
    fresh = seed is None
    seed = seed or secrets.token_urlsafe(16)
    context = {
        "error": error,
        "next": next_url,
        "email": email,
        "csrf": auth.csrf_token(settings, seed),
    }
    response = render(request, "login.html", context, status_code=status_code)
    if fresh:
        auth.set_login_seed(response, settings, seed)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return _login_page(request, error=None, next_url=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    settings = settings_of(request)
    form = await request.form()
    auth.check_csrf(settings, auth.login_seed(request, settings), form.get("csrf_token"))
    email = str(form.get("email") or "")[:320]
    password = str(form.get("password") or "")[:1000]
    next_url = safe_next(str(form.get("next") or ""))
    runtime = runtime_of(request)
    # argon2 and the database off the event loop; argon2 outside any write transaction.
    result = await run_in_threadpool(
        auth.attempt_login,
        runtime.read_session_factory,
        runtime.session_factory,
        email=email,
        password=password,
    )
    if not result.ok:
        locked = result.locked_until is not None
        event(log, "staff login refused", level=logging.WARNING, locked=locked)
        message = (
            "Too many wrong passwords: this account is locked for a few minutes."
            if locked
            else "Wrong email or password."
        )
        return _login_page(
            request,
            error=message,
            next_url=next_url,
            email=email,
            status_code=429 if locked else 401,
        )
    assert result.user is not None
    event(log, "staff login", user=result.user.id)
    response = see_other(PASSWORD_PATH if auth.must_change_password(result.user) else next_url)
    auth.start_session(response, settings, result.user)
    return response


@router.post("/logout")
def logout(staff: Staff = Depends(posted)) -> Response:
    response = see_other("/staff/login")
    auth.end_session(response)
    return response


@router.get("/account/password")
def password_form(request: Request, staff: Staff = Depends(signed_in)) -> Response:
    return render(
        request,
        "password.html",
        {"error": None, "first": auth.must_change_password(staff.user)},
        staff=staff,
    )


@router.post("/account/password")
def change_password(
    request: Request,
    staff: Staff = Depends(posted),
    current: str = Form(""),
    password: str = Form(""),
    confirm: str = Form(""),
    db: Session = Depends(get_write_db),
) -> Response:
    seen = staff.user.password_hash
    first = auth.must_change_password(staff.user)
    # Both argon2 runs come first, with no transaction open; then one short write.
    problem = None if auth.verify_password(seen, current) else "The current password is wrong."
    problem = problem or auth.password_problem(password, confirm)
    new_hash = None if problem else auth.hash_password(password)
    user = db.get(StaffUser, staff.user.id) if new_hash else None
    if new_hash and (user is None or user.password_hash != seen):
        db.rollback()
        problem = "Your password was changed meanwhile: sign in again."
    if problem or user is None:
        return render(
            request,
            "password.html",
            {"error": problem, "first": first},
            staff=staff,
            status_code=400,
        )
    user.password_hash = new_hash
    db.add(
        AuditLog(
            actor=user.email, action="staff.password", entity="staff_user", entity_id=str(user.id)
        )
    )
    db.commit()
    response = see_other("/staff/inbox")
    auth.start_session(response, settings_of(request), user)  # the old cookie no longer matches
    return response


@router.get("/tasks/{task_id}", include_in_schema=False)
def task_link(task_id: int, staff: Staff = Depends(signed_in)) -> Response:
    """The link in staff alerts."""
    return see_other(f"/staff/inbox?task={task_id}")


for area in (templates, outbox, inbox, patients, admin):
    router.include_router(area.router)
