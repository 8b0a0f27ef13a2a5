"""Templates in the console: list, edit with live preview, save (admins), history, diff,
revert and "send me a test". All template logic is :mod:`reminders.templates`'s; this
module only shows it.
"""

from __future__ import annotations

import difflib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from jinja2 import TemplateSyntaxError
from sqlalchemy import event as sa_event
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from reminders.db.models import (
    AuditLog,
    Location,
    Message,
    Patient,
    TemplateVersion,
    TreatmentSession,
)
from reminders.db.types import utcnow
from reminders.logs import event
from reminders.outbox.status import CHANNELS
from reminders.planning.policy import Policy
from reminders.settings import Settings
from reminders.templates.check import CheckResult, check_source
from reminders.templates.context import (
    KNOWN_NAMES,
    build_context,
    context_language,
    normalise_language,
    sample_context,
)
from reminders.templates.limits import PREVIEW_S, gate_on, render_budget
from reminders.templates.render import Rendered, render_source
from reminders.templates.sms import SmsInfo, sms_info
from reminders.templates.source import TemplateError, TemplateSource
from reminders.templates.store import list_templates, resolve_template
from reminders.templates.versions import save_version, template_history
from reminders.web.deps import get_db, get_write_db, runtime_of, settings_of
from reminders.web.staff.common import Staff, admin_posted, posted, render, see_other, signed_in
from reminders.web.staff.i18n import console_language, translator

log = logging.getLogger(__name__)
router = APIRouter()
FIELDS = ("subject", "body", "html")
PREVIEWS_PER_10S = 15  # a live preview debounced at 300 ms, one at a time, needs fewer


@dataclass
class Draft:
    name: str
    channel: str
    language: str
    body: str
    subject: str | None = None
    html: str | None = None

    @property
    def base_url(self) -> str:
        return f"/staff/templates/{self.name}/{self.channel}/{self.language}"


@dataclass
class Checks:
    """The checker's findings grouped by the field they are about, and the preview."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    rendered: Rendered | None = None
    sms: SmsInfo | None = None
    preview_for: str = "sample patient Alex"

    @property
    def ok(self) -> bool:
        return not self.errors


def _field_of(message: str) -> str:
    head = message.split(" ", 1)[0].rstrip(":")
    return head if head in FIELDS else "general"


def _group(messages: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for message in messages:
        grouped.setdefault(_field_of(message), []).append(message)
    return grouped


def _key(name: str, channel: str, language: str) -> tuple[str, str, str]:
    if channel not in CHANNELS:
        raise HTTPException(status_code=404, detail="unknown channel")
    return name, channel, normalise_language(language)


def find_patient(db: Session, query: str) -> Patient | None:
    query = query.strip()
    if not query:
        return None
    found = db.get(Patient, query)
    if found is not None:
        return found
    like = f"%{query}%"
    return db.scalars(
        select(Patient)
        .where(or_(Patient.first_name.ilike(like), Patient.last_name.ilike(like)))
        .order_by(Patient.id)
        .limit(1)
    ).first()


def _patient_context(
    db: Session, settings: Settings, patient: Patient, draft: Draft, policy: Policy | None
) -> dict[str, Any]:
    """The context for a real patient: their next session, else their latest, as if the
    message went out now."""
    now = utcnow()
    sessions = db.scalars(
        select(TreatmentSession)
        .where(TreatmentSession.patient_id == patient.id)
        .order_by(TreatmentSession.starts_at)
    ).all()
    upcoming = [
        s for s in sessions if s.starts_at >= now and s.status in ("scheduled", "confirmed")
    ]
    session = upcoming[0] if upcoming else (sessions[-1] if sessions else None)
    location = db.get(Location, session.location_id) if session and session.location_id else None
    return build_context(
        settings,
        patient=patient,
        session=session,
        location=location,
        language=context_language(patient.language, draft.language),
        now=now,
        policy=policy,
        channel=draft.channel,
    )


def check_draft(
    db: Session,
    settings: Settings,
    draft: Draft,
    patient_query: str = "",
    *,
    policy: Policy | None = None,
) -> Checks:
    try:
        result: CheckResult = check_source(
            channel=draft.channel,
            subject=draft.subject,
            body=draft.body,
            html=draft.html,
            settings=settings,
            language=draft.language,
            policy=policy,
        )
    except TemplateSyntaxError as exc:  # an unknown filter or test gets past the checker's parse
        return Checks(errors={"general": [f"line {exc.lineno}: syntax error: {exc.message}"]})
    checks = Checks(errors=_group(result.errors), warnings=_group(result.warnings))
    if not result.ok:
        return checks
    patient = find_patient(db, patient_query) if patient_query else None
    if patient is not None:
        context = _patient_context(db, settings, patient, draft, policy)
        checks.preview_for = f"patient {patient.first_name} {patient.last_name}".strip()
    else:
        context = sample_context(settings, draft.language, policy=policy, channel=draft.channel)
        if patient_query:
            checks.warnings.setdefault("general", []).append(
                "no patient matches that search: showing sample data"
            )
    source = TemplateSource(
        name=draft.name,
        channel=draft.channel,  # type: ignore[arg-type]
        language=draft.language,
        body=draft.body,
        subject=draft.subject,
        html=draft.html,
    )
    try:
        checks.rendered = render_source(source, context)
    except TemplateError as exc:
        checks.errors.setdefault("general", []).append(str(exc))
        return checks
    if draft.channel == "sms":
        checks.sms = sms_info(checks.rendered.text)
    return checks


def _draft_from_form(
    name: str, channel: str, language: str, subject: str, body: str, html: str
) -> Draft:
    email = channel == "email"
    return Draft(
        name=name,
        channel=channel,
        language=language,
        body=body.replace("\r\n", "\n"),
        subject=subject.replace("\r\n", "\n") if email else None,
        html=(html.replace("\r\n", "\n") or None) if email else None,
    )


def _rules_using(request: Request) -> dict[str, list[str]]:
    using: dict[str, list[str]] = {}
    for rule in runtime_of(request).policy.rules:
        using.setdefault(rule.template, []).append(rule.name)
    return using


# --- plain words ---------------------------------------------------------------------------------

_WHERE = re.compile(
    r"^(?:template \S+ \([^)]*\) )?(?P<part>subject|body|html)?(?: ?line (?P<line>\d+))?: (?P<what>.*)$",
    re.DOTALL,
)
_UNKNOWN = re.compile(
    r"^unknown variable (?P<name>'[^']*')(?: \(did you mean (?P<hint>'[^']*')\?\))?$"
)
_UNDEFINED = re.compile(r"^undefined variable: '(?P<name>[^']*)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^undefined variable: .* has no attribute '(?P<name>[^']*)'$")
_NO_FILTER = re.compile(r"^syntax error: No (?P<kind>filter|test) named (?P<name>'[^']*')\.?$")
_RAW_EXCEPTION = re.compile(r"^[A-Z]\w*(Error|Exception): ")
PLAIN = {
    "the template is empty": "The message is empty.",
    "an email template needs a subject": "An email needs a subject.",
    "renders to an empty message with sample data": "With the sample patient, the message comes out empty.",
}  # fmt: skip


def _unknown(name: str, hint: str | None, t: Callable[[str], str]) -> str:
    words = t("unknown variable {name}").format(name=name)
    if hint:
        return words + t(" — did you mean {name}?").format(name=hint)
    return words + t(": see “Variables you can use”")


def plain_message(message: str, t: Callable[[str], str]) -> str:
    """A checker or render message in words for the person editing: where (the line), then
    what to fix; never a raw Jinja exception ("UndefinedError: 'x' is undefined")."""
    found = _WHERE.match(message)
    part, line, what = (
        (found["part"], found["line"], found["what"]) if found else ("", None, message)
    )
    names = {"subject": t("Subject"), "html": t("HTML"), "body": ""}
    where = names.get(part, "")
    if line:
        where = f"{where}, {t('line')} {line}" if where else t("Line {n}").format(n=line)
    if m := _UNKNOWN.match(what):
        what = _unknown(m["name"], m["hint"], t)
    elif m := _UNDEFINED.match(what):
        close = difflib.get_close_matches(m["name"], KNOWN_NAMES, n=1, cutoff=0.6)
        what = _unknown(repr(m["name"]), repr(close[0]) if close else None, t)
    elif m := _NO_ATTRIBUTE.match(what):
        what = t("a variable has no part called {name}: see “Variables you can use”").format(
            name=repr(m["name"])
        )
    elif m := _NO_FILTER.match(what):
        what = t("there is no {kind} called {name}").format(kind=t(m["kind"]), name=m["name"])
    elif what.startswith("syntax error: "):
        detail = what.removeprefix("syntax error: ")
        if "end of template" in detail:
            what = t(
                "a {% if %} or {% for %} is not closed ({% endif %} / {% endfor %} missing), or a {{ is not closed with }}"
            )
        else:
            what = t("the {{ }} or {% %} marks are not written correctly here")
    elif what.startswith("template limit: "):
        what = t("this makes the message too long, or too slow to write") + f" ({what})"
    elif what.startswith("not allowed: "):
        what = t("this is not allowed in a template")
    elif _RAW_EXCEPTION.match(what):
        what = t(
            "this cannot be worked out with the sample patient: check the variables and filters used"
        )
    else:
        what = t(PLAIN.get(what, what))
    return f"{where}: {what}" if where else what[:1].upper() + what[1:]  # fmt: skip


def plain_checks(checks: Checks, t: Callable[[str], str]) -> Checks:
    def words(grouped: dict[str, list[str]]) -> dict[str, list[str]]:
        return {key: [plain_message(m, t) for m in items] for key, items in grouped.items()}

    return replace(checks, errors=words(checks.errors), warnings=words(checks.warnings))


LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


def origin_words(source: TemplateSource, language: str, t: Callable[[str], str]) -> str:
    """Where the live text comes from: "Live version: 3 (edited in the console)"."""
    if source.origin == "db":
        words = t("Live version: {n} (edited in the console)").format(n=source.version)
    elif source.origin == "built-in":
        words = t("Live version: the text shipped with the system")
    else:
        words = t("Live version: the clinic's template file")
    if source.language != language:
        missing = t("No {language} version yet: showing the {other} one.").format(
            language=t(LANGUAGE_NAMES.get(language, language)),
            other=t(LANGUAGE_NAMES.get(source.language, source.language)),
        )
        words = f"{missing} {words}"
    return words


def _words(request: Request, staff: Staff) -> Callable[[str], str]:
    return translator(console_language(request, staff.user.language))


# --- pages -------------------------------------------------------------------------------------


@router.get("/templates")
def template_list(
    request: Request,
    q: str = "",
    channel: str = "",
    language: str = "",
    rule: str = "",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    rules = _rules_using(request)
    infos = list_templates(db, settings_of(request))
    rows = [
        {"info": info, "rules": rules.get(info.name, [])}
        for info in infos
        if (not q or q.lower() in info.name)
        and (not channel or info.channel == channel)
        and (not language or info.language == language)
        and (not rule or rule in rules.get(info.name, []))
    ]
    languages = sorted({info.language for info in infos})
    return render(
        request,
        "templates_list.html",
        {
            "rows": rows,
            "q": q,
            "channel": channel,
            "language": language,
            "rule": rule,
            "channels": CHANNELS,
            "languages": languages,
            "rule_names": [r.name for r in runtime_of(request).policy.rules],
        },
        staff=staff,
    )


def _editor(
    request: Request,
    db: Session,
    staff: Staff,
    draft: Draft,
    *,
    checks: Checks,
    origin: str,
    status_code: int = 200,
    note: str = "",
    patient: str = "",
    notice: str | None = None,
) -> Response:
    t = _words(request, staff)
    return render(
        request,
        "template_edit.html",
        {
            "draft": draft,
            "checks": plain_checks(checks, t),
            "origin": origin,
            "note": note,
            "patient": patient,
            "notice": t(notice) if notice else None,
            "has_phone": bool(staff.user.phone),
        },
        staff=staff,
        status_code=status_code,
    )


NOTICES = {
    "saved": "Saved: the new version is live for the next messages.",
    "reverted": "Reverted: the old text is live again as a new version.",
    "queued": "Test queued: the worker sends it to you within a minute.",
}


@router.get("/templates/{name}/{channel}/{language}")
def template_edit(
    request: Request,
    name: str,
    channel: str,
    language: str,
    done: str = "",
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    name, channel, language = _key(name, channel, language)
    settings = settings_of(request)
    try:
        source = resolve_template(db, settings, name=name, channel=channel, language=language)
    except TemplateError:
        detail = _words(request, staff)("There is no such template.")
        raise HTTPException(status_code=404, detail=detail) from None
    draft = Draft(
        name=name,
        channel=channel,
        language=language,
        body=source.body,
        subject=source.subject,
        html=source.html,
    )
    origin = origin_words(source, language, _words(request, staff))
    return _editor(
        request,
        db,
        staff,
        draft,
        checks=check_draft(db, settings, draft, policy=runtime_of(request).policy),
        origin=origin,
        notice=NOTICES.get(done),
    )


@router.post("/templates/{name}/{channel}/{language}/preview")
def template_preview(
    request: Request,
    name: str,
    channel: str,
    language: str,
    subject: str = Form(""),
    body: str = Form(""),
    html: str = Form(""),
    patient: str = Form(""),
    staff: Staff = Depends(posted),
    db: Session = Depends(get_db),
) -> Response:
    """The preview and checks as HTML fragments the page swaps in (by element id). At most
    PREVIEWS_PER_10S per user, one at a time, each within PREVIEW_S (a thread, not the loop)."""
    name, channel, language = _key(name, channel, language)
    draft = _draft_from_form(name, channel, language, subject, body, html)
    gate = gate_on(request.app.state, PREVIEWS_PER_10S, 10.0)
    with gate.admit(staff.user.email) as admitted:
        if not admitted:
            too_many = "Too many previews: wait a few seconds."
            return Response(too_many, 429, {"Retry-After": "2"}, media_type="text/plain")
        with render_budget(PREVIEW_S):
            checks = check_draft(
                db, settings_of(request), draft, patient, policy=runtime_of(request).policy
            )
    checks = plain_checks(checks, _words(request, staff))
    return render(request, "template_preview.html", {"draft": draft, "checks": checks}, staff=staff)


@router.post("/templates/{name}/{channel}/{language}")
def template_save(
    request: Request,
    name: str,
    channel: str,
    language: str,
    subject: str = Form(""),
    body: str = Form(""),
    html: str = Form(""),
    note: str = Form(""),
    patient: str = Form(""),
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_db),
    writes: Session = Depends(get_write_db),
) -> Response:
    name, channel, language = _key(name, channel, language)
    settings = settings_of(request)
    draft = _draft_from_form(name, channel, language, subject, body, html)
    checks = check_draft(db, settings, draft, patient, policy=runtime_of(request).policy)
    if checks.ok:
        try:
            # save_version checks (renders) the draft before its first statement, so the write
            # lock is taken only for the version number, the insert and the audit row.
            row = save_version(
                writes,
                settings,
                name=name,
                channel=channel,
                language=language,
                subject=draft.subject,
                body=draft.body,
                html=draft.html,
                actor=staff.user.email,
                note=note.strip()[:500] or None,
            )
            writes.commit()
        except TemplateError as exc:
            writes.rollback()
            checks.errors.setdefault("general", []).append(str(exc))
        except IntegrityError:
            writes.rollback()
            checks.errors.setdefault("general", []).append(
                "Someone else saved this template at the same moment: reload and try again."
            )
        else:
            event(
                log,
                "template saved",
                template=f"{name}/{channel}/{language}",
                version=row.version,
                user=staff.user.id,
            )
            return see_other(f"{draft.base_url}?done=saved")
    return _editor(
        request,
        db,
        staff,
        draft,
        checks=checks,
        origin=_words(request, staff)("Not saved: the live version is unchanged."),
        status_code=422,
        note=note,
        patient=patient,
    )


@router.get("/templates/{name}/{channel}/{language}/history")
def template_history_page(
    request: Request,
    name: str,
    channel: str,
    language: str,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    name, channel, language = _key(name, channel, language)
    versions = template_history(db, name=name, channel=channel, language=language)
    draft = Draft(name=name, channel=channel, language=language, body="")
    return render(
        request, "template_history.html", {"draft": draft, "versions": versions}, staff=staff
    )


def _version_text(db: Session, settings: Settings, key: tuple[str, str, str], version: int) -> str:
    name, channel, language = key
    if version == 0:  # the shipped file
        try:
            source = resolve_template(None, settings, name=name, channel=channel, language=language)
        except TemplateError:
            return ""
        subject, body, html = source.subject, source.body, source.html
    else:
        row = db.scalar(
            select(TemplateVersion).where(
                TemplateVersion.name == name,
                TemplateVersion.channel == channel,
                TemplateVersion.language == language,
                TemplateVersion.version == version,
            )
        )
        if row is None:
            raise HTTPException(status_code=404, detail=f"no version {version}")
        subject, body, html = row.subject, row.body, row.html
    parts = []
    if subject is not None:
        parts.append(f"Subject: {subject}\n")
    parts.append(body.rstrip("\n") + "\n")
    if html:
        parts.append("--- HTML ---\n" + html.rstrip("\n") + "\n")
    return "".join(parts)


def diff_lines(old: str, new: str, old_label: str, new_label: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs."""
    out = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_label, new_label, lineterm=""
    ):
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


@router.get("/templates/{name}/{channel}/{language}/diff")
def template_diff(
    request: Request,
    name: str,
    channel: str,
    language: str,
    a: int,
    b: int,
    staff: Staff = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    key = _key(name, channel, language)
    settings = settings_of(request)
    label = {0: "shipped file"}
    lines = diff_lines(
        _version_text(db, settings, key, a),
        _version_text(db, settings, key, b),
        label.get(a, f"version {a}"),
        label.get(b, f"version {b}"),
    )
    draft = Draft(name=key[0], channel=key[1], language=key[2], body="")
    return render(
        request, "template_diff.html", {"draft": draft, "lines": lines, "a": a, "b": b}, staff=staff
    )


@router.post("/templates/{name}/{channel}/{language}/revert")
def template_revert(
    request: Request,
    name: str,
    channel: str,
    language: str,
    version: int = Form(...),
    staff: Staff = Depends(admin_posted),
    db: Session = Depends(get_db),
    writes: Session = Depends(get_write_db),
) -> Response:
    name, channel, language = _key(name, channel, language)
    old = db.scalar(
        select(TemplateVersion).where(
            TemplateVersion.name == name,
            TemplateVersion.channel == channel,
            TemplateVersion.language == language,
            TemplateVersion.version == version,
        )
    )
    if old is None:
        detail = _words(request, staff)("This template has no version {n}.").format(n=version)
        raise HTTPException(status_code=422, detail=detail)
    try:
        _revert(writes, settings_of(request), old, actor=staff.user.email)
        writes.commit()
    except (TemplateError, IntegrityError) as exc:
        writes.rollback()
        t = _words(request, staff)
        detail = (
            plain_message(str(exc), t)
            if isinstance(exc, TemplateError)
            else t("Someone saved this template meanwhile: try again.")
        )
        raise HTTPException(status_code=422, detail=detail) from None
    return see_other(f"/staff/templates/{name}/{channel}/{language}?done=reverted")


def _revert(db: Session, settings: Settings, old: TemplateVersion, *, actor: str) -> None:
    """What :func:`~reminders.templates.versions.revert_to` records, with the old text read
    beforehand: ``revert_to`` reads it first and then checks (renders) it, which inside a
    write transaction would hold the lock for the render. ``save_version`` renders before its
    first statement; the audit row it adds then says what happened."""
    added: list[AuditLog] = []

    def keep(_session: Session, obj: object) -> None:
        if isinstance(obj, AuditLog):
            added.append(obj)

    sa_event.listen(db, "transient_to_pending", keep)
    try:
        row = save_version(
            db, settings, name=old.name, channel=old.channel, language=old.language,
            subject=old.subject, body=old.body, html=old.html, actor=actor,
            note=f"revert to v{old.version}",
        )  # fmt: skip
    finally:
        sa_event.remove(db, "transient_to_pending", keep)
    for audit in added:
        audit.action = "template.revert"
        audit.detail = {"version": row.version, "reverted_to": old.version}


@router.post("/templates/{name}/{channel}/{language}/test")
def template_test(
    request: Request,
    name: str,
    channel: str,
    language: str,
    staff: Staff = Depends(posted),
    db: Session = Depends(get_db),
    writes: Session = Depends(get_write_db),
) -> Response:
    """Send the live version to the staff member's own phone or email, exactly as the preview
    beside it shows it: rendered now for the sample patient, and queued as that text (kind
    "reply", template "reply_text": explicit recipient, no consent or quiet-hours gate); the
    worker's next pass sends it."""
    name, channel, language = _key(name, channel, language)
    t = _words(request, staff)
    address = staff.user.phone if channel == "sms" else staff.user.email
    if not address:
        raise HTTPException(
            status_code=400,
            detail=t("Your account has no mobile number: ask an admin to add it on the Staff accounts page."),
        )  # fmt: skip
    settings = settings_of(request)
    policy = runtime_of(request).policy
    try:
        source = resolve_template(db, settings, name=name, channel=channel, language=language)
        context = sample_context(settings, language, policy=policy, channel=channel)
        with render_budget(PREVIEW_S):
            rendered = render_source(source, context)
    except TemplateError as exc:
        raise HTTPException(status_code=422, detail=plain_message(str(exc), t)) from None
    data: dict[str, Any] = {"text": rendered.text, "test_by": staff.user.id, "template": name}
    if rendered.subject is not None:
        data["subject"] = rendered.subject
    now = utcnow()
    writes.add(Message(
        dedupe_key=f"test:{name}:{channel}:{language}:{uuid.uuid4().hex}", patient_id=None,
        rule=f"test:{name}", kind="reply", channel=channel, template="reply_text", due_at=now,
        status="planned", to_address=address, language=language, data=data,
        subject=rendered.subject, body=rendered.text, created_at=now, updated_at=now,
    ))  # fmt: skip
    writes.add(
        AuditLog(
            actor=staff.user.email,
            action="template.test",
            entity="template",
            entity_id=f"{name}/{channel}/{language}",
        )
    )
    writes.commit()
    return see_other(f"/staff/templates/{name}/{channel}/{language}?done=queued")
