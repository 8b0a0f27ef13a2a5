"""The SMTP adapter against a real local SMTP server (aiosmtpd), with AUTH and TLS."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reminders.dispatch.ics import session_ics
from reminders.providers.base import OutgoingMessage, PermanentError, TransientError
from reminders.providers.smtp.send import Security, SmtpProvider
from tests.providers.conftest import free_port

ADDRESS = "ana.diaz@example.com"
UNSUBSCRIBE = "https://clinic.example.org/unsubscribe/tok.en"
USER, PASSWORD = "clinic", "s3cret-pass"


class Handler:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


@pytest.fixture(params=["starttls", "ssl", "none"])
def smtp_server(
    request: pytest.FixtureRequest, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> Iterator[tuple[Handler, SmtpProvider]]:
    security: Security = request.param
    server_ctx, client_ctx = tls
    handler = Handler()
    port = free_port()
    # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS (ssl) is encrypted all along.
    kwargs: dict[str, Any] = {
        "authenticator": authenticator,
        "auth_require_tls": security == "starttls",
    }
    if security == "starttls":
        kwargs.update(tls_context=server_ctx, require_starttls=True)
    elif security == "ssl":
        kwargs.update(ssl_context=server_ctx)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    provider = SmtpProvider(
        host="127.0.0.1",
        port=port,
        username=USER,
        password=PASSWORD,
        security=security,
        from_email="reminders@clinic.example.org",
        from_name="Lakeside",
        rate_per_second=0,
        timeout=5,
        ssl_context=client_ctx,
    )
    yield handler, provider
    controller.stop()


def reminder_email() -> OutgoingMessage:
    ics = session_ics(
        session_id="s1",
        starts_at=dt.datetime(2026, 12, 1, 14, tzinfo=dt.UTC),
        duration_minutes=60,
        summary="Appointment at Lakeside",
        location_name="Downtown",
        location_address="1 Main St",
        tz=ZoneInfo("America/New_York"),
        clinic_name="Lakeside",
    )
    return OutgoingMessage(
        message_id=9,
        channel="email",
        to=ADDRESS,
        subject="Tu cita mañana",
        body="Hola Ana, te esperamos mañana a las 9:00.",
        html="<p>Hola Ana, te esperamos <b>mañana</b>.</p>",
        rule="reminder-1d",
        kind="reminder",
        attachments=(ics,),
        unsubscribe_url=UNSUBSCRIBE,
    )


def test_sends_the_full_mime_message(smtp_server: tuple[Handler, SmtpProvider]) -> None:
    handler, provider = smtp_server
    provider_id = provider.send(reminder_email())
    [(rcpts, raw)] = handler.received
    assert rcpts == [ADDRESS]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == provider_id and provider_id.endswith("@clinic.example.org>")
    assert parsed["Subject"] == "Tu cita mañana"
    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["X-Reminders-Message-Id"] == "9"
    assert parsed.get_content_type() == "multipart/mixed"
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None and "mañana a las 9:00" in text.get_content()
    assert html is not None and "<b>mañana</b>" in html.get_content()
    [ics] = list(parsed.iter_attachments())
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_param("method") == "PUBLISH"
    assert ics.get_filename() == "session.ics"
    assert "DTSTART;TZID=America/New_York:20261201T090000" in ics.get_content()


def test_refused_recipient_is_a_permanent_invalid_address(
    smtp_server: tuple[Handler, SmtpProvider],
) -> None:
    handler, provider = smtp_server
    handler.refuse[ADDRESS] = "550 5.1.1 No such user"
    with pytest.raises(PermanentError) as info:
        provider.send(reminder_email())
    assert (info.value.code, info.value.effect) == ("550", "invalid_address")
    assert handler.received == []


def test_a_greylisted_recipient_is_transient(smtp_server: tuple[Handler, SmtpProvider]) -> None:
    handler, provider = smtp_server
    handler.refuse[ADDRESS] = "451 4.7.1 Try again later"
    with pytest.raises(TransientError) as info:
        provider.send(reminder_email())
    assert info.value.code == "451"


def test_wrong_password_is_permanent(smtp_server: tuple[Handler, SmtpProvider]) -> None:
    _, provider = smtp_server
    provider.password = "wrong"
    with pytest.raises(PermanentError) as info:
        provider.send(reminder_email())
    assert info.value.code == "535"


def test_no_server_is_transient() -> None:
    provider = SmtpProvider(
        host="127.0.0.1",
        port=free_port(),
        security="none",
        from_email="r@clinic.example.org",
        rate_per_second=0,
        timeout=2,
    )
    with pytest.raises(TransientError) as info:
        provider.send(reminder_email())
    assert info.value.code == "connection"


def test_starttls_required_but_not_offered_is_permanent() -> None:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        provider = SmtpProvider(
            host="127.0.0.1",
            port=port,
            security="starttls",
            from_email="r@clinic.example.org",
            rate_per_second=0,
            timeout=5,
        )
        with pytest.raises(PermanentError) as info:
            provider.send(reminder_email())
        assert info.value.code == "unsupported"
        assert handler.received == []  # never falls back to plain text
    finally:
        controller.stop()
