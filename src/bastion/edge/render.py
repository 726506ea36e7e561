"""`bastion edge render`: an nginx or Caddy configuration from an edge policy.

The proxy carries the traffic and `bastion edge serve` decides each request, so the rendered
configuration does three things only: ask the decision service about every request (nginx
`auth_request`, Caddy `forward_auth`) exactly as the contract in docs/edge.md says, pass what it
allows upstream with the raw URI unchanged and only the allowlisted headers, and terminate TLS
(mTLS when the policy names a client CA). Either configuration runs without root from its
directory: pid, logs, temporary files and Caddy's storage all live there.

Every value the policy gives is checked against a narrow alphabet before it is written into a
configuration file: a policy comes from whoever can open a pull request, and a quote or a brace
in a path must not become a directive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from bastion.edge.policy import Policy, Route

PROXIES = ("nginx", "caddy")

# Mozilla's "intermediate" TLS configuration (version 5.7): TLS 1.2 ciphers, in OpenSSL and Go
# names; TLS 1.3's suites are fixed by both libraries. The DHE suites need dhparams, which
# nginx only uses when `ssl_dhparam` is given, so they are listed for nginx and inert.
MOZILLA_INTERMEDIATE_OPENSSL = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
MOZILLA_INTERMEDIATE_GO = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
HSTS = "max-age=63072000"

# What the decision returns and the proxy copies onto the upstream request (and nothing else
# named X-Bastion-* ever reaches the upstream).
IDENTITY_HEADERS = (
    "X-Bastion-Sub", "X-Bastion-Client-Id", "X-Bastion-Scope", "X-Bastion-Roles",
    "X-Bastion-Api-Key-Id", "X-Bastion-Cert-Thumbprint", "X-Request-Id",
    "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
)

# nginx's auth_request passes on only 401 and 403; the decision answers the other refusals as
# 403 + X-Bastion-Status, and nginx answers the real status with this error and description.
NGINX_REFUSALS = (
    (400, "invalid_request", "ambiguous or malformed request"),
    (404, "not_found", "no route for this request"),
    (405, "method_not_allowed", "method not allowed on this route"),
    (413, "payload_too_large", "request body too large for this route"),
    (414, "uri_too_long", "query string too long"),
    (415, "unsupported_media_type", "content type not allowed on this route"),
    (429, "rate_limited", "quota exhausted; retry later"),
    (503, "temporarily_unavailable", "the access decision is unavailable"),
)
REFUSAL_HEADERS = (
    ("WWW-Authenticate", "$bastion_www_authenticate"), ("Retry-After", "$bastion_retry_after"),
    ("Allow", "$bastion_allow"), ("RateLimit-Limit", "$bastion_ratelimit_limit"),
    ("RateLimit-Remaining", "$bastion_ratelimit_remaining"), ("RateLimit-Reset", "$bastion_ratelimit_reset"),
    ("RateLimit", "$bastion_ratelimit"), ("RateLimit-Policy", "$bastion_ratelimit_policy"),
    ("X-Request-Id", "$bastion_request_id"),
)

_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")
_HEADER = re.compile(r"[A-Za-z0-9-]+")
_FILE = re.compile(r"[A-Za-z0-9._/+@,=~-]+")
_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_LITERAL = re.compile(r"[A-Za-z0-9._~!$&'()*+,=:@/-]+")


class RenderError(Exception):
    """The policy cannot be written as this proxy's configuration; the message says why and the fix."""


def render(policy: Policy, proxy: str, directory: Path) -> dict[str, str]:
    """The files (name relative to `directory` -> text) of `proxy`'s configuration for `policy`.

    Raises:
        RenderError: a value of the policy cannot be written safely, or `proxy` is unknown.
    """
    renderers: dict[str, Callable[[Policy, Path], dict[str, str]]] = {"nginx": render_nginx, "caddy": render_caddy}
    if proxy not in renderers:
        raise RenderError(f"unknown proxy {proxy!r}; use one of: {', '.join(PROXIES)}")
    return renderers[proxy](policy, directory.resolve())


def write(files: dict[str, str], directory: Path) -> list[Path]:
    """Write `files` under `directory` with the directories the proxy writes to; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp", "data"):
        (directory / sub).mkdir(exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, "utf-8")
        written.append(path)
    return written


# -- shared checks ------------------------------------------------------------------------------


def _template(name: str) -> str:
    return resources.files("bastion.edge").joinpath("templates", name).read_text("utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{[a-z_]+\}\}", template)
    if leftover:  # a template and its renderer disagree: a bug here, never the operator's
        raise RenderError(f"internal: template placeholder {leftover.group(0)} not filled")
    return template


def _host_port(host: str, port: int, where: str) -> str:
    if not _HOST.fullmatch(host):
        raise RenderError(f"{where}: host {host!r} has characters a proxy configuration cannot carry; "
                          "write a host name or an IP address")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _upstream(policy: Policy) -> tuple[str, str]:
    """(scheme, host:port) of the upstream; its path must be empty: the raw URI is forwarded as is."""
    parts = urlsplit(policy.upstream)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise RenderError(f"upstream: {policy.upstream!r} has a path, query or user part; the proxy forwards "
                          "the raw request URI unchanged, so write only scheme://host:port")
    if parts.hostname is None:
        raise RenderError(f"upstream: {policy.upstream!r} names no host; write scheme://host:port")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, _host_port(parts.hostname, port, "upstream")


def _file(path: Path, where: str) -> str:
    text = str(path)
    if not _FILE.fullmatch(text):
        raise RenderError(f"{where}: the path {text!r} has characters a proxy configuration cannot carry "
                          "(spaces, quotes, braces, ;); move the file to a plain path")
    return text


def _headers(policy: Policy) -> tuple[str, ...]:
    for name in policy.headers_allow:
        if not _HEADER.fullmatch(name):
            raise RenderError(f"headers.allow: {name!r} is not a header name nginx and Caddy can both pass "
                              "(letters, digits and -)")
    # Content-Length is the body's framing, which both proxies set themselves.
    return tuple(h for h in policy.headers_allow if h.lower() not in {"content-length", "host", "authorization"})


def route_regex(route: Route) -> str:
    """The anchored regular expression (PCRE and RE2 alike) of a route's decoded path."""
    out = []
    for piece in re.split(r"(\{[^}]*\})", route.path):
        if _PARAM.fullmatch(piece):
            out.append("[^/]+")
        elif piece:
            if not _LITERAL.fullmatch(piece):
                raise RenderError(f"routes: path {route.path!r} has characters outside RFC 3986's pchar")
            out.append("".join(c if c.isalnum() or c in "/-_~@,=:!&'" else f"\\x{ord(c):02x}" for c in piece))
    return "^" + "".join(out) + "$"


def _token_route(route: Route) -> bool:
    return not route.public


# -- nginx ----------------------------------------------------------------------------------------


def render_nginx(policy: Policy, directory: Path) -> dict[str, str]:
    """nginx.conf and upstream-headers.conf for `policy`, run as `nginx -p DIRECTORY -c nginx.conf`."""
    scheme, upstream = _upstream(policy)
    decision = _host_port(*policy.decision, "decision")
    listen = _host_port(*policy.listen, "listen")
    allowed = "".join(f"proxy_set_header {h} $http_{h.lower().replace('-', '_')};\n" for h in _headers(policy))
    hsts = f'            add_header Strict-Transport-Security "{HSTS}" always;\n' if policy.tls else ""
    common = "            default_type application/json;\n            add_header Cache-Control no-store always;\n"
    refusal_headers = common + "".join(f"            add_header {n} {v} always;\n" for n, v in REFUSAL_HEADERS)
    # auth_request copies a 401's WWW-Authenticate itself.
    unauthorized_headers = common + "".join(
        f"            add_header {n} {v} always;\n" for n, v in REFUSAL_HEADERS if n != "WWW-Authenticate"
    )
    refusals = "".join(
        f"            if ($bastion_status = {status}) {{\n"
        f"                return {status} {_nginx_json(error, text)};\n"
        "            }\n"
        for status, error, text in NGINX_REFUSALS
    )
    values = {
        "policy": _file(Path(policy.file).resolve(), "policy"),
        "dir": _file(directory, "output directory"),
        "decision": decision,
        "upstream": upstream,
        "trusted_proxies": "".join(f"        {net} 1;\n" for net in policy.trusted_proxies),
        "listen": listen,
        "listen_flags": " ssl http2" if policy.tls else "",
        "tls": _nginx_tls(policy),
        "max_body": str(policy.max_body),
        "routes": "".join(_nginx_route(i, r, scheme) for i, r in enumerate(policy.routes)),
        "hsts": hsts,
        "refusal_headers": refusal_headers + hsts,
        "unauthorized_headers": unauthorized_headers + hsts,
        "refusals": refusals,
        "forbidden": _nginx_json("forbidden", "access refused"),
        "insufficient_scope": _nginx_json("insufficient_scope", "$bastion_challenge_description"),
        "invalid_token": _nginx_json("$bastion_challenge_error", "$bastion_challenge_description"),
        "unauthenticated": _nginx_json("", "Authentication required: send 'Authorization: Bearer <token>'."),
        "certificate": _nginx_json("forbidden", "This route requires a verified client certificate."),
        "unavailable": _nginx_json("temporarily_unavailable", "the access decision is unavailable"),
        "bad_gateway": _nginx_json("bad_gateway", "the upstream did not answer"),
        "too_large": _nginx_json("payload_too_large", "request body too large"),
        "uri_too_long": _nginx_json("uri_too_long", "request URI too long"),
        "upstream_scheme": scheme,
        "upstream_tls": _nginx_upstream_tls(policy) if scheme == "https" else "",
    }
    conf = _fill(_template("nginx.conf"), values)
    headers = _fill(_template("nginx-upstream-headers.conf"), {"allowed_headers": allowed})
    return {"nginx.conf": conf, "upstream-headers.conf": headers}


def _nginx_json(error: str, description: str) -> str:
    """A JSON error body as an nginx string (`$name` in `description` is an nginx variable)."""
    body = '{"error":"' + error + '","error_description":"' + description + '"}' if error \
        else '{"error_description":"' + description + '"}'
    return '"' + body.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nginx_tls(policy: Policy) -> str:
    if policy.tls is None:
        return ""
    tls = policy.tls
    lines = [
        f"        ssl_certificate {_file(tls.cert, 'tls.cert')};",
        f"        ssl_certificate_key {_file(tls.key, 'tls.key')};",
        "        # Mozilla intermediate: TLS 1.2 and 1.3 only.",
        "        ssl_protocols TLSv1.2 TLSv1.3;",
        f"        ssl_ciphers {MOZILLA_INTERMEDIATE_OPENSSL};",
        "        ssl_prefer_server_ciphers off;",
        "        ssl_session_timeout 1d;",
        "        ssl_session_cache shared:BastionEdgeTLS:10m;",
        "        ssl_session_tickets off;",
        f'        add_header Strict-Transport-Security "{HSTS}" always;',
    ]
    if tls.client_ca is not None:
        verify = "on" if tls.client_cert == "required" else "optional"
        lines += [
            "        # mTLS: the verified certificate goes to the decision, which derives its thumbprint.",
            f"        ssl_client_certificate {_file(tls.client_ca, 'tls.client_ca')};",
            f"        ssl_verify_client {verify};",
            "        ssl_verify_depth 3;",
            "        error_page 495 496 = @bastion_certificate;",
        ]
    return "\n".join(lines) + "\n"


def _nginx_upstream_tls(policy: Policy) -> str:
    # nginx does not verify an upstream's certificate unless told to; the system's trust store.
    host = urlsplit(policy.upstream).hostname or ""
    return (
        "        proxy_ssl_verify on;\n"
        "        proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;\n"
        "        proxy_ssl_server_name on;\n"
        f"        proxy_ssl_name {host};\n"
    )


def _nginx_route(index: int, route: Route, scheme: str) -> str:
    lines = [
        f"        # routes[{index}]: {' '.join(route.methods)} {route.path}"
        + (" (public)" if route.public else ""),
        f'        location ~ "{route_regex(route)}" {{',
        f"            client_max_body_size {route.body.max};",
        "            include upstream-headers.conf;",
    ]
    if _token_route(route):
        lines.append("            proxy_set_header Authorization $http_authorization;")
    if route.api_key:
        lines.append("            proxy_set_header X-API-Key $http_x_api_key;")
    lines += [f"            proxy_pass {scheme}://bastion_upstream;", "        }", ""]
    return "\n".join(lines) + "\n"


# -- Caddy ----------------------------------------------------------------------------------------


def render_caddy(policy: Policy, directory: Path) -> dict[str, str]:
    """A Caddyfile for `policy`, run as `caddy run --config DIRECTORY/Caddyfile --adapter caddyfile`."""
    scheme, upstream = _upstream(policy)
    decision = _host_port(*policy.decision, "decision")
    host, port = policy.listen
    _host_port(host, port, "listen")
    headers = _headers(policy)
    # X-Forwarded-For/-Proto are kept for Caddy's reverse_proxy to judge: it keeps (appends to)
    # them from trusted_proxies and overwrites them from anyone else.
    forwarded = ("X-Forwarded-For", "X-Forwarded-Proto")
    names = (*headers, *forwarded, "Authorization", "X-API-Key")
    sources = [(h, f"http.request.header.{h}") for h in names]
    # Caddy names the decision's response headers in Go's canonical form (Ratelimit-Limit).
    sources += [(h, f"http.reverse_proxy.header.{_go_canonical(h)}") for h in IDENTITY_HEADERS]
    stash = "".join(f"\t\tvars {_caddy_var(h)} {{{source}}}\n" for h, source in sources)
    # Each header is set again only when it has a value (an absent one stashes as empty).
    restore = "".join(f"\t\t@{_caddy_var(h)} expression `{{vars.{_caddy_var(h)}}} != \"\"`\n" for h, _ in sources)
    restore += "".join(
        f"\t\trequest_header @{_caddy_var(h)} {h} {{vars.{_caddy_var(h)}}}\n"
        for h in (*headers, *forwarded, *IDENTITY_HEADERS)
    )
    values = {
        "policy": _file(Path(policy.file).resolve(), "policy"),
        "dir": _file(directory, "output directory"),
        "auto_https": "disable_redirects" if policy.tls else "off",
        "trusted_proxies": (
            "trusted_proxies " + " ".join(str(n) for n in policy.trusted_proxies)
            if policy.trusted_proxies else "# no trusted proxies: X-Forwarded-* are overwritten"
        ),
        "site": f"{'https' if policy.tls else 'http'}://:{port}",
        "bind": host,
        "tls": _caddy_tls(policy),
        "hsts": f'\t\tStrict-Transport-Security "{HSTS}"\n' if policy.tls else "",
        "hsts_errors": f'\t\t\tStrict-Transport-Security "{HSTS}"\n' if policy.tls else "",
        "decision": decision,
        "identity": " ".join(IDENTITY_HEADERS),
        "stash": stash,
        "restore": restore,
        "routes": "".join(_caddy_route(i, r, scheme, upstream) for i, r in enumerate(policy.routes)),
        "max_body": str(policy.max_body),
        "upstream": f"{scheme}://{upstream}",
    }
    return {"Caddyfile": _fill(_template("Caddyfile"), values)}


def _caddy_tls(policy: Policy) -> str:
    if policy.tls is None:
        return ""
    tls = policy.tls
    lines = [
        f"\ttls {_file(tls.cert, 'tls.cert')} {_file(tls.key, 'tls.key')} {{",
        "\t\t# Mozilla intermediate: TLS 1.2 and 1.3 only.",
        "\t\tprotocols tls1.2 tls1.3",
        f"\t\tciphers {' '.join(MOZILLA_INTERMEDIATE_GO)}",
    ]
    if tls.client_ca is not None:
        mode = "require_and_verify" if tls.client_cert == "required" else "verify_if_given"
        lines += [
            "\t\tclient_auth {",
            f"\t\t\tmode {mode}",
            f"\t\t\ttrusted_ca_cert_file {_file(tls.client_ca, 'tls.client_ca')}",
            "\t\t}",
        ]
    lines.append("\t}")
    return "\n".join(lines) + "\n"


def _go_canonical(header: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in header.split("-"))


def _caddy_var(header: str) -> str:
    return "bastion_h_" + header.lower().replace("-", "_")


def _caddy_route(index: int, route: Route, scheme: str, upstream: str) -> str:
    lines = [
        f"\t\t# routes[{index}]: {' '.join(route.methods)} {route.path}" + (" (public)" if route.public else ""),
        f"\t\t@route{index} path_regexp route{index} {route_regex(route)}",
        f"\t\thandle @route{index} {{",
        "\t\t\trequest_body {",
        f"\t\t\t\tmax_size {route.body.max}",
        "\t\t\t}",
    ]
    for name, wanted in (("Authorization", _token_route(route)), ("X-API-Key", route.api_key)):
        if wanted:
            var = _caddy_var(name)
            lines.append(f"\t\t\trequest_header @{var} {name} {{vars.{var}}}")
    lines += ["\t\t\timport upstream", "\t\t}", ""]
    return "\n".join(lines) + "\n"
