"""Fixtures for the threat-modeling tests: the shipped library and small models built inline."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bastion.threatmodel import Analysis, Rule, analyse, load_library, parse_model_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "threatmodel" / "shop-api.yaml"
BASTION_MODEL = ROOT / "threatmodel" / "bastion.yaml"

# A two-zone model: an anonymous user on the internet calls an API that uses a database.
MINIMAL = """\
version: 1
name: Minimal
assets:
  - {id: orders, classification: confidential, pii: true}
  - {id: token, classification: restricted, credentials: true}
boundaries:
  - {id: internet, untrusted: true}
  - {id: cloud}
external_entities:
  - {id: user, boundary: internet, human: true}
processes:
  - id: api
    boundary: cloud
    endpoints:
      - {id: get-order, method: GET, path: "/orders/{id}", object_ids: [id], authenticated: true,
         returns: [orders]}
data_stores:
  - {id: db, boundary: cloud, kind: sql, stores: [orders]}
flows:
  - {id: user-api, from: user, to: api, protocol: https, authentication: bearer_token,
     data: [orders, token]}
  - {id: api-db, from: api, to: db, protocol: postgres, data: [orders]}
"""


@pytest.fixture(scope="session")
def library() -> tuple[Rule, ...]:
    return load_library()


def analyse_text(text: str, library: tuple[Rule, ...], file: str = "model.yaml") -> Analysis:
    """Parse and analyse an inline model with the shipped library."""
    return analyse(parse_model_text(textwrap.dedent(text), file), library)


def statuses(analysis: Analysis) -> dict[str, str]:
    """Threat id -> effective status (not_applicable included)."""
    return {a.id: (a.effective if a.status != "not_applicable" else "not_applicable")
            for a in analysis.assessments}
