"""What the browser flows need beyond the token service: password hashing, the key-encryption
key (for TOTP secrets), session timeouts and device cookies. Built once per process with the
ServerContext."""

from __future__ import annotations

from bastion.config import Settings
from bastion.identity.devices import DeviceCookies, device_cookie_key
from bastion.identity.passwords import PasswordHasher
from bastion.identity.sessions import Timeouts
from bastion.keys import KeyEncryptor


class PeopleServices:
    def __init__(self, settings: Settings, encryptor: KeyEncryptor, secret: bytes) -> None:
        """`secret`: the server's secret material the device-cookie key is derived from (the
        client-secret pepper, required outside development mode)."""
        self.passwords = PasswordHasher(settings.password_hashing)
        self.encryptor = encryptor
        self.timeouts = Timeouts(settings.session_idle_lifetime, settings.session_absolute_lifetime)
        self.devices = DeviceCookies(device_cookie_key(secret))
        self.device_lifetime = settings.device_cookie_lifetime

    def close(self) -> None:
        self.passwords.close()
