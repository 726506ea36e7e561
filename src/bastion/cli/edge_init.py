"""`bastion edge init`: a policy drafted from an OpenAPI document's security requirements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._common import fail
from bastion.edge.openapi import OpenAPIError, read_document, render_policy
from bastion.edge.policy import PolicyError, parse


def init(
    openapi: Annotated[str, typer.Option("--openapi", help="The OpenAPI 3 document: an http(s) URL or a file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the policy.")] = Path("policy.yaml"),
    issuer: Annotated[str, typer.Option(help="The OIDC issuer whose tokens the edge accepts.")] = "https://auth.example.com",
    audience: Annotated[str, typer.Option(help="The audience the tokens must name.")] = "https://api.example.com",
    upstream: Annotated[str, typer.Option(help="The API the proxy forwards to.")] = "http://127.0.0.1:9000",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Draft an edge policy from an OpenAPI document: scopes, API keys and public routes as it declares them."""
    if output.exists() and not force:
        raise fail(f"{output} exists. Fix: pass --force to overwrite it, or -o another file")
    try:
        text = render_policy(read_document(openapi), openapi, issuer=issuer, audience=audience,
                             upstream=upstream)
    except OpenAPIError as exc:
        raise fail(str(exc)) from None
    try:  # the draft goes through the loader `bastion edge serve` uses before it is written
        parse(text, str(output), output.resolve().parent)
    except PolicyError as exc:
        raise fail(f"{openapi}: the drafted policy would not load: {exc.problems[0]}") from None
    output.write_text(text, "utf-8")
    typer.echo(f"wrote {output}: review the routes, then `bastion edge render` it")
