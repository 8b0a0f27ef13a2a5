"""What every staff page shares: the Jinja environment, the signed-in user, CSRF, rendering.

Pages are rendered with Jinja2 autoescaping on: patient-supplied text (names, replies) is
always shown as text. Every page gets ``t("English text")`` (the staff member's language,
:mod:`reminders.web.staff.i18n`), ``label(group, code)`` (words for stored codes,
:mod:`reminders.web.staff.labels`) and ``lang``. Responses carry a strict Content-Security-Policy (scripts and styles
from /staff/static only) and are never cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import StaffUser
from reminders.web.deps import get_db, settings_of
from reminders.web.staff.auth import check_csrf, csrf_token, must_change_password, session_user
from reminders.web.staff.i18n import LANGUAGE_NAMES, console_language, translator
from reminders.web.staff.labels import label as _label

HERE = Path(__file__).resolve().parent
TEMPLATE_DIR = HERE / "pages"
STATIC_DIR = HERE / "static"
LOGIN_PATH = "/staff/login"
PASSWORD_PATH = "/staff/account/password"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


_EN = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]
_ES = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
    "lun",
    "mar",
    "mié",
    "jue",
    "vie",
    "sáb",
    "dom",
    "ene",
    "feb",
    "mar",
    "abr",
    "jun",
    "jul",
    "ago",
    "sept",
    "oct",
    "nov",
    "dic",
]
_SPANISH = dict(zip(_EN, _ES, strict=True))
_NAMES = re.compile(r"\b(" + "|".join(sorted(_SPANISH, key=len, reverse=True)) + r")\b")


def localtime(value: datetime | None, zone: ZoneInfo, fmt: str = "%a %d %b %Y %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime(fmt)


@pass_context
def _localtime_filter(
    ctx: Any, value: datetime | None, zone: ZoneInfo, fmt: str = "%a %d %b %Y %H:%M"
) -> str:
    """``localtime`` in the page's language: day and month names in Spanish for ``es``."""
    text = localtime(value, zone, fmt)
    if ctx.get("lang") == "es":
        text = _NAMES.sub(lambda m: _SPANISH[m.group()], text)
    return text


_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["localtime"] = _localtime_filter
pages = Jinja2Templates(env=_env)


@dataclass
class Staff:
    user: StaffUser
    session_id: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


def redirect_to_login(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(
        status_code=303, headers={"Location": f"{LOGIN_PATH}?next={quote(target)}"}
    )


def signed_in(request: Request, db: Session = Depends(get_db)) -> Staff:
    """The signed-in staff member; anyone else is sent to the login page (303)."""
    settings = settings_of(request)
    found = session_user(request, settings, db)
    if found is None:
        raise redirect_to_login(request)
    user, session_id = found
    request.state.staff_language = user.language  # for the error pages, too
    if must_change_password(user) and request.url.path != PASSWORD_PATH:
        raise HTTPException(status_code=303, headers={"Location": PASSWORD_PATH})
    return Staff(user=user, session_id=session_id, csrf=csrf_token(settings, session_id))


def signed_in_quietly(request: Request, db: Session = Depends(get_db)) -> Staff:
    """The signed-in staff member for a page's background requests (polls): the same checks,
    but it does not count as activity (a page left open still signs out when idle), and
    anyone else gets 401, not a redirect."""
    settings = settings_of(request)
    found = session_user(request, settings, db, touch=False)
    if found is None or must_change_password(found[0]):
        raise HTTPException(status_code=401, detail="You were signed out: sign in again.")
    user, session_id = found
    request.state.staff_language = user.language
    return Staff(user=user, session_id=session_id, csrf=csrf_token(settings, session_id))


def admin(staff: Staff = Depends(signed_in)) -> Staff:
    if not staff.is_admin:
        raise HTTPException(status_code=403, detail="admins only")
    return staff


async def posted(request: Request, staff: Staff = Depends(signed_in)) -> Staff:
    """A signed-in POST with the right CSRF token (else 403)."""
    form = await request.form()
    check_csrf(settings_of(request), staff.session_id, form.get("csrf_token"))
    return staff


def admin_posted(staff: Staff = Depends(posted)) -> Staff:
    if not staff.is_admin:
        raise HTTPException(status_code=403, detail="admins only")
    return staff


def safe_next(target: str | None) -> str:
    """Only our own pages: no open redirect through ?next=."""
    if (
        target
        and target.startswith("/staff")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/staff/inbox"


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    staff: Staff | None = None,
    status_code: int = 200,
) -> Response:
    settings = settings_of(request)
    language = console_language(request, staff.user.language if staff else None)
    values = {
        "staff": staff,
        "csrf": staff.csrf if staff else context.get("csrf", ""),
        "tz": settings.zone,
        "clinic_name": settings.clinic_name,
        "path": request.url.path,
        "lang": language,
        "console_languages": LANGUAGE_NAMES,
        "t": translator(language),
        "label": partial(_label, language=language),
        **context,
    }
    response = pages.TemplateResponse(request, name, values, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(url: str) -> Response:
    return Response(status_code=303, headers={"Location": url, **SECURITY_HEADERS})
