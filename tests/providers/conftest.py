"""Fixtures for the provider tests: Prism mock servers and a scriptable local HTTP server.

Prism (``@stoplight/prism-cli``) serves the official OpenAPI specs and answers 422 to any
request that does not validate, so a 2xx from it means the SDK's request matched the
spec. ``.ci/prism.sh`` installs it into ``.ci/node`` when missing. Without npm/Prism the
tests that need it are skipped, unless ``REMINDERS_TEST_REQUIRE_PRISM=1`` (CI), where
that is an error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reminders.settings import Settings
from tests.conftest import make_test_settings
from tests.providers.helpers import AUTH_TOKEN, PUBLIC_URL, SendGridSigner

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "specs"  # the official specs, copied in with their licences
TWILIO_SPEC = SPECS / "twilio_api_v2010.json"
SENDGRID_SPEC = SPECS / "tsg_mail_v3.json"
PRISM_START_TIMEOUT = 60.0
assert TWILIO_SPEC.is_file() and SENDGRID_SPEC.is_file(), f"the provider specs belong in {SPECS}"


def _unavailable(reason: str) -> None:
    if os.environ.get("REMINDERS_TEST_REQUIRE_PRISM") == "1":
        pytest.fail(f"Prism is required (REMINDERS_TEST_REQUIRE_PRISM=1): {reason}")
    pytest.skip(f"Prism unavailable: {reason}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrismServer:
    url: str
    log_path: Path

    def checkpoint(self) -> int:
        return self.log_path.stat().st_size

    def validation_errors(self, since: int = 0) -> list[str]:
        """Validator complaints Prism logged after ``since`` (it also answers 4xx for them)."""
        with open(self.log_path, "rb") as fh:
            fh.seek(since)
            lines = fh.read().decode(errors="replace").splitlines()
        return [line for line in lines if "[VALIDATOR]" in line and "✖" in line]


@pytest.fixture(scope="session")
def prism_bin() -> str:
    script = ROOT / ".ci" / "prism.sh"
    try:
        out = subprocess.run([str(script)], check=True, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"{script} failed: {exc}")
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if not path or not os.access(path, os.X_OK):
        _unavailable(f"{script} printed no executable")
    return path


@pytest.fixture(scope="session")
def prism_factory(
    prism_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Path], PrismServer]]:
    """Start one ``prism mock`` per spec (on a free loopback port), stopped at session end."""
    started: dict[Path, PrismServer] = {}
    processes: list[subprocess.Popen[bytes]] = []
    logs = tmp_path_factory.mktemp("prism")

    def start(spec: Path) -> PrismServer:
        if spec in started:
            return started[spec]
        if not spec.exists():
            _unavailable(f"spec {spec} not found")
        port = free_port()
        log_path = logs / f"{spec.stem}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [
                    prism_bin,
                    "mock",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--errors",
                    str(spec),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(proc)
        deadline = time.monotonic() + PRISM_START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"prism exited ({proc.returncode}): {log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"prism did not start within {PRISM_START_TIMEOUT}s for {spec.name}")
        server = PrismServer(url=f"http://127.0.0.1:{port}", log_path=log_path)
        started[spec] = server
        return server

    yield start
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def twilio_prism(prism_factory: Callable[[Path], PrismServer]) -> PrismServer:
    return prism_factory(TWILIO_SPEC)


@pytest.fixture(scope="session")
def sendgrid_prism(prism_factory: Callable[[Path], PrismServer]) -> PrismServer:
    return prism_factory(SENDGRID_SPEC)


# --- a scriptable stand-in for a provider's API --------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict[str, object] | list[object] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request with the next scripted :class:`Reply` and records the requests."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer._lock:
                    outer.requests.append(Recorded("POST", self.path, dict(self.headers), body))
                    reply = (
                        outer.replies.pop(0)
                        if outer.replies
                        else Reply(500, {"message": "unscripted"})
                    )
                if reply.delay:
                    time.sleep(reply.delay)
                payload = json.dumps(reply.body).encode() if reply.body is not None else b""
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


# --- the webhook tests' settings -------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> SendGridSigner:
    return SendGridSigner()


@pytest.fixture
def hook_settings(db_url: str, tmp_path: Path, signer: SendGridSigner) -> Settings:
    """Settings whose webhooks verify: the Twilio auth token, SendGrid's public key, and a
    public URL that differs from the test client's host (signatures use the former)."""
    return make_test_settings(
        db_url,
        tmp_path,
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        sendgrid_webhook_public_key=signer.public_key,
    )
