"""Property tests: the parsers facing attacker input fail only with the guard's own errors."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.guard import (
    BearerTokenValidator,
    Credentials,
    GuardError,
    InvalidRequest,
    InvalidToken,
    TrustedIssuer,
    keyset_from_jwks,
)
from bastion.guard.body import json_depth
from bastion.protocol.jose import parse_compact
from bastion.protocol.rfc6750 import extract_credentials
from tests.guard._issuer import AUDIENCE, TestIssuer, b64

ISSUER = TestIssuer()
VALIDATOR = BearerTokenValidator(cache_size=0)
VALIDATOR.trust(
    TrustedIssuer(ISSUER.issuer, AUDIENCE), keyset_from_jwks(ISSUER.public_jwks(), fetched_at=0, max_age=1e12)
)

segment = st.one_of(st.text(alphabet="ABCxyz019-_", max_size=40), st.binary(max_size=60).map(b64))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(segment, min_size=1, max_size=5).map(".".join))
def test_validator_refuses_junk_with_invalid_token(token: str) -> None:
    """Any junk in the shape of a JWS is refused with InvalidToken, never another exception."""
    with pytest.raises(InvalidToken):
        VALIDATOR.validate(token)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=200))
def test_parse_compact_raises_only_invalid_token(text: str) -> None:
    """The JWS splitter accepts or refuses, it never crashes."""
    with contextlib.suppress(InvalidToken):
        parse_compact(text)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.sampled_from([b"authorization", b"x-api-key", b"other"]), st.binary(max_size=80)), max_size=3
    ),
    st.binary(max_size=80),
)
def test_extract_credentials_raises_only_guard_errors(headers: list[tuple[bytes, bytes]], query: bytes) -> None:
    """Arbitrary header bytes and query strings give credentials or a GuardError."""
    with contextlib.suppress(GuardError):
        extract_credentials(headers, query, b"x-api-key")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_json_depth_matches_structure(value: object) -> None:
    """json_depth equals the real nesting depth of any JSON value."""

    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    assert json_depth(json.dumps(value).encode()) == depth(value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([(b"Authorization", b"Bearer abc")], Credentials(bearer="abc"), id="capitalised"),
        pytest.param([(b"AUTHORIZATION", b"Bearer abc")], Credentials(bearer="abc"), id="upper-case"),
        pytest.param([(b"X-Api-Key", b"k1")], Credentials(api_key="k1"), id="api-key-capitalised"),
        pytest.param(
            [(b"cache-control", b"no-cache"), (b"authorization", b"Bearer abc")],
            Credentials(bearer="abc"),
            id="other-13-byte-name",
        ),
        pytest.param([(b"authorization", b"Bearer  abc ")], Credentials(bearer="abc"), id="extra-spaces"),
        pytest.param([(b"authorization", b"bEaReR abc")], Credentials(bearer="abc"), id="scheme-any-case"),
    ],
)
def test_extract_credentials_header_names_are_case_insensitive(
    headers: list[tuple[bytes, bytes]], expected: Credentials
) -> None:
    """Header names and the scheme match in any case; other headers of the same length are ignored."""
    assert extract_credentials(headers, b"", b"x-api-key") == expected


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param([(b"authorization", b"Bearer a"), (b"Authorization", b"Bearer b")], InvalidRequest, id="two"),
        pytest.param([(b"AUTHORIZATION", b"Bearer a"), (b"X-API-KEY", b"k")], InvalidRequest, id="token-and-key"),
        pytest.param([(b"authorization", b"Bearer \tabc")], InvalidToken, id="tab-after-scheme"),
        pytest.param([(b"authorization", b"Bearer ")], InvalidToken, id="empty-token"),
    ],
)
def test_extract_credentials_refuses_in_any_case(headers: list[tuple[bytes, bytes]], error: type[GuardError]) -> None:
    """Two credentials, whatever the case of their names, and malformed Bearer values are refused."""
    with pytest.raises(error):
        extract_credentials(headers, b"", b"x-api-key")
