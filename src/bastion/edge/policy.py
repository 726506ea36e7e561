"""The edge policy: a YAML file read into frozen dataclasses, every mistake named with file:line.

The policy is what an operator writes and what both the decision service and the proxy
renderers read, so a mistake must be found before anything listens: each problem names the file,
the line, the field (`routes[1].methods`) and the fix, like `bastion threats` does for a model.
The file may come from anyone who can open a pull request, so loading is bounded as the threat
model's is: safe YAML, no aliases, no duplicate keys, no unknown keys.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from bastion.config import Secret

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
QUOTA_SUBJECTS = ("client_id", "sub", "api_key", "address")
CLIENT_CERT = ("optional", "required")
DEFAULT_HEADERS = (
    "accept", "accept-language", "content-type", "content-length", "user-agent",
    "if-none-match", "if-match",
)
DEFAULT_MAX_QUERY = 2048
DEFAULT_MAX_BODY = 1024 * 1024
MAX_SIZE = 1024 * 1024 * 1024
MAX_DECISION_CACHE = 300

_SIZE = re.compile(r"([0-9]{1,10})([km]?)", re.IGNORECASE)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 token (header names)
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token
_MEDIA = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,=:@-]+")  # RFC 3986 pchar, minus % and ;
_LOOPBACK = ("localhost",)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a policy file, located and with the fix spelled out."""

    file: str
    line: int
    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class PolicyError(Exception):
    """A policy file could not be used; `problems` lists the reasons."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Tls:
    """TLS termination at the proxy; mTLS when `client_ca` is set."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    client_cert: str = "optional"  # optional | required (only meaningful with client_ca)


@dataclass(frozen=True)
class ApiKeys:
    """Where API keys are checked: Bastion's database (any host) or an `apikeys.json` file."""

    database: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class Body:
    """A route's request body: the largest declared length and the media types allowed (any if empty)."""

    max: int = DEFAULT_MAX_BODY
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Quota:
    """`limit` requests per `window` for each `per` (client_id, sub, api_key or address)."""

    per: str
    limit: int
    window: str

    @property
    def seconds(self) -> int:
        return WINDOWS[self.window]


@dataclass(frozen=True)
class Route:
    """One route: a path (exact or `{name}` template), its methods and what a caller needs."""

    path: str
    methods: tuple[str, ...]
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    public: bool = False
    api_key: bool = False
    client_cert: str = "optional"
    body: Body = field(default_factory=Body)
    quotas: tuple[Quota, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Policy:
    """A whole policy file; paths in it are resolved against the file's directory."""

    file: str
    issuer: str
    audience: str
    upstream: str
    routes: tuple[Route, ...]
    listen: tuple[str, int] = ("127.0.0.1", 8443)
    decision: tuple[str, int] = ("127.0.0.1", 8600)
    tls: Tls | None = None
    redis: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    api_keys: ApiKeys | None = None
    headers_allow: tuple[str, ...] = DEFAULT_HEADERS
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_query: int = DEFAULT_MAX_QUERY
    max_body: int = DEFAULT_MAX_BODY
    decision_cache_seconds: int = 0


_TOP = (
    "listen", "tls", "decision", "issuer", "audience", "upstream", "redis", "client_id",
    "client_secret", "api_keys", "headers", "trusted_proxies", "max_query", "max_body",
    "decision_cache_seconds", "routes",
)
_ROUTE = ("path", "methods", "scopes", "roles", "public", "api_key", "client_cert", "body", "quotas")


def load(path: str | Path) -> Policy:
    """Read and check the policy file at `path`.

    Raises:
        PolicyError: the file is unreadable, not YAML, or any field is wrong.
    """
    name = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise PolicyError([Problem(name, 1, "policy", f"cannot read the file: {exc.strerror}",
                                   "check the path")]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError([Problem(name, 1, "policy", f"not UTF-8 text ({exc.reason})",
                                   "save it as UTF-8")]) from exc
    return parse(text, name, Path(path).resolve().parent)


def parse(text: str, file: str, base: Path) -> Policy:
    """Check the policy document `text` (named `file`, relative paths against `base`)."""
    node = _compose(text, file)
    return _Reader(file, base).policy(node)


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader whose composer refuses aliases where they are written (a billion laughs is
    a few aliases deep; one file's values are never shared)."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(problem="YAML aliases (*name) are not supported",
                                       problem_mark=event.start_mark)
        return super().compose_node(parent, index)


def _compose(text: str, file: str) -> yaml.Node:
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        if exc.problem and "aliases" in exc.problem:
            raise PolicyError([Problem(file, line, "policy", exc.problem,
                                       "write the value out instead of referring to an anchor")]) from exc
        raise PolicyError([Problem(file, line, "policy", f"YAML syntax error: {exc.problem or exc}",
                                   "correct the YAML syntax")]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([Problem(file, 1, "policy", f"YAML error: {exc}", "correct the YAML")]) from exc
    except RecursionError as exc:
        raise PolicyError([Problem(file, 1, "policy", "YAML nested too deep", "flatten the document")]) from exc
    finally:
        loader.dispose()
    if node is None:
        raise PolicyError([Problem(file, 1, "policy", "the file is empty",
                                   "write the policy (issuer, audience, upstream, routes)")])
    return node


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Walks the composed YAML nodes, so every value keeps its line."""

    def __init__(self, file: str, base: Path) -> None:
        self.file = file
        self.base = base
        self.seen: set[int] = set()

    def fail(self, node: yaml.Node, where: str, message: str, fix: str = "") -> NoReturn:
        raise PolicyError([Problem(self.file, node.start_mark.line + 1, where, message, fix)])

    # -- shapes -------------------------------------------------------------------------------

    def mapping(self, node: yaml.Node, where: str, known: tuple[str, ...]) -> dict[str, yaml.Node]:
        self._once(node, where)
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, where, "must be a mapping", "write `key: value` lines")
        result: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            inner = f"{where}.{key}" if where != "policy" else str(key)
            if not isinstance(key, str) or key_node.tag != "tag:yaml.org,2002:str":
                self.fail(key_node, where, f"key {key!r} is not a plain string", "quote the key")
            if key not in known:
                near = difflib.get_close_matches(key, known, n=1)
                fix = f"did you mean `{near[0]}`?" if near else "known keys: " + ", ".join(known)
                self.fail(key_node, inner, "unknown key", fix)
            if key in result:
                self.fail(key_node, inner, "duplicate key", "keep one of the two entries")
            result[key] = value
        return result

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        self._once(node, where)
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, where, "must be a list", "write `[a, b]` or one `- item` per line")
        return list(node.value)

    def scalar(self, node: yaml.Node, where: str) -> Any:
        self._once(node, where)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, where, "must be a single value", "write a plain value, not a list or mapping")
        return yaml.SafeLoader("").construct_object(node)

    def _once(self, node: yaml.Node, where: str) -> None:
        if id(node) in self.seen:
            self.fail(node, where, "YAML aliases (*name) are not supported",
                      "write the value out instead of referring to an anchor")
        self.seen.add(id(node))

    # -- values -------------------------------------------------------------------------------

    def text(self, node: yaml.Node, where: str, what: str = "a non-empty string") -> str:
        value = self.scalar(node, where)
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            self.fail(node, where, f"must be {what}", "write the value as text, without surrounding spaces")
        return value

    def boolean(self, node: yaml.Node, where: str) -> bool:
        value = self.scalar(node, where)
        if not isinstance(value, bool):
            self.fail(node, where, f"must be true or false, not {value!r}", "write true or false")
        return value

    def integer(self, node: yaml.Node, where: str, low: int, high: int) -> int:
        value = self.scalar(node, where)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(node, where, f"must be a whole number from {low} to {high}, not {value!r}",
                      f"write a number from {low} to {high}")
        return value

    def choice(self, node: yaml.Node, where: str, options: tuple[str, ...]) -> str:
        value = self.scalar(node, where)
        if value not in options:
            self.fail(node, where, f"must be one of {', '.join(options)}, not {value!r}",
                      f"write one of {', '.join(options)}")
        return str(value)

    def size(self, node: yaml.Node, where: str) -> int:
        value = self.scalar(node, where)
        match = _SIZE.fullmatch(str(value)) if isinstance(value, int | str) and not isinstance(value, bool) else None
        if match is None:
            self.fail(node, where, f"must be a size in bytes with an optional k or m suffix, not {value!r}",
                      "write e.g. 64k or 1m")
        number = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
        if number > MAX_SIZE:
            self.fail(node, where, f"{value} is larger than 1024m", "write at most 1024m")
        return number

    def words(self, node: yaml.Node, where: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
        items = []
        for i, item in enumerate(self.sequence(node, where)):
            value = self.scalar(item, f"{where}[{i}]")
            if not isinstance(value, str) or not pattern.fullmatch(value):
                self.fail(item, f"{where}[{i}]", f"{value!r} is not {what}", f"write {what}")
            if value not in items:
                items.append(value)
        return tuple(items)

    def address(self, node: yaml.Node, where: str) -> tuple[str, int]:
        value = self.text(node, where, "host:port")
        host, sep, port = value.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            self.fail(node, where, f"must be host:port, not {value!r}", "write e.g. 127.0.0.1:8600")
        return host, int(port)

    def url(self, node: yaml.Node, where: str, schemes: tuple[str, ...]) -> str:
        value = self.text(node, where, "a URL")
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in schemes or not rest or any(c.isspace() for c in value):
            self.fail(node, where, f"must be a {' or '.join(s + '://' for s in schemes)} URL, not {value!r}",
                      f"write e.g. {schemes[0]}://127.0.0.1")
        return value.rstrip("/") if where in {"issuer", "upstream"} else value

    def file_path(self, node: yaml.Node, where: str) -> Path:
        return (self.base / self.text(node, where, "a file path")).resolve()

    # -- the document -------------------------------------------------------------------------

    def policy(self, node: yaml.Node) -> Policy:
        top = self.mapping(node, "policy", _TOP)
        for required in ("issuer", "audience", "upstream", "routes"):
            if required not in top:
                self.fail(node, required, "is required",
                          f"add `{required}:` (see docs/edge.md for an example policy)")
        tls = self.tls(top["tls"]) if "tls" in top else None
        listen = self.address(top["listen"], "listen") if "listen" in top else Policy.listen
        if tls is None and not _is_loopback(listen[0]):
            self.fail(top.get("listen", node), "listen",
                      f"plain HTTP on {listen[0]}, which is not a loopback address",
                      "add a tls block with cert and key, or listen on 127.0.0.1")
        max_body = self.size(top["max_body"], "max_body") if "max_body" in top else DEFAULT_MAX_BODY
        client_id, secret = self.credentials(node, top)
        api_keys = self.api_keys(top["api_keys"]) if "api_keys" in top else None
        routes = self.routes(top["routes"], max_body, tls, api_keys)
        return Policy(
            file=self.file,
            issuer=self.url(top["issuer"], "issuer", ("https", "http")),
            audience=self.text(top["audience"], "audience"),
            upstream=self.url(top["upstream"], "upstream", ("http", "https")),
            routes=routes,
            listen=listen,
            decision=self.address(top["decision"], "decision") if "decision" in top else Policy.decision,
            tls=tls,
            redis=self.url(top["redis"], "redis", ("redis", "rediss", "unix")) if "redis" in top else None,
            client_id=client_id,
            client_secret=secret,
            api_keys=api_keys,
            headers_allow=self.headers(top["headers"]) if "headers" in top else DEFAULT_HEADERS,
            trusted_proxies=self.proxies(top["trusted_proxies"]) if "trusted_proxies" in top else (),
            max_query=self.integer(top["max_query"], "max_query", 0, 65536) if "max_query" in top
            else DEFAULT_MAX_QUERY,
            max_body=max_body,
            decision_cache_seconds=self.integer(top["decision_cache_seconds"], "decision_cache_seconds",
                                                0, MAX_DECISION_CACHE) if "decision_cache_seconds" in top else 0,
        )

    def tls(self, node: yaml.Node) -> Tls:
        fields = self.mapping(node, "tls", ("cert", "key", "client_ca", "client_cert"))
        for required in ("cert", "key"):
            if required not in fields:
                self.fail(node, f"tls.{required}", "is required", f"add `{required}: FILE` to the tls block")
        client_ca = self.file_path(fields["client_ca"], "tls.client_ca") if "client_ca" in fields else None
        mode = self.choice(fields["client_cert"], "tls.client_cert", CLIENT_CERT) if "client_cert" in fields \
            else "optional"
        if "client_cert" in fields and client_ca is None:
            self.fail(fields["client_cert"], "tls.client_cert", "needs tls.client_ca",
                      "add `client_ca: FILE` (the CA that signs client certificates)")
        return Tls(self.file_path(fields["cert"], "tls.cert"), self.file_path(fields["key"], "tls.key"),
                   client_ca, mode)

    def credentials(self, node: yaml.Node, top: dict[str, yaml.Node]) -> tuple[str | None, Secret | None]:
        if ("client_id" in top) != ("client_secret" in top):
            missing = "client_secret" if "client_id" in top else "client_id"
            self.fail(top.get("client_id") or top["client_secret"], missing, "is required with the other one",
                      "give both client_id and client_secret, or neither")
        if "client_id" not in top:
            return None, None
        value = self.text(top["client_secret"], "client_secret")
        if value.startswith("env:"):
            name = value[4:]
            if name not in os.environ or not os.environ[name]:
                self.fail(top["client_secret"], "client_secret", f"environment variable {name} is not set",
                          f"export {name} before starting, or write the secret")
            value = os.environ[name]
        return self.text(top["client_id"], "client_id"), Secret(value)

    def api_keys(self, node: yaml.Node) -> ApiKeys:
        fields = self.mapping(node, "api_keys", ("database", "file"))
        if len(fields) != 1:
            self.fail(node, "api_keys", "must name exactly one of database or file",
                      "write {database: URL} or {file: apikeys.json}")
        if "file" in fields:
            return ApiKeys(file=self.file_path(fields["file"], "api_keys.file"))
        return ApiKeys(database=self.url(fields["database"], "api_keys.database",
                                         ("postgresql+asyncpg", "sqlite+aiosqlite", "postgresql", "sqlite")))

    def headers(self, node: yaml.Node) -> tuple[str, ...]:
        fields = self.mapping(node, "headers", ("allow",))
        if "allow" not in fields:
            return DEFAULT_HEADERS
        names = self.words(fields["allow"], "headers.allow", _TOKEN, "a header name")
        return tuple(dict.fromkeys(n.lower() for n in names))

    def proxies(self, node: yaml.Node) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        result = []
        for i, item in enumerate(self.sequence(node, "trusted_proxies")):
            value = self.text(item, f"trusted_proxies[{i}]", "an address or network")
            try:
                result.append(ipaddress.ip_network(value, strict=True))
            except ValueError:
                self.fail(item, f"trusted_proxies[{i}]", f"{value!r} is not an IP address or network",
                          "write e.g. 10.0.0.5 or 10.0.0.0/24")
        return tuple(result)

    # -- routes -------------------------------------------------------------------------------

    def routes(self, node: yaml.Node, max_body: int, tls: Tls | None, api_keys: ApiKeys | None) -> tuple[Route, ...]:
        items = self.sequence(node, "routes")
        if not items:
            self.fail(node, "routes", "is empty: every request would be refused", "list at least one route")
        return tuple(self.route(item, f"routes[{i}]", max_body, tls, api_keys) for i, item in enumerate(items))

    def route(self, node: yaml.Node, where: str, max_body: int, tls: Tls | None,
              api_keys: ApiKeys | None) -> Route:
        f = self.mapping(node, where, _ROUTE)
        for required in ("path", "methods"):
            if required not in f:
                self.fail(node, f"{where}.{required}", "is required",
                          "add `path: /...`" if required == "path" else "add e.g. `methods: [GET]`")
        public = self.boolean(f["public"], f"{where}.public") if "public" in f else False
        api_key = self.boolean(f["api_key"], f"{where}.api_key") if "api_key" in f else False
        route = Route(
            path=self.route_path(f["path"], f"{where}.path"),
            methods=self.methods(f["methods"], f"{where}.methods"),
            scopes=self.words(f["scopes"], f"{where}.scopes", _SCOPE, "a scope") if "scopes" in f else (),
            roles=self.words(f["roles"], f"{where}.roles", _SCOPE, "a role name") if "roles" in f else (),
            public=public,
            api_key=api_key,
            client_cert=self.choice(f["client_cert"], f"{where}.client_cert", CLIENT_CERT)
            if "client_cert" in f else "optional",
            body=self.body(f["body"], f"{where}.body", max_body) if "body" in f else Body(max=max_body),
            quotas=self.quotas(f["quotas"], f"{where}.quotas") if "quotas" in f else (),
            line=node.start_mark.line + 1,
        )
        self.check_route(route, f, where, tls, api_keys)
        return route

    def check_route(self, route: Route, f: dict[str, yaml.Node], where: str, tls: Tls | None,
                    api_keys: ApiKeys | None) -> None:
        if route.public:
            for key in ("scopes", "roles", "api_key"):
                if key in f:
                    self.fail(f[key], f"{where}.{key}", "a public route needs no credentials",
                              f"remove `{key}`, or remove `public: true`")
        if route.api_key and api_keys is None:
            self.fail(f["api_key"], f"{where}.api_key", "no api_keys source is configured",
                      "add `api_keys: {file: apikeys.json}` or `api_keys: {database: URL}`")
        if route.client_cert == "required" and (tls is None or tls.client_ca is None):
            self.fail(f["client_cert"], f"{where}.client_cert", "required, but tls.client_ca is not set",
                      "add client_ca to the tls block so the proxy can verify client certificates")
        for i, quota in enumerate(route.quotas):
            unusable = (route.public and quota.per != "address") or (quota.per == "api_key" and not route.api_key)
            if unusable:
                self.fail(f["quotas"], f"{where}.quotas[{i}].per",
                          f"{quota.per} is never known on this route", "count per address, or per a caller this "
                          "route authenticates")

    def route_path(self, node: yaml.Node, where: str) -> str:
        value = self.text(node, where, "a path")
        segments = value.split("/")[1:]
        names = [m.group(1) for s in segments if (m := _PARAM.fullmatch(s))]
        plain = [s for s in segments if not _PARAM.fullmatch(s)]
        if not value.startswith("/") or any(s in {"", ".", ".."} for s in segments[:-1]) \
                or segments[-1] in {".", ".."} or not all(s == "" or _SEGMENT.fullmatch(s) for s in plain):
            self.fail(node, where, f"{value!r} is not a plain absolute path",
                      "write /segment/{name} with no //, dot segments, %, ; or spaces")
        if len(names) != len(set(names)):
            self.fail(node, where, "a {name} appears twice", "give each template segment its own name")
        return value

    def methods(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        items = self.sequence(node, where)
        if not items:
            self.fail(node, where, "is empty", "list at least one method, e.g. [GET]")
        result: list[str] = []
        for i, item in enumerate(items):
            value = self.scalar(item, f"{where}[{i}]")
            if not isinstance(value, str) or value.upper() not in METHODS:
                self.fail(item, f"{where}[{i}]", f"unknown method {value!r}", "use " + ", ".join(METHODS))
            if value.upper() not in result:
                result.append(value.upper())
        return tuple(result)

    def body(self, node: yaml.Node, where: str, max_body: int) -> Body:
        f = self.mapping(node, where, ("max", "types"))
        types = self.words(f["types"], f"{where}.types", _MEDIA, "a lowercase media type (type/subtype)") \
            if "types" in f else ()
        return Body(max=self.size(f["max"], f"{where}.max") if "max" in f else max_body, types=types)

    def quotas(self, node: yaml.Node, where: str) -> tuple[Quota, ...]:
        result = []
        for i, item in enumerate(self.sequence(node, where)):
            at = f"{where}[{i}]"
            f = self.mapping(item, at, ("per", "limit", "window"))
            for required in ("per", "limit", "window"):
                if required not in f:
                    self.fail(item, f"{at}.{required}", "is required",
                              "write {per: client_id, limit: 1000, window: day}")
            result.append(Quota(
                per=self.choice(f["per"], f"{at}.per", QUOTA_SUBJECTS),
                limit=self.integer(f["limit"], f"{at}.limit", 1, 1_000_000_000),
                window=self.choice(f["window"], f"{at}.window", tuple(WINDOWS)),
            ))
        return tuple(result)
