"""`bastion edge`: the decision service behind a proven proxy (nginx `auth_request`, Caddy `forward_auth`).

The proxy carries the traffic; Bastion decides each request from a YAML policy (`policy.py`):
ambiguous paths refused and routes matched (`paths.py`), then tokens, API keys, scopes, roles,
client certificates and quotas checked with the guard's and the rate limiter's cores
(`decision.py`), optionally remembering allows for a few seconds (`cache.py`, off by default).
Deny by default: a request no route names is refused.
"""

from __future__ import annotations

from bastion.edge.policy import (
    ApiKeys,
    Body,
    Policy,
    PolicyError,
    Problem,
    Quota,
    Route,
    Tls,
    load,
)

__all__ = ["ApiKeys", "Body", "Policy", "PolicyError", "Problem", "Quota", "Route", "Tls", "load"]
