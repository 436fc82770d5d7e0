"""Every example manifest loads, with the var files it documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.manifest import load_manifest
from tests.planner.manifest.conftest import REPO

EXAMPLES = REPO / "examples"

#: How each example is meant to be loaded: (var files, --var values). Folders not listed load as they are.
HOW = {
    "stepfunctions": (["prod.vars.yaml"], {}),
    "triggers": ([], {"slack_token": "xoxb-test"}),
    "multi-backend": (["staging.vars.yaml"], {}),
    "argo": (["prod.vars.yaml"], {}),
}


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*/flows.yaml"))


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.parent.name)
def test_example_loads(path: Path) -> None:
    var_files, cli_vars = HOW.get(path.parent.name, ([], {}))
    existing = [path.parent / f for f in var_files if (path.parent / f).exists()]
    manifest = load_manifest(path, var_files=existing, cli_vars=cli_vars)
    assert manifest.flows


@pytest.mark.parametrize("vars_file", ["staging.vars.yaml", "prod.vars.yaml"])
def test_multi_backend_example_in_both_environments(vars_file: str) -> None:
    folder = EXAMPLES / "multi-backend"
    branch = "staging" if vars_file.startswith("staging") else "prod"
    manifest = load_manifest(folder / "flows.yaml", var_files=[folder / vars_file], branch=branch)
    assert {f.backend for f in manifest.flows.values()} == {"gitops", "cluster", "aws"}
    assert manifest.flows["retrain"].topological_steps()[-1] == "publish"
    assert manifest.sinks["scores"].settings["table"] == ("scores" if branch == "prod" else "scores__staging")
    assert manifest.schedules_enabled() is (branch == "prod")
    assert (
        (folder / "flows.yaml").read_text().startswith("# yaml-language-server: $schema=../../docs/flows.schema.json")
    )
