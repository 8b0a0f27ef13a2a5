from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reminders.templates.sms import (
    GSM_BASIC,
    GSM_EXTENDED,
    SmsInfo,
    is_gsm7,
    smart_encode,
    sms_info,
)

BASIC = sorted(GSM_BASIC)
EXTENDED = sorted(GSM_EXTENDED)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsInfo("GSM-7", 0, 0)),
        ("a", SmsInfo("GSM-7", 1, 1)),
        ("a" * 160, SmsInfo("GSM-7", 160, 1)),
        ("a" * 161, SmsInfo("GSM-7", 161, 2)),
        ("a" * 306, SmsInfo("GSM-7", 306, 2)),
        ("a" * 307, SmsInfo("GSM-7", 307, 3)),
        ("€", SmsInfo("GSM-7", 2, 1)),
        ("€" * 80, SmsInfo("GSM-7", 160, 1)),
        ("€" * 81, SmsInfo("GSM-7", 162, 2)),
        ("ñandú", SmsInfo("UCS-2", 5, 1)),  # ú is not GSM-7
        ("Mañana", SmsInfo("GSM-7", 6, 1)),  # ñ is in the basic table
        ("á", SmsInfo("UCS-2", 1, 1)),
        ("😀", SmsInfo("UCS-2", 2, 1)),
        ("á" * 70, SmsInfo("UCS-2", 70, 1)),
        ("á" * 71, SmsInfo("UCS-2", 71, 2)),
        ("á" * 134, SmsInfo("UCS-2", 134, 2)),
        ("á" * 135, SmsInfo("UCS-2", 135, 3)),
    ],
)
def test_known_examples(text: str, expected: SmsInfo) -> None:
    assert sms_info(text) == expected


def test_escape_pair_is_not_split_across_segments() -> None:
    # 152 septets then a 2-septet '€': it cannot straddle, so it opens segment 2.
    assert sms_info("a" * 152 + "€" + "a" * 151).segments == 2  # [152 a] [€ + 151 a]
    text = "a" * 152 + "€" + "a" * 152  # 306 units: division says 2, but the pair moved
    assert sms_info(text).units == 306
    assert sms_info(text).segments == 3


def test_surrogate_pair_is_not_split() -> None:
    text = "á" * 66 + "😀" + "á" * 66  # 134 units but the emoji cannot straddle 67
    assert sms_info(text).units == 134
    assert sms_info(text).segments == 3


@given(st.text(alphabet=st.sampled_from(BASIC), max_size=1000))
def test_basic_gsm_text_segments(text: str) -> None:
    info = sms_info(text)
    assert info.encoding == "GSM-7"
    assert info.units == len(text)
    expected = 0 if not text else 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert info.segments == expected


@given(st.text(alphabet=st.sampled_from(BASIC + EXTENDED), max_size=800))
def test_extension_chars_cost_two(text: str) -> None:
    info = sms_info(text)
    assert info.encoding == "GSM-7"
    assert info.units == len(text) + sum(ch in GSM_EXTENDED for ch in text)
    if info.units:
        assert info.segments >= (1 if info.units <= 160 else math.ceil(info.units / 153))
        # packing wastes at most one septet per segment
        assert info.segments <= max(1, math.ceil(info.units / 152))


@given(st.text(min_size=1, max_size=600))
def test_any_text_is_consistent(text: str) -> None:
    info = sms_info(text)
    assert info.segments >= 1
    if info.encoding == "UCS-2":
        assert not is_gsm7(text)
        assert info.units == len(text.encode("utf-16-le")) // 2
        per = 70 if info.units <= 70 else 67
        assert info.segments >= math.ceil(info.units / per)
    else:
        assert is_gsm7(text)


@given(st.text(max_size=300))
def test_smart_encode_only_helps(text: str) -> None:
    encoded = smart_encode(text)
    assert is_gsm7(encoded) or encoded == text
    if is_gsm7(text):
        assert encoded == text


def test_smart_encode_spanish_and_punctuation() -> None:
    assert (
        smart_encode("Su sesión es el miércoles a las 9:00")
        == "Su sesion es el miércoles a las 9:00"
    )
    assert smart_encode("It’s “today” — 9:00\u202fAM…") == 'It\'s "today" - 9:00 AM...'
    assert smart_encode("sesión 😀") == "sesión 😀"  # UCS-2 anyway: keep the accents
