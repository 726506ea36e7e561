"""What the browser flows need beyond the token service: password hashing, the key-encryption
key (for TOTP secrets) and session timeouts. Built once per process with the ServerContext."""

from __future__ import annotations

from bastion.config import Settings
from bastion.identity.passwords import PasswordHasher
from bastion.identity.sessions import Timeouts
from bastion.keys import KeyEncryptor


class PeopleServices:
    def __init__(self, settings: Settings, encryptor: KeyEncryptor) -> None:
        self.passwords = PasswordHasher(settings.password_hashing)
        self.encryptor = encryptor
        self.timeouts = Timeouts(settings.session_idle_lifetime, settings.session_absolute_lifetime)

    def close(self) -> None:
        self.passwords.close()
