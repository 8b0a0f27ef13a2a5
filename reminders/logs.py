"""Structured logs: one line per event, ids only.

Patients' phone numbers, email addresses and message bodies never go into a log call.
As a safety net, a filter also masks anything that looks like a phone number or an
email address in the final line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w/=.-])\+?\d[\d\s().-]{8,}\d(?![\w/-])")


def redact(text: str) -> str:
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class KeyValueFormatter(logging.Formatter):
    """``2026-11-27T01:02:03 INFO reminders.dispatch.dispatcher message sent id=12 channel=sms``."""

    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} {record.name} {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            base += " " + " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return redact(base)


def _fmt(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stderr`` is now (it may be swapped, e.g. by a test runner)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(*, verbose: bool = False) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_reminders", False) for h in root.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(KeyValueFormatter())
    handler._reminders = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Third-party loggers that would print request payloads (numbers, addresses, bodies) at DEBUG.
    for noisy in (
        "apscheduler",
        "httpx",
        "twilio.http_client",
        "python_http_client",
        "uvicorn.access",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A dispatch pass that waits for rate slots outlasts the 1-s interval by design; the
    # scheduler would warn every second that it skipped the next run (max_instances=1).
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event with key=value fields (ids, statuses, counts: never contact details)."""
    logger.log(level, msg, extra={"fields": fields})
