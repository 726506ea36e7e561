"""The authorization server: a Starlette app whose endpoints are pipelines of small checks."""

from bastion.server.app import create_app, open_context

__all__ = ["create_app", "open_context"]
