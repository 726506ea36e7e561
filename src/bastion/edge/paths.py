"""The raw request URI to the one path the decision and the upstream both see, and its route.

The classic edge bypass is a proxy that authorises `/public/..%2fadmin` as public while the
upstream, decoding once more, serves `/admin`. So the decision takes the RAW URI the client sent
(nginx `$request_uri`, Caddy `{uri}`), refuses anything two parsers could read differently
(encoded slashes and backslashes, NUL and control characters, dot segments raw or encoded,
empty segments, `;` path parameters, raw non-ASCII, a double-encoded `%`), and matches the
percent-decoded remainder, which is exactly what an upstream decoding once sees: the proxy
forwards the raw URI unchanged. Deny by default: a path no route names is refused (404).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bastion.edge.policy import Route
from bastion.protocol.errors import InvalidRequest, NotFound, OAuthError

__all__ = ["Accepted", "MethodNotAllowed", "Router", "UriTooLong", "accept"]

_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# Bytes whose escape two parsers read differently: / \ NUL, the other controls, DEL and `%`
# itself (a double encoding, decoded once more by some upstreams).
# `?`, `#` and `;` too: an upstream that re-parses the decoded path (or rebuilds a URL from it)
# splits the path there, where the decision matched one segment.
_FORBIDDEN_DECODED = {
    0x2F: "an encoded slash", 0x5C: "an encoded backslash", 0x25: "an encoded percent sign",
    0x3F: "an encoded ?", 0x23: "an encoded #", 0x3B: "an encoded ;",
}


class UriTooLong(OAuthError):
    """RFC 9110 §15.5.15: the query is longer than the policy's `max_query`."""

    error = "uri_too_long"
    status_code = 414


class MethodNotAllowed(OAuthError):
    """RFC 9110 §15.5.6: the path is routed, the method is not; `allow` lists the methods that are."""

    error = "method_not_allowed"
    status_code = 405

    def __init__(self, allow: tuple[str, ...]) -> None:
        super().__init__(f"This path accepts {', '.join(allow)}.", detail=f"allow {allow}")
        self.allow = allow


@dataclass(frozen=True, slots=True)
class Accepted:
    """A URI that only one reading exists for: the decoded path and the raw query."""

    path: str
    query: str


def _ambiguous(reason: str) -> InvalidRequest:
    return InvalidRequest(f"The request path is ambiguous: {reason}.", detail=reason)


def accept(raw: bytes, max_query: int) -> Accepted:
    """The decoded path of the raw URI `raw`, refusing every path two parsers could read differently.

    Raises:
        InvalidRequest: the URI is not an origin-form path, or is ambiguous (400).
        UriTooLong: the query is longer than `max_query` bytes (414).
    """
    if not raw.startswith(b"/"):
        raise _ambiguous("it does not start with /")
    path, _, query = raw.partition(b"?")
    if len(query) > max_query:
        raise UriTooLong(f"The query string is longer than {max_query} bytes.", detail=f"{len(query)} bytes")
    _check_raw(raw)
    decoded = _decode(path)
    _check_segments(decoded)
    return Accepted(decoded, query.decode("ascii"))


def _check_raw(raw: bytes) -> None:
    for byte in raw:
        if byte < 0x20 or byte == 0x7F:
            raise _ambiguous("a control character")
        if byte == 0x20:
            raise _ambiguous("a space; percent-encode it")
        if byte > 0x7E:
            raise _ambiguous("a character outside ASCII; percent-encode it")
    if b"\\" in raw:
        raise _ambiguous("a backslash")
    if b"#" in raw:
        raise _ambiguous("a fragment (#)")
    if _BAD_ESCAPE.search(raw):
        raise _ambiguous("a % not followed by two hexadecimal digits")
    if b";" in raw.partition(b"?")[0]:
        raise _ambiguous("a ; (path parameters are read differently by different servers)")


def _decode(path: bytes) -> str:
    for match in _ESCAPE.finditer(path):
        byte = int(match.group(1), 16)
        if byte in _FORBIDDEN_DECODED:
            raise _ambiguous(_FORBIDDEN_DECODED[byte])
        if byte < 0x20 or byte == 0x7F:
            raise _ambiguous("an encoded NUL or control character")
    try:
        return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), path).decode("utf-8")
    except UnicodeDecodeError:
        raise _ambiguous("an encoded byte sequence that is not UTF-8") from None


def _check_segments(path: str) -> None:
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        if segment in {".", ".."}:
            raise _ambiguous("a dot segment (. or ..)")
        if segment == "" and i < len(segments) - 1:
            raise _ambiguous("an empty segment (//)")
        if segment and segment.strip(". ") == "":
            # `...`, `.. `: servers that trim trailing dots and spaces (Windows, some
            # frameworks) read these as `..`, `.` or empty.
            raise _ambiguous("a segment of only dots and spaces")
    if not path.isascii():
        _check_compatibility(path)


def _check_compatibility(path: str) -> None:
    """A non-ASCII character whose Unicode compatibility form holds ASCII (the fullwidth full stop,
    solidus and reverse solidus U+FF0E, U+FF0F, U+FF3C, fullwidth letters, ligatures) is another
    path to an upstream normalising with NFKC."""
    for char in set(path):
        if not char.isascii() and any(c.isascii() for c in unicodedata.normalize("NFKC", char)):
            raise _ambiguous(f"the character U+{ord(char):04X}, whose compatibility form is ASCII")


class Router:
    """First match wins; a path no route names is 404, a method its routes do not list 405."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes
        self._compiled = [(_pattern(r.path), r) for r in routes]

    def match(self, method: str, path: str) -> tuple[int, Route]:
        """The index and route for (method, path).

        Raises:
            NotFound: no route names the path.
            MethodNotAllowed: routes name the path, none with this method.
        """
        allow: list[str] = []
        for index, (pattern, route) in enumerate(self._compiled):
            if pattern.fullmatch(path) is None:
                continue
            if method in route.methods:
                return index, route
            allow.extend(m for m in route.methods if m not in allow)
        if allow:
            raise MethodNotAllowed(tuple(allow))
        raise NotFound(detail=f"no route for {path!r}")


def _pattern(template: str) -> re.Pattern[str]:
    """A template's regular expression: `{name}` is one non-empty segment, the rest literal."""
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))
