"""The MIME message for SMTP: text + HTML alternatives, attachments, unsubscribe headers."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from reminders.outbox.unsubscribe import unsubscribe_headers
from reminders.providers.base import OutgoingMessage

# Our outbox id on the message, so a bounce arriving by mail can be tied back to the row.
OUTBOX_ID_HEADER = "X-Reminders-Message-Id"


def _split_content_type(content_type: str) -> tuple[str, str, dict[str, str]]:
    """``text/calendar; method=PUBLISH; charset=utf-8`` -> ("text", "calendar", {...})."""
    main, *raw_params = [part.strip() for part in content_type.split(";")]
    maintype, _, subtype = main.partition("/")
    params: dict[str, str] = {}
    for raw in raw_params:
        key, _, value = raw.partition("=")
        if key:
            params[key.strip().lower()] = value.strip().strip('"')
    return maintype.lower() or "application", subtype.lower() or "octet-stream", params


def build_mime(
    message: OutgoingMessage, *, from_email: str, from_name: str | None = None
) -> EmailMessage:
    """Build the message; its ``Message-ID`` header is the provider id SMTP reports."""
    mime = EmailMessage()
    mime["From"] = formataddr((from_name, from_email)) if from_name else from_email
    mime["To"] = message.to
    mime["Subject"] = message.subject or ""
    mime["Date"] = formatdate(usegmt=True)
    domain = from_email.rpartition("@")[2] or None
    mime["Message-ID"] = make_msgid(domain=domain)
    mime[OUTBOX_ID_HEADER] = str(message.message_id)
    for name, value in {**message.headers, **unsubscribe_headers(message.unsubscribe_url)}.items():
        mime[name] = value
    mime.set_content(message.body)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    for item in message.attachments:
        maintype, subtype, params = _split_content_type(item.content_type)
        if maintype == "text":
            charset = params.pop("charset", "utf-8")
            mime.add_attachment(
                item.content.decode(charset),
                subtype=subtype,
                charset=charset,
                filename=item.filename,
                params=params,
            )
        else:
            mime.add_attachment(
                item.content,
                maintype=maintype,
                subtype=subtype,
                filename=item.filename,
                params=params,
            )
    return mime
