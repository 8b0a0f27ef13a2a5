"""The provider stand-in (tests/standin.py) behaves like Twilio and SendGrid for the real SDKs.

Every test drives the official ``twilio`` / ``sendgrid`` SDKs (through the project's
providers) against :class:`tests.standin.ProviderStandIn`: messages are created, listed
with Twilio's filters and paging, refused without the right credentials, and each injected
fault shows up client-side as the exception the SDK raises for that failure, with the
message accepted or not as the fault says.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from reminders.providers.base import (
    OutcomeUnknown,
    OutgoingMessage,
    ProviderError,
    TransientError,
)
from reminders.providers.sendgrid.send import SendGridProvider, build_mail
from reminders.providers.sendgrid.webhooks import verify_sendgrid_signature
from reminders.providers.twilio.send import TwilioProvider
from tests.standin import Faults, ProviderStandIn, max_in_window

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "AC" + "0" * 32
TOKEN = "standin-auth-token"
SG_KEY = "SG.standin-key"
FROM = "+15005550006"
PHONE_A = "+14105550101"
PHONE_B = "+14105550102"
PHONE_C = "+14105550103"
ADDRESS = "ana.diaz@example.com"
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
SID = re.compile(r"^SM[0-9a-f]{32}$")
# Short client timeouts, and a held answer well past them, for the "timeout" fault.
CLIENT_TIMEOUT = 0.3
HOLD = 1.0


def twilio(
    base_url: str, *, public_url: str = "http://127.0.0.1:9", token: str = TOKEN
) -> TwilioProvider:
    return TwilioProvider(
        account_sid=ACCOUNT,
        auth_token=token,
        public_url=public_url,
        from_number=FROM,
        base_url=base_url,
        rate_per_second=0,
        timeout=CLIENT_TIMEOUT,
    )


def sendgrid(base_url: str, *, key: str = SG_KEY) -> SendGridProvider:
    return SendGridProvider(
        api_key=key,
        from_email="reminders@clinic.example.org",
        base_url=base_url,
        rate_per_second=0,
        timeout=CLIENT_TIMEOUT,
    )


def sms(
    message_id: int, to: str = PHONE_A, body: str = "See you tomorrow at 9:00."
) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id, channel="sms", to=to, body=body)


def email(message_id: int) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        channel="email",
        to=ADDRESS,
        subject="Your appointment tomorrow",
        body="Hello Ana, see you tomorrow at 9:00.",
        html="<p>Hello Ana</p>",
    )


def last_payload(provider: TwilioProvider) -> Any:
    response = provider.http.last_response
    assert response is not None
    return json.loads(response.text)


@pytest.fixture
def standin() -> Iterator[ProviderStandIn]:
    with ProviderStandIn(account_sid=ACCOUNT, auth_token=TOKEN, sendgrid_key=SG_KEY) as server:
        yield server


# --- a receiver for the callbacks -------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.arrived:
                    outer.hooks.append(Hook(self.path, dict(self.headers), body))
                    outer.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Hook]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.hooks) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return list(self.hooks)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


# --- Twilio: create -------------------------------------------------------------------------


def test_create_answers_a_spec_shaped_message_and_records_it(standin: ProviderStandIn) -> None:
    provider = twilio(standin.url)
    before = datetime.now(UTC).replace(microsecond=0)
    sid = provider.send(sms(42))
    assert SID.match(sid)

    raw = provider.http.last_response
    assert raw is not None and raw.status_code == 201
    resource = json.loads(raw.text)
    spec = json.loads((ROOT / "tests/specs/twilio_api_v2010.json").read_text())
    fields = spec["components"]["schemas"]["api.v2010.account.message"]["properties"]
    assert set(resource) == set(fields)
    assert resource["sid"] == sid
    assert resource["account_sid"] == ACCOUNT
    assert (resource["to"], resource["from"], resource["body"]) == (
        PHONE_A,
        FROM,
        "See you tomorrow at 9:00.",
    )
    assert resource["status"] == "queued"
    assert resource["direction"] == "outbound-api"
    assert resource["api_version"] == "2010-04-01"
    assert resource["num_segments"] == "1"
    assert resource["error_code"] is None
    assert resource["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
    for name in ("date_created", "date_updated", "date_sent"):
        assert RFC2822.match(resource[name]), resource[name]
    sent = parsedate_to_datetime(resource["date_sent"])
    assert before <= sent <= datetime.now(UTC)

    [record] = standin.accepted()
    assert (record.channel, record.outbox_id, record.to, record.provider_id) == (
        "sms",
        42,
        PHONE_A,
        sid,
    )
    assert record.subject is None and record.body == "See you tomorrow at 9:00."
    assert standin.received_counts() == {42: 1}
    assert [(r.provider, r.kind, r.outcome) for r in standin.requests()] == [
        ("twilio", "create", "accepted")
    ]


def test_segments_follow_the_encoding(standin: ProviderStandIn) -> None:
    client = twilio(standin.url).client
    assert client.messages.create(to=PHONE_A, from_=FROM, body="x" * 160).num_segments == "1"
    assert client.messages.create(to=PHONE_A, from_=FROM, body="x" * 161).num_segments == "2"
    assert client.messages.create(to=PHONE_A, from_=FROM, body="ñ" * 70).num_segments == "1"
    assert client.messages.create(to=PHONE_A, from_=FROM, body="✓" * 71).num_segments == "2"


def test_bad_credentials_are_refused(standin: ProviderStandIn) -> None:
    with pytest.raises(TwilioRestException) as refused:
        twilio(standin.url, token="wrong").client.messages.create(to=PHONE_A, from_=FROM, body="x")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    with pytest.raises(TwilioException) as listing:  # a list page answers the base class
        twilio(standin.url, token="wrong").client.messages.list()
    assert listing.value.args[1].status_code == 401

    with pytest.raises(UnauthorizedError) as sg_refused:
        sendgrid(standin.url, key="SG.wrong").sg.send(
            build_mail(email(1), from_email="a@example.org")
        )
    assert json.loads(sg_refused.value.body)["errors"][0]["message"]

    # The right credentials, but another account's path.
    other = f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
    answer = twilio(standin.url).client.request(
        "POST", other, data={"To": PHONE_A, "From": FROM, "Body": "x"}
    )
    assert answer.status_code == 401 and json.loads(answer.text)["code"] == 20003

    assert standin.accepted() == []
    assert [r.outcome for r in standin.requests()] == ["unauthorized"] * 4


def test_missing_fields_are_refused_like_twilio_and_sendgrid(standin: ProviderStandIn) -> None:
    provider = twilio(standin.url)
    with pytest.raises(TwilioRestException) as no_body:
        provider.client.messages.create(to=PHONE_A, from_=FROM)
    assert (no_body.value.status, no_body.value.code) == (400, 21602)
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    no_to = provider.client.request("POST", url, data={"Body": "x", "From": FROM})
    assert no_to.status_code == 400 and json.loads(no_to.text)["code"] == 21604

    with pytest.raises(BadRequestsError):
        sendgrid(standin.url).sg.client.mail.send.post(
            request_body={"personalizations": [], "from": {"email": "a@example.org"}}
        )
    assert standin.accepted() == []
    assert [r.outcome for r in standin.requests()] == ["bad_request"] * 3


# --- Twilio: list -----------------------------------------------------------------------------


def test_list_filters_by_recipient_and_pages_through_everything(standin: ProviderStandIn) -> None:
    provider = twilio(standin.url)
    sids_a = [provider.send(sms(i, PHONE_A, f"a{i}")) for i in range(1, 6)]
    sids_b = [provider.send(sms(i, PHONE_B, f"b{i}")) for i in range(6, 8)]

    listed = provider.client.messages.list(to=PHONE_A, page_size=2)
    assert [m.sid for m in listed] == list(reversed(sids_a))  # newest first, across 3 pages
    lists = [r for r in standin.requests() if r.kind == "list"]
    assert len(lists) == 3 and {r.outcome for r in lists} == {"ok"}

    everything = provider.client.messages.list(page_size=3)
    assert {m.sid for m in everything} == set(sids_a + sids_b)
    assert provider.client.messages.list(to=PHONE_C) == []

    first = provider.client.messages.page(to=PHONE_A, page_size=2)
    payload = last_payload(provider)
    assert (payload["page"], payload["page_size"], payload["start"], payload["end"]) == (0, 2, 0, 1)
    assert payload["previous_page_uri"] is None and payload["next_page_uri"]
    assert payload["first_page_uri"].startswith(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?")
    seen = [m.sid for m in first]
    # A message arriving between two page requests neither repeats nor hides an entry.
    newer = provider.send(sms(99, PHONE_A, "late"))
    page: Any = first.next_page()
    while page is not None:
        seen.extend(m.sid for m in page)
        last = last_payload(provider)
        page = page.next_page()
    assert last["next_page_uri"] is None
    assert seen == list(reversed(sids_a)) and newer not in seen


def test_list_filters_by_date_sent(standin: ProviderStandIn) -> None:
    client = twilio(standin.url).client
    day1 = standin.add_message(
        to=PHONE_C, body="d1", date_sent=datetime(2026, 3, 1, 10, tzinfo=UTC)
    )
    day2 = standin.add_message(
        to=PHONE_C, body="d2", date_sent=datetime(2026, 3, 2, 10, tzinfo=UTC)
    )
    day3 = standin.add_message(
        to=PHONE_C, body="d3", date_sent=datetime(2026, 3, 3, 10, tzinfo=UTC)
    )
    other = standin.add_message(
        to=PHONE_B, body="b", date_sent=datetime(2026, 3, 2, 11, tzinfo=UTC)
    )

    def sids(**filters: Any) -> list[str]:
        return [m.sid for m in client.messages.list(to=PHONE_C, page_size=2, **filters)]

    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert sids() == [day3, day2, day1]
    assert sids(date_sent_after=at) == [day3, day2]  # on or after
    assert sids(date_sent_after=at + timedelta(seconds=1)) == [day3]
    assert sids(date_sent_before=at) == [day2, day1]  # on or before
    assert sids(date_sent_before=at - timedelta(seconds=1)) == [day1]
    assert sids(date_sent_after=at, date_sent_before=at) == [day2]
    # A bare date compares by day (the SDK passes strings through unchanged).
    assert sids(date_sent_after="2026-03-02") == [day3, day2]
    assert sids(date_sent_before="2026-03-02") == [day2, day1]
    assert sids(date_sent="2026-03-02") == [day2]
    assert sids(date_sent=datetime(2026, 3, 2, 23, tzinfo=UTC)) == [day2]  # same day
    assert other not in sids()
    listed = client.messages.list(to=PHONE_C, date_sent=datetime(2026, 3, 1, tzinfo=UTC))
    assert [(m.body, m.status, m.date_sent) for m in listed] == [
        ("d1", "delivered", datetime(2026, 3, 1, 10, tzinfo=UTC))
    ]

    # Messages sent now are found by the reconciliation-style query.
    provider = twilio(standin.url)
    fresh = provider.send(sms(5, PHONE_C))
    recent = provider.client.messages.list(
        to=PHONE_C, date_sent_after=datetime.now(UTC) - timedelta(minutes=5)
    )
    assert [m.sid for m in recent] == [fresh]
    assert standin.accepted()[0].provider_id == fresh  # seeded messages are not "accepted"
    assert len(standin.accepted()) == 1


# --- SendGrid ---------------------------------------------------------------------------------


def test_mail_send_is_accepted_and_recorded(standin: ProviderStandIn) -> None:
    provider = sendgrid(standin.url)
    message_id = provider.send(email(7))
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", message_id)
    [record] = standin.accepted()
    assert (record.channel, record.outbox_id, record.to, record.provider_id) == (
        "email",
        7,
        ADDRESS,
        message_id,
    )
    assert record.subject == "Your appointment tomorrow"
    assert record.body == "Hello Ana, see you tomorrow at 9:00."
    assert standin.received_counts("email") == {7: 1} and standin.received_counts("sms") == {}
    assert [(r.provider, r.kind, r.outcome) for r in standin.requests()] == [
        ("sendgrid", "mail_send", "accepted")
    ]


# --- faults -----------------------------------------------------------------------------------

# kind -> (the exception the SDK raises, accepted by the provider?)
TWILIO_FAULTS: dict[str, tuple[type[BaseException], bool]] = {
    "500": (TwilioRestException, False),
    "429": (TwilioRestException, False),
    "timeout": (requests.exceptions.ReadTimeout, True),
    "drop": (requests.exceptions.ConnectionError, False),
    "reset_after": (requests.exceptions.ConnectionError, True),
}
# urllib raises a reset as it is: while sending (URLError), or reading the answer (reset / closed).
SG_RESET = (urllib.error.URLError, ConnectionError, http.client.HTTPException)
SENDGRID_FAULTS: dict[str, tuple[Any, bool]] = {
    "500": (InternalServerError, False),
    "429": (TooManyRequestsError, False),
    "timeout": (TimeoutError, True),
    "drop": (SG_RESET, False),
    "reset_after": (SG_RESET, True),
}


def _is_rst(error: object) -> bool:
    """ECONNRESET itself, not a timeout. On a loaded machine the client sometimes reads the
    end of the stream before the RST arrives and reports a clean close (RemoteDisconnected):
    the same thing to the sender, which cannot tell whether the request was taken either way."""
    return type(error) in (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


def _reset_cause(exc: BaseException) -> bool:
    """A requests ConnectionError caused by a connection reset (RST)."""
    inner = exc.args[0] if exc.args else None
    return any(_is_rst(reason) for reason in getattr(inner, "args", ()))


@pytest.mark.parametrize("kind", list(TWILIO_FAULTS))
def test_twilio_faults(standin: ProviderStandIn, kind: str) -> None:
    sdk_error, accepted = TWILIO_FAULTS[kind]
    outcome_unknown = kind == "timeout"
    standin.set_faults(Faults(rate=1.0, kinds=(kind,), timeout_seconds=HOLD))
    provider = twilio(standin.url)

    started = time.monotonic()
    with pytest.raises(sdk_error) as raised:
        provider.client.messages.create(
            to=PHONE_A,
            from_=FROM,
            body="x",
            status_callback="http://127.0.0.1:9/webhooks/twilio/status?mid=11",
        )
    elapsed = time.monotonic() - started
    if kind in ("500", "429"):
        assert isinstance(raised.value, TwilioRestException)
        assert (raised.value.status, raised.value.code) == (int(kind), 20000 + int(kind))
    if kind == "429":
        last = provider.http.last_response
        assert last is not None and last.headers["Retry-After"] == "1"
    if kind in ("drop", "reset_after"):
        assert _reset_cause(raised.value), repr(raised.value)
        assert elapsed < HOLD / 2
    if kind == "timeout":
        assert CLIENT_TIMEOUT <= elapsed < HOLD

    # The same fault through the project's provider: worth retrying (or in doubt).
    with pytest.raises(ProviderError) as through_provider:
        provider.send(sms(12))
    assert not through_provider.value.permanent
    if kind == "429":
        assert through_provider.value.retry_after == 1.0
    if outcome_unknown:
        assert isinstance(through_provider.value, OutcomeUnknown)

    outcomes = [r.outcome for r in standin.requests()]
    assert outcomes == [kind, kind]
    assert standin.fault_counts() == {kind: 2}
    expected = {11: 1, 12: 1} if accepted else {}
    assert standin.received_counts("sms") == expected

    standin.set_faults(Faults())
    listed = {m.to for m in provider.client.messages.list(to=PHONE_A)}
    assert listed == ({PHONE_A} if accepted else set())
    assert len(provider.client.messages.list()) == (2 if accepted else 0)


@pytest.mark.parametrize("kind", list(SENDGRID_FAULTS))
def test_sendgrid_faults(standin: ProviderStandIn, kind: str) -> None:
    sdk_error, accepted = SENDGRID_FAULTS[kind]
    outcome_unknown = kind == "timeout"
    standin.set_faults(Faults(rate=1.0, kinds=(kind,), timeout_seconds=HOLD))
    provider = sendgrid(standin.url)

    started = time.monotonic()
    with pytest.raises(sdk_error) as raised:
        provider.sg.send(build_mail(email(21), from_email="a@example.org"))
    elapsed = time.monotonic() - started
    if kind == "429":
        assert raised.value.headers["Retry-After"] == "1"
    if kind == "500":
        assert json.loads(raised.value.body)["errors"]
    if kind in ("drop", "reset_after"):
        reason = getattr(raised.value, "reason", raised.value)
        assert _is_rst(reason), repr(raised.value)
        assert elapsed < HOLD / 2
    if kind == "timeout":
        assert CLIENT_TIMEOUT <= elapsed < HOLD

    with pytest.raises(ProviderError) as through_provider:
        provider.send(email(22))
    assert not through_provider.value.permanent
    if kind == "429":
        assert through_provider.value.retry_after == 1.0
    if outcome_unknown:
        assert isinstance(through_provider.value, OutcomeUnknown)

    assert [r.outcome for r in standin.requests()] == [kind, kind]
    assert standin.fault_counts() == {kind: 2}
    assert standin.received_counts("email") == ({21: 1, 22: 1} if accepted else {})


def _outcomes(seed: int, count: int) -> list[str]:
    with ProviderStandIn(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        sendgrid_key=SG_KEY,
        faults=Faults(rate=0.5, kinds=("500", "429"), seed=seed),
    ) as server:
        provider = twilio(server.url)
        for i in range(count):
            with contextlib.suppress(TransientError):
                provider.send(sms(i + 1))
        return [r.outcome for r in server.requests()]


def test_fault_rate_is_seeded() -> None:
    first = _outcomes(seed=3, count=40)
    assert first == _outcomes(seed=3, count=40)
    assert first != _outcomes(seed=4, count=40)
    faulted = sum(outcome != "accepted" for outcome in first)
    assert 8 <= faulted <= 32, first  # ~20 of 40
    assert {"500", "429", "accepted"} == set(first)


def test_faults_hit_send_requests_only(standin: ProviderStandIn) -> None:
    provider = twilio(standin.url)
    provider.send(sms(1))
    standin.set_faults(Faults(rate=1.0, kinds=("500",)))
    assert len(provider.client.messages.list()) == 1  # lists are never faulted
    with pytest.raises(TransientError):
        provider.send(sms(2))
    standin.set_faults(Faults(rate=0.0))
    provider.send(sms(3))
    assert [(r.kind, r.outcome) for r in standin.requests()] == [
        ("create", "accepted"),
        ("list", "ok"),
        ("create", "500"),
        ("create", "accepted"),
    ]
    assert standin.received_counts() == {1: 1, 3: 1}


def test_faults_are_validated() -> None:
    with pytest.raises(ValueError):
        Faults(rate=1.5)
    with pytest.raises(ValueError):
        Faults(rate=0.5, kinds=("explode",))


# --- max_per_window -------------------------------------------------------------------------


def test_max_in_window_for_known_times() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([5.0], 1.0) == 1
    # Closed-open: [0, 1) holds 0.0 and 0.5 but not 1.0.
    assert max_in_window([0.0, 0.5, 1.0], 1.0) == 2
    assert max_in_window([1.3, 0.0, 0.2, 0.4, 1.0, 1.1, 1.2], 1.0) == 5  # [0.4, 1.4)
    assert max_in_window([0.0, 0.2, 0.4, 1.0, 1.1, 1.2, 1.3], 0.25) == 3  # [1.0, 1.25)
    assert max_in_window([0.0, 0.0, 0.0], 0.001) == 3
    assert max_in_window([0.0, 10.0, 20.0], 10.0) == 1


def test_max_per_window_counts_send_requests_of_one_provider(standin: ProviderStandIn) -> None:
    sms_provider = twilio(standin.url)
    mail_provider = sendgrid(standin.url)
    for i in range(3):
        sms_provider.send(sms(i + 1))
    standin.set_faults(Faults(rate=1.0, kinds=("500",)))
    with pytest.raises(TransientError):
        sms_provider.send(sms(4))  # faulted requests count too
    standin.set_faults(Faults())
    sms_provider.client.messages.list()  # lists do not
    mail_provider.send(email(9))
    time.sleep(0.6)
    sms_provider.send(sms(5))
    sms_provider.send(sms(6))

    assert standin.max_per_window("twilio", 0.5) == 4
    assert standin.max_per_window("twilio", 60.0) == 6
    assert standin.max_per_window("sendgrid", 60.0) == 1
    times = [r.at for r in standin.requests() if r.kind == "create"]
    assert standin.max_per_window("twilio", 0.5) == max_in_window(times, 0.5)


# --- callbacks --------------------------------------------------------------------------------


def test_status_callbacks_arrive_signed(receiver: Receiver) -> None:
    with ProviderStandIn(
        account_sid=ACCOUNT, auth_token=TOKEN, sendgrid_key=SG_KEY, status_callbacks=True
    ) as server:
        provider = twilio(server.url, public_url=receiver.url)
        sid = provider.send(sms(42))
        hooks = receiver.wait_for(2)
        assert server.wait_callbacks(5.0)
        assert server.webhook_counts() == {"twilio_ok": 2}
        [listed] = provider.client.messages.list(to=PHONE_A)
        assert listed.status == "delivered"

    assert [h.path for h in hooks] == ["/webhooks/twilio/status?mid=42"] * 2
    forms = [dict(parse_qsl(h.body.decode())) for h in hooks]
    assert [f["MessageStatus"] for f in forms] == ["sent", "delivered"]
    for hook, form in zip(hooks, forms, strict=True):
        assert form["MessageSid"] == form["SmsSid"] == sid
        assert form["AccountSid"] == ACCOUNT
        assert (form["To"], form["From"]) == (PHONE_A, FROM)
        assert form["SmsStatus"] == form["MessageStatus"]
        assert form["ApiVersion"] == "2010-04-01"
        url = receiver.url + hook.path
        signature = hook.headers["X-Twilio-Signature"]
        assert RequestValidator(TOKEN).validate(url, form, signature)
        assert not RequestValidator("another-token").validate(url, form, signature)
        assert not RequestValidator(TOKEN).validate(url, {**form, "MessageStatus": "x"}, signature)


def test_status_callbacks_to_nowhere_are_counted() -> None:
    with ProviderStandIn(
        account_sid=ACCOUNT, auth_token=TOKEN, sendgrid_key=SG_KEY, status_callbacks=True
    ) as server:
        twilio(server.url, public_url="http://127.0.0.1:9").send(sms(1))
        assert server.wait_callbacks(5.0)
        assert server.webhook_counts() == {"twilio_error": 2}
        assert server.received_counts() == {1: 1}


def test_sendgrid_events_arrive_signed(receiver: Receiver) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    with ProviderStandIn(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        sendgrid_key=SG_KEY,
        sendgrid_events_url=receiver.url + "/webhooks/sendgrid/events",
        sendgrid_signing_key=key,
    ) as server:
        x_message_id = sendgrid(server.url).send(email(7))
        hooks = receiver.wait_for(2)
        assert server.wait_callbacks(5.0)
        assert server.webhook_counts() == {"sendgrid_ok": 2}

    assert [h.path for h in hooks] == ["/webhooks/sendgrid/events"] * 2
    events = [json.loads(h.body) for h in hooks]
    assert [[e["event"] for e in batch] for batch in events] == [["processed"], ["delivered"]]
    flat = [batch[0] for batch in events]
    assert len({e["sg_event_id"] for e in flat}) == 2
    for item in flat:
        assert item["email"] == ADDRESS
        assert item["message_id"] == "7"
        assert item["sg_message_id"].startswith(x_message_id + ".filter0001")
        assert isinstance(item["timestamp"], int)
    for hook in hooks:
        signature = hook.headers["X-Twilio-Email-Event-Webhook-Signature"]
        stamp = hook.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
        assert verify_sendgrid_signature(
            public, signature=signature, timestamp=stamp, body=hook.body
        )
        assert not verify_sendgrid_signature(
            public, signature=signature, timestamp=stamp, body=hook.body + b" "
        )


# --- the command line -------------------------------------------------------------------------


def test_command_line_serves_until_sigterm_and_dumps(tmp_path: Path) -> None:
    dump = tmp_path / "records.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.standin",
            "--account-sid",
            ACCOUNT,
            "--auth-token",
            TOKEN,
            "--sendgrid-key",
            SG_KEY,
            "--fault-rate",
            "0.0",
            "--dump",
            str(dump),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("STANDIN-URL "), line
        url = line.split()[1]
        sid = twilio(url).send(sms(5))
        sendgrid(url).send(email(6))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = json.loads(dump.read_text())
    assert [(a["channel"], a["outbox_id"]) for a in records["accepted"]] == [
        ("sms", 5),
        ("email", 6),
    ]
    assert records["accepted"][0]["provider_id"] == sid
    assert [r["outcome"] for r in records["requests"]] == ["accepted", "accepted"]
