"""Fixtures shared by the guard's tests: a running test issuer and an authenticator for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.guard._issuer import TestIssuer, running_issuer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def live_issuer() -> Iterator[TestIssuer]:
    """A test issuer serving discovery and JWKS on a free loopback port."""
    with running_issuer() as issuer:
        yield issuer
