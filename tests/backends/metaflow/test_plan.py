"""Determinism: unchanged code plans as no change (across an unrelated commit, whatever the laptop's
Metaflow configuration says); an edit to one step shows as a change in that flow only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.backends.metaflow.conftest import ROOT, Workspace, argo_backend, manifest, metaflow_flow


def changes(ws: Workspace) -> list[dict[str, Any]]:
    planned = ws.flowplan("plan", "--format", "json")
    assert planned.code == 0, planned.text
    result: list[dict[str, Any]] = json.loads(planned.out)["changes"]
    return result


def pollute(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's Metaflow configuration and environment that must not leak into a deployment."""
    config = home / ".metaflowconfig"
    config.mkdir(parents=True)
    (config / "config.json").write_text(
        json.dumps(
            {
                "METAFLOW_DATASTORE_SYSROOT_S3": "s3://someone-elses-bucket/metaflow",
                "METAFLOW_KUBERNETES_NAMESPACE": "laptop",
                "METAFLOW_SERVICE_URL": "http://laptop:8080",
            }
        )
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "local")
    monkeypatch.setenv("METAFLOW_KUBERNETES_CONTAINER_IMAGE", "laptop-image")
    monkeypatch.setenv("METAFLOW_PROFILE", "laptop")
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("USERNAME", "alice")


def test_same_code_plans_no_change_and_one_edit_changes_one_flow(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ws = workspace
    pollute(tmp_path / "home", monkeypatch)
    ws.write(manifest(argo_backend(ws.aws), {"linear": metaflow_flow("linear"), "branch": metaflow_flow("branch")}))
    ws.git("init", "-q")
    ws.git("add", "-A")
    ws.git("commit", "-q", "-m", "flows")
    monkeypatch.delenv("FLOWPLAN_GIT_COMMIT")  # provenance from git rev-parse, as on a laptop

    applied = ws.flowplan("apply", "--auto-approve")
    assert applied.code == 0, applied.text
    template = yaml.safe_load((ws.root / "deploy/ml/workflowtemplate/recsys.prod.linearflow.yaml").read_text())
    text = json.dumps(template)
    assert "someone-elses-bucket" not in text and "laptop" not in text and "alice" not in text
    assert template["metadata"]["namespace"] == "ml"
    assert template["metadata"]["annotations"]["metaflow/owner"] == "flowplan"
    assert f'"value": "{ROOT}"' in text
    assert changes(ws) == []

    # A new commit that touches nothing the flows package: no change (compiled afresh to prove it).
    (ws.root / "README.md").write_text("unrelated\n")
    ws.git("add", "README.md")
    ws.git("commit", "-q", "-m", "docs")
    assert changes(ws) == []

    # One step's code: the flow's package and template change; nothing of the other flow does.
    ws.edit("linear", "self.score = self.alpha * self.epochs", "self.score = self.alpha * self.epochs + 1")
    edited = changes(ws)
    assert {c["flow"] for c in edited} == {"linear"}
    assert sorted((c["kind"], c["action"]) for c in edited) == [
        ("CodePackage", "create"),
        ("WorkflowTemplate", "update"),
    ]
    applied = ws.flowplan("apply", "--auto-approve")
    assert applied.code == 0, applied.text

    # One step's decorator: again that flow only, and the diff shows the step's retries.
    ws.edit("linear", "@retry(times=2)", "@retry(times=3)")
    edited = changes(ws)
    assert {c["flow"] for c in edited} == {"linear"}
    (template_change,) = [c for c in edited if c["kind"] == "WorkflowTemplate"]
    paths = [d["path"] for d in template_change["field_diffs"]]
    train = next(i for i, t in enumerate(template["spec"]["templates"]) if t["name"] == "train")
    assert f"/spec/templates/{train}/retryStrategy/limit" in paths
