"""A Metaflow flow on a live Argo backend (the Kubernetes API test server) with its package in moto's S3.

Both sit behind counting proxies: planning writes nothing anywhere (S3,
AWS, cluster); apply uploads the package once, with Metaflow's own datastore
code; a second apply uploads nothing and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from backends.argo import client as argo_client
from tests.backends.metaflow.conftest import BUCKET, Workspace, manifest, metaflow_flow, metaflow_settings
from tests.support.fixtures import ProxyEnv

WRITE_VERBS = ("create", "update", "patch", "delete")


@pytest.fixture
def cluster(workspace: Workspace, k8s_proxy: ProxyEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyEnv]:
    monkeypatch.setenv("KUBECONFIG", str(k8s_proxy.kubeconfig_path))
    monkeypatch.setattr(argo_client, "DEFAULT_RETRY", argo_client.FAST_RETRY)
    yield k8s_proxy


def aws_writes(ws: Workspace) -> dict[str, int]:
    """AWS writes by operation, and every S3 request that is not a read (the proxy names an S3 PUT CopyObject:
    PutObject and CopyObject share botocore's route; only the x-amz-copy-source header tells them apart)."""
    s3 = {
        k: v
        for k, v in ws.aws.proxy.raw_counts().items()
        if k.split(" ", 1)[0] in ("PUT", "POST", "DELETE") and k.split(" ", 1)[1].startswith(f"/{BUCKET}")
    }
    return {**ws.aws.writes(), **s3}


def k8s_writes(cluster: ProxyEnv) -> dict[str, int]:
    return {k: v for k, v in cluster.proxy.counts().items() if k.split(" ", 1)[0] in WRITE_VERBS}


def test_plan_writes_nothing_and_apply_uploads_the_package_once(workspace: Workspace, cluster: ProxyEnv) -> None:
    ws = workspace
    backend = {
        "type": "argo",
        "argo": {"namespace": "ml", "service_account": "ml-runner", "sensor_namespace": "ml-events"},
        "metaflow": metaflow_settings(ws.aws),
    }
    ws.write(manifest(backend, {"linear": metaflow_flow("linear")}))

    planned = ws.flowplan("plan")
    assert planned.code == 0, planned.text
    assert "local" not in planned.out
    assert aws_writes(ws) == {}, ws.aws.proxy.counts()
    assert ws.aws.proxy.counts().get("s3:HeadObject") == 1
    assert k8s_writes(cluster) == {}
    objects = ws.aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert objects == []

    ws.aws.proxy.reset_counts()
    applied = ws.flowplan("apply", "--auto-approve")
    assert applied.code == 0, applied.text
    (upload,) = aws_writes(ws).items()
    assert upload[0].startswith(f"PUT /{BUCKET}/metaflow/LinearFlow/data/") and upload[1] == 1, ws.aws.proxy.counts()
    server = cluster.k8s.server
    (template,) = server.list_objects("WorkflowTemplate", "ml")
    (cron,) = server.list_objects("CronWorkflow", "ml")
    assert template["metadata"]["name"] == cron["metadata"]["name"] == "recsys.prod.linearflow"
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == "recsys.prod.linearflow"
    assert cron["spec"]["timezone"] == "Europe/Berlin"
    assert cron["spec"]["schedules"] == ["0 2 * * *"]

    # The object is Metaflow's: raw bytes at their SHA-1, with the content-addressed store's metadata.
    env = {e["name"]: e["value"] for e in template["spec"]["templates"][1]["container"]["env"] if "value" in e}
    key = env["METAFLOW_CODE_URL"].split(f"s3://{BUCKET}/", 1)[1]
    stored = ws.aws.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert hashlib.sha1(stored["Body"].read()).hexdigest() == env["METAFLOW_CODE_SHA"]
    attributes = json.loads(stored["Metadata"]["metaflow-user-attributes"])
    assert attributes == {"cas_raw": True, "cas_version": 1}

    ws.aws.proxy.reset_counts()
    cluster.proxy.reset_counts()
    again = ws.flowplan("apply", "--auto-approve")
    assert again.code == 0, again.text
    assert "No changes" in again.out
    assert aws_writes(ws) == {}
    assert k8s_writes(cluster) == {}, again.text


def test_metaflows_own_deployment_sits_at_flowplans_addresses(workspace: Workspace, cluster: ProxyEnv) -> None:
    """`argo-workflows create` (Metaflow's, unstubbed) and flowplan name the objects alike: adopt, don't redeploy."""
    from tests.backends.metaflow.metaflow_deploy import metaflow_create

    ws = workspace
    backend = {
        "type": "argo",
        "argo": {"namespace": "ml", "service_account": "ml-runner", "sensor_namespace": "ml-events"},
        "metaflow": metaflow_settings(ws.aws),
    }
    ws.write(manifest(backend, {"linear": metaflow_flow("linear")}))
    metaflow_create(ws.root / "flows.yaml", "ml", ws.flow_file("linear"), cluster.k8s.kubeconfig_path)
    server = cluster.k8s.server
    names = {
        k: [o["metadata"]["name"] for o in server.list_objects(k, "ml")] for k in ("WorkflowTemplate", "CronWorkflow")
    }
    assert names == {"WorkflowTemplate": ["recsys.prod.linearflow"], "CronWorkflow": ["recsys.prod.linearflow"]}

    planned = ws.flowplan("plan", "--adopt", "--format", "json")
    assert planned.code == 0, planned.text
    actions = {c["address"]: c["action"] for c in json.loads(planned.out)["changes"]}
    assert actions["ml.WorkflowTemplate.ml/recsys.prod.linearflow"] == "adopt"
    assert actions["ml.CronWorkflow.ml/recsys.prod.linearflow"] == "adopt"
    (cron,) = [c for c in json.loads(planned.out)["changes"] if c["kind"] == "CronWorkflow"]
    # Metaflow's schedule, time zone, history limits and starting deadline are flowplan's too: what adoption
    # changes is flowplan's markers, the concurrency policy it states (Argo's default) and its run labels.
    assert sorted(d["path"] for d in cron["field_diffs"]) == [
        "/metadata/labels",
        "/spec/concurrencyPolicy",
        "/spec/workflowMetadata",
    ]
