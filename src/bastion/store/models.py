"""Tables. Changing one needs an Alembic migration in `migrations/versions/`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ClientRow(Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    client_type: Mapped[str] = mapped_column(String(16))  # confidential | public
    auth_method: Mapped[str] = mapped_column(String(32))
    grant_types: Mapped[str] = mapped_column(Text)  # space-separated
    scopes: Mapped[str] = mapped_column(Text, default="")  # space-separated
    audiences: Mapped[str] = mapped_column(Text, default="")  # space-separated URIs
    redirect_uris: Mapped[str] = mapped_column(Text, default="")  # space-separated (browser flows)
    # Space-separated, matched exactly (OpenID Connect RP-Initiated Logout 1.0 §3).
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="", server_default="")
    # OpenID Connect Registration 1.0 §2; RS256 unless registered otherwise.
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256", server_default="RS256")
    # RFC 9700 §2.1.1: a confidential OIDC client may omit PKCE when it sends a nonce (never a public one).
    pkce_optional_with_nonce: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    token_lifetime: Mapped[int | None] = mapped_column(Integer, nullable=True)  # minutes
    introspect: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    jwks: Mapped[str | None] = mapped_column(Text, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_endpoint_audience: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ClientSecretRow(Base):
    __tablename__ = "client_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA-256 hex under the pepper
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM(nonce || ciphertext)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger)
    retired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RevokedTokenRow(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    exp: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_at: Mapped[int] = mapped_column(BigInteger, index=True)


class UsedAssertionRow(Base):
    """jti of client assertions seen, kept until they expire (RFC 7523 §3 item 7)."""

    __tablename__ = "used_assertions"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    exp: Mapped[int] = mapped_column(BigInteger, index=True)


# People and browser flows (issue 3). Secrets are stored as hashes (codes, refresh tokens,
# session ids, recovery codes) or encrypted under the key-encryption key (TOTP secrets).


class UserRow(Base):
    __tablename__ = "users"

    sub: Mapped[str] = mapped_column(String(64), primary_key=True)  # stable random subject
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    profile: Mapped[str] = mapped_column(Text, default="{}")  # JSON object of OIDC profile claims
    roles: Mapped[str] = mapped_column(Text, default="")  # space-separated
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(Text)  # Argon2id PHC string
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # AES-GCM under the KEK
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # replay protection
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class RecoveryCodeRow(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub: Mapped[str] = mapped_column(ForeignKey("users.sub", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class BrowserSessionRow(Base):
    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    sid: Mapped[str] = mapped_column(String(64), unique=True)  # public id for the ID token's `sid`
    sub: Mapped[str | None] = mapped_column(ForeignKey("users.sub", ondelete="CASCADE"), nullable=True, index=True)
    stage: Mapped[str] = mapped_column(String(16))  # anonymous | password | authenticated
    amr: Mapped[str] = mapped_column(String(64), default="")  # space-separated RFC 8176 values
    auth_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # absolute timeout


class ConsentRow(Base):
    __tablename__ = "consents"

    sub: Mapped[str] = mapped_column(ForeignKey("users.sub", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated, the union of what was approved
    granted_at: Mapped[int] = mapped_column(BigInteger)


class AuthorizationRequestRow(Base):
    """A validated authorization request waiting for login, MFA or consent."""

    __tablename__ = "authorization_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), index=True)  # bound to one browser session
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text, nullable=True)
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prompt: Mapped[str] = mapped_column(String(64), default="")
    max_age: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    login_hint: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    acr_values: Mapped[str | None] = mapped_column(Text, nullable=True)  # migration 0004


class AuthorizationCodeRow(Base):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    sub: Mapped[str] = mapped_column(String(64), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sid: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(String(64))
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # What the exchange issued, so a replay can revoke it (RFC 6749 §4.1.2).
    access_jti: Mapped[str | None] = mapped_column(String(128), nullable=True)
    access_exp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refresh_family: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    sub: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(Text)
    sid: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(String(64))
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)  # sliding idle expiry
    family_expires_at: Mapped[int] = mapped_column(BigInteger)  # absolute expiry of the family
    rotated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # used (replaced)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    access_jti: Mapped[str | None] = mapped_column(String(128), nullable=True)
    access_exp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DeviceCodeRow(Base):
    """A device authorization request (RFC 8628 §3.1) and, once the user decided, its outcome."""

    __tablename__ = "device_codes"

    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex
    user_code: Mapped[str] = mapped_column(String(16), unique=True)  # normalised, no dash
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text)  # space-separated
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | denied
    # Who approved, and how they signed in (for the ID token's sid, auth_time, amr, acr).
    sub: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auth_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    interval: Mapped[int] = mapped_column(Integer)  # seconds; grows by 5 on each slow_down
    last_poll_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # milliseconds
    decided_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    redeemed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
