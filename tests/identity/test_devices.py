"""Device cookies (OWASP device-cookie lockout defence): valid only for the account they were
issued for, unaltered and unexpired; anything else names no device."""

from __future__ import annotations

import pytest

from bastion.identity.devices import COOKIE_NAME, DeviceCookies, cookie_header, device_cookie_key

NOW = 1_800_000_000
KEY = device_cookie_key(b"test-pepper-not-a-secret")


def test_a_cookie_names_its_device_for_its_account_whatever_the_case() -> None:
    """The issued value names one device (its nonce) for the account, typed in any case."""
    cookies = DeviceCookies(KEY)
    value = cookies.issue("Alice", NOW, 3600)

    device = cookies.device(value, "alice", NOW)

    assert device is not None
    assert value.split(".")[1] == device
    assert cookies.device(value, "ALICE", NOW + 3599) == device
    assert cookies.issue("alice", NOW, 3600) != value


def _altered(value: str, index: int, new: str) -> str:
    parts = value.split(".")
    parts[index] = new
    return ".".join(parts)


VALID = DeviceCookies(KEY).issue("alice", NOW, 3600)


@pytest.mark.parametrize(
    ("value", "account", "now"),
    [
        pytest.param(VALID, "mallory", NOW, id="another-account"),
        pytest.param(VALID, "alice", NOW + 3600, id="expired"),
        pytest.param(_altered(VALID, 2, str(NOW + 10**6)), "alice", NOW, id="expiry-extended"),
        pytest.param(_altered(VALID, 1, "A" * 22), "alice", NOW, id="nonce-swapped"),
        pytest.param(_altered(VALID, 3, "A" * 43), "alice", NOW, id="mac-forged"),
        pytest.param(_altered(VALID, 0, "v2"), "alice", NOW, id="other-version"),
        pytest.param(_altered(VALID, 2, "²"), "alice", NOW, id="non-ascii-digit"),
        pytest.param(VALID + ".x", "alice", NOW, id="five-parts"),
        pytest.param(VALID + "x" * 200, "alice", NOW, id="too-long"),
        pytest.param("", "alice", NOW, id="empty"),
        pytest.param(None, "alice", NOW, id="absent"),
        pytest.param("\x00é.🙂.1.x", "alice", NOW, id="garbage"),
    ],
)
def test_anything_but_a_valid_cookie_for_the_account_names_no_device(value, account, now) -> None:
    """Another account's, expired, altered or malformed values are no device (the attempt is untrusted)."""
    assert DeviceCookies(KEY).device(value, account, now) is None


def test_a_cookie_made_under_another_key_names_no_device() -> None:
    """Only the server's secret makes a valid cookie: one under another secret is refused."""
    forged = DeviceCookies(device_cookie_key(b"another secret")).issue("alice", NOW, 3600)

    assert DeviceCookies(KEY).device(forged, "alice", NOW) is None
    assert device_cookie_key(b"test-pepper-not-a-secret") != b"test-pepper-not-a-secret"


def test_the_cookie_is_host_prefixed_secure_httponly_and_lax() -> None:
    """Like the session cookie: `__Host-`, Secure, HttpOnly, SameSite=Lax, Path=/."""
    assert COOKIE_NAME == "__Host-bastion-device"
    assert cookie_header("v", 60) == "__Host-bastion-device=v; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
