"""People: users, password hashing (Argon2id), TOTP and recovery codes, browser sessions.

The authorization server's pages use this package; the guard never does (it knows callers only
through tokens).
"""

from bastion.identity import users
from bastion.identity.passwords import PasswordHasher, Verification, WeakPassword, check_password_policy
from bastion.identity.users import NewUser, User, UserError

__all__ = [
    "NewUser",
    "PasswordHasher",
    "User",
    "UserError",
    "Verification",
    "WeakPassword",
    "check_password_policy",
    "users",
]
