"""The HTTP revocation feed against a real `bastion serve` on both databases: a poller that falls
more than a page behind still sees every revocation, and pages follow an opaque cursor that
neither skips nor repeats revocations made in the same second."""

from __future__ import annotations

import time
import uuid

import anyio
import httpx
import pytest

from bastion.guard import Authenticator, Denylist, InvalidToken, IssuerConfig
from bastion.guard.revocation import HttpRevocationPoller
from bastion.store import Database, revocations
from bastion.store._sql import transaction
from tests._live import LiveServer
from tests.conftest import DEFAULT_AUDIENCE
from tests.interop._peers import OIDC_DISCOVERY, audience, client_credentials_token, create_reader

pytestmark = [pytest.mark.server, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def resource_server(server: LiveServer) -> dict[str, str]:
    """A confidential client registered with --introspect, as the guard's deployment would be."""
    return server.create_client(
        "--name", "guard", "--grant", "client_credentials", "--scope", "read",
        "--introspect", "--audience", DEFAULT_AUDIENCE,
    )  # fmt: skip


async def revoke_own_tokens(server: LiveServer, count: int) -> list[str]:
    """`count` tokens of one client, each revoked by that client (RFC 7009) over real HTTP."""
    client = create_reader(server)
    tokens = [client_credentials_token(server, client) for _ in range(count)]
    async with httpx.AsyncClient() as http:
        for token in tokens:
            revoked = await http.post(
                server.url + "/revoke", data={"token": token}, auth=(client["client_id"], client["client_secret"])
            )
            assert revoked.status_code == 200
    return tokens


async def test_a_poller_more_than_a_page_behind_sees_every_revocation(live_server: LiveServer) -> None:
    """With a full default page (10,000) of older revocations waiting, the poller follows the cursor
    to the revocations after them, and the guard refuses those tokens (they were lost past the page)."""
    database = Database(live_server.env["BASTION_DATABASE_URL"], pool_size=1)
    earlier = int(time.time()) - 60
    try:
        # The backlog, recorded by the store as /revoke records it (10,000 round trips of /token
        # and /revoke would take minutes): tokens revoked a minute ago, still unexpired.
        async with transaction(database) as tx:
            for _ in range(revocations.PAGE):
                await revocations.record(tx, uuid.uuid4().hex, "backlog", earlier + 600, earlier)
    finally:
        await database.dispose()
    tokens = await revoke_own_tokens(live_server, 3)
    await anyio.sleep(1.1)  # the server's `until` is now past the second of the last revocation
    rs = resource_server(live_server)
    auth = Authenticator([IssuerConfig(live_server.url + OIDC_DISCOVERY, audience(live_server))])
    async with httpx.AsyncClient(timeout=60) as http:
        poller = HttpRevocationPoller(
            live_server.url + "/revocations",
            client_id=rs["client_id"],
            client_secret=rs["client_secret"],
            denylist=auth.denylist,
            http=http,
        )
        await poller.poll()
        await poller.poll()

    assert len(auth.denylist) == revocations.PAGE + 3
    for token in tokens:
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate_bearer(token)
        assert caught.value.detail == "revoked"
    await auth.aclose()


async def test_pages_follow_the_cursor_without_skipping_or_repeating(live_server: LiveServer) -> None:
    """Seven revocations (several in one second) come as pages of 3, 3 and 1 linked by the cursor,
    each jti once; the poller, asking for pages of 3, adds all seven in one poll."""
    await revoke_own_tokens(live_server, 7)
    rs = resource_server(live_server)
    auth = (rs["client_id"], rs["client_secret"])
    pages = []
    async with httpx.AsyncClient(timeout=30) as http:
        params = {"since": "0", "limit": "3"}
        while True:
            response = await http.get(live_server.url + "/revocations", params=params, auth=auth)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            if not pages[-1]["more"]:
                break
            params = {"cursor": pages[-1]["cursor"], "limit": "3"}
        denylist = Denylist()
        poller = HttpRevocationPoller(
            live_server.url + "/revocations", client_id=auth[0], client_secret=auth[1], denylist=denylist, http=http
        )
        poller.page_size = 3
        added = await poller.poll()
        again = await poller.poll()

    listed = [item["jti"] for page in pages for item in page["revocations"]]
    assert [len(page["revocations"]) for page in pages] == [3, 3, 1]
    assert [page["more"] for page in pages] == [True, True, False]
    assert len(set(listed)) == len(listed) == 7
    assert (added, again, set(denylist.ids)) == (7, 0, set(listed))
