""" "Send me a test" sends exactly what the preview beside it shows: the live template rendered
for the sample patient Alex and the sample visit, not a message with empty slots ("Hi , see you
tomorrow, , at ."). Through the real worker pass to the dry-run provider."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import AuditLog, Message
from reminders.runtime import Runtime
from reminders.worker import run_tick
from tests.staff.conftest import SignedIn

GAPS = re.compile(r"Hi ,|, ,|\bat \.|see you ,|\(\)|\s\.$", re.MULTILINE)


def sent(runtime: Runtime, channel: str) -> list[dict[str, Any]]:
    path = Path(runtime.settings.dryrun_dir) / f"{channel}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def preview_of(admin_client: SignedIn, base: str) -> tuple[str | None, str]:
    """The subject and text the editor's preview shows for the live version."""
    page = admin_client.client.get(base).text
    body = html.unescape(re.search(r'<textarea id="f-body"[^>]*>(.*?)</textarea>', page, re.S)[1])  # type: ignore[index]
    fields = {"body": body}
    subject = re.search(r'<input id="f-subject" name="subject" value="([^"]*)"', page)
    if subject:
        fields["subject"] = html.unescape(subject[1])
    preview = admin_client.post(f"{base}/preview", fields).text
    bubble = re.search(r'<div class="bubble">(.*?)</div>', preview, re.S) or re.search(
        r'<pre class="mail">(.*?)</pre>', preview, re.S
    )
    assert bubble, preview
    shown_subject = re.search(r"<strong>Subject:</strong> (.*?)</p>", preview)
    return (html.unescape(shown_subject[1]) if shown_subject else None), html.unescape(bubble[1])


def test_an_sms_test_is_the_preview_with_the_sample_patient(
    admin_client: SignedIn, runtime: Runtime, factory: sessionmaker[Session]
) -> None:
    base = "/staff/templates/day_before/sms/en"
    _, shown = preview_of(admin_client, base)
    assert "Alex" in shown
    queued = admin_client.post(f"{base}/test")
    assert queued.status_code == 303 and queued.headers["location"] == f"{base}?done=queued"
    assert "Test queued" in admin_client.client.get(queued.headers["location"]).text
    run_tick(runtime)
    [record] = sent(runtime, "sms")
    assert record["to"] == "+14105550111"
    body = record["body"]
    assert body == shown
    assert body.startswith("Lakeside Clinic: Hi Alex, see you tomorrow")
    assert not GAPS.search(body), body
    with factory() as db:
        msg = db.scalars(select(Message)).one()
        assert (msg.status, msg.rule, msg.kind, msg.patient_id) == (
            "sent",
            "test:day_before",
            "reply",
            None,
        )
        assert msg.body == body  # what the outbox shows
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "template.test")).one()
        assert audit.entity_id == "day_before/sms/en"
    # The outbox shows it in words, with its text.
    outbox = admin_client.client.get("/staff/outbox?when=all").text
    assert "Test message (template day_before)" in outbox and "Hi Alex" in outbox


def test_an_edited_live_version_is_what_the_test_sends(
    admin_client: SignedIn, runtime: Runtime
) -> None:
    base = "/staff/templates/day_before/sms/en"
    body = (
        "{{ clinic.name }}: TEST-EDIT {{ patient.first_name }}, {{ session.date }} at "
        "{{ session.time }}. Reply {{ reply.confirm }} to confirm."
    )
    assert admin_client.post(base, {"body": body}).status_code == 303
    _, shown = preview_of(admin_client, base)
    admin_client.post(f"{base}/test")
    run_tick(runtime)
    [record] = sent(runtime, "sms")
    assert record["body"] == shown
    assert re.fullmatch(
        r"Lakeside Clinic: TEST-EDIT Alex, \w+, \w+ \d+ at \d+:\d\d [AP]M\. Reply C to confirm\.",
        record["body"],
    ), record["body"]


def test_an_email_test_has_the_subject_and_text_of_the_preview(
    admin_client: SignedIn, runtime: Runtime
) -> None:
    base = "/staff/templates/day_before/email/en"
    subject, shown = preview_of(admin_client, base)
    assert subject and "Alex" in shown
    assert admin_client.post(f"{base}/test").status_code == 303
    run_tick(runtime)
    [record] = sent(runtime, "email")
    assert record["to"] == "admin@clinic.test"
    assert record["subject"]  # an email test has a subject
    assert record["body"].startswith(shown)
    assert "Hi Alex" in record["body"] and not GAPS.search(shown)


def test_no_phone_no_sms_test(
    staff_client: SignedIn, runtime: Runtime, factory: sessionmaker[Session]
) -> None:
    refused = staff_client.post("/staff/templates/day_before/sms/en/test")
    assert refused.status_code == 400 and "has no mobile number" in refused.text
    with factory() as db:
        assert db.scalar(select(Message)) is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "Hi {{ patient.first_nam }}",
            "Line 1: unknown variable 'patient.first_nam' — did you mean 'patient.first_name'?",
        ),
        (
            "Hi {{ patient.first_name.foo }}",
            "Line 1: a variable has no part called 'foo': see “Variables you can use”",
        ),
        ("Hi\n{{ 1 / 0 }}", "Line 2: this cannot be worked out with the sample patient"),
        ("Hi {{ session.date | nosuch }}", "Line 1: there is no filter called 'nosuch'"),
        ("Hi {% if session.confirmed %}yes", "Line 1: a {% if %} or {% for %} is not closed"),
    ],
)
def test_template_errors_say_what_to_fix_in_words(
    admin_client: SignedIn, body: str, words: str
) -> None:
    for url in ("/staff/templates/day_before/sms/en/preview", "/staff/templates/day_before/sms/en"):
        response = admin_client.post(url, {"body": body})
        assert response.status_code in (200, 422), (url, response.status_code)
        text = html.unescape(response.text)
        assert words in text, (url, text)
        for raw in ("Error:", "Error'", "is undefined", "object' has no", "No filter named"):
            assert raw not in text, (url, raw)


def test_where_the_live_text_comes_from_in_words(admin_client: SignedIn) -> None:
    base = "/staff/templates/day_before/sms/en"
    assert "Live version: the text shipped with the system" in admin_client.client.get(base).text
    admin_client.post(base, {"body": "Hi {{ patient.first_name }}, reply C to confirm."})
    page = admin_client.client.get(base).text
    assert "Live version: 1 (edited in the console)" in page and "db v1" not in page
    spanish = admin_client.client.get(
        "/staff/templates/day_before/sms/es", headers={"accept-language": "es"}
    ).text
    assert "Versión en uso" in spanish
