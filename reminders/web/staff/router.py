"""The staff console under ``/staff`` (issue 5): login, then templates, outbox, inbox,
patients, policy and the audit log. Each area lives in its own module in this package; this
one holds the router, sign-in and sign-out, the account page and the static files.

Every refused sign-in (wrong password, unknown or disabled account, backed off) gets the same
page with the same status, ``LOGIN_REFUSED``: it tells nothing about which accounts exist.
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
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.web.deps import get_write_db, runtime_of, settings_of
from reminders.web.staff import (
    accounts,
    admin,
    auth,
    conversation,
    inbox,
    outbox,
    patients,
    sessions,
    templates,
    throttle,
    today,
    visits,
)
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
from reminders.web.staff.i18n import LANGUAGES

log = logging.getLogger(__name__)
router = APIRouter(prefix="/staff")

# Every stylesheet and script in static/ (each area of the console may have its own).
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
STATIC_FILES = {
    path.name: STATIC_TYPES[path.suffix]
    for path in STATIC_DIR.iterdir()
    if path.suffix in STATIC_TYPES
}
LOGIN_REFUSED = (
    "Wrong email or password. After several wrong tries, signing in is slowed down: "
    "if you are sure of your password, wait a few minutes and try again."
)
CURRENT_PASSWORD_THROTTLED = (
    "Too many wrong current passwords: wait a few minutes before trying again."
)


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
def index(staff: Staff = Depends(signed_in)) -> Response:
    return see_other("/staff/today")


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
        address=throttle.client_address(request, settings),
    )
    if not result.ok:
        event(log, "staff login refused", level=logging.WARNING, throttled=result.throttled)
        return _login_page(
            request, error=LOGIN_REFUSED, next_url=next_url, email=email, status_code=401
        )
    assert result.user is not None
    event(log, "staff login", user=result.user.id)
    response = see_other(PASSWORD_PATH if auth.must_change_password(result.user) else next_url)
    auth.start_session(response, settings, result.user, result.token)
    return response


@router.post("/logout")
def logout(staff: Staff = Depends(posted), db: Session = Depends(get_write_db)) -> Response:
    sessions.revoke(db, staff.session_id, utcnow())  # a copy of the cookie stops working too
    db.commit()
    response = see_other("/staff/login")
    auth.end_session(response)
    return response


@router.get("/account/password")
def password_form(request: Request, staff: Staff = Depends(signed_in)) -> Response:
    return _password_page(request, staff, error=None)


def _password_page(
    request: Request, staff: Staff, *, error: str | None, status_code: int = 200
) -> Response:
    context = {
        "error": error,
        "first": auth.must_change_password(staff.user),
        "min_length": auth.MIN_PASSWORD_LENGTH,
    }
    return render(request, "password.html", context, staff=staff, status_code=status_code)


@router.post("/account/password")
def change_password(
    request: Request,
    staff: Staff = Depends(posted),
    current: str = Form(""),
    password: str = Form(""),
    confirm: str = Form(""),
    db: Session = Depends(get_write_db),
) -> Response:
    settings, runtime, now = settings_of(request), runtime_of(request), utcnow()
    seen = staff.user.password_hash
    # Guesses at the current password are throttled per user, checked before any hashing.
    key = throttle.password_key(staff.user.id)
    with runtime.read_session_factory() as reading:
        if throttle.blocked(reading, key, now):
            return _password_page(request, staff, error=CURRENT_PASSWORD_THROTTLED, status_code=429)
    # Both argon2 runs come first, with no transaction open; then one short write.
    if not auth.verify_password(seen, current):
        throttle.record_failure(db, [(key, throttle.CURRENT_PASSWORD)], now)
        db.commit()
        return _password_page(
            request, staff, error="The current password is wrong.", status_code=400
        )
    problem = auth.password_problem(
        password, confirm, email=staff.user.email, clinic_name=settings.clinic_name
    )
    new_hash = None if problem else auth.hash_password(password)
    user = db.get(StaffUser, staff.user.id) if new_hash else None
    if new_hash and (user is None or user.password_hash != seen):
        db.rollback()
        problem = "Your password was changed meanwhile: sign in again."
    if problem or user is None:
        return _password_page(request, staff, error=problem, status_code=400)
    user.password_hash = new_hash
    # Every session of the account ends; this one goes on with a new session.
    sessions.revoke_all(db, user.id, now)
    token = sessions.create(db, user.id, now)
    throttle.clear(db, [key])
    db.add(
        AuditLog(
            actor=user.email, action="staff.password", entity="staff_user", entity_id=str(user.id)
        )
    )
    db.commit()
    response = see_other("/staff/inbox")
    auth.start_session(response, settings, user, token)
    return response


@router.get("/tasks/{task_id}", include_in_schema=False)
def task_link(task_id: int, staff: Staff = Depends(signed_in)) -> Response:
    """The link in staff alerts."""
    return see_other(f"/staff/inbox?task={task_id}")


@router.post("/account/language", include_in_schema=False)
def choose_language(
    language: str = Form(...),
    next: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_write_db),
) -> Response:
    """The console's language for this staff member (English or Spanish)."""
    if language not in LANGUAGES:
        raise HTTPException(status_code=400, detail="The console is in English or Spanish.")
    user = db.get(StaffUser, staff.user.id)
    if user is not None:
        user.language = language
        db.commit()
    return see_other(safe_next(next))


for area in (today, templates, outbox, inbox, patients, conversation, admin, accounts, visits):
    router.include_router(area.router)
