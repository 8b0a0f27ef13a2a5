"""Issue 9, "no patient message lost or late": a webhook answers 200 only once the message is
stored (else 5xx, so the provider retries), storing waits for SQLite's write lock only
briefly, and a replayed request cannot be processed twice however its fields are re-cut.

The lock tests hold SQLite's write lock from another connection, as a long transaction
elsewhere would; PostgreSQL has no database-wide write lock, so they run on SQLite only.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from reminders.db.engine import make_engine, make_session_factory
from reminders.db.models import InboundMessage, Message, StaffTask, StaffUser
from reminders.metrics import WEBHOOKS
from reminders.runtime import Runtime
from reminders.web.app import create_app
from reminders.web.staff.auth import hash_password
from tests.conftest import ROOT, make_test_settings
from tests.conversations.helpers import (
    INBOUND_SECRET,
    ONCALL_EMAILS,
    ONCALL_PHONES,
    P1,
    TOKEN,
    seed_clinic,
    sign,
)

SMS_PATH = "/webhooks/twilio/sms"
ACCOUNT = "AC" + "1f" * 16
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def message_sid(label: str) -> str:
    """A well-formed Twilio message SID (SM + 32 hex digits), one per label."""
    return "SM" + hashlib.md5(label.encode()).hexdigest()  # noqa: S324 - an id, not a secret


def sms(body: str, label: str, *, account: str = ACCOUNT) -> dict[str, str]:
    return {
        "AccountSid": account,
        "Body": body,
        "From": P1,
        "MessageSid": message_sid(label),
        "NumMedia": "0",
        "To": "+14105550000",
    }


def post(client: TestClient, params: dict[str, str], signature: str | None = None) -> Any:
    return client.post(
        SMS_PATH, data=params, headers={"X-Twilio-Signature": signature or sign(params)}
    )


def metric(hook: str, outcome: str) -> float:
    # prometheus_client leaves a counter's private value store untyped (Any).
    return cast(float, WEBHOOKS.labels(hook=hook, outcome=outcome)._value.get())


def rows(rt: Runtime) -> list[InboundMessage]:
    with rt.session_factory() as db:
        return list(db.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def counts(rt: Runtime) -> tuple[int, int, int]:
    """Inbound rows, staff tasks and queued replies."""
    with rt.session_factory() as db:
        return (
            len(db.scalars(select(InboundMessage.id)).all()),
            len(db.scalars(select(StaffTask.id)).all()),
            len(db.scalars(select(Message.id).where(Message.kind == "reply")).all()),
        )


def db_file(rt: Runtime) -> Path:
    database = rt.engine.url.database
    assert database
    return Path(database)


def hold_write_lock(rt: Runtime) -> sqlite3.Connection:
    """Another connection holding SQLite's write lock until it rolls back."""
    conn = sqlite3.connect(db_file(rt), timeout=5, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def release(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK")
    conn.close()


# --- stored before 200 ---------------------------------------------------------------------------


@SQLITE
def test_sms_while_the_lock_is_held_is_5xx_and_the_retry_is_stored_once(
    client: TestClient, clinic: Runtime
) -> None:
    params = sms("R", "locked")
    failed = metric("twilio_sms", "store_failed")
    holder = hold_write_lock(clinic)
    try:
        start = time.perf_counter()
        response = post(client, params)
        took = time.perf_counter() - start
    finally:
        release(holder)
    assert response.status_code == 503, "not stored, so it must not be acknowledged"
    assert took < 10, f"{took:.1f} s: Twilio gives up after 15 s"
    assert metric("twilio_sms", "store_failed") == failed + 1
    assert rows(clinic) == []
    # Twilio retries the same signed request: stored and processed, once.
    assert post(client, params).status_code == 200
    assert post(client, params).status_code == 200
    (row,) = rows(clinic)
    assert row.provider_message_id == params["MessageSid"]
    assert row.processed_at is not None and row.error is None and row.classification
    assert counts(clinic) == (1, 1, 1)  # the reschedule task and its reply, once


@SQLITE
def test_a_lock_released_within_the_retry_window_is_waited_for(
    client: TestClient, clinic: Runtime
) -> None:
    holder = hold_write_lock(clinic)
    timer = threading.Timer(0.6, release, args=(holder,))
    timer.start()
    try:
        response = post(client, sms("R", "briefly locked"))
    finally:
        timer.join()
    assert response.status_code == 200
    (row,) = rows(clinic)
    assert row.processed_at is not None


@SQLITE
def test_emailed_reply_while_the_lock_is_held_is_5xx_then_stored(
    client: TestClient, clinic: Runtime
) -> None:
    data = {
        "from": "Ana <ana@example.com>",
        "subject": "Re: your visit",
        "text": "R",
        "headers": "Message-ID: <locked@mail.example.com>\n",
    }
    url = f"/webhooks/sendgrid/inbound/{INBOUND_SECRET}"
    holder = hold_write_lock(clinic)
    try:
        response = client.post(url, data=data, files={"attachment-info": (None, "{}")})
    finally:
        release(holder)
    assert response.status_code == 503
    assert rows(clinic) == []
    for _ in range(2):  # SendGrid's retries
        assert client.post(url, data=data, files={"attachment-info": (None, "{}")}).is_success
    (row,) = rows(clinic)
    assert row.channel == "email" and row.processed_at is not None


# --- replays ---------------------------------------------------------------------------------


def test_a_renamed_key_replay_is_refused_and_the_original_processed_once(
    client: TestClient, clinic: Runtime
) -> None:
    original = sms("R", "original", account="AC" + "0" * 32)
    signature = sign(original)
    assert post(client, original, signature).status_code == 200
    sid = original["MessageSid"]
    # The signature covers "MessageSid" + sid: "MessageSi" + "d" + sid reads the same.
    renamed = {k: v for k, v in original.items() if k != "MessageSid"} | {"MessageSi": "d" + sid}
    # ...and MessageSid can swallow the key after it ("NumMedia" + "0").
    swallowed = {k: v for k, v in original.items() if k != "NumMedia"}
    swallowed["MessageSid"] = sid + "NumMedia0"
    # ...or SmsSid can name another message.
    other = original | {"SmsSid": message_sid("another")}
    for replay in (renamed, swallowed):
        assert sign(replay) == signature
    refused = metric("twilio_sms", "refused")
    for replay, signed in ((renamed, signature), (swallowed, signature), (other, sign(other))):
        assert post(client, replay, signed).status_code in (400, 403), replay
    assert metric("twilio_sms", "refused") == refused + 3
    assert counts(clinic) == (1, 1, 1)
    assert post(client, original, signature).status_code == 200  # Twilio's own retry
    assert counts(clinic) == (1, 1, 1)


def test_an_account_sid_other_than_the_configured_one_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_test_settings(
        db_url, tmp_path, twilio_auth_token=TOKEN, twilio_account_sid=ACCOUNT
    )
    rt = Runtime(settings)
    try:
        with TestClient(create_app(rt)) as client:
            wrong = sms("R", "wrong account", account="AC" + "2" * 32)
            assert post(client, wrong).status_code == 403
            missing = {k: v for k, v in sms("R", "no account").items() if k != "AccountSid"}
            assert post(client, missing).status_code == 403
            assert rows(rt) == []
            assert post(client, sms("R", "right account")).status_code == 200
        assert len(rows(rt)) == 1
    finally:
        rt.close()


def test_without_a_configured_account_a_well_formed_one_is_required(
    client: TestClient, clinic: Runtime
) -> None:
    for account in ("AC123", "", "AC" + "g" * 32, "ac" + "1" * 32):
        assert post(client, sms("R", f"bad {account}", account=account)).status_code == 403
    for sid in ("", "SM123", "SM-local-test", message_sid("x") + "0"):
        assert post(client, sms("R", "x") | {"MessageSid": sid}).status_code == 400
    assert rows(clinic) == []
    assert post(client, sms("R", "good")).status_code == 200
    assert len(rows(clinic)) == 1


def test_signed_forms_with_repeated_or_odd_keys_are_refused(
    client: TestClient, clinic: Runtime
) -> None:
    params = sms("R", "repeated")
    signature = sign(params)  # a repeated key with the same value signs the same
    body = "&".join(f"{k}={v}" for k, v in params.items()) + "&Body=R"
    response = client.post(
        SMS_PATH,
        content=body.replace("+", "%2B"),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 403
    odd = sms("R", "odd") | {"Message Sid": "x"}
    assert post(client, odd).status_code == 403
    assert rows(clinic) == []


# --- real processes -------------------------------------------------------------------------

# A template whose loops would take seconds to render, each step within the render limits
# (reminders/templates/limits.py): the preview runs until its time budget (1 s) refuses it.
SLOW_SMS = (
    '{% for k in range(400) %}{% set w = ("word " * 10000)|wordwrap(7) %}{% endfor %}'
    "Hi {{ patient.first_name }}, see you soon. Reply C to confirm."
)
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csrf(page: httpx.Response) -> str:
    match = _CSRF.search(page.text)
    assert match, "no CSRF token in the page"
    return match.group(1)


@SQLITE
def test_sms_during_a_long_console_preview_is_stored_promptly_by_the_real_server(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory() as db:
        seed_clinic(db, datetime.now(UTC))
        db.add(StaffUser(email="a@clinic.test", role="admin", password_hash=hash_password("pw")))
        db.commit()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env.update(
        {
            "REMINDERS_DATABASE_URL": db_url,
            "REMINDERS_DRYRUN_DIR": str(tmp_path / "outbox"),
            "REMINDERS_HTTP_PORT": str(port),
            "REMINDERS_PUBLIC_URL": base,
            "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "REMINDERS_TWILIO_AUTH_TOKEN": TOKEN,
            "REMINDERS_TWILIO_ACCOUNT_SID": ACCOUNT,
            "REMINDERS_ONCALL_PHONES": ONCALL_PHONES,
            "REMINDERS_ONCALL_EMAILS": ONCALL_EMAILS,
        }
    )
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reminders", "run"],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=60) as staff:
            token = _csrf(staff.get("/staff/login"))
            signed_in = staff.post(
                "/staff/login",
                data={"email": "a@clinic.test", "password": "pw", "csrf_token": token},
            )
            assert signed_in.status_code == 303
            token = _csrf(staff.get("/staff/inbox"))
            preview: dict[str, Any] = {}

            def run_preview() -> None:
                preview["response"] = staff.post(
                    "/staff/templates/day_before/sms/en/preview",
                    data={"csrf_token": token, "body": SLOW_SMS, "patient": ""},
                )
                preview["done"] = time.monotonic()

            thread = threading.Thread(target=run_preview)
            thread.start()
            time.sleep(0.3)  # the preview is rendering
            params = sms("C", "during preview")
            answers = []
            for _attempt in range(3):  # as Twilio: retried on 5xx
                answer = httpx.post(
                    base + SMS_PATH,
                    data=params,
                    headers={"X-Twilio-Signature": sign(params, url=base + SMS_PATH)},
                    timeout=15,
                )
                answers.append(answer.status_code)
                if answer.status_code < 500:
                    break
            answered = time.monotonic()
            thread.join()
        # The preview ran until its budget refused it, and said so.
        assert preview["response"].status_code == 200
        assert "longer than" in preview["response"].text, preview["response"].text[:500]
        assert answers[-1] == 200, answers
        assert answered < preview["done"], "the SMS waited for the preview: the lock was held"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    with factory() as db:
        stored = db.scalars(select(InboundMessage)).all()
    engine.dispose()
    assert [(r.provider_message_id, r.processed_at is not None) for r in stored] == [
        (params["MessageSid"], True)
    ]
