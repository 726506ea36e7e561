"""The attribute vocabulary of each element type: name, type, default and meaning.

This table is the model schema: the parser checks against it, rules may read only these names
(plus computed facts), and `bastion threats init` documents them from it. Controls default to
"absent" so an undeclared control yields a threat rather than silence (the conservative choice
pytm made; our `not_applicable` status records the cases where that is noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["bool", "str", "int?", "str?", "strlist", "strlist?", "assets", "enum"]


@dataclass(frozen=True)
class Field:
    """One attribute: its type, default and a one-line meaning."""

    name: str
    type: FieldType
    default: Any
    doc: str
    choices: tuple[str, ...] = ()


def _flags(*pairs: tuple[str, str]) -> tuple[Field, ...]:
    return tuple(Field(name, "bool", False, doc) for name, doc in pairs)


EXTERNAL_ENTITY_FIELDS: tuple[Field, ...] = _flags(
    ("human", "a person (browser user) rather than a system"),
    ("trusted", "operated by us or a vetted partner (not an anonymous party)"),
    ("privileged", "holds administrative power over the system"),
    ("mfa", "authenticates with a second factor"),
)

PROCESS_FIELDS: tuple[Field, ...] = (
    Field("kind", "enum", "service", "what the process is",
          ("service", "gateway", "web_app", "spa", "worker", "authorization_server", "cli")),
    Field("handles", "assets", (), "data assets the process handles besides its flows"),
    Field("edge_policy", "str?", None, "a `bastion edge` policy file (relative to the model) whose "
          "routes are this gateway's endpoints and facts"),
    *_flags(
        ("authenticates_requests", "authenticates every request it serves"),
        ("authorizes_requests", "enforces authorization (scopes/RBAC) on every endpoint"),
        ("validates_input", "validates every input against a schema (type, size, format)"),
        ("parameterized_queries", "uses prepared statements / an ORM, never string-built queries"),
        ("mass_assignment_guard", "binds request bodies to allow-listed fields only"),
        ("output_encoding", "encodes output for its context (HTML, headers)"),
        ("security_logging", "logs authentication, authorization and input failures"),
        ("audit_trail", "keeps a tamper-evident record of who did what"),
        ("monitoring_alerting", "monitors logs and alerts on attacks"),
        ("rate_limiting", "limits request rates per client"),
        ("load_shedding", "sheds load under overload instead of collapsing"),
        ("hardened", "secure configuration: no debug, least privilege, patched"),
        ("hides_error_details", "returns generic errors; details only in logs"),
        ("security_headers", "sends security headers (HSTS, CSP, nosniff, frame options)"),
        ("cors_restricted", "CORS allows only listed origins"),
        ("csrf_protection", "protects cookie-authenticated state changes against CSRF"),
        ("fetches_urls", "fetches URLs that callers can influence"),
        ("url_allow_list", "outbound fetches go only to allow-listed destinations"),
        ("consumes_third_party_apis", "calls APIs operated by third parties"),
        ("validates_upstream_responses", "validates and bounds responses from upstream APIs"),
        ("api_inventory", "every API version and host is documented; old ones retired"),
        ("non_production_exposed", "a non-production instance is reachable like production"),
        ("secrets_managed", "secrets come from a secret store, never from code"),
        ("dependency_scanning", "dependencies are pinned, hashed and scanned"),
        ("deserializes_untrusted", "deserializes data from untrusted callers into objects"),
        ("parses_xml", "parses XML from callers"),
        ("issues_tokens", "issues access, refresh or ID tokens"),
        ("pkce_enforced", "requires PKCE for authorization codes (RFC 9700 §2.1.1)"),
        ("refresh_token_rotation", "rotates refresh tokens and detects reuse"),
        ("key_rotation", "rotates signing keys and publishes them as a JWKS"),
        ("brute_force_protection", "slows and locks out password/code guessing"),
        ("strong_password_hashing", "hashes passwords with a slow, salted KDF (Argon2, scrypt)"),
        ("validates_tokens", "validates token signature, issuer, audience and expiry"),
        ("short_lived_tokens", "access tokens live minutes, not days"),
        ("secure_sessions", "session cookies are Secure, HttpOnly, SameSite, rotated at login"),
        ("sanitizes_logs", "keeps secrets and tokens out of logs"),
        ("untrusted_code_isolated", "third-party scripts run isolated (SRI, sandbox)"),
    ),
)

DATA_STORE_FIELDS: tuple[Field, ...] = (
    Field("kind", "enum", "sql", "storage technology",
          ("sql", "nosql", "cache", "key_value", "file", "log", "object", "queue", "browser")),
    Field("stores", "assets", (), "data assets kept in the store"),
    *_flags(
        ("encrypted_at_rest", "data (or its sensitive columns) is encrypted at rest"),
        ("access_control", "connections authenticate; accounts have least privilege"),
        ("backups", "tested backups exist"),
        ("audit_logging", "the store logs who changed what"),
        ("integrity_protection", "records are checksummed, signed or append-only"),
        ("capacity_limits", "quotas, eviction or size limits bound growth"),
        ("high_availability", "replicated or otherwise resilient to one failure"),
        ("credentials_hashed", "credentials it holds are hashed, not reversible"),
        ("network_isolated", "reachable only from the services that need it"),
    ),
)

AUTHENTICATIONS: tuple[str, ...] = (
    "none", "password", "api_key", "bearer_token", "session_cookie", "mtls", "client_secret",
    "private_key_jwt", "database_credentials",
)
AUTHORIZATIONS: tuple[str, ...] = ("none", "scope", "role", "ownership", "service_account")
TLS_PROTOCOLS: frozenset[str] = frozenset({"https", "wss", "grpcs", "rediss", "tls", "mtls"})

FLOW_FIELDS: tuple[Field, ...] = (
    Field("protocol", "str", "https", "application protocol (https, http, postgres, redis, ...)"),
    Field("authentication", "enum", "none", "how the sender authenticates", AUTHENTICATIONS),
    Field("authorization", "enum", "none", "what the receiver checks", AUTHORIZATIONS),
    Field("data", "assets", (), "data assets carried (either direction)"),
    *_flags(
        ("encrypted", "encrypted in transit (defaults to true for TLS protocols)"),
        ("certificate_validation", "the client validates the server certificate"),
        ("integrity_protected", "messages are signed or MACed end to end"),
        ("rate_limited", "the receiver rate-limits this flow"),
        ("replay_protection", "nonces, timestamps or one-time codes stop replay"),
    ),
)

ENDPOINT_FIELDS: tuple[Field, ...] = (
    Field("method", "enum", "GET", "HTTP method", ("GET", "POST", "PUT", "PATCH", "DELETE")),
    Field("path", "str", "", "path template, e.g. /orders/{order_id}"),
    Field("scopes", "strlist", (), "OAuth scopes required"),
    Field("roles", "strlist", (), "roles required (RBAC)"),
    Field("object_ids", "strlist", (), "parameters naming objects (BOLA surface)"),
    Field("rate_limit", "str?", None, "rate limit, e.g. 10/minute"),
    Field("writable_fields", "strlist?", None, "allow-list of body fields a caller may set"),
    Field("response_fields", "strlist?", None, "allow-list of fields returned"),
    Field("returns", "assets", (), "data assets in the response"),
    Field("pagination_limit", "int?", None, "maximum page size"),
    *_flags(
        ("authenticated", "the endpoint requires authentication"),
        ("ownership_check", "checks the caller owns (or may access) each object id"),
        ("admin", "a privileged function (administration, other users' data)"),
        ("input_validation", "the body and parameters are schema-validated"),
        ("sensitive_business_flow", "a business flow worth automating abuse of (buy, sign up)"),
        ("anti_automation", "the business flow has anti-automation (quotas, CAPTCHA, review)"),
        ("url_parameter", "takes a URL the server will fetch"),
        ("deprecated", "an old version kept alive"),
        ("documented", "listed in the API inventory/OpenAPI description"),
    ),
)

FIELDS_BY_KIND: dict[str, tuple[Field, ...]] = {
    "external_entity": EXTERNAL_ENTITY_FIELDS,
    "process": PROCESS_FIELDS,
    "data_store": DATA_STORE_FIELDS,
    "flow": FLOW_FIELDS,
    "endpoint": ENDPOINT_FIELDS,
}
