"""Twilio error codes (https://www.twilio.com/docs/api/errors) and what they say: about
the recipient (opted out, a number that cannot get SMS), or that a retry can help."""

from __future__ import annotations

# Error codes (https://www.twilio.com/docs/api/errors) and what they say about the recipient.
OPTED_OUT_CODES = frozenset({"21610"})  # the recipient replied STOP
INVALID_ADDRESS_CODES = frozenset(
    {
        "21211",  # invalid 'To' phone number
        "21214",  # 'To' number cannot be reached
        "21217",  # phone number does not appear to be valid
        "21401",  # invalid phone number
        "21407",  # this phone number type does not support SMS
        "21408",  # permission to send to this region not enabled
        "21421",  # phone number is invalid
        "21612",  # 'To' number is not currently reachable via SMS
        "21614",  # 'To' number is not a valid mobile number
        "21635",  # 'To' number cannot be a landline
    }
)
TRANSIENT_CODES = frozenset({"20429", "20500", "20503"})  # too many requests, internal, unavailable

# Delivery-failure codes (30xxx, reported in callbacks) meaning the number itself is no good.
# 30003 (handset unreachable) is left out on purpose: phones are switched off for a while.
CALLBACK_INVALID_NUMBER_CODES = frozenset({"30005", "30006"}) | INVALID_ADDRESS_CODES
