"""No patient data in the combined log, from any logger, on both databases.

One run per database of: the demo clinic and ``reminders tick`` passes; the webhooks (signed
and forged Twilio inbound SMS and status callbacks, SendGrid events, broken bodies) through
the app, and through a real uvicorn server configured as the daemon configures it, with
routes that raise (uvicorn's error logger prints the traceback); an import whose rows break
the validator and the database; the CLI's unexpected-error path with a database error that
quotes the row. Everything written on stdout and stderr (the log handler writes to stderr)
is scanned for every name, phone number (several formats), email address, message body and
staff note the test seeded: none may appear.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from twilio.request_validator import RequestValidator

import reminders.cli.clinic
from reminders.cli import main
from reminders.clinic.demo import load_demo
from reminders.db.engine import session_scope
from reminders.db.models import Message, Patient, StaffTask
from reminders.logs import configure_logging
from reminders.runtime import Runtime
from reminders.settings import load_settings
from reminders.web.app import create_app
from tests.integration.test_daemon import free_port
from tests.providers.helpers import SendGridSigner, body_of, sg_event

TOKEN = "phi-test-twilio-token"
PUBLIC_URL = "http://testserver"
# The demo clinic's patients (reminders/clinic/demo.py) and ours.
NAMES = ["Ana", "Diaz", "Ben", "Carter", "Chloe", "Nguyen", "Diego", "Ramos", "Erin", "Walsh"]
NAMES += ["Zelda", "Quixotella", "Barnaby", "Featherstonehaugh", "Ottoline", "Marchbanks"]
PHONES = [
    "+14105550101",
    "+14105550102",
    "+14105550103",
    "+13105550105",
    "+14435550177",
    "+14435550178",
]
EMAILS = [
    "ana.diaz@example.com",
    "ben.carter@example.com",
    "chloe.nguyen@example.com",
    "erin.walsh@example.com",
    "zelda.q@example.net",
    "barnaby.f@example.net",
    "ottoline.m@example.net",
]
BODIES = [
    "my cat is named Biscuit",
    "Biscuit",
    "the pharmacy on Elm Street lost my refill",
    "Elm Street",
]
NOTES = ["Prefers mornings; husband drives her to Lakeview", "husband drives her"]


def _formats(e164: str) -> list[str]:
    national = e164[2:]
    a, b, c = national[:3], national[3:6], national[6:]
    return [e164, national, f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"1{national}"]


def _phi() -> list[tuple[str, re.Pattern[str]]]:
    values: list[tuple[str, re.Pattern[str]]] = []
    for name in NAMES:  # whole words: "Ana" is not a leak in "analysis"
        values.append((name, re.compile(rf"\b{re.escape(name)}\b")))
    for phone in PHONES:
        values += [(f, re.compile(re.escape(f))) for f in _formats(phone)]
    for value in EMAILS + BODIES + NOTES:
        values.append((value, re.compile(re.escape(value), re.IGNORECASE)))
    for email in EMAILS:  # the local part alone, and URL-encoded
        values.append((email.split("@")[0], re.compile(re.escape(email.split("@")[0]))))
        values.append((email.replace("@", "%40"), re.compile(re.escape(email.replace("@", "%40")))))
    return values


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "REMINDERS_DATABASE_URL": db_url,
        "REMINDERS_DRYRUN_DIR": str(tmp_path / "outbox"),
        "REMINDERS_ONCALL_EMAILS": "oncall@example.org",
        "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "REMINDERS_TWILIO_AUTH_TOKEN": TOKEN,
        "REMINDERS_PUBLIC_URL": PUBLIC_URL,
        "REMINDERS_TIMEZONE": "America/New_York",
    }.items():
        monkeypatch.setenv(key, value)
    root = logging.getLogger()
    level = root.level
    configure_logging(verbose=True)
    root.setLevel(logging.DEBUG)  # everything any library says
    try:
        yield tmp_path
    finally:
        root.setLevel(level)


def _sign(url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(TOKEN).compute_signature(url, params))


def _seed_ours(rt: Runtime) -> None:
    """Our own patients (names no pattern recognises), a staff note."""
    with session_scope(rt.session_factory) as db:
        db.add(
            Patient(
                id="zq",
                first_name="Zelda",
                last_name="Quixotella",
                phone="+14435550177",
                email="zelda.q@example.net",
                sms_consent=True,
                email_consent=True,
            )
        )
        db.flush()
        db.add(StaffTask(kind="review", patient_id="zq", summary="call back", note=NOTES[0]))


def _webhooks(rt: Runtime, signer: SendGridSigner) -> None:
    with rt.session_factory() as db:
        sms_id = db.scalar(select(Message.id).where(Message.channel == "sms").limit(1)) or 1
        email_id = db.scalar(select(Message.id).where(Message.channel == "email").limit(1)) or 1
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        url = f"{PUBLIC_URL}/webhooks/twilio/sms"
        for n, (sender, body) in enumerate(
            [("+14105550101", BODIES[0]), ("+14435550177", BODIES[2]), ("+19995550123", BODIES[0])]
        ):
            params = {
                "MessageSid": f"SM{n:032d}",
                "AccountSid": "AC" + "0" * 32,
                "From": sender,
                "To": "+14105550000",
                "Body": body,
            }
            for signature in (_sign(url, params), "forged"):
                client.post(
                    "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
                )
        status = {
            "MessageSid": "SM" + "c" * 32,
            "MessageStatus": "failed",
            "ErrorCode": "21610",
            "To": "+14105550101",
            "Body": BODIES[0],
        }
        path = f"/webhooks/twilio/status?mid={sms_id}"
        for signature in (_sign(PUBLIC_URL + path, status), "forged"):
            client.post(
                path,
                content=urlencode(status),
                headers={
                    "X-Twilio-Signature": signature,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        events = body_of(
            [
                sg_event("bounce", email_id, "e1", reason="550 ana.diaz@example.com unknown"),
                sg_event("dropped", email_id, "e2", email="zelda.q@example.net"),
                sg_event("unsubscribe", email_id, "e3"),
            ]
        )
        client.post("/webhooks/sendgrid/events", content=events, headers=signer.headers(events))
        client.post("/webhooks/sendgrid/events", content=events, headers={"X-Bogus": "1"})
        # Broken bodies: truncated JSON, a form that is not one, a signed body with a
        # broken event carrying data.
        broken = events[: len(events) // 2]
        client.post("/webhooks/sendgrid/events", content=broken, headers=signer.headers(broken))
        odd = json.dumps({"email": "barnaby.f@example.net", "event": 12}).encode()
        client.post("/webhooks/sendgrid/events", content=odd, headers=signer.headers(odd))
        junk = b"From=%2B14435550178&Body=" + b"Elm%20Street%20\xff\xfe" * 3
        client.post(
            "/webhooks/twilio/sms",
            content=junk,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": "x",
            },
        )


def _uvicorn(rt: Runtime) -> None:
    """The app behind a real uvicorn, configured as ``run_daemon`` configures it, with two
    routes that fail the way a bug would: an exception quoting data, a database error."""
    app: FastAPI = create_app(rt)

    def boom() -> None:
        raise ValueError("cannot route reply from +14435550178 to barnaby.f@example.net")

    def db_boom() -> None:
        with session_scope(rt.session_factory) as db:
            db.execute(
                insert(Patient),
                [
                    {
                        "id": "zq",  # exists: a unique violation quoting the key
                        "first_name": "Barnaby",
                        "last_name": "Featherstonehaugh",
                        "phone": "+14435550178",
                        "email": "barnaby.f@example.net",
                    }
                ],
            )

    app.add_api_route("/test/boom", boom, methods=["POST"])
    app.add_api_route("/test/db-boom", db_boom, methods=["POST"])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            params = {"From": "+14105550101", "Body": BODIES[0]}
            for path in ("/test/boom", "/test/db-boom", "/webhooks/twilio/sms"):
                # The server may answer 500 or drop the connection: the log is what counts.
                with contextlib.suppress(httpx.HTTPError):
                    client.post(path, data=params, headers={"X-Twilio-Signature": "x"})
    finally:
        server.should_exit = True
        thread.join(10)


def _failing_import(tmp_path: Path) -> list[int]:
    long_name = "Ottoline " + "Marchbanks" * 10  # 109 characters: over the column's 100
    data: dict[str, Any] = {
        "patients": [
            {"id": "d1", "first_name": "Barnaby", "email": "barnaby.f@example.net"},
            {"id": "d1", "first_name": "Barnaby", "email": "barnaby.f@example.net"},
            {"id": "d2", "first_name": "Barnaby", "phone": "+1443555017", "email": "barnaby.f@"},
            {"id": "d3", "first_name": long_name, "email": "ottoline.m@example.net"},
            {"id": "d4", "first_name": "Ottoline", "last_name": "Marchbanks", "phone": "555-01x"},
        ],
        "sessions": [{"id": "x1", "patient_id": "d9", "starts_at": "Elm Street"}],
    }
    path = tmp_path / "clinic.json"
    path.write_text(json.dumps(data))
    # A NUL character: SQLite stores it, PostgreSQL refuses it (the database raises).
    data["patients"].append(
        {
            "id": "d5",
            "first_name": "Ottoline\u0000",
            "last_name": "Marchbanks",
            "phone": "+14435550178",
            "email": "ottoline.m@example.net",
        }
    )
    nul = tmp_path / "clinic-nul.json"
    nul.write_text(json.dumps(data))
    return [main([*verbose, "import", str(p)]) for p in (path, nul) for verbose in ([], ["-v"])]


def _unexpected_db_error(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A command that dies on the database: a not-null violation (PostgreSQL quotes the
    whole row) and a unique violation (it quotes the key)."""
    rows: list[dict[str, Any]] = [
        {
            "id": "zz",
            "first_name": None,
            "last_name": "Featherstonehaugh",
            "phone": "+14435550178",
            "email": "barnaby.f@example.net",
        },
        {
            "id": "zq",
            "first_name": "Barnaby",
            "last_name": "Featherstonehaugh",
            "phone": "+14435550178",
            "email": "barnaby.f@example.net",
        },
    ]
    codes = []
    for row in rows:

        def failing(_args: Any, rt: Runtime, row: dict[str, Any] = row) -> int:
            with session_scope(rt.session_factory) as db:
                db.execute(insert(Patient), [row])
            return 0

        monkeypatch.setattr(reminders.cli.clinic, "_cmd_import", failing)
        codes += [main(["import", "x.json"]), main(["-v", "import", "x.json"])]
    return codes


def test_no_phi_in_combined_log(
    env: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    signer = SendGridSigner()
    monkeypatch.setenv("REMINDERS_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    now = datetime.now(UTC).replace(microsecond=0)
    rt = Runtime(load_settings())
    try:
        rt.upgrade_schema()
        # (a) the demo clinic and a few ticks
        load_demo(rt, now=now)
        _seed_ours(rt)
        for minutes in (0, 1, 5):
            at = (now + timedelta(minutes=minutes)).isoformat()
            assert main(["tick", "--now", at]) == 0
        assert main(["-v", "tick", "--now", (now + timedelta(minutes=7)).isoformat()]) == 0
        # (b) webhooks, through the app and through uvicorn
        _webhooks(rt, signer)
        _uvicorn(rt)
    finally:
        rt.close()
    # (c) failing imports, (d) the unexpected-error path
    import_codes = _failing_import(env)
    assert all(code in (1, 2) for code in import_codes), import_codes
    assert _unexpected_db_error(monkeypatch) == [1, 1, 1, 1]

    out, err = capfd.readouterr()
    text = out + "\n" + err
    phi = _phi()
    found = [(value, m.start()) for value, pattern in phi for m in pattern.finditer(text)]
    line_count = text.count("\n") + 1
    print(
        f"\nno-PHI scan: {line_count} lines scanned, {len(phi)} PHI values searched, {len(found)} found"
    )
    for value, pos in found[:20]:
        print(f"  {value!r}: ...{text[max(0, pos - 80) : pos + 40]!r}...")
    # The runs did log, the failures included.
    assert "Exception in ASGI application" in text  # uvicorn's error logger, through ours
    assert "ValueError" in text and "IntegrityError" in text
    assert "unexpected database error IntegrityError" in err
    assert "rejected patient d1" in out
    assert "[phone]" in text and "[email]" in text  # the net caught what the bugs quoted
    assert not found
