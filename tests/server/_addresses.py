"""Clients of a live server from distinct source addresses, for the lockout tests.

All of 127.0.0.0/8 is loopback on Linux: a client bound to 127.a.b.c reaches a server on
127.0.0.1 and the server sees 127.a.b.c as the peer, so an attacker and a victim really come
from different addresses. Addresses are drawn at random so that concurrent runs sharing one
Redis never share a counter.
"""

from __future__ import annotations

import secrets

import httpx

from tests._live import LiveServer


def new_address() -> str:
    """A random loopback address other than 127.0.0.1."""
    return f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(253) + 2}"


def client_from(server: LiveServer, address: str) -> httpx.AsyncClient:
    """An httpx client of `server` whose connections leave from `address`."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=30)


class CookieJar:
    """A browser's cookies for a plain-http live server: Python's cookie policy does not send
    `Secure` cookies over http, so they are carried by hand, as a browser does on loopback."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.values: dict[str, str] = {}
        self.set_cookie: dict[str, str] = {}  # the last Set-Cookie header of each name
        client.event_hooks["response"] = [self._keep]

    async def _keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            self.set_cookie[name] = header
            if "Max-Age=0" in header:
                self.values.pop(name, None)
            else:
                self.values[name] = value
        self.client.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.values.items())


def browser_from(server: LiveServer, address: str) -> tuple[httpx.AsyncClient, CookieJar]:
    """A client from `address` that keeps its cookies like a browser."""
    client = client_from(server, address)
    return client, CookieJar(client)
