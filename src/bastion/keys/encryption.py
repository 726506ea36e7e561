"""Private keys at rest: AES-256-GCM under the key-encryption key (BASTION_KEY_ENCRYPTION_KEY)."""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def generate_key_encryption_key() -> str:
    """A new 256-bit key-encryption key, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


class KeyEncryptor:
    """Encrypts and decrypts private key material; the kid is bound as associated data."""

    def __init__(self, key_encryption_key: str) -> None:
        try:
            raw = base64.urlsafe_b64decode(key_encryption_key + "=" * (-len(key_encryption_key) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("key_encryption_key must be base64url") from exc
        if len(raw) != 32:
            raise ValueError("key_encryption_key must encode exactly 32 bytes (AES-256)")
        self._aead = AESGCM(raw)

    def encrypt(self, plaintext: bytes, kid: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, blob: bytes, kid: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kid.encode())
        except InvalidTag as exc:
            raise ValueError(f"cannot decrypt signing key {kid}: wrong key_encryption_key?") from exc
