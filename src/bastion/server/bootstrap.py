"""Start-up: database, development secrets, initial keys. Shared by `serve` and the CLI.

Development mode (SQLite in the data directory, loopback issuer) generates what is missing (the
key-encryption key, the client-secret pepper, the first signing keys) with a warning. Anywhere
else those must be configured, and start-up refuses with the fix.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time
from pathlib import Path

from bastion.config import ConfigError, Settings
from bastion.keys import KeyEncryptor, generate_key_encryption_key, generate_signing_key
from bastion.keys.keyring import KeySchedule, active_schedule
from bastion.keys.material import private_pem
from bastion.store import Database, signing_keys
from bastion.store.signing_keys import SigningKeyRow


def _dev_secret(settings: Settings, name: str, make: str) -> str:
    path = settings.data_dir / "secrets" / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    path.write_text(make, encoding="utf-8")
    os.chmod(path, 0o600)
    print(f"warning: development mode: generated {name} into {path}; never use it in production", file=sys.stderr)
    return make


def key_encryptor(settings: Settings) -> KeyEncryptor:
    if settings.key_encryption_key is not None:
        value = settings.key_encryption_key.reveal()
    elif settings.development_mode:
        value = _dev_secret(settings, "key_encryption_key", generate_key_encryption_key())
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
    if settings.client_secret_pepper is not None:
        return settings.client_secret_pepper.reveal().encode()
    if settings.development_mode:
        made = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        return _dev_secret(settings, "client_secret_pepper", made).encode()
    raise ConfigError(
        "client_secret_pepper",
        "is required outside development mode",
        "set BASTION_CLIENT_SECRET_PEPPER to a long random string (it keys the client-secret hashes)",
    )


async def add_signing_key(database: Database, encryptor: KeyEncryptor, alg: str, activates_at: int) -> str:
    key, jwk = generate_signing_key(alg)
    kid = str(jwk["kid"])
    now = int(time.time())
    await signing_keys.insert(
        database,
        SigningKeyRow(
            kid=kid,
            alg=alg,
            private_key=encryptor.encrypt(private_pem(key), kid),
            public_jwk=json.dumps(jwk),
            created_at=now,
            activates_at=activates_at,
            retired_at=None,
        ),
    )
    return kid


async def key_schedules(database: Database) -> list[KeySchedule]:
    """Every stored key as the key ring schedules it, in the order they start signing."""
    return [
        KeySchedule(key.kid, key.alg, json.loads(key.public_jwk), key.activates_at, key.retired_at)
        for key in await signing_keys.list_all(database)
    ]


async def ensure_development_keys(settings: Settings, database: Database, encryptor: KeyEncryptor) -> list[str]:
    """In development mode, create an active key for each algorithm that lacks one."""
    created = []
    now = int(time.time())
    schedules = await key_schedules(database)
    for alg in dict.fromkeys((settings.access_token_algorithm, "RS256")):
        if active_schedule(schedules, alg, now) is None:
            created.append(await add_signing_key(database, encryptor, alg, now))
    return created


async def require_signing_key(settings: Settings, database: Database) -> None:
    """Refuse to start without an active key for access tokens and for ID tokens (RS256, OIDC)."""
    schedules = await key_schedules(database)
    for alg in dict.fromkeys((settings.access_token_algorithm, "RS256")):
        if active_schedule(schedules, alg, int(time.time())) is None:
            raise ConfigError(
                "signing keys",
                f"no active {alg} signing key",
                f"run `bastion keys rotate --alg {alg}` with the same database",
            )


def record_issuer(settings: Settings) -> None:
    """Remember the issuer in the data directory so CLI commands on the same data know it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Path(settings.data_dir / "issuer").write_text(settings.issuer + "\n", encoding="utf-8")
