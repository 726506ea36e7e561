"""The raw-URI check alone (sans-I/O): whatever it accepts, a second decoding cannot change."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.edge.paths import UriTooLong, accept
from bastion.protocol.errors import InvalidRequest

# Pieces attackers combine: escapes of the bytes that matter, dots, slashes and plain text.
PIECES = st.sampled_from([
    "/", "//", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%25", "%00", "%0a", "%41", "%c3%a9", "%e9",
    ";", "\\", "a", "notes", "?", "#", "%", "%z", "\t", "\u00e9", "~", "-",
    "%3f", "%23", "%3b", " ", "%20", "...", "%ef%bc%8e", "%ef%bc%8f", "\uff0e",
])


@settings(max_examples=2000, deadline=None)
@given(st.lists(PIECES, max_size=12))
def test_an_accepted_path_has_one_reading(pieces: list[str]) -> None:
    """An accepted path has no %, no backslash, no control character, no empty or dot segment:
    the upstream's decoding (once, twice, or not at all beyond the first) gives the same path."""
    raw = ("/" + "".join(pieces)).encode()
    try:
        accepted = accept(raw, 2048)
    except (InvalidRequest, UriTooLong):
        return

    path = accepted.path
    assert unquote(path) == path
    assert "%" not in path
    assert "\\" not in path
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in path)
    assert not set(path) & set("?#;")
    segments = path.split("/")[1:]
    assert all(s not in {".", ".."} for s in segments)
    assert all(s == "" or s.strip(". ") for s in segments)
    assert unicodedata.normalize("NFKC", path).isascii() == path.isascii()
    assert "" not in segments[:-1]
