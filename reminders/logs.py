"""Structured logs: one line per event, ids only.

Patients' phone numbers, email addresses and message bodies never go into a log call.
As a safety net, the one handler every logger reaches (ours, on the root logger; uvicorn's
loggers propagate to it) masks anything that looks like a phone number or an email address
in the whole final text: the message, its arguments, the ``key=value`` fields, the exception
and its traceback, the stack. Names, bodies and notes cannot be recognised by a pattern:
they are kept out at the source (no values in our messages; SQLAlchemy errors without their
bound parameters, see :func:`reminders.db.engine.make_engine`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# URL-encoded forms (``%40`` for @) as they appear in form bodies and query strings.
_EMAIL_ENCODED = re.compile(
    r"[A-Za-z0-9._+-]+%40[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", re.IGNORECASE
)

# Phone numbers, precisely: what is masked is
#   - international numbers with a leading + (or URL-encoded %2B): 8-15 digits, in groups
#     separated by one space, dot or hyphen, the area code possibly in parentheses;
#   - North-American numbers without +: (410) 555-0101, 410-555-0101, 410.555.0101,
#     410 555 0101, 4105550101, 1-410-555-0101, 14105550101 (area code and exchange 2-9..);
#   - national numbers with a trunk 0 (other regions): 020 7946 0958, 06 12 34 56 78,
#     07700900123: 10-11 digits.
# and never a date or a time (2026-11-30, 11:49:22, 2026-11-30T11:49:22.123+00:00, the
# "+00:00" offset), a duration (12.5s), an id with letters (SM0123abc...), a version, an IP
# address and port, a UUID or an epoch timestamp (10 digits starting with 1): none has the
# digit grouping of a phone number. A number is never taken out of a longer run of digits,
# letters or dotted/hyphenated digits (the look-arounds).
_SEP = r"[ .\-]"
_BEFORE = r"(?<![\w+%])(?<!\d[.\-])"
_AFTER = r"(?!\w)(?![.\-]\d)(?!:\d)"
_PHONE = re.compile(
    _BEFORE
    + r"(?:"
    # +CC ...: runs of digits (one may be parenthesised), one separator between them.
    + rf"(?:\+|%2[Bb])(?:\(\d++\)|\d++)(?:{_SEP}?\(\d++\)\ ?|{_SEP}\d++)*"
    + r"|"
    # North America: optional 1, area code (parenthesised or not), exchange, line.
    + rf"(?:1{_SEP}?)?(?:\([2-9]\d\d\)\ ?|[2-9]\d\d{_SEP}?)[2-9]\d\d{_SEP}?\d{{4}}"
    + r"|"
    # National numbers with a trunk 0: 0X.. then 2-4 groups, or 10-11 digits in one run.
    + rf"0[1-9]\d{{0,3}}(?:{_SEP}\d{{2,4}}){{2,4}}|0[1-9]\d{{8,9}}"
    + r")"
    + _AFTER
)
_DIGITS = re.compile(r"\d")
# A cheap test first: most lines hold no run of digits that could start a phone number.
_MAYBE_PHONE = re.compile(r"\d{3}|\d[ .\-()]\d")
# dd.mm.yyyy (or with / -): a European date and time is not a trunk-0 number.
_DATE = re.compile(r"\d{1,2}[./\-]\d{1,2}[./\-](?:19|20)\d\d(?!\d)")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if text[0] in "+%":
        return _international(text)
    if text[0] == "0" and _DATE.match(text):
        return text
    return "[phone]" if 10 <= len(_DIGITS.findall(text)) <= 11 else text


_GROUP = re.compile(r"[ .\-]?\(?\d+\)?")


def _international(text: str) -> str:
    """``+`` and 8-15 digits. A match that ran on into the next number on the line keeps its
    longest prefix of at most 15 digits, ending before a space if it can."""
    head = 3 if text[0] == "%" else 1  # %2B: its 2 is not part of the number
    digits = 0
    at_space, anywhere = (0, head), (0, head)  # (digits, end) of the best prefix
    for group in _GROUP.finditer(text, head):
        if digits <= 15:
            anywhere = (digits, group.start())
            if group.group(0)[0] == " ":
                at_space = anywhere
        digits += len(_DIGITS.findall(group.group(0)))
    if digits <= 15:
        at_space = (digits, len(text))
    best_digits, best_end = at_space if at_space[0] >= 8 else anywhere
    if best_digits < 8:
        return text
    return "[phone]" + redact(text[best_end:])


# PostgreSQL quotes row data in its error details: the key of a unique or foreign-key
# violation, the whole row of a not-null or check violation (values may span lines), the
# parameter and the input an invalid value came from. Kept: the column names, the reason.
_PG_KEY = re.compile(
    r"(Key \([^)\n]*\)=\().*?(\)(?: already exists| is not present| is still referenced"
    r"| conflicts with)|\)\.?$)",
    re.MULTILINE,
)
_PG_ROW = re.compile(
    r"(Failing row contains \().*?\)\.?"
    r"(?=\n(?:\[SQL|\(Background|[A-Z]+: |\n|Traceback|During handling|The above)|\Z)",
    re.DOTALL,
)
_PG_ROW_LINE = re.compile(r"(Failing row contains \()(?!\.\.\.\)).*")
_PG_PARAM = re.compile(r"(parameter \$\d+ = )'(?:[^']|'')*'?")
_PG_INPUT = re.compile(r"(invalid input (?:syntax|value) for [^:\n]*: )\"(?:[^\"]|\"\")*\"?")


def _redact_postgres(text: str) -> str:
    text = _PG_KEY.sub(r"\1...\2", text)
    text = _PG_ROW.sub(r"\1...).", text)
    text = _PG_ROW_LINE.sub(r"\1...).", text)
    text = _PG_PARAM.sub(r"\1'...'", text)
    return _PG_INPUT.sub(r'\1"..."', text)


def redact(text: str) -> str:
    """Mask email addresses, phone numbers (see ``_PHONE``) and the row data PostgreSQL
    quotes in its errors, in ``text``."""
    if "Key (" in text or "Failing row" in text or "parameter $" in text or "invalid input" in text:
        text = _redact_postgres(text)
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    if "%40" in text:
        text = _EMAIL_ENCODED.sub("[email]", text)
    if _MAYBE_PHONE.search(text):
        text = _PHONE.sub(_phone, text)
    return text


class KeyValueFormatter(logging.Formatter):
    """``2026-11-27T01:02:03 INFO reminders.dispatch.dispatcher message sent id=12 channel=sms``.

    The whole line is redacted here, traceback and stack included (and again by the handler)."""

    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} {record.name} {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            base += " " + " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            base += "\n" + record.exc_text
        if record.stack_info:
            base += "\n" + self.formatStack(record.stack_info)
        return redact(base)


def _fmt(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class RedactingHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stderr`` is now (it may be swapped, e.g. by a test runner), and
    redacts the final text of every record whatever its logger and formatter: this handler,
    not a logger, is where redaction happens, so records propagated from any library's logger
    (uvicorn, SQLAlchemy, APScheduler, httpx, twilio...) go through it too."""

    _reminders = True

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def handleError(self, record: logging.LogRecord) -> None:
        """A record that cannot be formatted: the standard handler would print its message and
        arguments unredacted; say which call failed instead."""
        if logging.raiseExceptions:
            exc_type = sys.exc_info()[0]
            reason = exc_type.__name__ if exc_type else "error"
            sys.stderr.write(
                f"--- logging error ({reason}) in {record.name} at "
                f"{record.pathname}:{record.lineno}; message and arguments withheld\n"
            )


def configure_logging(*, verbose: bool = False) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_reminders", False) for h in root.handlers):
        _route_uvicorn_through_root()  # a uvicorn started meanwhile may have attached its own
        return
    handler = RedactingHandler()
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Third-party loggers that would print request payloads (numbers, addresses, bodies) at DEBUG.
    for noisy in (
        "apscheduler",
        "httpx",
        "httpcore",
        "twilio.http_client",
        "python_http_client",
        "uvicorn.access",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # SQLAlchemy's echo (statements and their parameters at INFO) stays off, even with -v.
    for sql in ("sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(sql).setLevel(logging.WARNING)
    # A dispatch pass that waits for rate slots outlasts the 1-s interval by design; the
    # scheduler would warn every second that it skipped the next run (max_instances=1).
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    _route_uvicorn_through_root()


def _route_uvicorn_through_root() -> None:
    """uvicorn's loggers go through the root handler (the daemon passes ``log_config=None``);
    a handler of their own, left from a default configuration, would bypass the redaction."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if getattr(h, "_reminders", False)]
        logger.propagate = True
        logger.disabled = False


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event with key=value fields (ids, statuses, counts: never contact details)."""
    logger.log(level, msg, extra={"fields": fields})
