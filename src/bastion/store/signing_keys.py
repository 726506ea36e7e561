"""Signing keys (`signing_keys`): the only address of those rows. The private key is stored
encrypted under the key-encryption key with the kid bound as associated data; the key ring
(`bastion.keys`) turns these records into its schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update

from bastion.store._sql import Executor, Sql, inserting, record, records, rows, values
from bastion.store.models import signing_keys


@dataclass(slots=True, frozen=True)
class SigningKeyRow:
    kid: str
    alg: str
    private_key: bytes = field(repr=False)  # AES-GCM(nonce || ciphertext) under the KEK
    public_jwk: str  # JSON
    created_at: int
    activates_at: int
    retired_at: int | None


_by_kid = signing_keys.c.kid == bindparam("kid")

_GET = Sql(select(signing_keys).where(_by_kid), "kid")
_ALL = Sql(select(signing_keys).order_by(signing_keys.c.activates_at))
_OF_ALG = Sql(select(signing_keys).where(signing_keys.c.alg == bindparam("alg")), "alg")
_INSERT = inserting(signing_keys)
_RETIRE = Sql(update(signing_keys).where(_by_kid).values(retired_at=bindparam("now")), "kid", "now")


async def get(on: Executor, kid: str) -> SigningKeyRow | None:
    return await record(on, _GET, SigningKeyRow, kid)


async def list_all(on: Executor) -> list[SigningKeyRow]:
    """Every key, in the order they start signing."""
    return await records(on, _ALL, SigningKeyRow)


async def of_alg(on: Executor, alg: str) -> list[SigningKeyRow]:
    return await records(on, _OF_ALG, SigningKeyRow, alg)


async def insert(on: Executor, key: SigningKeyRow) -> None:
    await rows(on, _INSERT, *values(key))


async def retire(on: Executor, kid: str, now: int) -> None:
    """Stop the key signing at `now` (it stays published while its tokens live)."""
    await rows(on, _RETIRE, kid, now)
