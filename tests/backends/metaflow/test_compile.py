"""What flowplan deploys for a Metaflow flow is what Metaflow itself would deploy.

For each test flow, the WorkflowTemplate flowplan writes (through the files
backend, i.e. exactly the bytes it deploys) equals what ``python flow.py
argo-workflows create --only-json`` prints for the same flow and settings,
after the documented normalisation (:func:`backends.metaflow.normalize.comparable`).
The code packages hold the same files with the same bytes; their INFO differs
only in the keys flowplan pins.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.metaflow.normalize import PINNED_INFO_KEYS, comparable
from backends.metaflow.settings import compile_environment, settings_for
from planner.manifest import load_manifest
from planner.resources import MANAGED_BY_KEY
from tests.backends.metaflow.conftest import BUCKET, Workspace, argo_backend, manifest, metaflow_flow

#: flow directory → (FlowSpec, the name Metaflow gives its WorkflowTemplate on branch prod)
FLOWS = {
    "linear": ("LinearFlow", "recsys.prod.linearflow"),
    "branch": ("BranchFlow", "recsys.prod.branchflow"),
    "foreach": ("ForeachFlow", "recsys-prod-foreach"),
    "triggered": ("TriggeredFlow", "recsys.prod.triggeredflow"),
    "downstream": ("DownstreamFlow", "recsys.prod.downstreamflow"),
}
PLACEHOLDER_TOKEN = "__PLACEHOLDER_PRODUCTION_TOKEN__"


def deployed(ws: Workspace, kind: str, name: str, namespace: str = "ml") -> dict[str, Any]:
    """An object as the files backend wrote it (its header comments are YAML comments)."""
    path = ws.root / "deploy" / namespace / kind.lower() / f"{name}.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def reference(ws: Workspace, flow: str) -> tuple[dict[str, Any], str]:
    """Metaflow's own ``argo-workflows create --only-json`` for the flow, with the manifest's settings."""
    loaded = load_manifest(ws.root / "flows.yaml")
    settings = settings_for(loaded.backends["ml"], ws.root)
    home = ws.root / "reference-home"
    home.mkdir(exist_ok=True)
    env = compile_environment(settings.env, str(home), settings)
    file = ws.flow_file(flow)
    project = "\n@project(" in file.read_text()
    args = [sys.executable, str(file), "--no-pylint"]
    args += ["--production", "argo-workflows"] if project else ["argo-workflows", "--name", f"recsys-prod-{flow}"]
    args += ["create", "--only-json"]
    import subprocess

    done = subprocess.run(args, cwd=file.parent, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    template: dict[str, Any] = json.loads(done.stdout)
    return template, _code_sha(template)


def _code_sha(template: dict[str, Any]) -> str:
    for item in template["spec"]["templates"]:
        for env in (item.get("container") or {}).get("env") or []:
            if env["name"] == "METAFLOW_CODE_SHA":
                return str(env["value"])
    raise AssertionError("no METAFLOW_CODE_SHA in the template")


def _package(ws: Workspace, sha: str, flow_name: str) -> dict[str, bytes]:
    key = f"metaflow/{flow_name}/data/{sha[:2]}/{sha}"
    blob = ws.aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _info(content: bytes) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(content)
    return {k: v for k, v in info.items() if k not in PINNED_INFO_KEYS}


def check_flow(ws: Workspace, flow: str) -> None:
    flow_name, name = FLOWS[flow]
    ours = deployed(ws, "WorkflowTemplate", name)
    theirs, their_sha = reference(ws, flow)
    token = ours["metadata"]["annotations"]["metaflow/production_token"]
    our_sha = _code_sha(ours)
    options = {"seed": name, "tokens": [token, PLACEHOLDER_TOKEN], "shas": [our_sha, their_sha]}
    assert comparable(ours, **options, markers=[MANAGED_BY_KEY]) == comparable(theirs, **options)

    # The packages: the same files, the same bytes; INFO equal but for what flowplan pins.
    mine, metaflows = _package(ws, our_sha, flow_name), _package(ws, their_sha, flow_name)
    assert sorted(mine) == sorted(metaflows)
    infos = [n for n in mine if n.endswith("/INFO")]
    assert infos
    for info in infos:
        assert _info(mine[info]) == _info(metaflows[info])
        assert json.loads(mine[info])["username"] == "flowplan"
        assert "commit_sha" not in json.loads(mine[info])
    assert {n: c for n, c in mine.items() if n not in infos} == {n: c for n, c in metaflows.items() if n not in infos}


def deploy_all(ws: Workspace, flows: list[str]) -> None:
    ws.write(manifest(argo_backend(ws.aws), {f: metaflow_flow(f) for f in flows}))
    applied = ws.flowplan("apply", "--auto-approve")
    assert applied.code == 0, applied.text


def test_the_linear_flow_deploys_what_metaflow_compiles(workspace: Workspace) -> None:
    deploy_all(workspace, ["linear"])
    check_flow(workspace, "linear")


@pytest.mark.slow
@pytest.mark.parametrize("flow", ["branch", "foreach", "triggered", "downstream"])
def test_every_test_flow_deploys_what_metaflow_compiles(workspace: Workspace, flow: str) -> None:
    deploy_all(workspace, [flow])
    check_flow(workspace, flow)


def test_the_sensor_of_a_triggered_flow_is_metaflows(workspace: Workspace) -> None:
    """@trigger on Argo: Metaflow's own Sensor (payload → parameters), with flowplan's markers, no timestamp."""
    workspace.write(
        manifest(
            argo_backend(workspace.aws),
            {"triggered": metaflow_flow("triggered"), "downstream": metaflow_flow("downstream")},
        )
    )
    applied = workspace.flowplan("apply", "--auto-approve")
    assert applied.code == 0, applied.text
    sensor = deployed(workspace, "Sensor", "recsys-prod-triggeredflow", "ml-events")
    assert sensor["metadata"]["labels"]["flowplan.dev/flow"] == "triggered"
    assert "metaflow/deployment_timestamp" not in json.dumps(sensor)
    dependency = sensor["spec"]["dependencies"][0]
    assert dependency["eventSourceName"] == "flowplan-events"
    assert dependency["filters"]["exprs"][0]["expr"] == "name == 'data_ready'"
    trigger = sensor["spec"]["triggers"][0]["template"]["k8s"]
    assert trigger["source"]["resource"]["spec"]["workflowTemplateRef"]["name"] == "recsys.prod.triggeredflow"
    assert trigger["parameters"][0]["dest"] == "spec.arguments.parameters.#(name=key).value"
    finish = deployed(workspace, "Sensor", "recsys-prod-downstreamflow", "ml-events")
    assert finish["spec"]["dependencies"][0]["filters"]["exprs"][0]["expr"] == (
        "name == 'metaflow.recsys.prod.LinearFlow.end'"
    )
    assert not list(Path(workspace.root / "deploy" / "ml").glob("cronworkflow/*triggered*"))
