"""Threat modeling as code: a YAML model of the system, STRIDE per element and per interaction
over a rule library kept as data, DREAD risk scores, OWASP API Security Top 10 (2023) mapping,
and validation of mitigations by running the tests that prove them.

The six-step process (objectives, information, decomposition, threats, risk, validation) maps
onto: `model` (steps 1-3), `rules` + `engine` (4), `dread` + `assess` (5), `evidence` + `gate`
(6). This package imports no other Bastion package.
"""

from __future__ import annotations

from bastion.threatmodel._errors import ExpressionError, Problem, ThreatModelError
from bastion.threatmodel.assess import Analysis, Assessment, analyse
from bastion.threatmodel.dread import Score, band_of_total, score
from bastion.threatmodel.engine import Threat, identify
from bastion.threatmodel.evidence import Evidence, read_results, results_path, run_test, write_results
from bastion.threatmodel.expr import compile_condition
from bastion.threatmodel.files import analyse_file, git_show, load_model, parse_model_text, rules_for
from bastion.threatmodel.gate import Diff, diff, failing, new_threat_ids
from bastion.threatmodel.model import ThreatModel
from bastion.threatmodel.rules import OWASP_API_2023, SEED_CONTROLS, STRIDE_PER_ELEMENT, Rule, load_library
from bastion.threatmodel.starter import STARTER_MODEL

__all__ = [
    "OWASP_API_2023",
    "SEED_CONTROLS",
    "STARTER_MODEL",
    "STRIDE_PER_ELEMENT",
    "Analysis",
    "Assessment",
    "Diff",
    "Evidence",
    "ExpressionError",
    "Problem",
    "Rule",
    "Score",
    "Threat",
    "ThreatModel",
    "ThreatModelError",
    "analyse",
    "analyse_file",
    "band_of_total",
    "compile_condition",
    "diff",
    "failing",
    "git_show",
    "identify",
    "load_library",
    "load_model",
    "new_threat_ids",
    "parse_model_text",
    "read_results",
    "results_path",
    "rules_for",
    "run_test",
    "score",
    "write_results",
]
