"""Adopting what Metaflow itself deployed (issue 8): a scheduled flow and a triggered flow.

``python flow.py argo-workflows create`` (Metaflow's own command, unstubbed) deploys the
WorkflowTemplate, CronWorkflow and Sensor into the Kubernetes API test server; flowplan, with
the same flow as a Metaflow source, plans their adoption in place (same names), applies it, and
the next plan is empty: no redeploy, no second schedule, no lost run history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from backends.argo import client as argo_client
from tests.backends.metaflow.conftest import Workspace, manifest, metaflow_flow, metaflow_settings
from tests.support.fixtures import ProxyEnv


@pytest.fixture
def cluster(workspace: Workspace, k8s_proxy: ProxyEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyEnv]:
    monkeypatch.setenv("KUBECONFIG", str(k8s_proxy.kubeconfig_path))
    monkeypatch.setattr(argo_client, "DEFAULT_RETRY", argo_client.FAST_RETRY)
    yield k8s_proxy


@pytest.mark.parametrize(
    ("flow", "kinds"),
    [("linear", {"WorkflowTemplate", "CronWorkflow"}), ("triggered", {"WorkflowTemplate", "Sensor"})],
)
def test_adopting_metaflows_deployment_then_the_plan_is_empty(
    workspace: Workspace, cluster: ProxyEnv, flow: str, kinds: set[str]
) -> None:
    from tests.backends.metaflow.metaflow_deploy import metaflow_create

    ws = workspace
    backend = {
        "type": "argo",
        "argo": {"namespace": "ml", "service_account": "ml-runner", "sensor_namespace": "ml"},
        "metaflow": metaflow_settings(ws.aws),
    }
    ws.write(manifest(backend, {flow: metaflow_flow(flow)}))
    metaflow_create(ws.root / "flows.yaml", "ml", ws.flow_file(flow), cluster.k8s.kubeconfig_path)
    server = cluster.k8s.server
    deployed = {kind: [o["metadata"]["uid"] for o in server.list_objects(kind, "ml")] for kind in kinds}
    assert all(len(uids) == 1 for uids in deployed.values()), deployed

    plain = json.loads(ws.flowplan("plan", "--format", "json").out)
    assert {c["address"].split(".")[1] for c in plain["conflicts"]} >= kinds  # never touched without --adopt

    planned = json.loads(ws.flowplan("plan", "--adopt", "--format", "json").out)
    adopted = {c["kind"] for c in planned["changes"] if c["action"] == "adopt"}
    assert adopted >= kinds
    reasons = {c["kind"]: c["reason"] for c in planned["changes"] if c["action"] == "adopt"}
    assert all("deployed by Metaflow" in (r or "") for r in reasons.values()), reasons
    assert not [c for c in planned["changes"] if c["action"] == "create" and c["kind"] in kinds]

    applied = ws.flowplan("apply", "--auto-approve", "--adopt")
    assert applied.code == 0, applied.text
    again = ws.flowplan("plan", "--detailed-exitcode")
    assert again.code == 0, again.text
    # adopted in place: the same objects (uids), now carrying flowplan's markers
    for kind, uids in deployed.items():
        (obj,) = server.list_objects(kind, "ml")
        assert obj["metadata"]["uid"] == uids[0]
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "flowplan"
