"""Private signing keys at rest: AES-256-GCM under the key-encryption key, kid bound as associated data."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from bastion.keys import KeyEncryptor, generate_key_encryption_key
from bastion.keys.material import load_private_pem, public_jwk
from bastion.store import signing_keys
from tests.conftest import TEST_KEK

PLAINTEXT = b"-----BEGIN PRIVATE KEY-----\nnot really a key\n-----END PRIVATE KEY-----\n"


def test_round_trip():
    """What is encrypted for a kid decrypts for that kid."""
    encryptor = KeyEncryptor(TEST_KEK)

    assert encryptor.decrypt(encryptor.encrypt(PLAINTEXT, "kid-1"), "kid-1") == PLAINTEXT


def test_ciphertext_hides_the_key_and_is_fresh_each_time():
    """The stored blob never contains the PEM, and a random nonce makes every encryption different."""
    encryptor = KeyEncryptor(TEST_KEK)
    first, second = encryptor.encrypt(PLAINTEXT, "kid-1"), encryptor.encrypt(PLAINTEXT, "kid-1")

    assert first != second
    assert b"PRIVATE KEY" not in first
    assert first[:12] != second[:12]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), id="tag-bit-flipped"),
        pytest.param(lambda blob: blob[:20] + bytes([blob[20] ^ 1]) + blob[21:], id="ciphertext-bit-flipped"),
        pytest.param(lambda blob: bytes([blob[0] ^ 1]) + blob[1:], id="nonce-bit-flipped"),
        pytest.param(lambda blob: blob[:-16], id="tag-cut-off"),
        pytest.param(lambda blob: blob[:10], id="truncated"),
    ],
)
def test_tampered_blob_is_refused(damage):
    """Any change to nonce, ciphertext or tag fails authentication."""
    encryptor = KeyEncryptor(TEST_KEK)
    blob = encryptor.encrypt(PLAINTEXT, "kid-1")

    with pytest.raises(ValueError, match="cannot decrypt signing key kid-1"):
        encryptor.decrypt(damage(blob), "kid-1")


def test_kid_is_bound_to_the_ciphertext():
    """A blob moved to another kid's row does not decrypt (associated data)."""
    encryptor = KeyEncryptor(TEST_KEK)
    blob = encryptor.encrypt(PLAINTEXT, "kid-1")

    with pytest.raises(ValueError, match="cannot decrypt signing key kid-2: wrong key_encryption_key"):
        encryptor.decrypt(blob, "kid-2")


def test_wrong_key_encryption_key_is_refused():
    """Another KEK cannot decrypt, and says so."""
    blob = KeyEncryptor(TEST_KEK).encrypt(PLAINTEXT, "kid-1")

    with pytest.raises(ValueError, match="wrong key_encryption_key"):
        KeyEncryptor(generate_key_encryption_key()).decrypt(blob, "kid-1")


@pytest.mark.parametrize(
    ("kek", "message"),
    [
        pytest.param(base64.urlsafe_b64encode(b"k" * 16).decode(), "exactly 32 bytes", id="16-bytes"),
        pytest.param(base64.urlsafe_b64encode(b"k" * 31).decode(), "exactly 32 bytes", id="31-bytes"),
        pytest.param(base64.urlsafe_b64encode(b"k" * 33).decode(), "exactly 32 bytes", id="33-bytes"),
        pytest.param("", "exactly 32 bytes", id="empty"),
        pytest.param("a", "key_encryption_key must", id="not-base64"),
    ],
)
def test_key_encryption_key_must_be_32_bytes_base64url(kek, message):
    """The KEK is 32 bytes of base64url (AES-256); anything else is refused at start."""
    with pytest.raises(ValueError, match=message):
        KeyEncryptor(kek)


def test_padded_and_unpadded_keks_are_the_same_key():
    """base64url with or without padding names the same key."""
    padded = base64.urlsafe_b64encode(b"z" * 32).decode()
    blob = KeyEncryptor(padded).encrypt(PLAINTEXT, "kid")

    assert KeyEncryptor(padded.rstrip("=")).decrypt(blob, "kid") == PLAINTEXT


def test_generated_keks_are_fresh_256_bit_keys():
    """generate_key_encryption_key gives 32 random bytes, base64url without padding."""
    keks = {generate_key_encryption_key() for _ in range(5)}

    assert len(keks) == 5
    for kek in keks:
        assert "=" not in kek
        assert len(base64.urlsafe_b64decode(kek + "=")) == 32


@pytest.mark.anyio
async def test_stored_signing_keys_are_encrypted_at_rest(ctx):
    """In the database (both kinds) each private key is an AES-GCM blob that decrypts to the published key."""
    rows = await signing_keys.list_all(ctx.database)
    encryptor = KeyEncryptor(TEST_KEK)

    assert {row.alg for row in rows} >= {"ES256", "RS256"}
    for row in rows:
        assert b"PRIVATE KEY" not in row.private_key
        with pytest.raises(ValueError, match="wrong key_encryption_key"):
            KeyEncryptor(generate_key_encryption_key()).decrypt(row.private_key, row.kid)
        private = load_private_pem(encryptor.decrypt(row.private_key, row.kid))
        assert public_jwk(private, row.alg) == json.loads(row.public_jwk)
        assert "d" not in json.loads(row.public_jwk)
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert (
            jwt.PyJWK(json.loads(row.public_jwk)).key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == pem
        )
