"""TOTP (RFC 6238) second factor: enrolment, a QR code as inline SVG, and one-time verification.

A code is accepted in a window of one 30-second step either side (clock drift), and each step is
accepted at most once per user: the last used step is stored, and a code for the same or an
earlier step is refused (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt").
"""

from __future__ import annotations

import hmac
import io
import time

import pyotp
import qrcode  # type: ignore[import-untyped]  # qrcode ships no type information
import qrcode.image.svg  # type: ignore[import-untyped]  # same package

STEP = 30
WINDOW = 1  # steps either side


def generate_secret() -> str:
    """A new 160-bit base32 TOTP secret (RFC 4226 §4 recommends 160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(data: str) -> str:
    """The QR code of `data` as an inline SVG element (pure Python, no image library)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    # Drop the XML declaration: the element is embedded in an HTML page.
    return svg[svg.index("<svg") :]


def matching_step(secret: str, code: str, now: float | None = None, last_step: int | None = None) -> int | None:
    """The time step `code` is valid for, or None (wrong, outside the window, or replayed)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    moment = time.time() if now is None else now
    current = int(moment // STEP)
    totp = pyotp.TOTP(secret, interval=STEP)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Compare every candidate without stopping early.
        if hmac.compare_digest(totp.at(step * STEP), code):
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def current_code(secret: str, now: float | None = None) -> str:
    """The code an authenticator would show now (tests, enrolment checks)."""
    return pyotp.TOTP(secret, interval=STEP).at(time.time() if now is None else now)
