"""SMS encoding and segment counting (GSM 03.38 / 3GPP TS 23.038).

A message is GSM-7 when every character is in the GSM basic table or its extension table
(an extension character costs two septets: ESC + the character); otherwise the whole
message is sent as UCS-2 and counted in UTF-16 code units (an emoji outside the BMP
costs two). A single segment holds 160 septets / 70 UTF-16 units; a concatenated
message loses room to the UDH and holds 153 / 67 per segment. Carriers never split an
escape sequence or a surrogate pair across segments, so segments are packed greedily
character by character rather than by dividing the total.

Empty text counts as **0 segments**: there is nothing to send (Twilio refuses an empty
body), and 0 lets callers tell "empty" from "one segment". Anything non-empty is at
least 1 segment.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# The GSM 03.38 basic character set (ESC, 0x1B, is left out: it is not a character).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets.
GSM_EXTENDED = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int

    def line(self) -> str:
        plural = "" if self.segments == 1 else "s"
        unit = "septets" if self.encoding == "GSM-7" else "UTF-16 units"
        return f"{self.encoding}, {self.units} {unit}, {self.segments} segment{plural}"


def is_gsm7(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text)


def _gsm_cost(ch: str) -> int:
    return 2 if ch in GSM_EXTENDED else 1


def _ucs2_cost(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def sms_info(text: str) -> SmsInfo:
    """Encoding, size and segment count of ``text`` as a carrier would bill it."""
    if is_gsm7(text):
        encoding: Encoding = "GSM-7"
        costs = [_gsm_cost(ch) for ch in text]
        single, multi = GSM_SINGLE, GSM_MULTI
    else:
        encoding = "UCS-2"
        costs = [_ucs2_cost(ch) for ch in text]
        single, multi = UCS2_SINGLE, UCS2_MULTI
    units = sum(costs)
    if units == 0:
        return SmsInfo(encoding, 0, 0)
    if units <= single:
        return SmsInfo(encoding, units, 1)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:  # never split an escape pair or a surrogate pair
            segments += 1
            used = 0
        used += cost
    return SmsInfo(encoding, units, segments)


# Look-alikes outside GSM-7 that have a plain GSM-7 equivalent (what Twilio calls
# "smart encoding"): typographic punctuation and odd spaces.
_PUNCTUATION = {
    "\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u2002": " ",
    "\u2003": " ", "\u200b": "", "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u2010": "-", "\u2011": "-",
    "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-", "\u2026": "...",
    "\u2022": "-", "\u00b7": "-", "\u00ab": '"', "\u00bb": '"', "\t": " ",
}  # fmt: skip


def _plain(ch: str) -> str:
    if ch in GSM_BASIC or ch in GSM_EXTENDED:
        return ch
    if ch in _PUNCTUATION:
        return _PUNCTUATION[ch]
    # Accented letters: drop the accent when the base letter is GSM-7 (á -> a, ç -> c).
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return base if base and is_gsm7(base) else ch


def smart_encode(text: str) -> str:
    """``text`` made GSM-7 by replacing look-alikes, or ``text`` unchanged if that cannot work.

    One character outside GSM-7 (an emoji, a Cyrillic letter) turns the whole message into
    UCS-2 and more than halves a segment's room; replacing typographic quotes, dashes and
    accents that have a GSM-7 base keeps common Spanish and English text GSM-7. When
    something irreplaceable remains the message is UCS-2 anyway, so the original is kept.
    """
    if is_gsm7(text):
        return text
    plain = "".join(_plain(ch) for ch in text)
    return plain if is_gsm7(plain) else text
