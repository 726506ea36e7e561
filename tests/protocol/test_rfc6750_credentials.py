"""RFC 6750 §2 credential extraction with the form-body parameter (§2.2) an endpoint may accept.

Header-only extraction (the guard's) is covered with hypothesis in tests/guard/test_parsers.py.
"""

from __future__ import annotations

import pytest

from bastion.protocol.errors import InvalidRequest, InvalidToken, MissingCredentials, OAuthError
from bastion.protocol.rfc6750 import Credentials, extract_credentials

HEADER = [(b"authorization", b"Bearer from-header")]


def test_form_token_alone_is_the_bearer() -> None:
    """§2.2: the body's access_token is the credential when nothing else is sent."""
    assert Credentials(*extract_credentials([], b"", form_token="from-body")) == Credentials(bearer="from-body")


@pytest.mark.parametrize(
    ("headers", "query", "form_token", "error", "detail"),
    [
        pytest.param(HEADER, b"", "from-body", InvalidRequest, "several credentials", id="header-and-body"),
        pytest.param([], b"access_token=q", "from-body", InvalidRequest, "token in query string and header", id="q+b"),
        pytest.param([], b"", "two words", InvalidToken, "malformed bearer token", id="body-two-words"),
        pytest.param([], b"", "", InvalidToken, "malformed bearer token", id="body-empty"),
        pytest.param([], b"access_token=q", None, MissingCredentials, "query token", id="query-only"),
        pytest.param(HEADER, b"a=1&%61ccess_token=q", None, InvalidRequest, "token in query string and header",
                     id="encoded-name+header"),
        pytest.param([], b"access%5Ftoken=q", None, MissingCredentials, "query token", id="encoded-name-only"),
    ],
)
def test_form_token_follows_the_one_method_rule(
    headers: list[tuple[bytes, bytes]], query: bytes, form_token: str | None, error: type[OAuthError], detail: str
) -> None:
    """§2: one method per request; a body token is one word like a header token; query is never one."""
    with pytest.raises(error) as refused:
        extract_credentials(headers, query, form_token=form_token)

    assert refused.value.detail == detail


def test_api_keys_are_not_read_unless_a_header_is_named() -> None:
    """Without `api_key_header` an API key header is not a credential (userinfo takes none)."""
    with pytest.raises(MissingCredentials):
        extract_credentials([(b"x-api-key", b"k"), (b"", b"empty name")], b"")
