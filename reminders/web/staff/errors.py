"""Error pages for the console: a refused or broken request under ``/staff`` gets a page in
the staff member's language that says what happened and where to go, not JSON. Scripts that
ask for JSON (``Accept: application/json``) still get JSON; everything outside ``/staff``
(webhooks, health) keeps FastAPI's answers. Redirects raised as exceptions (303 to the login
page) pass through.
"""

from __future__ import annotations

import logging
import uuid
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from reminders.web.staff.auth import session_user
from reminders.web.staff.common import SECURITY_HEADERS, pages
from reminders.web.staff.i18n import console_language, translator

log = logging.getLogger(__name__)

# What a status means to someone at the front desk.
TITLES = {
    400: "This request could not be used",
    401: "Please sign in",
    403: "You do not have access to this",
    404: "Not found",
    405: "That action is not available here",
    409: "This could not be done as things are now",
    413: "That is too large",
    422: "Some of what was entered needs fixing",
    429: "Too many tries: please wait a moment",
    500: "Something went wrong on our side",
    503: "The system is busy or being restarted",
}
HINTS = {
    403: "If you need it, ask a clinic admin.",
    404: "The page or record may have been removed, or the link is incomplete.",
    422: "Go back, correct what is described above, and try again.",
    500: "It has been logged. Try again; if it keeps happening, tell your IT person and give them the reference below.",
}


def _wants_page(request: Request) -> bool:
    if not request.url.path.startswith("/staff"):
        return False
    accept = request.headers.get("accept", "")
    return "application/json" not in accept or "text/html" in accept


def _detail_text(detail: object) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # validation errors
        parts = []
        for err in detail:
            if isinstance(err, dict):
                where = ".".join(str(p) for p in err.get("loc", ())[1:])
                parts.append(f"{where}: {err.get('msg', '')}" if where else str(err.get("msg", "")))
        return "; ".join(parts)
    return ""


def _their_language(request: Request) -> str | None:
    """The signed-in person's chosen language, for an error raised before (or without) the
    sign-in check: an unknown page."""
    if hasattr(request.state, "staff_language"):
        return cast(str | None, request.state.staff_language)
    runtime = request.app.state.runtime
    try:
        with runtime.read_session_factory() as db:
            found = session_user(request, runtime.settings, db, touch=False)
    except Exception:  # noqa: BLE001 - an error page must not fail on the database
        return None
    return found[0].language if found else None


def error_page(
    request: Request, status_code: int, detail: str = "", reference: str | None = None
) -> Response:
    language = console_language(request, _their_language(request))
    t = translator(language)
    context = {
        "request": request,
        "status_code": status_code,
        "title": t(TITLES.get(status_code, "This request could not be completed")),
        "detail": t(detail) if detail else "",
        "hint": t(HINTS.get(status_code, "")),
        "reference": reference,
        "t": t,
        "lang": language,
        "staff": None,
        "clinic_name": request.app.state.runtime.settings.clinic_name,
        "path": request.url.path,
        "csrf": "",
    }
    response = pages.TemplateResponse(request, "error.html", context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code < 400 or not _wants_page(request):
            return await http_exception_handler(request, exc)
        page = error_page(request, exc.status_code, _detail_text(exc.detail))
        if exc.headers:
            page.headers.update(exc.headers)
        return page

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not _wants_page(request):
            return await request_validation_exception_handler(request, exc)
        return error_page(request, 422, _detail_text(exc.errors()))

    @app.exception_handler(Exception)
    async def broken(request: Request, exc: Exception) -> Response:
        reference = uuid.uuid4().hex[:10]
        log.exception("console error", extra={"fields": {"reference": reference}})
        if not _wants_page(request):
            return Response("internal error", status_code=500)
        return error_page(request, 500, reference=reference)
