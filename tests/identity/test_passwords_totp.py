"""Password hashing and policy, TOTP and recovery codes (identity, sans server)."""

from __future__ import annotations

import pytest

from bastion.identity import recovery, totp
from bastion.identity.passwords import OWASP, PasswordHasher, WeakPassword, check_password_policy

pytestmark = pytest.mark.anyio

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        pytest.param("short", "the password must be at least 10 characters", id="too-short"),
        pytest.param("password123", "this password is too common; choose another", id="common"),
        pytest.param("QWERTYUIOP", "this password is too common; choose another", id="common-any-case"),
        pytest.param("alice-the-user", "the password must not be the username or email address", id="username"),
        pytest.param("x" * 257, "the password must be at most 256 characters", id="too-long"),
    ],
)
def test_password_policy_refuses(password, message):
    """Short, common, personal and overlong passwords are refused with a precise message."""
    with pytest.raises(WeakPassword) as caught:
        check_password_policy(password, username="alice-the-user")
    assert str(caught.value) == message


def test_owasp_parameters_are_production_default():
    """The default profile is Argon2id at OWASP's m=19 MiB, t=2, p=1."""
    hasher = PasswordHasher()
    try:
        stored = hasher.hash_now("a long and unusual passphrase")
    finally:
        hasher.close()
    assert OWASP == {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_verify_and_rehash_when_parameters_change():
    """A hash made at other parameters verifies and comes back rehashed at the current ones."""
    cheap, strong = PasswordHasher("testing"), PasswordHasher("owasp")
    try:
        old = await cheap.hash("a long and unusual passphrase")
        verdict = await strong.verify(old, "a long and unusual passphrase")
        wrong = await strong.verify(old, "another long passphrase")
        unknown = await strong.verify(None, "a long and unusual passphrase")
    finally:
        cheap.close()
        strong.close()
    assert verdict.matched
    assert verdict.new_hash is not None
    assert verdict.new_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not wrong.matched
    assert not unknown.matched


def test_totp_accepts_one_step_either_side_only():
    """A code verifies within one 30 s step of drift, not two."""
    now = 1_700_000_000.0
    code = totp.current_code(SECRET, now)

    assert totp.matching_step(SECRET, code, now + 30) == int(now // 30)
    assert totp.matching_step(SECRET, code, now - 30) == int(now // 30)
    assert totp.matching_step(SECRET, code, now + 60) is None


def test_totp_refuses_replay_of_used_step():
    """A code for a step already used (or earlier) is refused (RFC 6238 §5.2)."""
    now = 1_700_000_000.0
    code = totp.current_code(SECRET, now)
    step = int(now // 30)

    assert totp.matching_step(SECRET, code, now, last_step=step) is None
    assert totp.matching_step(SECRET, code, now, last_step=step - 1) == step


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", ""])
def test_totp_malformed_codes(code):
    """Codes that are not six digits never match."""
    assert totp.matching_step(SECRET, code) is None


def test_qr_svg_is_inline_svg_without_script():
    """The QR code is an inline SVG element with no XML declaration or script."""
    svg = totp.qr_svg(totp.provisioning_uri(SECRET, "alice", "Bastion"))
    assert svg.startswith("<svg")
    assert "<script" not in svg


def test_recovery_codes_are_ten_distinct_and_hash_normalised():
    """Ten distinct codes; hashing ignores case, spaces and dashes."""
    codes = recovery.generate_codes()
    assert len(set(codes)) == 10
    assert recovery.hash_code(codes[0]) == recovery.hash_code(codes[0].upper().replace("-", " "))


@pytest.mark.parametrize(("idle", "every"), [(1800, 60), (7200, 60), (600, 30), (40, 2), (10, 1), (1, 1)])
def test_session_use_is_written_every_twentieth_of_the_idle_timeout_within_1_to_60_seconds(idle, every):
    from bastion.identity.sessions import Timeouts

    assert Timeouts(idle, 86400).touch_every == every
