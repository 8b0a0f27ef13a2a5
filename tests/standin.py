"""A recording, fault-injecting stand-in for Twilio (Messages) and SendGrid (Mail Send).

One local HTTP server answers both APIs, so its URL is given as both
``REMINDERS_TWILIO_BASE_URL`` and ``REMINDERS_SENDGRID_BASE_URL``; the real ``twilio`` and
``sendgrid`` SDKs talk to it. Requests and answers follow the official specs in
``tests/specs`` (``twilio_api_v2010.json``: ``/2010-04-01/Accounts/{AccountSid}/Messages.json``,
``tsg_mail_v3.json``: ``POST /v3/mail/send``).

What it holds, in memory and thread-safe:

* :meth:`ProviderStandIn.accepted`: one :class:`Accepted` per message the provider took
  (including those whose answer was then faulted: ``timeout``, ``reset_after``);
* :meth:`ProviderStandIn.requests`: one :class:`RequestRecord` per request that arrived on
  the APIs (Twilio create / list / fetch, SendGrid mail send), faulted or not, with its outcome;
* the Twilio message list (accepted SMS plus :meth:`ProviderStandIn.add_message` seeds), which
  ``client.messages.list(...)`` reads with Twilio's filters and paging.

Faults (:class:`Faults`) hit send requests only (Twilio create, SendGrid mail send), drawn
from a seeded :class:`random.Random`: ``rate`` is the share of send requests that get one,
the kind is drawn uniformly from ``kinds``:

``"500"``          answer 500 without accepting (Twilio code 20500; SendGrid ``errors``)
``"429"``          answer 429 with ``Retry-After: 1`` without accepting (Twilio code 20429)
``"timeout"``      accept, then hold the answer ``timeout_seconds`` (the client gives up first)
``"drop"``         reset the connection (RST) before reading the body, without accepting
``"reset_after"``  accept, then reset the connection without answering

``500``, ``429`` and ``drop`` strike before authentication (as a failing front end would);
``timeout`` and ``reset_after`` only strike a request that is then accepted (a request with bad
credentials or missing fields gets its 401/400 instead, and no fault is counted).

Optionally it calls back like the providers do: Twilio status callbacks (``sent`` then
``delivered``, form-encoded, signed with ``X-Twilio-Signature``) to each message's
``StatusCallback`` URL, and SendGrid signed event webhooks (``processed`` then ``delivered``,
ECDSA P-256 over timestamp + body) to ``sendgrid_events_url``. Every attempt is counted
(:meth:`ProviderStandIn.webhook_counts`). A Twilio callback that fails is not retried (Twilio's
default); a SendGrid event batch that fails is posted again, as SendGrid does, after 1, 2, 4...
seconds (at most 10 s apart), up to ``SENDGRID_RETRIES`` times, with the same ``sg_event_id``.

Run on its own: ``python -m tests.standin --port P --account-sid AC... --auth-token T
--sendgrid-key K --fault-rate 0.2 --dump records.json``; it prints ``STANDIN-URL <url>``,
serves until SIGTERM / SIGINT, then writes its records as JSON to ``--dump``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import heapq
import hmac
import itertools
import json
import random
import re
import secrets
import signal
import socket
import string
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

FAULT_KINDS: tuple[str, ...] = ("500", "429", "timeout", "drop", "reset_after")
OUTCOMES: tuple[str, ...] = (
    "accepted",
    "ok",  # a list / fetch answered
    "500",
    "429",
    "timeout",
    "drop",
    "reset_after",
    "unauthorized",
    "bad_request",
    "not_found",
)
API_VERSION = "2010-04-01"
# The sender reported for messages sent through a Messaging Service (Twilio's magic test number).
SERVICE_FROM = "+15005550006"
TWILIO_DOCS = "https://www.twilio.com/docs/errors/"
# Delays after acceptance of the two status callbacks / events (seconds).
SENT_DELAY = 0.05
DELIVERED_DELAY = 0.2
WEBHOOK_TIMEOUT = 5.0
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$"
)
_MAIL_SEND_PATH = "/v3/mail/send"
# GSM 03.38 basic character set (plus the extension table, which costs two septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


# --- public records -------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """Which share of send requests fail, and how. See the module docstring for the kinds."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_seconds: float = 3.0
    seed: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], not {self.rate}")
        unknown = [kind for kind in self.kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {FAULT_KINDS}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("a positive fault rate needs at least one fault kind")
        if self.timeout_seconds < 0:
            raise ValueError("timeout_seconds must not be negative")


@dataclass(frozen=True)
class Accepted:
    """A message the provider took (it will be, or was, delivered)."""

    channel: str  # "sms" | "email"
    outbox_id: int | None
    to: str
    body: str
    subject: str | None
    provider_id: str  # Twilio's SM... sid, or SendGrid's X-Message-Id
    at: float  # time.time() at acceptance


@dataclass(frozen=True)
class RequestRecord:
    """A request that arrived on an API, and what became of it (see ``OUTCOMES``)."""

    provider: str  # "twilio" | "sendgrid"
    kind: str  # "create" | "list" | "fetch" | "mail_send"
    at: float  # time.time() at arrival (once the request line and headers were read)
    outcome: str


SEND_KINDS = frozenset({"create", "mail_send"})


def max_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """Most of ``times`` falling in any closed-open window ``[t, t + window)``.

    A window holding a set of points can always slide right until it starts at the first of
    them, so only windows starting at a point need counting.
    """
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        end = bisect.bisect_left(ordered, start + window, lo=i)
        best = max(best, end - i)
    return best


def twilio_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def sendgrid_message_id() -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(secrets.choice(alphabet) for _ in range(22))


def sms_segments(body: str) -> int:
    """Segments Twilio would bill: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in body):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in body)
        single, part = 160, 153
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)  # UTF-16 code units
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)


def rfc2822(moment: datetime) -> str:
    """``Fri, 24 May 2019 17:44:46 +0000``, as Twilio writes its dates."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


# --- the Twilio message store -------------------------------------------------------------


@dataclass
class _SmsRecord:
    seq: int
    sid: str
    to: str
    from_: str | None
    body: str
    date_created: datetime  # whole seconds, UTC, as Twilio keeps them
    date_sent: datetime
    messaging_service_sid: str | None = None
    status: str | None = None  # None: follows queued -> sent -> delivered from ``accepted_at``
    accepted_at: float = 0.0  # time.monotonic() at acceptance
    direction: str = "outbound-api"
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None

    def current_status(self, now: float) -> str:
        if self.status is not None:
            return self.status
        age = now - self.accepted_at
        if age >= DELIVERED_DELAY:
            return "delivered"
        if age >= SENT_DELAY:
            return "sent"
        return "queued"

    def sort_key(self) -> tuple[datetime, int]:
        return (self.date_sent, self.seq)


def _parse_when(raw: str) -> datetime | date:
    """A Twilio DateSent filter value: ``2026-03-01`` (a day) or an ISO date-time (UTC if naive)."""
    value = raw.strip()
    # The older "DateSent>=2026-03-01" style arrives as key "DateSent>" and value "=2026-...".
    value = value.removeprefix("=")
    if len(value) == 10:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _matches_date(sent: datetime, op: str, when: datetime | date) -> bool:
    if isinstance(when, datetime):
        if op == "=":
            return sent.date() == when.date()  # DateSent itself compares by day
        return sent >= when if op == ">" else sent <= when
    day = sent.date()
    if op == ">":
        return day >= when
    if op == "<":
        return day <= when
    return day == when


class _BadRequest(Exception):
    """A request the API refuses with 400: Twilio's error ``code``, SendGrid's ``field``."""

    def __init__(self, message: str, *, code: int = 20001, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# --- the HTTP side --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], standin: ProviderStandIn) -> None:
        self.standin = standin
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that died mid-request (a killed worker) is expected here: no traceback."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ProviderStandIn/1.0"
    sys_version = ""
    _reset = False

    @property
    def standin(self) -> ProviderStandIn:
        return cast(_Server, self.server).standin

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.standin._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.standin._handle(self, "POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.standin._handle(self, "PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self.standin._handle(self, "DELETE")

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- helpers the stand-in uses

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def answer(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away (it timed out)

    def answer_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.answer(status, json.dumps(payload).encode(), headers=headers)

    def reset(self) -> None:
        """Abort the connection: SO_LINGER 0, so closing sends RST instead of FIN."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._reset = True
        self.close_connection = True

    def finish(self) -> None:
        if not self._reset:
            super().finish()
            return
        # Close every reference to the socket here, so the kernel really closes it (and sends
        # the RST) now; socketserver's shutdown(SHUT_WR) would otherwise send a FIN first.
        with contextlib.suppress(OSError, ValueError):
            self.wfile.close()
        with contextlib.suppress(OSError, ValueError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.connection.close()


# A failed SendGrid event batch is posted again this many times (SendGrid retries for 24 h).
SENDGRID_RETRIES = 12

# --- callbacks ------------------------------------------------------------------------------


class _Scheduler:
    """Runs jobs at given monotonic times on a small thread pool; counts unfinished jobs."""

    def __init__(self, workers: int = 8) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._unfinished = 0
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="standin-hook")
        self._thread = threading.Thread(target=self._run, name="standin-scheduler", daemon=True)
        self._thread.start()

    def at(self, due: float, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (due, next(self._seq), job))
            self._unfinished += 1
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._heap)
            try:
                self._pool.submit(self._call, job)
            except RuntimeError:  # the pool was shut down
                self._done()
                return

    def _call(self, job: Callable[[], None]) -> None:
        try:
            job()
        finally:
            self._done()

    def _done(self) -> None:
        with self._cond:
            self._unfinished -= 1
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unfinished > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._unfinished -= len(self._heap)
            self._heap.clear()
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._thread.join(timeout=2)


# --- the stand-in ---------------------------------------------------------------------------


class ProviderStandIn:
    """Twilio Messages and SendGrid Mail Send on one local HTTP server. See the module doc."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sendgrid_key: str,
        faults: Faults = Faults(),
        status_callbacks: bool = False,
        sendgrid_events_url: str | None = None,
        sendgrid_signing_key: ec.EllipticCurvePrivateKey | None = None,
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sendgrid_key = sendgrid_key
        self.status_callbacks = status_callbacks
        self.sendgrid_events_url = sendgrid_events_url
        self.sendgrid_signing_key = sendgrid_signing_key
        self._lock = threading.RLock()
        self._faults = faults
        self._rng = random.Random(faults.seed)
        self._accepted: list[Accepted] = []
        self._requests: list[RequestRecord] = []
        self._sms: dict[str, _SmsRecord] = {}
        self._seq = itertools.count(1)
        self._fault_counts: Counter[str] = Counter()
        self._webhooks: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._scheduler: _Scheduler | None = None
        self._thread: threading.Thread | None = None
        self._validator = RequestValidator(auth_token)
        self._httpd = _Server(("127.0.0.1", port), self)
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    # -- life cycle

    def start(self) -> ProviderStandIn:
        if self._thread is not None:
            return self
        self._scheduler = _Scheduler()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="standin-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; pending callbacks are dropped, held (``timeout``) answers released."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
        if self._scheduler is not None:
            self._scheduler.stop()

    def __enter__(self) -> ProviderStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- configuration

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults from now on; the random draws restart from ``faults.seed``."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    # -- what the providers hold

    def accepted(self) -> list[Accepted]:
        with self._lock:
            return list(self._accepted)

    def received_counts(self, channel: str | None = None) -> dict[int, int]:
        """outbox id -> times the providers accepted it (only messages that carried an id)."""
        with self._lock:
            counts = Counter(
                item.outbox_id
                for item in self._accepted
                if item.outbox_id is not None and (channel is None or item.channel == channel)
            )
        return {key: value for key, value in counts.items() if key is not None}

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def max_per_window(self, provider: str, window: float = 1.0) -> int:
        """Most send requests (create / mail_send, any outcome) arriving within ``window`` s."""
        with self._lock:
            times = [
                r.at for r in self._requests if r.provider == provider and r.kind in SEND_KINDS
            ]
        return max_in_window(times, window)

    def fault_counts(self) -> dict[str, int]:
        """Fault kind -> times it was applied."""
        with self._lock:
            return dict(self._fault_counts)

    def webhook_counts(self) -> dict[str, int]:
        """Callbacks made: ``twilio_ok`` / ``twilio_rejected`` (non-2xx) / ``twilio_error``
        (no answer), and the same for ``sendgrid``."""
        with self._lock:
            return dict(self._webhooks)

    def wait_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until every scheduled callback was made; False on timeout."""
        return self._scheduler.drain(timeout) if self._scheduler is not None else True

    def add_message(
        self,
        *,
        to: str,
        body: str,
        date_sent: datetime,
        from_: str = SERVICE_FROM,
        status: str = "delivered",
        sid: str | None = None,
        direction: str = "outbound-api",
        messaging_service_sid: str | None = None,
        error_code: int | None = None,
    ) -> str:
        """Seed a message into the Twilio list (not into :meth:`accepted`); returns its SID."""
        sent = (date_sent if date_sent.tzinfo else date_sent.replace(tzinfo=UTC)).astimezone(UTC)
        sent = sent.replace(microsecond=0)
        record = _SmsRecord(
            seq=next(self._seq),
            sid=sid or twilio_sid(),
            to=to,
            from_=from_,
            body=body,
            date_created=sent,
            date_sent=sent,
            messaging_service_sid=messaging_service_sid,
            status=status,
            direction=direction,
            error_code=error_code,
        )
        with self._lock:
            self._sms[record.sid] = record
        return record.sid

    def dump(self) -> dict[str, Any]:
        """Everything recorded, JSON-ready."""
        with self._lock:
            return {
                "url": self.url,
                "faults": asdict(self._faults),
                "accepted": [asdict(item) for item in self._accepted],
                "requests": [asdict(item) for item in self._requests],
                "fault_counts": dict(self._fault_counts),
                "webhooks": dict(self._webhooks),
                "received_counts": {
                    "sms": {str(k): v for k, v in self.received_counts("sms").items()},
                    "email": {str(k): v for k, v in self.received_counts("email").items()},
                },
                "max_per_window": {
                    "twilio": self.max_per_window("twilio"),
                    "sendgrid": self.max_per_window("sendgrid"),
                },
            }

    # -- request handling

    def _record(self, provider: str, kind: str, at: float, outcome: str) -> None:
        with self._lock:
            self._requests.append(RequestRecord(provider, kind, at, outcome))

    def _draw_fault(self) -> tuple[str | None, float]:
        with self._lock:
            faults = self._faults
            if faults.rate <= 0 or not faults.kinds:
                return None, faults.timeout_seconds
            if self._rng.random() >= faults.rate:
                return None, faults.timeout_seconds
            return self._rng.choice(faults.kinds), faults.timeout_seconds

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._fault_counts[kind] += 1

    def _handle(self, handler: _Handler, method: str) -> None:
        at = time.time()
        parts = urlsplit(handler.path)
        path = parts.path
        try:
            if path == _MAIL_SEND_PATH:
                if method != "POST":
                    handler.read_body()
                    handler.answer_json(405, _sendgrid_errors("method not allowed"))
                    return
                self._mail_send(handler, at)
                return
            match = _MESSAGES_PATH.match(path)
            if match and method == "POST":
                self._twilio_create(handler, at, match.group("account"))
                return
            if match and method == "GET":
                handler.read_body()
                self._twilio_list(handler, at, match.group("account"), parts.query)
                return
            single = _MESSAGE_PATH.match(path)
            if single and method == "GET":
                handler.read_body()
                self._twilio_fetch(handler, at, single.group("account"), single.group("sid"))
                return
            handler.read_body()
            handler.answer_json(
                404, _twilio_error(20404, f"The requested resource {path} was not found", 404)
            )
        except Exception:  # an answer of some kind rather than a hung client
            handler.close_connection = True
            with contextlib.suppress(Exception):
                handler.answer_json(500, _twilio_error(20500, "stand-in internal error", 500))
            raise

    # -- Twilio

    def _twilio_authorized(self, handler: _Handler, account: str) -> bool:
        header = handler.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            hmac.compare_digest(user.encode(), self.account_sid.encode())
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
            and account == self.account_sid
        )

    def _twilio_unauthorized(self, handler: _Handler) -> None:
        handler.answer_json(
            401,
            _twilio_error(20003, "Authenticate", 401),
            headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
        )

    def _twilio_create(self, handler: _Handler, at: float, account: str) -> None:
        fault, hold = self._draw_fault()
        if fault == "drop":
            self._count_fault(fault)
            self._record("twilio", "create", at, "drop")
            handler.reset()
            return
        raw = handler.read_body()
        if fault == "500":
            self._count_fault(fault)
            self._record("twilio", "create", at, "500")
            handler.answer_json(500, _twilio_error(20500, "Internal Server Error", 500))
            return
        if fault == "429":
            self._count_fault(fault)
            self._record("twilio", "create", at, "429")
            handler.answer_json(
                429, _twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "1"}
            )
            return
        if not self._twilio_authorized(handler, account):
            self._record("twilio", "create", at, "unauthorized")
            self._twilio_unauthorized(handler)
            return
        form = {key: values[-1] for key, values in parse_qs(raw.decode(errors="replace")).items()}
        to = form.get("To", "").strip()
        body = form.get("Body", "")
        sender = form.get("From") or None
        service = form.get("MessagingServiceSid") or None
        problem: tuple[int, str] | None = None
        if not to:
            problem = (21604, "A 'To' phone number is required.")
        elif not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            problem = (21602, "Message body is required.")
        elif not sender and not service:
            problem = (21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if problem is not None:
            self._record("twilio", "create", at, "bad_request")
            handler.answer_json(400, _twilio_error(problem[0], problem[1], 400))
            return

        now = datetime.now(UTC).replace(microsecond=0)
        record = _SmsRecord(
            seq=next(self._seq),
            sid=twilio_sid(),
            to=to,
            from_=sender,
            body=body,
            date_created=now,
            date_sent=now,
            messaging_service_sid=service,
            accepted_at=time.monotonic(),
        )
        callback = form.get("StatusCallback") or None
        outcome = fault or "accepted"
        with self._lock:
            self._sms[record.sid] = record
            self._accepted.append(
                Accepted(
                    channel="sms",
                    outbox_id=_outbox_id_from_url(callback),
                    to=to,
                    body=body,
                    subject=None,
                    provider_id=record.sid,
                    at=time.time(),
                )
            )
            self._requests.append(RequestRecord("twilio", "create", at, outcome))
            if fault:
                self._fault_counts[fault] += 1
        if callback and self.status_callbacks:
            self._schedule_status_callbacks(record, callback)
        if fault == "reset_after":
            handler.reset()
            return
        if fault == "timeout":
            self._stopping.wait(hold)
        payload = self._twilio_resource(record, time.monotonic())
        handler.answer_json(201, payload)

    def _twilio_resource(self, record: _SmsRecord, now: float) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{record.sid}"
        status = record.current_status(now)
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": record.body,
            "date_created": rfc2822(record.date_created),
            "date_sent": rfc2822(record.date_sent),
            "date_updated": rfc2822(record.date_sent),
            "direction": record.direction,
            "error_code": record.error_code,
            "error_message": record.error_message,
            "from": record.from_,
            "messaging_service_sid": record.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(sms_segments(record.body)),
            "price": record.price,
            "price_unit": "USD",
            "sid": record.sid,
            "status": status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": record.to,
            "uri": f"{base}.json",
        }

    def _twilio_fetch(self, handler: _Handler, at: float, account: str, sid: str) -> None:
        if not self._twilio_authorized(handler, account):
            self._record("twilio", "fetch", at, "unauthorized")
            self._twilio_unauthorized(handler)
            return
        with self._lock:
            record = self._sms.get(sid)
        if record is None:
            self._record("twilio", "fetch", at, "not_found")
            handler.answer_json(
                404, _twilio_error(20404, f"The requested resource {sid} was not found", 404)
            )
            return
        self._record("twilio", "fetch", at, "ok")
        handler.answer_json(200, self._twilio_resource(record, time.monotonic()))

    def _twilio_list(self, handler: _Handler, at: float, account: str, query: str) -> None:
        if not self._twilio_authorized(handler, account):
            self._record("twilio", "list", at, "unauthorized")
            self._twilio_unauthorized(handler)
            return
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        try:
            payload = self._list_page(account, params)
        except _BadRequest as exc:
            self._record("twilio", "list", at, "bad_request")
            handler.answer_json(400, _twilio_error(exc.code, exc.message, 400))
            return
        self._record("twilio", "list", at, "ok")
        handler.answer_json(200, payload)

    def _list_page(self, account: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            page_size = int(params.get("PageSize") or DEFAULT_PAGE_SIZE)
            page = int(params.get("Page") or 0)
        except ValueError:
            raise _BadRequest("PageSize and Page must be integers") from None
        if not 1 <= page_size <= MAX_PAGE_SIZE or page < 0:
            raise _BadRequest("PageSize must be 1-1000 and Page not negative")
        filters: list[tuple[str, datetime | date]] = []
        for key, op in (("DateSent", "="), ("DateSent>", ">"), ("DateSent<", "<")):
            if params.get(key):
                try:
                    filters.append((op, _parse_when(params[key])))
                except ValueError:
                    raise _BadRequest(f"Invalid {key}: {params[key]!r}") from None
        to = params.get("To")
        sender = params.get("From")
        token = params.get("PageToken")
        now = time.monotonic()
        with self._lock:
            chosen = [
                record
                for record in self._sms.values()
                if (not to or record.to == to)
                and (not sender or (record.from_ or SERVICE_FROM) == sender)
                and all(_matches_date(record.date_sent, op, when) for op, when in filters)
            ]
            chosen.sort(key=_SmsRecord.sort_key, reverse=True)  # newest first
            # PageToken "PA<sid>": the page starts after that message, so messages arriving
            # between two page requests neither shift nor repeat entries.
            anchor = self._sms.get(token[2:]) if token and token.startswith("PA") else None
            if anchor is not None:
                after = anchor.sort_key()
                rest = [record for record in chosen if record.sort_key() < after]
            else:
                rest = chosen[page * page_size :]
            items = rest[:page_size]
            messages = [self._twilio_resource(record, now) for record in items]
            more = len(rest) > page_size
        base = f"/2010-04-01/Accounts/{account}/Messages.json"
        filter_keys = ("To", "From", "DateSent", "DateSent<", "DateSent>")
        kept = {key: params[key] for key in filter_keys if params.get(key)}

        def page_uri(number: int, page_token: str | None = None) -> str:
            query = {**kept, "PageSize": str(page_size), "Page": str(number)}
            if page_token:
                query["PageToken"] = page_token
            return f"{base}?{urlencode(query)}"

        start = page * page_size
        return {
            "messages": messages,
            "page": page,
            "page_size": page_size,
            "start": start,
            "end": start + max(len(messages) - 1, 0),
            "uri": page_uri(page, token),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, "PA" + items[-1].sid) if more else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        }

    def _schedule_status_callbacks(self, record: _SmsRecord, url: str) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        accepted = time.monotonic()

        def post(status: str) -> None:
            if self._stopping.is_set():
                return
            params = {
                "MessageSid": record.sid,
                "SmsSid": record.sid,
                "AccountSid": self.account_sid,
                "From": record.from_ or SERVICE_FROM,
                "To": record.to,
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": API_VERSION,
            }
            if record.messaging_service_sid:
                params["MessagingServiceSid"] = record.messaging_service_sid
            signature = str(self._validator.compute_signature(url, params))
            self._post_webhook(
                "twilio",
                url,
                urlencode(params).encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                    "User-Agent": "TwilioProxy/1.1",
                },
            )
            if status == "sent":
                scheduler.at(accepted + DELIVERED_DELAY, lambda: post("delivered"))

        # "delivered" is scheduled once "sent" was posted, so the two never cross.
        scheduler.at(accepted + SENT_DELAY, lambda: post("sent"))

    def _post_webhook(self, provider: str, url: str, body: bytes, headers: dict[str, str]) -> str:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
                response.read()
            result = "ok"
        except urllib.error.HTTPError as exc:
            exc.close()
            result = "rejected"
        except (OSError, ValueError):  # URLError, resets, timeouts, a malformed URL
            result = "error"
        with self._lock:
            self._webhooks[f"{provider}_{result}"] += 1
        return result

    # -- SendGrid

    def _mail_send(self, handler: _Handler, at: float) -> None:
        fault, hold = self._draw_fault()
        if fault == "drop":
            self._count_fault(fault)
            self._record("sendgrid", "mail_send", at, "drop")
            handler.reset()
            return
        raw = handler.read_body()
        if fault == "500":
            self._count_fault(fault)
            self._record("sendgrid", "mail_send", at, "500")
            handler.answer_json(500, _sendgrid_errors("internal server error"))
            return
        if fault == "429":
            self._count_fault(fault)
            self._record("sendgrid", "mail_send", at, "429")
            handler.answer_json(
                429, _sendgrid_errors("too many requests"), headers={"Retry-After": "1"}
            )
            return
        expected = f"Bearer {self.sendgrid_key}"
        given = handler.headers.get("Authorization") or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self._record("sendgrid", "mail_send", at, "unauthorized")
            handler.answer_json(401, _sendgrid_errors("authorization required"))
            return
        try:
            mail = _parse_mail(raw)
        except _BadRequest as exc:
            self._record("sendgrid", "mail_send", at, "bad_request")
            handler.answer_json(400, _sendgrid_errors(exc.message, field=exc.field))
            return
        message_id = sendgrid_message_id()
        outcome = fault or "accepted"
        with self._lock:
            self._accepted.append(
                Accepted(
                    channel="email",
                    outbox_id=mail.outbox_id,
                    to=mail.to,
                    body=mail.body,
                    subject=mail.subject,
                    provider_id=message_id,
                    at=time.time(),
                )
            )
            self._requests.append(RequestRecord("sendgrid", "mail_send", at, outcome))
            if fault:
                self._fault_counts[fault] += 1
        if self.sendgrid_events_url and self.sendgrid_signing_key is not None:
            self._schedule_events(mail, message_id, self.sendgrid_events_url)
        if fault == "reset_after":
            handler.reset()
            return
        if fault == "timeout":
            self._stopping.wait(hold)
        handler.answer(202, headers={"X-Message-Id": message_id})

    def _schedule_events(self, mail: _Mail, message_id: str, url: str) -> None:
        scheduler = self._scheduler
        key = self.sendgrid_signing_key
        if scheduler is None or key is None:
            return
        accepted = time.monotonic()
        sg_message_id = (
            f"{message_id}.filter0001.{secrets.randbelow(99999)}.{secrets.token_hex(5).upper()}.0"
        )

        def post(kind: str, attempt: int = 0, item: dict[str, Any] | None = None) -> None:
            if self._stopping.is_set():
                return
            if item is None:
                item = {
                    "email": mail.to,
                    "timestamp": int(time.time()),
                    "event": kind,
                    "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16))
                    .decode()
                    .rstrip("="),
                    "sg_message_id": sg_message_id,
                    "smtp-id": f"<{message_id}@standin.sendgrid.net>",
                    **mail.custom_args,
                }
                if mail.categories:
                    item["category"] = mail.categories
                if kind == "delivered":
                    item["response"] = "250 OK"
            body = json.dumps([item]).encode()
            stamp = str(int(time.time()))
            signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            result = self._post_webhook(
                "sendgrid",
                url,
                body,
                {
                    "Content-Type": "application/json",
                    "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                    "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                    "User-Agent": "SendGrid Event API",
                },
            )
            if result != "ok" and attempt < SENDGRID_RETRIES:
                again = item
                scheduler.at(
                    time.monotonic() + min(2.0**attempt, 10.0),
                    lambda: post(kind, attempt + 1, again),
                )
            if kind == "processed" and attempt == 0:
                scheduler.at(accepted + DELIVERED_DELAY, lambda: post("delivered"))

        scheduler.at(accepted + SENT_DELAY, lambda: post("processed"))


# --- SendGrid request parsing ---------------------------------------------------------------


@dataclass(frozen=True)
class _Mail:
    to: str
    subject: str | None
    body: str
    outbox_id: int | None
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)


def _parse_mail(raw: bytes) -> _Mail:
    """The fields we record from a v3 Mail Send body; :class:`_BadRequest` if unusable."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise _BadRequest("Bad Request") from None
    if not isinstance(data, dict):
        raise _BadRequest("Bad Request")
    personalizations = data.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise _BadRequest("The personalizations field is required.", field="personalizations")
    first = personalizations[0] if isinstance(personalizations[0], dict) else {}
    recipients = first.get("to")
    to = ""
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict):
        to = str(recipients[0].get("email") or "")
    if not to:
        raise _BadRequest(
            "The to array is required for all personalization objects.",
            field="personalizations.0.to",
        )
    sender = data.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        raise _BadRequest("The from object must be provided for every email send.", field="from")
    subject = first.get("subject") or data.get("subject")
    body = ""
    for part in data.get("content") or []:
        if isinstance(part, dict) and part.get("type") == "text/plain":
            body = str(part.get("value") or "")
            break
    custom: dict[str, str] = {}
    top = data.get("custom_args")
    if isinstance(top, dict):
        custom.update({str(k): str(v) for k, v in top.items()})
    own = first.get("custom_args")
    if isinstance(own, dict):
        custom.update({str(k): str(v) for k, v in own.items()})
    outbox_id: int | None
    try:
        outbox_id = int(custom["message_id"]) if "message_id" in custom else None
    except ValueError:
        outbox_id = None
    categories = data.get("categories")
    return _Mail(
        to=to,
        subject=str(subject) if subject is not None else None,
        body=body,
        outbox_id=outbox_id,
        custom_args=custom,
        categories=[str(c) for c in categories] if isinstance(categories, list) else [],
    )


# --- small helpers ----------------------------------------------------------------------------


def _twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"{TWILIO_DOCS}{code}", "status": status}


def _sendgrid_errors(message: str, *, field: object = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field, "help": None}]}


def _outbox_id_from_url(url: str | None) -> int | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("mid")
    if not values:
        return None
    try:
        return int(values[-1])
    except ValueError:
        return None


# --- command line -----------------------------------------------------------------------------


def _load_signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit(f"{path}: not an elliptic-curve private key")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.standin", description="Twilio + SendGrid stand-in"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--sendgrid-key", required=True)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--fault-kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds"
    )
    parser.add_argument("--timeout-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--status-callbacks", action="store_true")
    parser.add_argument("--sendgrid-events-url")
    parser.add_argument(
        "--sendgrid-signing-key", help="PEM file holding the EC P-256 private key for events"
    )
    parser.add_argument("--dump", help="write the records here as JSON at exit")
    args = parser.parse_args(argv)

    faults = Faults(
        rate=args.fault_rate,
        kinds=tuple(kind.strip() for kind in args.fault_kinds.split(",") if kind.strip()),
        timeout_seconds=args.timeout_seconds,
        seed=args.seed,
    )
    key = _load_signing_key(args.sendgrid_signing_key) if args.sendgrid_signing_key else None
    standin = ProviderStandIn(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        sendgrid_key=args.sendgrid_key,
        faults=faults,
        status_callbacks=args.status_callbacks,
        sendgrid_events_url=args.sendgrid_events_url,
        sendgrid_signing_key=key,
        port=args.port,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin.start()
    print(f"STANDIN-URL {standin.url}", flush=True)
    while not done.wait(0.5):
        pass
    standin.stop()
    if args.dump:
        Path(args.dump).write_text(json.dumps(standin.dump(), indent=1))
    print(
        f"STANDIN-DONE accepted={len(standin.accepted())} requests={len(standin.requests())}",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
