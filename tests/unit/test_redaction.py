"""The log redactor: phone numbers and addresses masked, timestamps, ids and versions kept;
every record that reaches the handler is redacted, whatever its logger."""

from __future__ import annotations

import io
import logging
import sys
import time

import pytest
from sqlalchemy import text

from reminders.db.engine import make_engine
from reminders.logs import KeyValueFormatter, RedactingHandler, redact

PHONES = [
    "+14105550101",
    "+1 410 555 0101",
    "+1-410-555-0101",
    "+1 (410) 555-0101",
    "+1.410.555.0101",
    "(410) 555-0101",
    "(410)555-0101",
    "410-555-0101",
    "410.555.0101",
    "410 555 0101",
    "4105550101",
    "14105550101",
    "1-410-555-0101",
    "1 (410) 555-0101",
    "+44 20 7946 0958",
    "+442079460958",
    "+33 1 23 45 67 89",
    "+52 55 1234 5678",
    "020 7946 0958",
    "06 12 34 56 78",
    "07700900123",
    "%2B14105550101",
]
NOT_PHONES = [
    "2026-11-30",
    "2026-11-30T11:49:22",
    "11:49:22",
    "2026-11-30 11:49:22",
    "2026-11-30 11:49:22.123+00:00",
    "2026-11-30T11:49:22.123456+00:00",
    "2026-11-30T11:49:22Z",
    "2026-11-30 11:49:22,123",
    "[30/Nov/2026:11:49:22 +0000]",
    "01.12.2026 10:30",
    "30.11.2026 11:49",
    "2026/11/30 11:49",
    "20261130114922",
    "1764503362",
    "1764503362.123456",
    "1764503362123",
    "took 12.345s",
    "duration=0:01:23.456789",
    "elapsed 1234.567 ms",
    "SM0123456789abcdef0123456789abcdef",
    "SM4105550101",
    "AC00000000000000000000000000000000",
    "message_id=4105550101abc",
    "version 1.2.3",
    "phonenumbers 8.13.0",
    "Python 3.11.9",
    "10.0.0.1:8000",
    "192.168.100.200:8000",
    "[::1]:8000",
    "123e4567-e89b-12d3-a456-426614174000",
    "550e8400-e29b-41d4-a716-446655440000",
    "+00:00",
    "-05:00",
    "id=12 count=300 port 5432 pid 123456",
    "sent 4, failed 0, skipped 1",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_formats_are_masked(phone: str) -> None:
    for line in (phone, f"to={phone} id=3", f"call {phone}.", f'"From": "{phone}"'):
        assert phone not in redact(line), line
        assert "[phone]" in redact(line)


@pytest.mark.parametrize("value", NOT_PHONES)
def test_timestamps_ids_and_versions_are_kept(value: str) -> None:
    for line in (value, f"next run at: {value} UTC", f"x={value}"):
        assert redact(line) == line


def test_next_run_line_of_apscheduler_is_kept() -> None:
    line = 'Job "dispatch" (trigger: interval[0:00:01], next run at: 2026-11-30 11:49:22 UTC)'
    assert redact(line) == line


def test_a_number_followed_by_a_date_is_masked_alone() -> None:
    assert redact("+14105550101 2026-11-30 11:49:22") == "[phone] 2026-11-30 11:49:22"
    assert redact("From=%2B14105550101&To=%2B14105550000") == "From=[phone]&To=[phone]"


def test_emails_are_masked() -> None:
    for email in ("ana.diaz@example.com", "a+b@mail.clinic.example.org", "ana%40example.com"):
        assert redact(f"to {email} now") == "to [email] now"


def test_postgres_row_details_are_removed() -> None:
    message = (
        '(psycopg.errors.NotNullViolation) null value in column "first_name"\n'
        "DETAIL:  Failing row contains (p1, null, Quixotella, +14105550101, Biscuit\n"
        "and (more), zed@example.com).\n"
        "[SQL: INSERT INTO patients ...]"
    )
    out = redact(message)
    assert "Quixotella" not in out and "Biscuit" not in out and "more" not in out
    assert "Failing row contains (...)." in out and "[SQL: INSERT" in out
    key = redact("DETAIL:  Key (email)=(ana@example.com) already exists.")
    assert key == "DETAIL:  Key (email)=(...) already exists."
    assert "Quixotella" not in redact("CONTEXT:  unnamed portal parameter $2 = 'Quixotella'")
    assert "Quixotella" not in redact('invalid input syntax for type integer: "Quixotella"')


def _capture() -> tuple[logging.Logger, io.StringIO, RedactingHandler]:
    buffer = io.StringIO()
    handler = RedactingHandler()
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("test_redaction_root")
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, buffer, handler


def test_handler_redacts_every_logger_args_tracebacks_and_stacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, buffer, handler = _capture()
    monkeypatch.setattr(sys, "stderr", buffer)
    # A child logger (as uvicorn.error, sqlalchemy.engine, apscheduler... are): its records
    # propagate to the handler, which is where redaction happens.
    child = logging.getLogger("test_redaction_root.library.child")
    child.info("to %s and %s", "+14105550101", {"email": "ana@example.com"})
    try:
        raise ValueError("bad number 410-555-0101 for ana@example.com")
    except ValueError:
        child.exception("failed for %s", "(410) 555-0101")
    child.warning("where", stack_info=True, extra={"fields": {"to": "+1 410 555 0101"}})
    # Another formatter on the same handler: the handler still redacts.
    handler.setFormatter(logging.Formatter("%(message)s"))
    child.error("plain %s", "ana@example.com")
    child.info("broken %s %s", "+14105550101")  # wrong arity: handleError
    out = buffer.getvalue()
    for secret in ("4105550101", "410-555-0101", "(410) 555-0101", "410 555 0101", "ana@"):
        assert secret not in out
    assert "Traceback" in out and "ValueError: bad number [phone] for [email]" in out
    assert "Stack (most recent call last)" in out
    assert "message and arguments withheld" in out


def test_statement_errors_carry_no_parameters() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT)"))
            conn.execute(text("INSERT INTO t VALUES ('p1', 'Quixotella')"))
            with pytest.raises(Exception) as caught:
                conn.execute(text("INSERT INTO t VALUES (:i, :n)"), {"i": "p1", "n": "Quixotella"})
        assert "Quixotella" not in str(caught.value)
        assert "parameters hidden" in str(caught.value)
        assert engine.echo is False
    finally:
        engine.dispose()


def test_redaction_cost_per_line() -> None:
    """Logs are hot: the cost of redacting a typical line stays in microseconds."""
    lines = [
        "2026-11-30T11:49:22 INFO reminders.dispatch.dispatcher message sent id=12 channel=sms "
        "rule=day-before provider=twilio",
        'Job "dispatch" (trigger: interval[0:00:01], next run at: 2026-11-30 11:49:22 UTC)',
        "2026-11-30T11:49:22 WARNING uvicorn.error to +14105550101 ana@example.com failed",
    ]
    n = 20_000
    for line in lines:
        start = time.perf_counter()
        for _ in range(n):
            redact(line)
        per_line_us = (time.perf_counter() - start) / n * 1e6
        print(f"redact: {per_line_us:.2f} us/line for {line[:50]!r}")
        assert per_line_us < 200
