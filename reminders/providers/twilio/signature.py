"""The one check of Twilio's ``X-Twilio-Signature`` on our webhooks (inbound SMS, status).

The signature covers the URL Twilio called and the form fields, keyed with the account's
auth token; the SDK's ``RequestValidator`` computes it, with the algorithm named in the
``X-Twilio-Webhooks-Signature-Settings`` header (HMAC-SHA1 when absent). The URL is ours as
configured (``REMINDERS_PUBLIC_URL`` + the path), never the request's Host, which a proxy
or an attacker sets. Without an auth token nothing is accepted: there is no unsigned mode.

The signature concatenates the sorted keys and values with nothing between them, and a key
given twice with the same value counts once; so the same signature fits other cuts of the
same characters into fields. Twilio's own requests have each key once, and keys that are
letters and digits only (``MessageSid``, ``MediaUrl0``...): a form with a repeated key or any
other key is refused here. The webhooks check the fields they rely on for the rest (see
:mod:`reminders.providers.twilio.webhooks`).

:func:`signed_form` parses a (size-bounded) body and checks it: CPU work, which the webhooks
run in a thread so that it never holds up the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from reminders.settings import Settings

SIGNATURE_HEADER = "X-Twilio-Signature"
TWILIO_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
MAX_FORM_FIELDS = 200  # Twilio's forms have a few dozen at most (an MMS: two per media)


def twilio_shaped(params: ImmutableMultiDict[str, str]) -> bool:
    """Each key once, and each key a name like Twilio's (letters and digits)."""
    keys = [key for key, _ in params.multi_items()]
    return len(keys) == len(set(keys)) and all(TWILIO_KEY.fullmatch(key) for key in keys)


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
    if not token or not signature or not twilio_shaped(params):
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


def signed_form(
    settings: Settings, *, raw: bytes, path: str, query: str, headers: Mapping[str, str]
) -> ImmutableMultiDict[str, str] | str:
    """The form fields of a request Twilio signed, or why not: ``"malformed"`` (not UTF-8,
    too many fields) or ``"bad_signature"``. Parses and computes HMACs: run it in a thread."""
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        return "malformed"
    params: ImmutableMultiDict[str, str] = ImmutableMultiDict(pairs)
    if not request_signed(settings, path=path, query=query, params=params, headers=headers):
        return "bad_signature"
    return params
