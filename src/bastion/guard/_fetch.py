"""Bounded HTTP fetches of issuer metadata: no redirects, short timeouts, capped bodies.

The documents come from URLs the operator configured, never from a token (RFC 8725 §3.10 on
jku/x5u); even so a misbehaving issuer must not be able to stall or flood the guard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["MAX_DOCUMENT_BYTES", "FetchError", "Fetched", "fetch_json", "new_http_client"]

MAX_DOCUMENT_BYTES = 1024 * 1024


class FetchError(Exception):
    """A metadata document could not be fetched or parsed; the guard keeps failing closed."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A JSON object and the response's Cache-Control header."""

    document: dict[str, Any]
    cache_control: str | None


def new_http_client(timeout: float = 5.0) -> httpx.AsyncClient:
    """The client the guard uses when the application gives it none."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


async def fetch_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    method: str = "GET",
    auth: httpx.Auth | None = None,
    data: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Fetched:
    """GET (or POST) a JSON object, refusing redirects, errors and bodies over 1 MiB."""
    try:
        async with http.stream(
            method, url, auth=auth, data=data, params=params, headers={"Accept": "application/json"}
        ) as response:
            if response.status_code != 200:
                raise FetchError(f"{url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
            cache_control = response.headers.get("cache-control")
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {exc!r}") from exc
    try:
        document = json.loads(bytes(body))
    except ValueError as exc:
        raise FetchError(f"{url} did not answer JSON") from exc
    if not isinstance(document, dict):
        raise FetchError(f"{url} did not answer a JSON object")
    return Fetched(document, cache_control)
