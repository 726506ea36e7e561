"""The guard against Bastion's own authorization server: discovery, tokens, revocation, introspection."""

from __future__ import annotations

import httpx
import pytest

from bastion.guard import Authenticator, InvalidToken, IssuerConfig
from bastion.guard.introspection import IntrospectionClient
from bastion.guard.revocation import HttpRevocationPoller
from tests._live import LiveServer
from tests.interop._peers import OIDC_DISCOVERY, audience, client_credentials_token, create_reader

pytestmark = [pytest.mark.server, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def guard_for(server: LiveServer) -> Authenticator:
    return Authenticator([IssuerConfig(server.url + OIDC_DISCOVERY, audience(server))])


def resource_server(server: LiveServer) -> dict[str, str]:
    """A confidential client registered with --introspect, as the guard's deployment would be."""
    return server.create_client(
        *("--name", "guard", "--grant", "client_credentials", "--scope", "read"),
        *("--introspect", "--audience", audience(server)),
    )


async def test_bastion_token_is_accepted(live_server: LiveServer) -> None:
    """A client-credentials access token from `bastion serve` validates by discovery alone."""
    client = create_reader(live_server)
    auth = guard_for(live_server)
    principal = await auth.authenticate_bearer(client_credentials_token(live_server, client))

    assert (principal.kind, principal.subject, principal.issuer) == ("client", client["client_id"], live_server.url)
    assert principal.scopes == frozenset({"read"})
    await auth.aclose()


async def test_bastion_revocation_list_reaches_the_guard(live_server: LiveServer) -> None:
    """A token revoked at the server (RFC 7009) is refused after one poll of /revocations."""
    client = create_reader(live_server)
    rs = resource_server(live_server)
    token = client_credentials_token(live_server, client)
    auth = guard_for(live_server)
    await auth.authenticate_bearer(token)
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            live_server.url + "/revoke",
            data={"token": token, "token_type_hint": "access_token"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        assert revoked.status_code == 200
        poller = HttpRevocationPoller(
            live_server.url + "/revocations",
            client_id=rs["client_id"],
            client_secret=rs["client_secret"],
            denylist=auth.denylist,
            http=http,
        )
        assert await poller.poll() == 1

    with pytest.raises(InvalidToken) as caught:
        await auth.authenticate_bearer(token)
    assert caught.value.detail == "revoked"
    await auth.aclose()


async def test_bastion_introspection(live_server: LiveServer) -> None:
    """RFC 7662: Bastion's introspection endpoint answers the guard's introspection client."""
    client = create_reader(live_server)
    rs = resource_server(live_server)
    token = client_credentials_token(live_server, client)
    async with httpx.AsyncClient() as http:
        introspector = IntrospectionClient(
            live_server.url + "/introspect",
            client_id=rs["client_id"],
            client_secret=rs["client_secret"],
            issuer=live_server.url,
            audience=audience(live_server),
            http=http,
        )
        principal = await introspector.introspect(token)

    assert (principal.subject, principal.scopes) == (client["client_id"], frozenset({"read"}))
