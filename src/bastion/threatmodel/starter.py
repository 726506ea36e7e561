"""The commented starter model written by `bastion threats init`."""

from __future__ import annotations

STARTER_MODEL = """\
# Threat model (bastion threats). Run: bastion threats report THIS.yaml --format html -o report.html
# Six steps: objectives (1) and information (2) first, then the data-flow diagram (3); threats (4)
# come from the rule library, risk (5) from DREAD; step 6 records statuses and the tests proving them.
version: 1
name: My API
description: One paragraph on what the system does and for whom.

# Step 1: objectives and the data assets they protect. classification: public, internal,
# confidential or restricted (raises DREAD damage). pii / credentials flag personal data / secrets.
objectives:
  - id: o1
    description: Only an account's owner can read or change its orders.
    assets: [orders]
assets:
  - id: orders
    classification: confidential
    pii: true
  - id: tokens
    classification: restricted
    credentials: true

# Step 2: what you take as given, so a reviewer can challenge it.
assumptions:
  - id: a1
    description: TLS terminates at the gateway; the internal network is not trusted either.

# Step 3: the data-flow diagram. Boundaries nest with `parent`; `untrusted: true` marks zones
# (like the internet) whose traffic counts as hostile.
boundaries:
  - id: internet
    untrusted: true
  - id: cloud
  - id: private-net
    parent: cloud

external_entities:           # fields: human, trusted, privileged, mfa
  - id: user
    boundary: internet
    human: true

processes:                   # `bastion threats rules` lists what each rule reads
  - id: api
    boundary: cloud
    kind: service            # service, gateway, web_app, spa, worker, authorization_server, cli
    authenticates_requests: true
    validates_input: true
    rate_limiting: true
    endpoints:               # API detail: object ids (BOLA), roles (BFLA), writable fields (mass assignment)
      - id: get-order
        method: GET
        path: /orders/{order_id}
        authenticated: true
        scopes: [orders:read]
        object_ids: [order_id]
        ownership_check: true
        returns: [orders]
        response_fields: [id, status, total]

data_stores:                 # kind: sql, nosql, cache, key_value, file, log, object, queue, browser
  - id: db
    boundary: private-net
    kind: sql
    stores: [orders]
    access_control: true

flows:                       # authentication: none, password, api_key, bearer_token, session_cookie, mtls, ...
  - id: user-api
    from: user
    to: api
    protocol: https
    authentication: bearer_token
    data: [orders, tokens]
  - id: api-db
    from: api
    to: db
    protocol: postgres
    encrypted: true
    authentication: database_credentials
    data: [orders]

# Step 6: the status of threats (ids as printed in the report: RULE@element, patterns allowed).
threats:
  - id: BT-S04@api
    status: mitigated
    mitigation: Tokens are validated by the guard middleware (signature, iss, aud, exp).
    tests: ["tests/test_auth.py::test_rejects_expired_token"]
  - id: BT-D09@db
    status: accepted
    reason: Managed database with provider backups.
    owner: platform-team
"""
