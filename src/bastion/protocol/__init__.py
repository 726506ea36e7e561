"""Sans-I/O OAuth 2 / OpenID Connect rules, one package per specification.

Plain data in, decisions out: nothing here imports a web framework, a database or Redis, so
the server, the guard and (later) the gateway share the same rules.
"""
