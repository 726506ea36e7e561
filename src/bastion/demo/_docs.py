"""Interactive API docs for the demo (`/demo/docs`), built from its own OpenAPI document.

Swagger UI and ReDoc load their scripts and styles from a CDN, which these pages may not name
(nothing here links outside the server) and which a strict CSP would block anyway. So the page
is rendered here: every operation with its method, path, summary, scopes and parameters, readable
without script; one small script of our own origin (`docs.js`, no inline script, no `eval`)
adds a "Send" button to each operation, sending the request with the bearer token pasted at the
top and showing the status and body as text (never as HTML).
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.responses import Response

__all__ = ["DOCS_CSP", "docs_page", "docs_script", "docs_stylesheet"]

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {"content-security-policy": DOCS_CSP, "cache-control": "no-cache"}
_METHODS = ("get", "post", "put", "patch", "delete")

_SCRIPT = """\
"use strict";
// Sends each operation's request with the pasted bearer token; shows the answer as text.
(function () {
  const base = window.location.pathname.replace(/\\/docs\\/?$/, "");
  const token = document.getElementById("token");
  for (const form of document.querySelectorAll("form.try")) {
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const output = form.querySelector("output");
      let path = form.dataset.path;
      for (const input of form.querySelectorAll("input[data-in=path]")) {
        path = path.replace("{" + input.name + "}", encodeURIComponent(input.value));
      }
      const query = new URLSearchParams();
      for (const input of form.querySelectorAll("input[data-in=query]")) {
        if (input.value) { query.append(input.name, input.value); }
      }
      const init = { method: form.dataset.method, headers: {} };
      if (token.value.trim()) { init.headers.authorization = "Bearer " + token.value.trim(); }
      const body = form.querySelector("textarea");
      if (body && body.value.trim()) {
        init.headers["content-type"] = "application/json";
        init.body = body.value;
      }
      output.textContent = "...";
      try {
        const suffix = query.toString() ? "?" + query.toString() : "";
        const response = await fetch(base + path + suffix, init);
        const text = await response.text();
        let shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (ignored) { shown = text; }
        output.textContent = response.status + " " + response.statusText + "\\n" + shown;
      } catch (error) {
        output.textContent = String(error);
      }
    });
  }
})();
"""

_STYLE = """\
body { margin: 0 auto; max-width: 60rem; padding: 1rem; font: 16px/1.5 system-ui, sans-serif; }
code, pre, output, textarea, input { font-family: ui-monospace, monospace; }
.op { border: 1px solid #8886; border-radius: 0.5rem; padding: 0.75rem; margin: 0.75rem 0; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; text-transform: uppercase; }
.scopes { opacity: 0.8; font-size: 0.9rem; }
input, textarea { width: 100%; padding: 0.4rem; box-sizing: border-box; }
textarea { min-height: 5rem; }
output { display: block; white-space: pre-wrap; word-break: break-all; margin-top: 0.5rem; }
button { margin-top: 0.5rem; padding: 0.4rem 1rem; }
"""


def docs_script() -> Response:
    return Response(_SCRIPT, media_type="text/javascript", headers=_HEADERS)


def docs_stylesheet() -> Response:
    return Response(_STYLE, media_type="text/css", headers=_HEADERS)


def docs_page(schema: dict[str, Any], scopes: dict[str, str]) -> Response:
    """The HTML page of `schema` (every text escaped: the document is data, not markup)."""
    info = schema.get("info", {})
    operations = [
        _operation(method, path, spec)
        for path, item in schema.get("paths", {}).items()
        for method, spec in item.items()
        if method in _METHODS
    ]
    scope_list = "".join(f"<li><code>{escape(name)}</code>: {escape(text)}</li>" for name, text in scopes.items())
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(str(info.get("title", "API")))} · API docs</title>
<link rel="stylesheet" href="docs.css">
<script src="docs.js" defer></script>
</head>
<body>
<h1>{escape(str(info.get("title", "API")))}</h1>
<p>{escape(str(info.get("description", "")))} The machine-readable document is
<a href="openapi.json">openapi.json</a>.</p>
<p>Get a token with <code>bastion demo token --user alice</code> (or bob, carol the admin, dave),
paste it below, then send any request.</p>
<label for="token">Bearer token</label>
<input id="token" type="text" autocomplete="off" spellcheck="false" placeholder="eyJ...">
<h2>Scopes</h2>
<ul>{scope_list}</ul>
<h2>Operations</h2>
{"".join(operations)}
</body>
</html>
"""
    return Response(body, media_type="text/html; charset=utf-8", headers=_HEADERS)


def _operation(method: str, path: str, spec: dict[str, Any]) -> str:
    needed = sorted({scope for entry in spec.get("security", [{}]) or [{}] for scope in _scopes_of(entry)})
    scopes = f'<span class="scopes">scopes: {escape(", ".join(needed))}</span>' if needed else ""
    fields = [_parameter(p) for p in spec.get("parameters", []) if p.get("in") in ("path", "query")]
    if "requestBody" in spec:
        fields.append('<label>JSON body<textarea name="body" spellcheck="false">{}</textarea></label>')
    summary = escape(str(spec.get("summary") or spec.get("description") or ""))
    return (
        f'<section class="op" id="{escape(method)}-{escape(path)}">'
        f'<span class="method">{escape(method)}</span> <code>{escape(path)}</code> {scopes}<p>{summary}</p>'
        f'<form class="try" hidden data-method="{escape(method.upper())}" data-path="{escape(path)}">'
        f'{"".join(fields)}<button type="submit">Send</button><output></output></form></section>\n'
    )


def _scopes_of(entry: dict[str, Any]) -> list[str]:
    return [scope for scopes in entry.values() for scope in scopes]


def _parameter(parameter: dict[str, Any]) -> str:
    name = escape(str(parameter.get("name", "")))
    where = escape(str(parameter.get("in", "")))
    return f'<label>{name} ({where})<input name="{name}" data-in="{where}" type="text" spellcheck="false"></label>'
