"""Audit item 2: request bodies are bounded and checked before parsing.

Against the real server (uvicorn in a thread, the app of ``create_app``) and raw sockets, so
that what the server reads is what a client sends: a body declared over its route's limit is
413 before a byte of it is sent; a chunked one is 413 once it goes over, and the app has read
no more than that; the process's memory does not grow with what a client tries to send; a
signed request still works; a slow, large upload to one route holds up no other route.

``BYTES_READ`` counts, per request, the body bytes the app stack took from the server (a
wrapper outside :class:`~reminders.bodylimits.BodyLimitMiddleware`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from reminders.bodylimits import (
    CONSOLE_BODY_LIMIT,
    DEFAULT_BODY_LIMIT,
    SENDGRID_EVENTS_BODY_LIMIT,
    SENDGRID_INBOUND_BODY_LIMIT,
    TWILIO_BODY_LIMIT,
    BodyLimitMiddleware,
    limit_for,
)
from reminders.runtime import Runtime
from reminders.web.app import create_app
from tests.conftest import make_test_settings
from tests.providers.conftest import free_port
from tests.providers.helpers import (
    AUTH_TOKEN,
    SendGridSigner,
    add_message,
    add_patient,
    body_of,
    get_message,
    sg_event,
)

MB = 1_000_000
INBOUND_SECRET = "inbound-secret-for-limits"
SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
EVENTS = "/webhooks/sendgrid/events"
INBOUND = f"/webhooks/sendgrid/inbound/{INBOUND_SECRET}"
INBOUND_BASIC = "/webhooks/sendgrid/inbound"
# What the app may take beyond a limit before it stops: the message that crosses it (uvicorn
# hands over what one socket read gives, at most asyncio's 256 KiB).
SLACK = 256 * 1024


class ByteCounter:
    """Counts the body bytes each request (named by its X-Test-Id header) took from the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.read: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(b"x-test-id", b"").decode()
        self.read.setdefault(key, 0)

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.read[key] += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@dataclass
class Server:
    url: str
    port: int
    runtime: Runtime
    counter: ByteCounter
    signer: SendGridSigner


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    port = free_port()
    signer = SendGridSigner()
    settings = make_test_settings(
        f"sqlite:///{tmp / 'limits.db'}",
        tmp,
        public_url=f"http://127.0.0.1:{port}",
        twilio_auth_token=AUTH_TOKEN,
        sendgrid_webhook_public_key=signer.public_key,
        sendgrid_inbound_secret=INBOUND_SECRET,
    )
    runtime = Runtime(settings)
    runtime.upgrade_schema()
    add_patient(runtime.session_factory)
    counter = ByteCounter(create_app(runtime))
    uv = uvicorn.Server(
        uvicorn.Config(
            counter,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=uv.run, name="limits-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}", port, runtime, counter, signer)
    finally:
        uv.should_exit = True
        thread.join(10)
        runtime.close()


# --- a raw HTTP/1.1 client -------------------------------------------------------------------


def open_request(
    server: Server, path: str, headers: dict[str, str], *, test_id: str
) -> socket.socket:
    """A connection with the request line and headers sent, and no body yet."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"X-Test-Id: {test_id}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def answered(sock: socket.socket, wait: float = 0.0) -> bool:
    return bool(select.select([sock], [], [], wait)[0])


def status_of(sock: socket.socket) -> int:
    """The response's status code (the connection may be reset once it is read)."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    return int(data.split(b" ", 2)[1])


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssPeak:
    """The largest RSS of this process (which runs the server) while it is running."""

    def __init__(self) -> None:
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def unsigned_headers(path: str) -> dict[str, str]:
    path = path.split("?", 1)[0]
    if path == EVENTS:  # plausible signature headers, so the body would be read if allowed
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"x" * 64).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time())),
        }
    if path in (SMS, STATUS):
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "forged",
        }
    if path.startswith("/staff/"):
        return {"Content-Type": "application/x-www-form-urlencoded"}
    return {"Content-Type": "multipart/form-data; boundary=xyz"}


# The start of a multipart body whose one part (an attachment) the slow upload goes on with.
MULTIPART_HEAD = (
    b'--xyz\r\nContent-Disposition: form-data; name="attachment1"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)


# --- the limits ------------------------------------------------------------------------------


def test_each_route_has_its_limit() -> None:
    assert limit_for(SMS) == limit_for(STATUS + "?mid=1") == TWILIO_BODY_LIMIT == 64 * 1024
    assert limit_for(EVENTS) == SENDGRID_EVENTS_BODY_LIMIT == 5 * 1024 * 1024
    assert limit_for(INBOUND) == limit_for(INBOUND_BASIC) == SENDGRID_INBOUND_BODY_LIMIT
    assert SENDGRID_INBOUND_BODY_LIMIT > 30 * MB  # whatever SendGrid itself may post
    assert limit_for("/staff/policy") == CONSOLE_BODY_LIMIT == 1024 * 1024
    assert limit_for("/unsubscribe/abc") == limit_for("/healthz") == DEFAULT_BODY_LIMIT


@pytest.mark.parametrize(
    ("path", "size"),
    [
        (SMS, 10 * MB),
        (STATUS + "?mid=1", 10 * MB),
        (EVENTS, 10 * MB),
        (INBOUND, 40 * MB),
        (INBOUND_BASIC, 40 * MB),
        ("/staff/login", 10 * MB),
        ("/unsubscribe/abc", 10 * MB),
    ],
)
def test_a_body_declared_over_the_limit_is_413_before_it_is_sent(
    server: Server, path: str, size: int
) -> None:
    test_id = f"declared-{path}"
    headers = {**unsigned_headers(path), "Content-Length": str(size)}
    started = time.monotonic()
    with open_request(server, path, headers, test_id=test_id) as sock:
        assert answered(sock, 5.0), "no answer without the body"
        elapsed = time.monotonic() - started
        assert status_of(sock) == 413
    assert elapsed < 0.5, elapsed
    assert server.counter.read[test_id] == 0


@pytest.mark.parametrize("path", [SMS, STATUS + "?mid=1", EVENTS])
def test_a_10_mb_unsigned_post_sent_in_full_costs_no_memory(server: Server, path: str) -> None:
    """The client pushes all 10 MB without waiting for an answer: 413 at once, none of it
    reaches the app, and the server's memory does not grow with it."""
    test_id = f"pushed-{path}"
    headers = {**unsigned_headers(path), "Content-Length": str(10 * MB)}
    payload = b"a=" + b"b" * (10 * MB - 2)
    with RssPeak() as rss:
        started = time.monotonic()
        with open_request(server, path, headers, test_id=test_id) as sock:

            def push() -> None:
                with contextlib.suppress(OSError):  # the server closes the connection
                    sock.sendall(payload)

            pusher = threading.Thread(target=push, daemon=True)
            pusher.start()
            assert answered(sock, 5.0)
            elapsed = time.monotonic() - started
            assert status_of(sock) == 413
            with contextlib.suppress(OSError):  # ends the push if it is still going
                sock.shutdown(socket.SHUT_RDWR)
            pusher.join(10)
    assert elapsed < 1.0, elapsed
    assert server.counter.read[test_id] == 0
    assert rss.growth < 20 * 1024 * 1024, rss.growth


def test_an_unauthenticated_inbound_parse_post_is_refused_unread(server: Server) -> None:
    """Inbound Parse's limit is above 10 MB (see reminders.bodylimits): a 10 MB post with a
    wrong secret is refused before its body is read."""
    test_id = "inbound-bad-secret"
    headers = {**unsigned_headers(INBOUND), "Content-Length": str(10 * MB)}
    path = INBOUND.replace(INBOUND_SECRET, "wrong-secret")
    with open_request(server, path, headers, test_id=test_id) as sock:
        assert answered(sock, 5.0)
        assert status_of(sock) == 403
    assert server.counter.read[test_id] == 0


@pytest.mark.parametrize(
    ("path", "limit", "piece"),
    [
        (SMS, TWILIO_BODY_LIMIT, 8 * 1024),
        (STATUS + "?mid=1", TWILIO_BODY_LIMIT, 8 * 1024),
        (EVENTS, SENDGRID_EVENTS_BODY_LIMIT, 64 * 1024),
        ("/staff/login", CONSOLE_BODY_LIMIT, 64 * 1024),
    ],
)
def test_a_chunked_body_is_413_once_over_the_limit(
    server: Server, path: str, limit: int, piece: int
) -> None:
    test_id = f"chunked-{path}"
    headers = {**unsigned_headers(path), "Transfer-Encoding": "chunked"}
    sent = 0
    with open_request(server, path, headers, test_id=test_id) as sock:
        try:
            while sent < 4 * limit and not answered(sock):
                sock.sendall(chunk(b"x" * piece))
                sent += piece
                time.sleep(0.001)
        except OSError:
            pass
        assert answered(sock, 5.0)
        assert status_of(sock) == 413
    assert limit < server.counter.read[test_id] <= limit + SLACK


# --- signed requests still work ----------------------------------------------------------------


def signed_status(server: Server, mid: int) -> tuple[str, bytes, dict[str, str]]:
    params = {
        "MessageSid": "SM" + "c" * 32,
        "MessageStatus": "delivered",
        "To": "+14105550101",
        "AccountSid": "AC" + "0" * 32,
    }
    path = f"{STATUS}?{urlencode({'mid': mid})}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(server.url + path, params)
    return (
        path,
        urlencode(params).encode(),
        {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )


def test_signed_requests_still_work_through_the_real_server(server: Server) -> None:
    factory = server.runtime.session_factory
    sms, email = add_message(factory, channel="sms"), add_message(factory, channel="email")
    path, body, headers = signed_status(server, sms)
    assert httpx.post(server.url + path, content=body, headers=headers).status_code == 200
    events = body_of([sg_event("delivered", email, "limits-1")])
    answer = httpx.post(server.url + EVENTS, content=events, headers=server.signer.headers(events))
    assert answer.status_code == 200
    assert get_message(factory, sms).status == get_message(factory, email).status == "delivered"


def test_a_signed_chunked_request_within_the_limit_works(server: Server) -> None:
    factory = server.runtime.session_factory
    mid = add_message(factory, channel="email")
    events = body_of([sg_event("delivered", mid, "limits-chunked")])

    def pieces() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        for start in range(0, len(events), 10):
            yield events[start : start + 10]

    answer = httpx.post(
        server.url + EVENTS, content=pieces(), headers=server.signer.headers(events)
    )
    assert answer.status_code == 200
    assert get_message(factory, mid).status == "delivered"


def test_a_large_signed_event_batch_within_the_limit_is_accepted(server: Server) -> None:
    """About 1,000 events of ~3 KB each (over 3 MB): under SendGrid's limit, applied."""
    factory = server.runtime.session_factory
    mid = add_message(factory, channel="email")
    events = [sg_event("delivered", mid, "big-0")] + [
        sg_event("open", mid, f"big-{n}", useragent="x" * 3000) for n in range(1, 1000)
    ]
    body = body_of(events)
    assert 3 * MB < len(body) < SENDGRID_EVENTS_BODY_LIMIT
    answer = httpx.post(
        server.url + EVENTS, content=body, headers=server.signer.headers(body), timeout=30
    )
    assert answer.status_code == 200
    assert get_message(factory, mid).status == "delivered"


# --- a slow upload holds up nothing else ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "size"),
    [(INBOUND, 25 * MB), (EVENTS, 4 * MB), (SMS, 60 * 1024)],
)
def test_other_routes_answer_promptly_during_a_slow_upload(
    server: Server, path: str, size: int
) -> None:
    factory = server.runtime.session_factory
    test_id = f"slow-{path}"
    headers = {**unsigned_headers(path), "Content-Length": str(size)}
    latencies: list[float] = []
    with (
        httpx.Client(base_url=server.url, timeout=5) as other,
        open_request(server, path, headers, test_id=test_id) as slow,
    ):
        deadline = time.monotonic() + 1.5
        sent = 0
        if path == INBOUND:
            slow.sendall(MULTIPART_HEAD)
            sent = len(MULTIPART_HEAD)
        while time.monotonic() < deadline:
            piece = min(16 * 1024, size - sent - 1)  # never the whole body
            if piece > 0:
                slow.sendall(b"x" * piece)
                sent += piece
            started = time.monotonic()
            assert other.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - started)
            mid = add_message(factory, channel="sms")
            path_, body, signed = signed_status(server, mid)
            started = time.monotonic()
            answer = other.post(path_, content=body, headers=signed)
            latencies.append(time.monotonic() - started)
            assert answer.status_code == 200
            time.sleep(0.05)
        assert not answered(slow), "the slow upload was answered before it finished"
    assert max(latencies) < 0.5, latencies


# --- the middleware on its own ---------------------------------------------------------------


def _swallowing_app() -> Starlette:
    """An app whose handler turns any error reading its body into a 400 (as Inbound Parse
    does for a malformed form): the middleware's 413 still wins."""

    async def upload(request: Request) -> Response:
        try:
            body = await request.body()
        except Exception:  # noqa: BLE001
            return Response("swallowed", status_code=400)
        return Response(json.dumps({"size": len(body)}), media_type="application/json")

    app = Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    app.add_middleware(BodyLimitMiddleware, limit_of=lambda _path: 1000)
    return app


def test_the_middleware_answers_413_even_when_the_app_swallows_the_error() -> None:
    def pieces(total: int) -> Iterator[bytes]:
        for _ in range(total // 100):
            yield b"y" * 100

    with TestClient(_swallowing_app()) as client:
        ok: Any = client.post("/upload", content=pieces(1000))
        assert (ok.status_code, ok.json()) == (200, {"size": 1000})
        over: Any = client.post("/upload", content=pieces(1100))
        assert over.status_code == 413 and over.content == b""
        declared: Any = client.post("/upload", content=b"z" * 1001)
        assert declared.status_code == 413
        assert client.get("/upload").status_code == 405  # no body: untouched
