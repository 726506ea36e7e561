"""RFC 8628 rules without I/O: user codes (alphabet, format, normalisation), device codes, and
the polling interval with `slow_down`."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protocol.rfc8628 import (
    SLOW_DOWN_INCREMENT,
    USER_CODE_ALPHABET,
    PollTiming,
    format_user_code,
    generate_device_code,
    generate_user_code,
    normalize_user_code,
    poll_timing,
    user_code_space,
)

codes = st.text(alphabet=USER_CODE_ALPHABET, min_size=8, max_size=8)


def test_alphabet_is_the_twenty_consonants_of_section_6_1():
    """The alphabet is RFC 8628 §6.1's base-20 set: consonants only, no vowels, no digits."""
    assert USER_CODE_ALPHABET == "BCDFGHJKLMNPQRSTVWXZ"
    assert not set(USER_CODE_ALPHABET) & set("AEIOUY0123456789")


def test_code_space_makes_guessing_hopeless():
    """20^8 codes: at 10 guesses a minute for the 10-minute lifetime, one live code is found with odds < 1e-8."""
    assert user_code_space() == 20**8
    assert math.log2(user_code_space()) > 34
    assert 10 * 10 / user_code_space() < 1e-8


def test_generated_user_code_uses_the_alphabet():
    """A generated code is 8 characters from the alphabet and formats as XXXX-XXXX."""
    code = generate_user_code()

    assert len(code) == 8
    assert set(code) <= set(USER_CODE_ALPHABET)
    assert format_user_code(code) == f"{code[:4]}-{code[4:]}"


def test_generated_user_code_draws_each_character_uniformly():
    """Each character is drawn with `randbelow(20)`: an injected source maps index to letter."""
    draws = iter([0, 19, 1, 18, 2, 17, 3, 16])

    assert generate_user_code(lambda n: next(draws)) == "BZCXDWFV"


def test_device_code_has_256_bits():
    """A device code is 32 random bytes in URL-safe base64 (43 characters), different each time."""
    first, second = generate_device_code(), generate_device_code()

    assert len(first) == 43
    assert first != second


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("BCDF-GHJK", "BCDFGHJK", id="as-shown"),
        pytest.param("bcdf-ghjk", "BCDFGHJK", id="lower-case"),
        pytest.param("bcdfghjk", "BCDFGHJK", id="no-dash"),
        pytest.param(" BCDF GHJK ", "BCDFGHJK", id="spaces"),
        pytest.param("B-C-D-F-G-H-J-K", "BCDFGHJK", id="many-dashes"),
        pytest.param("bcdf\u2013ghjk", "BCDFGHJK", id="en-dash"),
    ],
)
def test_normalize_accepts_what_people_type(typed, expected):
    """Case, dashes (also typographic ones) and spaces are ignored (RFC 8628 §6.1)."""
    assert normalize_user_code(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("", id="empty"),
        pytest.param("BCDF-GHJ", id="7-chars"),
        pytest.param("BCDF-GHJKL", id="9-chars"),
        pytest.param("BCDA-GHJK", id="vowel"),
        pytest.param("BCD1-GHJK", id="digit"),
        pytest.param("BCDF_GHJK", id="underscore"),
        pytest.param("\uff22CDF-GHJK", id="full-width"),
    ],
)
def test_normalize_rejects_what_cannot_be_a_code(typed):
    """Anything that is not 8 alphabet characters after normalisation is None."""
    assert normalize_user_code(typed) is None


@given(codes, st.sampled_from(["", "-", " ", "--"]), st.booleans())
def test_normalize_round_trips_any_code(code, separator, lower):
    """Any code, however a person spaces or cases it, normalises back to itself."""
    typed = code[:4] + separator + code[4:]
    assert normalize_user_code(typed.lower() if lower else typed) == code
    assert normalize_user_code(format_user_code(code)) == code


@given(st.text(max_size=40))
def test_normalize_never_fails(typed):
    """Arbitrary input yields None or a valid code, never an exception."""
    result = normalize_user_code(typed)
    assert result is None or (len(result) == 8 and set(result) <= set(USER_CODE_ALPHABET))


@pytest.mark.parametrize(
    ("last_poll_ms", "interval", "now_ms", "expected"),
    [
        pytest.param(None, 5, 1_000_000, PollTiming(False, 5), id="first-poll-never-early"),
        pytest.param(1_000_000, 5, 1_005_000, PollTiming(False, 5), id="exactly-the-interval"),
        pytest.param(1_000_000, 5, 1_004_999, PollTiming(True, 10), id="one-ms-early"),
        pytest.param(1_000_000, 5, 1_000_000, PollTiming(True, 10), id="same-instant"),
        pytest.param(1_000_000, 10, 1_007_000, PollTiming(True, 15), id="after-a-slow-down"),
        pytest.param(1_000_000, 1, 1_000_999, PollTiming(True, 6), id="one-second-interval"),
        pytest.param(1_000_000, 1, 1_060_000, PollTiming(False, 1), id="late-is-fine"),
    ],
)
def test_poll_timing(last_poll_ms, interval, now_ms, expected):
    """A poll sooner than the interval after the previous one is slow_down with 5 s more (RFC 8628 §3.5)."""
    assert poll_timing(last_poll_ms=last_poll_ms, interval=interval, now_ms=now_ms) == expected


def test_slow_down_increments_accumulate():
    """Each early poll adds 5 seconds for this and all later polls."""
    interval, last, now = 5, 0, 0
    for _ in range(3):
        now += 1000
        timing = poll_timing(last_poll_ms=last, interval=interval, now_ms=now)
        assert timing.slow_down
        interval, last = timing.interval, now

    assert interval == 5 + 3 * SLOW_DOWN_INCREMENT


def test_generated_codes_do_not_repeat_in_practice():
    """Ten thousand generated codes are all distinct (collisions are retried by the server anyway)."""
    rng = random.Random(8628)
    generated = {generate_user_code(rng.randrange) for _ in range(10_000)}

    assert len(generated) == 10_000
