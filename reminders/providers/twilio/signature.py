"""The one check of Twilio's ``X-Twilio-Signature`` on our webhooks (inbound SMS, status).

The signature covers the URL Twilio called and the form fields, keyed with the account's
auth token; the SDK's ``RequestValidator`` computes it, with the algorithm named in the
``X-Twilio-Webhooks-Signature-Settings`` header (HMAC-SHA1 when absent). The URL is ours as
configured (``REMINDERS_PUBLIC_URL`` + the path), never the request's Host, which a proxy
or an attacker sets. Without an auth token nothing is accepted: there is no unsigned mode.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from reminders.settings import Settings

SIGNATURE_HEADER = "X-Twilio-Signature"


def auth_token(settings: Settings) -> str:
    """The auth token that keys the signature; empty when none is configured."""
    return settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""


def signed_url(settings: Settings, path: str, query: str) -> str:
    """The URL Twilio signed: our public base URL, then the path and query it called."""
    url = settings.public_url.rstrip("/") + path
    return url + "?" + query if query else url


def request_signed(
    settings: Settings,
    *,
    path: str,
    query: str,
    params: ImmutableMultiDict[str, str],
    headers: Mapping[str, str],
) -> bool:
    """True when the request carries Twilio's signature for this URL and these form fields.
    ``headers`` must look names up case-insensitively (Starlette's do)."""
    token = auth_token(settings)
    signature = headers.get(SIGNATURE_HEADER, "")
    if not token or not signature:
        return False
    try:
        algorithm = get_signature_algorithm(headers.get(SIGNATURE_SETTINGS_HEADER))
        return bool(
            RequestValidator(token).validate(
                signed_url(settings, path, query), params, signature, algorithm=algorithm
            )
        )
    except (TypeError, ValueError):
        return False
