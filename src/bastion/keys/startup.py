"""The secrets the server needs before it serves: the key-encryption key, the client-secret
pepper, and an active signing key for access tokens and for ID tokens.

Development mode (SQLite in the data directory, loopback issuer) generates what is missing, with
a warning; anywhere else these must be configured, and start-up refuses with the fix.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys

from bastion.config import ConfigError, Settings
from bastion.keys import lifecycle
from bastion.keys.encryption import KeyEncryptor, generate_key_encryption_key
from bastion.protocol.jose import DEFAULT_ID_TOKEN_ALGORITHM
from bastion.store import Database


def _development_secret(settings: Settings, name: str, make: str) -> str:
    path = settings.data_dir / "secrets" / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    # Created 0600 (never readable by others, not even between a write and a chmod).
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        handle.write(make)
    print(f"warning: development mode: generated {name} into {path}; never use it in production", file=sys.stderr)
    return make


def key_encryptor(settings: Settings) -> KeyEncryptor:
    """AES-256-GCM under `key_encryption_key` for private keys and TOTP secrets at rest."""
    if settings.key_encryption_key is not None:
        value = settings.key_encryption_key.reveal()
    elif settings.development_mode:
        value = _development_secret(settings, "key_encryption_key", generate_key_encryption_key())
    else:
        raise ConfigError(
            "key_encryption_key",
            "is required outside development mode",
            "set BASTION_KEY_ENCRYPTION_KEY to 32 random bytes in base64url "
            '(python3 -c "import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())")',
        )
    try:
        return KeyEncryptor(value)
    except ValueError as exc:
        raise ConfigError("key_encryption_key", str(exc), "generate a new 32-byte base64url key") from exc


def client_secret_pepper(settings: Settings) -> bytes:
    """The key of the client-secret HMACs."""
    if settings.client_secret_pepper is not None:
        return settings.client_secret_pepper.reveal().encode()
    if settings.development_mode:
        made = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        return _development_secret(settings, "client_secret_pepper", made).encode()
    raise ConfigError(
        "client_secret_pepper",
        "is required outside development mode",
        "set BASTION_CLIENT_SECRET_PEPPER to a long random string (it keys the client-secret hashes)",
    )


async def prepare_signing_keys(settings: Settings, database: Database, encryptor: KeyEncryptor) -> None:
    """An active key for access tokens and for ID tokens: created in development mode, required
    (start-up refuses, naming the command) anywhere else."""
    # OpenID Connect Core §15.1: RS256 ID tokens are always available.
    needed = (settings.access_token_algorithm, DEFAULT_ID_TOKEN_ALGORITHM)
    if settings.development_mode:
        await lifecycle.ensure_active(database, encryptor, needed)
    missing = await lifecycle.inactive(database, needed)
    if missing:
        fix = f"run `bastion keys rotate --alg {missing[0]}` with the same database"
        raise ConfigError("signing keys", f"no active {missing[0]} signing key", fix)
    # Refused here rather than as a server_error at the first token: a database restored or
    # moved without the key-encryption key its keys were made with.
    locked = await lifecycle.undecryptable(database, encryptor, needed)
    if locked:
        raise ConfigError(
            "key_encryption_key",
            f"cannot decrypt {len(locked)} signing key(s) (kid {locked[0]}) with this key",
            "set BASTION_KEY_ENCRYPTION_KEY to the key they were made with (a restored database needs "
            "the original server's)",
        )
