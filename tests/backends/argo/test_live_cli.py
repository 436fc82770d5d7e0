"""The Argo example through the CLI against the Kubernetes API test server: apply, re-plan, change, prune.

Calls are counted by the proxy between flowplan and the server; the numbers
asserted here are the backend's promises (LISTs only for a no-change plan, one
PUT for one changed schedule, three DELETEs for a removed flow).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.backends.argo.test_live_support import (
    EXAMPLE,
    EXAMPLE_OBJECTS,
    NAMESPACE,
    Cluster,
    cluster,
    only_lists,
)

__all__ = ["cluster"]

KINDS = ("configmaps", "eventsources", "workflowtemplates", "cronworkflows", "sensors")


def test_apply_to_an_empty_namespace_then_plan_is_empty_and_a_second_apply_only_lists(cluster: Cluster) -> None:
    applied = cluster.apply()
    assert applied.code == 0, applied.text
    assert "Apply complete: 13 created, 0 updated, 0 replaced, 0 destroyed." in applied.out
    assert {k: len(v) for k, v in cluster.owned_objects().items()} == EXAMPLE_OBJECTS

    planned = cluster.flowplan("plan", "--detailed-exitcode")
    assert planned.code == 0, planned.text
    assert "No changes." in planned.out

    cluster.proxy.reset_counts()
    again = cluster.apply()
    assert again.code == 0, again.text
    counts = cluster.counts()
    assert only_lists(counts), counts  # no lock, no inventory write, no GET, no write
    assert cluster.writes() == {}


def test_a_no_change_plan_lists_each_kind_once_and_never_gets_a_resource(cluster: Cluster) -> None:
    """The count test: fails as soon as a no-change plan makes a per-resource GET (or a second LIST)."""
    assert cluster.apply().code == 0
    cluster.proxy.reset_counts()
    planned = cluster.flowplan("plan", "--detailed-exitcode")
    assert planned.code == 0, planned.text
    counts = cluster.counts()
    assert not [k for k in counts if k.startswith("get ")], counts
    # One LIST per kind (one namespace), plus the inventory's LIST of ConfigMaps.
    assert counts == {
        "list configmaps": 2,
        "list eventsources": 1,
        "list workflowtemplates": 1,
        "list cronworkflows": 1,
        "list sensors": 1,
    }
    assert cluster.proxy.raw_counts() == {
        f"GET /api/v1/namespaces/{NAMESPACE}/configmaps": 2,
        **{f"GET /apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/{p}": 1 for p in KINDS[1:]},
    }


def test_the_reader_reports_its_calls_and_they_match_the_proxy(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    backend = cluster.backend()
    from planner.contract import Scope

    scope = Scope("cluster", "recsys", "prod")
    compiled = cluster.backend().compiler()
    from planner.contract import CompileContext
    from planner.manifest import load_manifest
    from planner.resources import Provenance

    manifest = load_manifest(cluster.manifest, cli_vars={"namespace": NAMESPACE, "sensor_namespace": NAMESPACE})
    desired = compiled.compile(CompileContext(manifest, manifest.backends["cluster"], Provenance("t", "0" * 64)))
    backend.inventory(scope).load()
    cluster.proxy.reset_counts()
    live = backend.reader().read(scope, desired)
    assert len(live.owned) == 13 and not live.others
    assert dict(live.calls) == {f"list {p}": 1 for p in KINDS}
    assert sum(live.calls.values()) == cluster.proxy.total()


def test_changing_a_schedule_updates_exactly_the_cron_workflow(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    before = cluster.objects("CronWorkflow")
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    planned = cluster.flowplan("plan", "--detailed-exitcode")
    assert planned.code == 2
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." in planned.out
    assert f"cluster.CronWorkflow.{NAMESPACE}/recsys-prod-train" in planned.out

    cluster.proxy.reset_counts()
    applied = cluster.apply()
    assert applied.code == 0, applied.text
    assert cluster.resource_writes() == {
        f"PUT /apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/cronworkflows/recsys-prod-train": 1
    }
    after = cluster.objects("CronWorkflow")
    assert after["recsys-prod-train"]["spec"]["schedules"] == ["45 3 * * *"]
    for name in ("recsys-prod-ingest", "recsys-prod-report"):
        assert after[name]["metadata"]["resourceVersion"] == before[name]["metadata"]["resourceVersion"]
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_removing_a_flow_deletes_its_template_cron_workflow_and_sensor_and_nothing_else(cluster: Cluster) -> None:
    cluster.add_digest_flow()
    assert cluster.apply().code == 0
    before = cluster.owned_objects()
    assert "recsys-prod-digest" in before["Sensor"]

    text = cluster.manifest.read_text()
    start = text.index("  digest:\n")
    end = text.index("\n  ingest:\n")
    cluster.manifest.write_text(text[:start] + text[end + 1 :])
    cluster.proxy.reset_counts()
    applied = cluster.apply()
    assert applied.code == 0, applied.text
    assert "0 created, 0 updated, 0 replaced, 3 destroyed" in applied.out
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}"
    assert cluster.resource_writes() == {
        f"DELETE {base}/workflowtemplates/recsys-prod-digest": 1,
        f"DELETE {base}/cronworkflows/recsys-prod-digest": 1,
        f"DELETE {base}/sensors/recsys-prod-digest": 1,
    }
    after = cluster.owned_objects()
    expected = {kind: [n for n in names if n != "recsys-prod-digest"] for kind, names in before.items()}
    assert after == expected
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_a_colliding_object_flowplan_does_not_own_is_reported_and_left_alone(cluster: Cluster) -> None:
    foreign = cluster.server.put_object(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTemplate",
            "metadata": {"name": "recsys-prod-report", "namespace": NAMESPACE, "labels": {"team": "someone-else"}},
            "spec": {"entrypoint": "theirs", "templates": [{"name": "theirs", "container": {"image": "busybox"}}]},
        },
        manager="kubectl-create",
    )
    other_branch = cluster.server.put_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "recsys-prod-sink-warehouse",
                "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/managed-by": "flowplan",
                    "flowplan.dev/project": "recsys",
                    "flowplan.dev/branch": "pr-7",
                },
            },
            "data": {"FLOWPLAN_SINK_WAREHOUSE_TYPE": "warehouse"},
        }
    )
    planned = cluster.flowplan("plan", "--detailed-exitcode")
    assert planned.code == 2
    assert "recsys-prod-report" in planned.out and "not managed by flowplan" in planned.out
    assert "branch 'pr-7'" in planned.out

    applied = cluster.apply()
    assert applied.code == 1  # conflicts left untouched: not a success until resolved
    assert "Conflicts (names taken by objects flowplan does not own here" in applied.out
    assert "skipped cluster.CronWorkflow.ml-test/recsys-prod-report" in applied.err
    templates = cluster.objects("WorkflowTemplate")
    assert templates["recsys-prod-report"]["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    maps = cluster.objects("ConfigMap")
    warehouse = maps["recsys-prod-sink-warehouse"]
    assert warehouse["metadata"]["resourceVersion"] == other_branch["metadata"]["resourceVersion"]
    # The report flow's CronWorkflow depends on the taken template: skipped, not created.
    assert "recsys-prod-report" not in cluster.objects("CronWorkflow")
    # Everything independent of the collisions went through (flows using the warehouse sink wait for it).
    assert "recsys-prod-features" in cluster.objects("Sensor")
    assert "recsys-prod-train" not in cluster.objects("WorkflowTemplate")


def test_dry_run_server_sends_every_write_as_a_dry_run_and_nothing_persists(cluster: Cluster) -> None:
    result = cluster.flowplan("apply", "--auto-approve", "--dry-run", "server")
    assert result.code == 0, result.text
    assert "Dry run complete (nothing persisted): 13 created" in result.out
    assert cluster.owned_objects() == {k: [] for k in EXAMPLE_OBJECTS}
    assert cluster.server.list_objects("ConfigMap", NAMESPACE) == []
    assert cluster.server.list_objects("Lease", NAMESPACE) == []
    assert cluster.writes() == {
        "create configmaps": 3,
        "create eventsources": 1,
        "create workflowtemplates": 4,
        "create cronworkflows": 3,
        "create sensors": 2,
    }


def test_the_var_files_aim_the_example_at_prod_and_staging(cluster: Cluster) -> None:
    for vars_file, branch, suspended in (("prod.vars.yaml", "prod", False), ("staging.vars.yaml", "staging", True)):
        args = ["--var-file", str(cluster.workdir / vars_file), "--branch", branch]
        from planner.cli import run

        assert run(["apply", "-f", str(cluster.manifest), "--auto-approve", *args]) == 0
        namespace = yaml.safe_load((EXAMPLE / vars_file).read_text())["namespace"]
        crons = {o["metadata"]["name"]: o for o in cluster.server.list_objects("CronWorkflow", namespace)}
        assert crons[f"recsys-{branch}-train"]["spec"]["suspend"] is suspended
        assert run(["plan", "-f", str(cluster.manifest), "--detailed-exitcode", *args]) == 0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_shows_what_flowplan_created(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    server = cluster.server
    server.allow_anonymous()  # kubectl sends no token to an http:// server
    kubeconfig = server.write_kubeconfig(cluster.workdir / "kubectl.kubeconfig", namespace=NAMESPACE)
    selector = "app.kubernetes.io/managed-by=flowplan,flowplan.dev/project=recsys,flowplan.dev/branch=prod"
    out = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "get",
            "workflowtemplates,cronworkflows,sensors",
            "-n",
            NAMESPACE,
            "-l",
            selector,
            "-o",
            "yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    listed = yaml.safe_load(out.stdout)["items"]
    names = sorted((o["kind"], o["metadata"]["name"]) for o in listed)
    assert names == sorted(
        [("WorkflowTemplate", f"recsys-prod-{f}") for f in ("features", "ingest", "report", "train")]
        + [("CronWorkflow", f"recsys-prod-{f}") for f in ("ingest", "report", "train")]
        + [("Sensor", f"recsys-prod-{f}") for f in ("features", "ingest")]
    )
    train = next(o for o in listed if o["kind"] == "CronWorkflow" and o["metadata"]["name"] == "recsys-prod-train")
    assert train["metadata"]["labels"]["flowplan.dev/protect"] == "true"
    assert train["metadata"]["annotations"]["flowplan.dev/spec-hash"]
    assert train["spec"]["schedules"] == ["30 2 * * *"]
