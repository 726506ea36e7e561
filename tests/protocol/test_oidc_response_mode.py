"""`response_mode` of a code request (Multiple Response Type Encoding Practices §2.1, Form Post
Response Mode §2): query by default, query and form_post accepted, anything else invalid_request."""

from __future__ import annotations

import pytest

from bastion.protocol.errors import InvalidRequest
from bastion.protocol.oidc.response_mode import FORM_POST, QUERY, parse_response_mode

UNSUPPORTED = "response_mode is not supported; use query or form_post"


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        pytest.param(None, QUERY, id="absent-is-query"),
        pytest.param("query", QUERY, id="query"),
        pytest.param("form_post", FORM_POST, id="form-post"),
    ],
)
def test_supported_modes(raw, mode):
    """An absent mode is query (the default for response_type=code); query and form_post are kept."""
    assert parse_response_mode(raw) == mode


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        pytest.param(
            "fragment",
            "response_mode fragment is not supported for response_type=code; use query or form_post",
            id="fragment",
        ),
        pytest.param("query.jwt", UNSUPPORTED, id="jarm"),
        pytest.param("form_post.jwt", UNSUPPORTED, id="jarm-form-post"),
        pytest.param("FORM_POST", UNSUPPORTED, id="case-differs"),
        pytest.param("web_message", UNSUPPORTED, id="unknown"),
    ],
)
def test_unsupported_modes(raw, description):
    """fragment and every mode not offered are invalid_request with a precise description."""
    with pytest.raises(InvalidRequest) as refused:
        parse_response_mode(raw)

    assert (refused.value.error, refused.value.description) == ("invalid_request", description)
