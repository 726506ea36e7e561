"""Tables, as SQLAlchemy Core `Table`s on one `MetaData`: the single source Alembic compares
against. Changing one needs an Alembic migration in `migrations/versions/`.

Only `bastion.store` reads these. Each table has one owning module (`store/clients.py`,
`store/codes.py`, ...) whose record type has the table's columns as fields, in this order.
Secrets are stored as hashes (codes, refresh tokens, session ids, recovery codes) or encrypted
under the key-encryption key (TOTP secrets, private keys).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("client_type", String(16), nullable=False),  # confidential | public
    Column("auth_method", String(32), nullable=False),
    Column("grant_types", Text, nullable=False),  # space-separated
    Column("scopes", Text, nullable=False),  # space-separated
    Column("audiences", Text, nullable=False),  # space-separated URIs
    Column("redirect_uris", Text, nullable=False),  # space-separated (browser flows)
    # Space-separated, matched exactly (OpenID Connect RP-Initiated Logout 1.0 §3).
    Column("post_logout_redirect_uris", Text, nullable=False, server_default=""),
    # OpenID Connect Registration 1.0 §2; RS256 unless registered otherwise.
    Column("id_token_signed_response_alg", String(8), nullable=False, server_default="RS256"),
    # RFC 9700 §2.1.1: a confidential OIDC client may omit PKCE when it sends a nonce (never a public one).
    Column("pkce_optional_with_nonce", Boolean, nullable=False, server_default=false()),
    # Every code and device approval for this client needs a session with a second factor.
    Column("require_mfa", Boolean, nullable=False, server_default=false()),
    Column("token_lifetime", Integer, nullable=True),  # minutes
    Column("introspect", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("jwks", Text, nullable=True),
    Column("jwks_uri", Text, nullable=True),
    Column("token_endpoint_audience", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

client_secrets = Table(
    "client_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),  # HMAC-SHA-256 hex under the pepper
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_key", LargeBinary, nullable=False),  # AES-GCM(nonce || ciphertext)
    Column("public_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("activates_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger, nullable=True),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(128), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("exp", BigInteger, nullable=False, index=True),
    Column("revoked_at", BigInteger, nullable=False, index=True),
)

# jti of client assertions seen, kept until they expire (RFC 7523 §3 item 7).
used_assertions = Table(
    "used_assertions",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("exp", BigInteger, nullable=False, index=True),
)

users = Table(
    "users",
    metadata,
    Column("sub", String(64), primary_key=True),  # stable random subject
    Column("username", String(150), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("email_verified", Boolean, nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("profile", Text, nullable=False),  # JSON object of OIDC profile claims
    Column("roles", Text, nullable=False),  # space-separated
    Column("enabled", Boolean, nullable=False),
    Column("password_hash", Text, nullable=False),  # Argon2id PHC string
    Column("totp_secret", LargeBinary, nullable=True),  # AES-GCM under the KEK
    Column("totp_last_step", BigInteger, nullable=True),  # replay protection
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Every sign-in needs a second factor, whatever the server's MFA policy.
    Column("require_mfa", Boolean, nullable=False, server_default=false()),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sub", String(64), ForeignKey("users.sub", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the cookie value
    Column("sid", String(64), nullable=False, unique=True),  # public id for the ID token's `sid`
    Column("sub", String(64), ForeignKey("users.sub", ondelete="CASCADE"), nullable=True, index=True),
    Column("stage", String(16), nullable=False),  # anonymous | password | authenticated
    Column("amr", String(64), nullable=False),  # space-separated RFC 8176 values
    Column("auth_time", BigInteger, nullable=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),  # absolute timeout
)

consents = Table(
    "consents",
    metadata,
    Column("sub", String(64), ForeignKey("users.sub", ondelete="CASCADE"), primary_key=True),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True),
    Column("scopes", Text, nullable=False),  # space-separated, the union of what was approved
    Column("granted_at", BigInteger, nullable=False),
)

# A validated authorization request, or a device code being approved, waiting for login, MFA or
# consent in one browser session.
authorization_requests = Table(
    "authorization_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("session_hash", String(64), nullable=False, index=True),  # bound to one browser session
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),  # "" for a device request
    Column("scope", Text, nullable=False),
    Column("state", Text, nullable=True),
    Column("nonce", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("prompt", String(64), nullable=False),
    Column("max_age", BigInteger, nullable=True),
    Column("login_hint", String(320), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("acr_values", Text, nullable=True),  # migration 0004
    Column("kind", String(16), nullable=False, server_default="authorization"),  # authorization | device (0008)
    Column("user_code", String(16), nullable=True),  # the device code's, for kind = device (0008)
    Column("response_mode", String(16), nullable=False, server_default="query"),  # query | form_post (0009)
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False, index=True),
    Column("sub", String(64), nullable=False, index=True),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("sid", String(64), nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", String(64), nullable=False),
    Column("acr", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("used_at", BigInteger, nullable=True),
    # What the exchange issued, so a replay can revoke it (RFC 6749 §4.1.2).
    Column("access_jti", String(128), nullable=True),
    Column("access_exp", BigInteger, nullable=True),
    Column("refresh_family", String(64), nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family", String(64), nullable=False, index=True),
    Column("client_id", String(64), nullable=False, index=True),
    Column("sub", String(64), nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("sid", String(64), nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", String(64), nullable=False),
    Column("acr", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # sliding idle expiry
    Column("family_expires_at", BigInteger, nullable=False),  # absolute expiry of the family
    Column("rotated_at", BigInteger, nullable=True),  # used (replaced)
    Column("revoked_at", BigInteger, nullable=True),
    Column("access_jti", String(128), nullable=True),
    Column("access_exp", BigInteger, nullable=True),
)

# A device authorization request (RFC 8628 §3.1) and, once the user decided, its outcome.
device_codes = Table(
    "device_codes",
    metadata,
    Column("device_code_hash", String(64), primary_key=True),  # SHA-256 hex
    Column("user_code", String(16), nullable=False, unique=True),  # normalised, no dash
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("scope", Text, nullable=False),  # space-separated
    Column("status", String(16), nullable=False),  # pending | approved | denied
    # Who approved, and how they signed in (for the ID token's sid, auth_time, amr, acr).
    Column("sub", String(64), nullable=True),
    Column("sid", String(64), nullable=True),
    Column("auth_time", BigInteger, nullable=True),
    Column("amr", String(64), nullable=True),
    Column("acr", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("interval", Integer, nullable=False),  # seconds; grows by 5 on each slow_down
    Column("last_poll_at", BigInteger, nullable=True),  # milliseconds
    Column("decided_at", BigInteger, nullable=True),
    Column("redeemed_at", BigInteger, nullable=True),
)

# The server's hash-chained audit trail (`store/audit.py`): each row one entry of the chain the
# guard's audit log also writes (`bastion.guard.audit`), the entry's canonical JSON in `entry`
# and a few of its members as columns to query by. The same columns as the guard's own
# `audit_table`, so `bastion audit verify --db` reads either.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", Float, nullable=False),
    Column("actor", String(300), nullable=False, index=True),
    Column("action", String(200), nullable=False, index=True),
    Column("object", String(500), nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("request_id", String(100), nullable=True),
    Column("entry", Text, nullable=False),
    Column("hash", String(64), nullable=False),
)

# API keys of calling systems (bastion.guard.apikeys): only a SHA-256 of the whole key is kept,
# never the key; the guard of an API on another host reads this table (migration 0013).
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),  # the public part of the key, after `bsk_`
    Column("owner", String(200), nullable=False),  # the calling system
    Column("scopes", Text, nullable=False),  # space-separated
    Column("sha256", String(64), nullable=False),  # hex SHA-256 of the whole key
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # none, or the end of a rotation overlap
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),  # written at most once a minute per key
    Column("replaced_by", String(32), nullable=True),  # the successor's key_id after a rotation
)
