"""When the guard follows revocations without being wired by hand (issue 14, item 3)."""

from __future__ import annotations

import pytest

from bastion.guard import Authenticator, Denylist, IssuerConfig
from bastion.guard.revocation import HttpRevocationPoller, RedisRevocationSubscriber
from tests.guard._issuer import AUDIENCE, REVOCATION_CLIENT, TestIssuer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("discovery", "revocations"),
    [
        pytest.param(
            "https://id.example/.well-known/openid-configuration", "https://id.example/revocations", id="oidc"
        ),
        pytest.param(
            "https://id.example/t/.well-known/oauth-authorization-server",
            "https://id.example/t/revocations",
            id="rfc8414",
        ),
    ],
)
def test_revocation_list_is_under_the_issuer(discovery: str, revocations: str) -> None:
    """The revocation list is `{issuer}/revocations` unless `revocations_url` says otherwise."""
    assert IssuerConfig(discovery, AUDIENCE).revocation_list() == revocations
    assert (
        IssuerConfig(discovery, AUDIENCE, revocations_url="https://x.example/r").revocation_list()
        == "https://x.example/r"
    )


def test_the_client_secret_stays_out_of_the_repr() -> None:
    """An IssuerConfig printed or logged does not show the resource server's secret."""
    config = IssuerConfig(
        "https://id.example/.well-known/openid-configuration", AUDIENCE, client_id="api", client_secret="s3cr3t-value"
    )

    assert "s3cr3t-value" not in repr(config)


@pytest.mark.parametrize(
    ("credentials", "follows"),
    [pytest.param(REVOCATION_CLIENT, True, id="credentials"), pytest.param((None, None), False, id="none")],
)
async def test_credentials_start_the_revocation_poller(
    live_issuer: TestIssuer, credentials: tuple[str | None, str | None], follows: bool
) -> None:
    """With the API's credentials the authenticator polls the issuer's list at start; without, it does not."""
    config = IssuerConfig(
        f"{live_issuer.issuer}/.well-known/openid-configuration",
        AUDIENCE,
        client_id=credentials[0],
        client_secret=credentials[1],
    )
    auth = Authenticator([config])
    assert auth.follows_revocations is follows
    await auth.start()
    try:
        feeds = auth.revocation_feeds
        if follows:
            [poller] = feeds
            assert isinstance(poller, HttpRevocationPoller)
            assert (poller.url, poller.denylist) == (f"{live_issuer.issuer}/revocations", auth.denylist)
        else:
            assert feeds == []
    finally:
        await auth.aclose()


def test_feeds_wired_by_hand_or_switched_off_replace_the_default() -> None:
    """`revocation_feeds=[...]` and `follow_revocations=False` leave no automatic feed."""
    config = IssuerConfig(
        "https://id.example/.well-known/openid-configuration", AUDIENCE, client_id="a", client_secret="b"
    )
    denylist = Denylist()
    subscriber = RedisRevocationSubscriber(object(), denylist=denylist)

    assert Authenticator([config], follow_revocations=False).follows_revocations is False
    by_hand = Authenticator([config], denylist=denylist, revocation_feeds=[subscriber])
    assert by_hand.revocation_feeds == [subscriber]
