"""The guard trusts any standards-compliant issuer: node-oidc-provider as a second one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.guard import Authenticator, InvalidToken, IssuerConfig
from tests._services import need_node_package
from tests.guard._issuer import AUDIENCE, free_port, running_issuer

pytestmark = [pytest.mark.npm, pytest.mark.server]

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[str]:
    """node-oidc-provider running on a free loopback port; yields its issuer URL."""
    node_dir = need_node_package("oidc-provider")
    port = free_port()
    process = subprocess.Popen(
        ["node", "--input-type=module", "-e", SCRIPT.read_text(), str(port), AUDIENCE],
        cwd=node_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.kill()
            pytest.fail(f"oidc-provider did not start: {line}{process.stderr.read() if process.stderr else ''}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def client_credentials_token(issuer: str, scope: str = "notes:read") -> str:
    response = httpx.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "scope": scope, "resource": AUDIENCE},
        auth=("guard-test", "guard-test-secret"),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.mark.anyio
async def test_oidc_provider_jwt_access_token_is_accepted(oidc_provider: str) -> None:
    """A client-credentials JWT access token from node-oidc-provider validates as a client."""
    auth = Authenticator([IssuerConfig(f"{oidc_provider}/.well-known/openid-configuration", AUDIENCE)])
    principal = await auth.authenticate_bearer(client_credentials_token(oidc_provider))

    assert (principal.kind, principal.subject, principal.issuer) == ("client", "guard-test", oidc_provider)
    assert principal.scopes == frozenset({"notes:read"})
    await auth.aclose()


@pytest.mark.anyio
async def test_both_issuers_in_one_guard(oidc_provider: str) -> None:
    """Bastion-shaped tokens and node-oidc-provider tokens are accepted by the same guard."""
    with running_issuer() as own:
        auth = Authenticator(
            [
                IssuerConfig(f"{oidc_provider}/.well-known/openid-configuration", AUDIENCE),
                IssuerConfig(f"{own.issuer}/.well-known/openid-configuration", AUDIENCE),
            ]
        )
        await auth.start()

        assert (await auth.authenticate_bearer(own.mint())).issuer == own.issuer
        assert (await auth.authenticate_bearer(client_credentials_token(oidc_provider))).issuer == oidc_provider
        await auth.aclose()


@pytest.mark.anyio
async def test_oidc_provider_token_refused_when_not_configured(oidc_provider: str) -> None:
    """The same token is refused by a guard that does not trust node-oidc-provider."""
    with running_issuer() as own:
        auth = Authenticator([IssuerConfig(f"{own.issuer}/.well-known/openid-configuration", AUDIENCE)])
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(client_credentials_token(oidc_provider))

        assert caught.value.detail == f"issuer not trusted: {oidc_provider!r}"
        await auth.aclose()
