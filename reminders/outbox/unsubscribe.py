"""Email unsubscribe tokens: opaque, signed, revocable.

A token carries the patient id, a random token id (for revocation) and a keyed hash of
the address the email went to, never the address itself (URLs end up in proxy logs and
browser histories). Unsubscribing opts out the patient's current email address only if it
is still the one the token was made for.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.db.models import RevokedToken
from reminders.settings import Settings

SALT = "reminders.unsubscribe.v1"
UNSUBSCRIBE_PATH = "/unsubscribe/"


@dataclass(frozen=True)
class UnsubscribeToken:
    token_id: str
    patient_id: str
    address_tag: str


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key_value(), salt=SALT)


def address_tag(settings: Settings, address: str) -> str:
    key = settings.secret_key_value().encode()
    return hmac.new(
        key, b"unsubscribe-address:" + address.strip().lower().encode(), hashlib.sha256
    ).hexdigest()[:24]


def make_token(settings: Settings, *, patient_id: str, address: str) -> str:
    payload = {"t": secrets.token_urlsafe(12), "p": patient_id, "a": address_tag(settings, address)}
    return str(_serializer(settings).dumps(payload))


def unsubscribe_url(settings: Settings, *, patient_id: str, address: str) -> str:
    return (
        settings.public_url.rstrip("/")
        + UNSUBSCRIBE_PATH
        + make_token(settings, patient_id=patient_id, address=address)
    )


def read_token(
    settings: Settings, token: str, *, db: Session | None = None
) -> UnsubscribeToken | None:
    """The token's content, or None when forged, malformed or (given ``db``) revoked."""
    try:
        payload = _serializer(settings).loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    token_id, patient_id, tag = payload.get("t"), payload.get("p"), payload.get("a")
    if not (isinstance(token_id, str) and isinstance(patient_id, str) and isinstance(tag, str)):
        return None
    if db is not None and db.get(RevokedToken, token_id) is not None:
        return None
    return UnsubscribeToken(token_id=token_id, patient_id=patient_id, address_tag=tag)


def token_matches_address(settings: Settings, token: UnsubscribeToken, address: str | None) -> bool:
    return bool(address) and hmac.compare_digest(
        token.address_tag, address_tag(settings, address or "")
    )


def revoke_token(settings: Settings, token: str, *, db: Session) -> bool:
    """Make a token stop working (the caller commits). False if it was not a valid token."""
    content = read_token(settings, token)
    if content is None:
        return False
    if db.get(RevokedToken, content.token_id) is None:
        try:
            with db.begin_nested():
                db.add(RevokedToken(token_id=content.token_id))
        except IntegrityError:  # revoked concurrently: same outcome
            pass
    return True


def unsubscribe_headers(url: str | None) -> dict[str, str]:
    """RFC 2369 / RFC 8058 one-click unsubscribe headers (empty without a URL)."""
    if not url:
        return {}
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
