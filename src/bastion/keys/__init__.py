"""Signing keys: generation, encryption at rest, rotation and the published JWKS.

A new key is published for `key_prepublication` seconds before it signs, so resource servers
that cache the JWKS already know it; a superseded or retired key stays published until every
token it signed has expired. Several processes agree on the active key because the schedule is
data in the database, not state in a process.
"""

from bastion.keys.encryption import KeyEncryptor, generate_key_encryption_key
from bastion.keys.keyring import KeyRing, KeySchedule, SigningKey
from bastion.keys.material import generate_signing_key

__all__ = [
    "KeyEncryptor",
    "KeyRing",
    "KeySchedule",
    "SigningKey",
    "generate_key_encryption_key",
    "generate_signing_key",
]
