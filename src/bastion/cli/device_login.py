"""`bastion device-login`: act as a device in the Device Authorization Grant (RFC 8628).

It asks the issuer for a device code, prints where to go and the code (and a terminal QR code of
`verification_uri_complete`) on stderr, polls the token endpoint politely (waiting `interval`
seconds, 5 more after each `slow_down`, backing off when the network fails, §3.5), and prints
the token response as JSON on stdout. Exit 0 with tokens, 1 when the user denies or the code
expires, 2 for a usage or server problem.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any, TextIO
from urllib.parse import urlsplit

import httpx
import qrcode  # type: ignore[import-untyped]  # qrcode ships no type information
import typer

from bastion.cli._common import fail
from bastion.config import is_loopback_host
from bastion.protocol.rfc8628 import GRANT_TYPE, SLOW_DOWN_INCREMENT

DISCOVERY_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
_MAX_BACKOFF = 60.0


class DeviceLoginError(Exception):
    """The flow ended without tokens; `error` is the OAuth error code when there is one."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


def check_issuer(issuer: str) -> str:
    """RFC 8628 §5.2 (and RFC 6749 §3.2): https, except on loopback for development."""
    parts = urlsplit(issuer)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        return issuer.rstrip("/")
    raise DeviceLoginError("--issuer must be an https URL (http only on a loopback host)")


def discover(http: httpx.Client, issuer: str) -> dict[str, Any]:
    """The issuer's metadata (RFC 8414), which must announce the device authorization endpoint."""
    for path in DISCOVERY_PATHS:
        response = http.get(issuer + path)
        if response.status_code == 200:
            metadata: dict[str, Any] = response.json()
            if metadata.get("issuer") != issuer:
                raise DeviceLoginError(f"discovery names issuer {metadata.get('issuer')!r}, not {issuer!r}")
            if "device_authorization_endpoint" not in metadata:
                raise DeviceLoginError("the issuer does not announce a device_authorization_endpoint")
            return metadata
    raise DeviceLoginError(f"no discovery document at {issuer}")


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "server_error", f"HTTP {response.status_code}"
    return str(body.get("error", "server_error")), str(body.get("error_description", ""))


class DeviceClient:
    """The device side of the grant over one HTTP client; `sleep` is injectable for tests."""

    def __init__(
        self,
        http: httpx.Client,
        metadata: dict[str, Any],
        client_id: str,
        client_secret: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.metadata = metadata
        self.client_id = client_id
        self.client_secret = client_secret
        self.sleep = sleep

    def _post(self, url: str, data: dict[str, str]) -> httpx.Response:
        if self.client_secret is not None:
            return self.http.post(url, data=data, auth=(self.client_id, self.client_secret))
        return self.http.post(url, data={**data, "client_id": self.client_id})

    def start(self, scope: str) -> dict[str, Any]:
        """RFC 8628 §3.1: the device authorization request."""
        response = self._post(self.metadata["device_authorization_endpoint"], {"scope": scope} if scope else {})
        if response.status_code != 200:
            error, description = _error_of(response)
            raise DeviceLoginError(f"{error}: {description}", error)
        started: dict[str, Any] = response.json()
        return started

    def poll(self, started: dict[str, Any]) -> dict[str, Any]:
        """RFC 8628 §3.4, §3.5: poll until tokens, a refusal, or the code's expiry."""
        interval = float(started.get("interval", 5))
        deadline = time.monotonic() + float(started["expires_in"])
        wait = interval
        while True:
            self.sleep(wait)
            try:
                response = self._post(
                    self.metadata["token_endpoint"],
                    {"grant_type": GRANT_TYPE, "device_code": started["device_code"]},
                )
            except httpx.TransportError:
                # §3.5: on a connection timeout, back off exponentially.
                wait = min(wait * 2, _MAX_BACKOFF)
                continue
            if response.status_code == 200:
                tokens: dict[str, Any] = response.json()
                return tokens
            error, description = _error_of(response)
            if error == "authorization_pending":
                wait = interval
            elif error == "slow_down":
                interval += SLOW_DOWN_INCREMENT
                wait = interval
            else:
                raise DeviceLoginError(f"{error}: {description}", error)
            if time.monotonic() > deadline + interval:
                raise DeviceLoginError("expired_token: the device code expired", "expired_token")


def show_instructions(started: dict[str, Any], out: TextIO, *, qr: bool) -> None:
    """What the person needs: the URL, the code, and a QR code of the complete URL."""
    out.write(f"To sign in, open {started['verification_uri']}\nand enter the code: {started['user_code']}\n")
    complete = started.get("verification_uri_complete")
    if complete:
        out.write(f"Or open: {complete}\n")
        if qr:
            code = qrcode.QRCode(border=1)
            code.add_data(complete)
            code.print_ascii(out=out, invert=True)
    out.write("Waiting for approval...\n")
    out.flush()


def device_login(
    issuer: Annotated[str, typer.Option("--issuer", help="The issuer URL (https; http only on loopback).")],
    client_id: Annotated[str, typer.Option("--client-id", help="A client registered with --grant device_code.")],
    scope: Annotated[str, typer.Option("--scope", help="Space-separated scopes to ask for.")] = "",
    client_secret: Annotated[
        str | None,
        typer.Option(
            "--client-secret",
            envvar="DEVICE_LOGIN_CLIENT_SECRET",  # not BASTION_*: those are server settings
            help="Secret of a confidential client (prefer the environment variable).",
            show_default=False,
        ),
    ] = None,
    qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Print a terminal QR code of the complete URL.")] = True,
) -> None:
    """Sign in as a device: show a code to approve in a browser, then print the token response."""
    err = typer.get_text_stream("stderr")
    try:
        base = check_issuer(issuer)
        with httpx.Client(timeout=30) as http:
            device = DeviceClient(http, discover(http, base), client_id, client_secret)
            started = device.start(scope)
            show_instructions(started, err, qr=qr)
            tokens = device.poll(started)
    except DeviceLoginError as exc:
        raise fail(str(exc), 1 if exc.error in ("access_denied", "expired_token") else 2) from None
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {issuer}: {exc}") from None
    typer.echo(json.dumps(tokens, indent=2))
