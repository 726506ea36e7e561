"""An edge policy read as the gateway element of a model: its routes and settings become facts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.edge.policy import load as load_policy
from bastion.threatmodel import Rule, ThreatModelError, analyse, load_model
from tests.threatmodel.conftest import BASTION_MODEL, statuses

MODEL = """\
version: 1
name: Edge
assets:
  - {id: notes, classification: confidential, pii: true}
boundaries:
  - {id: internet, untrusted: true}
  - {id: dmz}
  - {id: app}
external_entities:
  - {id: client, boundary: internet}
processes:
  - {id: edge, kind: gateway, boundary: dmz, edge_policy: edge.yaml}
  - {id: api, boundary: app}
flows:
  - {id: client-edge, from: client, to: edge, protocol: https, authentication: bearer_token, data: [notes]}
  - {id: edge-api, from: edge, to: api, protocol: http, data: [notes]}
"""

LOOSE = """\
issuer: https://auth.example.com
audience: https://api.example.com
upstream: http://127.0.0.1:9000
api_keys: {file: apikeys.json}
routes:
  - {path: /health, methods: [GET, HEAD], public: true}
  - {path: /notes, methods: [GET, POST]}
  - path: "/notes/{note_id}"
    methods: [GET, DELETE]
    scopes: [notes:read]
    quotas: [{per: address, limit: 100, window: minute}]
  - {path: /notes, methods: [GET], scopes: [notes:admin]}
"""

STRICT = """\
listen: 0.0.0.0:8443
tls: {cert: cert.pem, key: key.pem, client_ca: ca.pem, client_cert: optional}
issuer: https://auth.example.com
audience: https://api.example.com
upstream: http://127.0.0.1:9000
routes:
  - path: /health
    methods: [GET]
    public: true
    quotas: [{per: address, limit: 60, window: minute}]
  - path: "/notes/{note_id}"
    methods: [GET]
    scopes: [notes:read]
    client_cert: required
    quotas: [{per: sub, limit: 100, window: minute}, {per: client_id, limit: 10000, window: day}]
"""

EDGE_RULES = ("BT-T19", "BT-S14", "BT-D13", "BT-D14", "BT-S15", "BT-I19", "BT-E12")


def _model(tmp_path: Path, policy: str, model: str = MODEL) -> Path:
    (tmp_path / "edge.yaml").write_text(policy)
    (tmp_path / "model.yaml").write_text(model)
    return tmp_path / "model.yaml"


@pytest.mark.parametrize("policy", [LOOSE, STRICT], ids=["loose", "strict"])
def test_the_policies_here_are_valid_edge_policies(tmp_path: Path, policy: str) -> None:
    """The policies these tests model load with the edge's own loader (the model reads what is deployed)."""
    (tmp_path / "edge.yaml").write_text(policy)
    assert load_policy(tmp_path / "edge.yaml").routes


def test_routes_become_the_gateways_endpoints(tmp_path: Path) -> None:
    """One endpoint per route and method (HEAD left out, first match wins), with scopes, object ids and quotas."""
    edge = load_model(_model(tmp_path, LOOSE)).element("edge")
    shown = {ep.id: (ep.attrs["authenticated"], ep.attrs["scopes"], ep.attrs["object_ids"], ep.attrs["rate_limit"])
             for ep in edge.endpoints}
    assert shown == {
        "get--health": (False, (), (), None),
        "get--notes": (True, (), (), None),
        "post--notes": (True, (), (), None),
        "get--notes-note-id": (True, ("notes:read",), ("note_id",), "100/minute"),
        "delete--notes-note-id": (True, ("notes:read",), ("note_id",), "100/minute"),
    }
    assert edge.attrs["edge_routes"] == 4
    assert edge.attrs["edge_public_routes"] == 1


def test_a_loose_policy_opens_the_edge_threats(tmp_path: Path, library: tuple[Rule, ...]) -> None:
    """No TLS, routes without quotas or counted per address, token routes without scopes: each an open threat."""
    found = statuses(analyse(load_model(_model(tmp_path, LOOSE)), library))
    assert {rule: found[f"{rule}@edge"] for rule in EDGE_RULES} == dict.fromkeys(EDGE_RULES, "open")
    assert found["BT-D01@edge.post--notes"] == "open"  # a route without quota: unrestricted consumption


def test_a_strict_policy_mitigates_what_its_facts_show(tmp_path: Path, library: tuple[Rule, ...]) -> None:
    """TLS, quotas per sub and client on every token route and certificate-bound routes
    mitigate; the rest needs evidence."""
    found = statuses(analyse(load_model(_model(tmp_path, STRICT)), library))
    assert {rule: found.get(f"{rule}@edge", "absent") for rule in EDGE_RULES} == {
        "BT-T19": "open", "BT-S14": "open", "BT-D13": "open",  # the policy cannot show these: tests must
        "BT-D14": "mitigated", "BT-S15": "mitigated", "BT-I19": "mitigated", "BT-E12": "not_applicable",
    }
    assert found["BT-D01@edge.get--notes-note-id"] == "mitigated"


def test_processes_without_a_policy_see_no_edge_threats(library: tuple[Rule, ...]) -> None:
    """The edge rules judge only gateways with an edge policy; the guard in Bastion's model is not one."""
    found = statuses(analyse(load_model(BASTION_MODEL), library))
    assert all(found.get(f"{rule}@guard", "not_applicable") == "not_applicable" for rule in EDGE_RULES)


BAD = [
    pytest.param(MODEL, "routes: 3\n", "edge.yaml:1: edge policy: routes is missing or empty", id="no-routes"),
    pytest.param(MODEL, "routes:\n  - {path: /a, methods: GET}\n",
                 "edge.yaml:2: edge policy: routes[0].methods must be a list", id="methods-not-a-list"),
    pytest.param(MODEL, "routes:\n  - {methods: [GET]}\n", "edge policy: routes[0].path is missing", id="no-path"),
    pytest.param(MODEL, "routes: &a [1]\nx: *a\n", "YAML", id="alias"),
    pytest.param(MODEL.replace("kind: gateway, ", ""), LOOSE, "names an edge_policy; it must be `kind: gateway`",
                 id="not-a-gateway"),
    pytest.param(MODEL.replace("edge.yaml}", "missing.yaml}"), LOOSE, "cannot read the edge policy", id="missing-file"),
]


@pytest.mark.parametrize(("model", "policy", "phrase"), BAD)
def test_bad_policies_are_errors_with_the_policys_line(tmp_path: Path, model: str, policy: str, phrase: str) -> None:
    """A policy the model cannot read is a ThreatModelError naming the policy file and line; the CLI exits 2."""
    path = _model(tmp_path, policy, model)
    with pytest.raises(ThreatModelError) as caught:
        load_model(path)
    assert phrase in str(caught.value)
    result = CliRunner().invoke(app, ["threats", "check", str(path)])
    assert result.exit_code == 2
    assert phrase in result.output


def test_threats_check_reads_the_policy_through_the_cli(tmp_path: Path) -> None:
    """`bastion threats check` on a model with an edge gateway fails the gate on the loose policy's open threats."""
    result = CliRunner().invoke(app, ["threats", "check", str(_model(tmp_path, LOOSE)), "--fail-on", "high"])
    assert result.exit_code == 1, result.output
    assert "BT-S14@edge" in textwrap.dedent(result.output)


def test_bastions_model_reads_the_edge_policy_it_ships(library: tuple[Rule, ...]) -> None:
    """threatmodel/edge.yaml is a valid edge policy, and Bastion's model takes the edge's
    endpoints and facts from it."""
    policy = load_policy(BASTION_MODEL.parent / "edge.yaml")
    edge = load_model(BASTION_MODEL).element("edge")
    assert {(ep.attrs["method"], ep.attrs["path"]) for ep in edge.endpoints} == {
        (m, r.path) for r in policy.routes for m in r.methods}
    assert edge.attrs["edge_tls"]
    assert edge.attrs["edge_unquoted_routes"] == 0
    found = statuses(analyse(load_model(BASTION_MODEL), library))
    assert found["BT-D14@edge"] == found["BT-I19@edge"] == "mitigated"
