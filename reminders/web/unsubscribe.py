"""Email unsubscribe: ``GET`` shows a confirmation page, ``POST`` unsubscribes.

``POST`` is also RFC 8058 one-click (mail clients post ``List-Unsubscribe=One-Click`` to
the List-Unsubscribe URL): no cookies, no CSRF token, the signed URL is the authority.
A forged, malformed or revoked token gets 404.
"""

from __future__ import annotations

import logging
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from reminders.db.models import AuditLog, Patient
from reminders.logs import event
from reminders.outbox.consent import set_opt_out
from reminders.outbox.unsubscribe import read_token, token_matches_address
from reminders.settings import Settings
from reminders.web.deps import runtime_of

log = logging.getLogger(__name__)
router = APIRouter()

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{content}</body></html>"""


def _page(title: str, content: str, status_code: int = 200) -> HTMLResponse:
    # The page never shows the address: whoever holds the link sees only the clinic's name.
    return HTMLResponse(
        _PAGE.format(title=escape(title), content=content),
        status_code=status_code,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _not_found() -> HTMLResponse:
    return _page(
        "Link not valid", "<p>This unsubscribe link is not valid or no longer works.</p>", 404
    )


@router.get("/unsubscribe/{token}")
def confirm_page(token: str, request: Request) -> HTMLResponse:
    settings: Settings = runtime_of(request).settings
    with runtime_of(request).read_session_factory() as db:  # a page view never takes the write lock
        if read_token(settings, token, db=db) is None:
            return _not_found()
    clinic = escape(settings.clinic_name)
    return _page(
        "Unsubscribe from emails",
        f"<p>Stop receiving emails from {clinic}? Appointment reminders will then come by text "
        "message only, if you receive those.</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@router.post("/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    runtime = runtime_of(request)
    found = await run_in_threadpool(
        apply_unsubscribe, runtime.settings, runtime.session_factory, token
    )
    if not found:
        return _not_found()
    clinic = escape(runtime.settings.clinic_name)
    return _page("You are unsubscribed", f"<p>You will no longer receive emails from {clinic}.</p>")


def apply_unsubscribe(
    settings: Settings, session_factory: sessionmaker[Session], token: str
) -> bool:
    """Record the email opt-out for a valid token; False when the token is not valid."""
    with session_factory() as db:
        content = read_token(settings, token, db=db)
        if content is None:
            event(log, "unsubscribe with an invalid token", logging.WARNING)
            return False
        patient = db.get(Patient, content.patient_id)
        email = patient.email if patient is not None else None
        # Only the address the email went to: if the patient has changed it since, the old
        # one no longer gets our mail and the new one was never asked about.
        matches = token_matches_address(settings, content, email)
        created = matches and set_opt_out(
            db, channel="email", address=email or "", source="unsubscribe"
        )
        db.add(
            AuditLog(
                actor=f"patient:{content.patient_id}",
                action="unsubscribe",
                entity="patient",
                entity_id=content.patient_id,
                detail={
                    "channel": "email",
                    "token_id": content.token_id,
                    "recorded": bool(created),
                    "address_current": bool(matches),
                },
            )
        )
        db.commit()
        event(
            log,
            "email unsubscribe",
            patient=content.patient_id,
            token_id=content.token_id,
            recorded=bool(created),
            address_current=bool(matches),
        )
        return True
