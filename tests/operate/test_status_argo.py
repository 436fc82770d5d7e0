"""``flowplan status`` and ``flowplan run`` on the Kubernetes API test server.

Workflow objects put on the server stand for runs, the way the workflow controller creates them:
labelled from the WorkflowTemplate's ``spec.workflowMetadata.labels``, with a phase and times in
their status. Sensors and EventSources get status conditions the way the Argo Events controller
writes them.
"""

from __future__ import annotations

import datetime
from typing import Any

from tests.backends.argo.test_live_support import NAMESPACE, Cluster
from tests.operate.helpers import UTC, flow_view, generated, instants, iso, parse, wall_clock_fires

NOW = datetime.datetime.now(UTC)


def _run(cluster: Cluster, flow: str, name: str, phase: str | None, started: datetime.datetime, **labels: str) -> None:
    """A Workflow of ``flow`` as the controller makes it: the template's run labels, then a status."""
    template = cluster.server.get_object("WorkflowTemplate", NAMESPACE, f"recsys-prod-{flow}")
    run_labels = {**template["spec"]["workflowMetadata"]["labels"], **labels}
    body: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": run_labels},
        "spec": {"workflowTemplateRef": {"name": f"recsys-prod-{flow}"}},
    }
    cluster.server.put_object(body)
    if phase is not None:
        status: dict[str, Any] = {"phase": phase, "startedAt": iso(started)}
        if phase in ("Succeeded", "Failed", "Error"):
            status["finishedAt"] = iso(started + datetime.timedelta(minutes=42))
        if phase == "Failed":
            status["message"] = "child 'step-evaluate' failed"
        cluster.server.set_status("Workflow", NAMESPACE, name, status)


def _healthy(cluster: Cluster, kind: str, name: str, conditions: list[tuple[str, str]]) -> None:
    cluster.server.set_status(
        kind,
        NAMESPACE,
        name,
        {"conditions": [{"type": t, "status": s, "reason": "x" if s != "True" else ""} for t, s in conditions]},
    )


def test_status_shows_fire_times_runs_and_plumbing_and_exits_1_when_the_last_run_failed(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    hours = datetime.timedelta(hours=1)
    _run(cluster, "train", "recsys-prod-train-a1", "Succeeded", NOW - 30 * hours)
    _run(cluster, "train", "recsys-prod-train-b2", "Failed", NOW - 6 * hours)
    _run(cluster, "train", "recsys-prod-train-c3", "Running", NOW - hours / 6)
    _run(cluster, "ingest", "recsys-prod-ingest-d4", "Succeeded", NOW - 2 * hours)
    # another branch's run of the same flow, and a run of no flow: neither is train's
    _run(
        cluster, "train", "recsys-staging-train-e5", "Succeeded", NOW - hours / 60, **{"flowplan.dev/branch": "staging"}
    )
    cluster.server.put_object(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "hand-made", "namespace": NAMESPACE, "labels": {"flowplan.dev/project": "recsys"}},
            "spec": {"workflowTemplateRef": {"name": "recsys-prod-train"}},
        }
    )

    result = cluster.flowplan("status", "train", "report", "--format", "json")
    assert result.code == 1, result.text
    view = parse(result.out)
    train = flow_view(view, "train")
    assert [(r["id"], r["outcome"]) for r in train["runs"]] == [
        ("recsys-prod-train-c3", "running"),
        ("recsys-prod-train-b2", "failed"),
        ("recsys-prod-train-a1", "succeeded"),
    ]
    assert train["runs"][1]["duration_seconds"] == 42 * 60
    assert "step-evaluate" in train["runs"][1]["detail"]
    assert train["last_finished_run"]["id"] == "recsys-prod-train-b2"
    assert view["alerts"] == ["train: last run failed (recsys-prod-train-b2)"]
    assert (train["deployed"], train["sync"]) == ("yes", "in sync")

    # the schedules' next fire times, computed here from zoneinfo, not by flowplan's cron code
    at = generated(view)
    assert instants(train["schedule"]["next"]) == wall_clock_fires(2, 30, "Europe/Berlin", at, 3)
    report = flow_view(view, "report")
    assert instants(report["schedule"]["next"]) == wall_clock_fires(7, 0, "America/New_York", at, 3, weekday=0)
    assert report["runs"] == [] and not train["schedule"]["suspended"]
    assert [(t["kind"], t["state"], t["healthy"]) for t in train["triggers"]] == [("schedule", "enabled", True)]

    text = cluster.flowplan("status", "train")
    assert text.code == 1
    assert "FAILED    recsys-prod-train-b2" in text.out and "took 42m 00s" in text.out
    assert "schedule: At 02:30 AM (30 2 * * *, Europe/Berlin); next " in text.out
    assert "! last run failed (recsys-prod-train-b2)" in text.out

    # a newer run that succeeded clears the alert
    _run(cluster, "train", "recsys-prod-train-f6", "Succeeded", NOW - hours / 12)
    again = cluster.flowplan("status", "train", "--format", "markdown")
    assert again.code == 0, again.text
    assert "| `train` | cluster | yes | in sync | At 02:30 AM |" in again.out


def test_status_reports_sensor_and_event_source_health_and_a_missing_flow(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    # No status yet: unknown, which is no alert. The external EventSource of `events:` does not exist: broken.
    first = parse(cluster.flowplan("status", "ingest", "--format", "json").out)
    triggers = {(t["kind"], t["name"]): (t["state"], t["healthy"]) for t in flow_view(first, "ingest")["triggers"]}
    assert triggers == {
        ("schedule", "recsys-prod-ingest"): ("enabled", True),
        ("sensor", "recsys-prod-ingest"): ("unknown", None),
        ("event-source", "flowplan-events"): ("missing", False),
    }
    assert first["alerts"] == ["ingest: trigger plumbing broken: event-source flowplan-events"]

    cluster.server.put_object(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "flowplan-events", "namespace": NAMESPACE},
            "spec": {"s3": {}},
            "status": {
                "conditions": [{"type": "SourcesProvided", "status": "True"}, {"type": "Deployed", "status": "True"}]
            },
        }
    )
    _healthy(cluster, "Sensor", "recsys-prod-ingest", [("Deployed", "True"), ("TriggersProvided", "True")])
    healthy = cluster.flowplan("status", "ingest", "--format", "json")
    assert healthy.code == 0, healthy.text
    states = {t["kind"]: (t["state"], t["healthy"]) for t in flow_view(parse(healthy.out), "ingest")["triggers"]}
    assert states == {"schedule": ("enabled", True), "sensor": ("deployed", True), "event-source": ("deployed", True)}

    _healthy(cluster, "Sensor", "recsys-prod-ingest", [("Deployed", "True"), ("TriggersProvided", "False")])
    cluster.server.delete_object("CronWorkflow", NAMESPACE, "recsys-prod-ingest")
    broken = cluster.flowplan("status", "ingest")
    assert broken.code == 1
    assert "[BROKEN] sensor recsys-prod-ingest: degraded (TriggersProvided: x)" in broken.out
    assert "deployed (partly), drifted (2/3 objects)" in broken.out
    assert "create cluster.CronWorkflow.ml-test/recsys-prod-ingest (deleted-outside)" in broken.out

    # a flow that was never applied is missing: exit 1
    cluster.add_digest_flow()
    missing = cluster.flowplan("status", "digest", "--format", "json")
    assert missing.code == 1
    assert parse(missing.out)["alerts"][0] == "digest: not deployed"


def test_run_submits_a_workflow_from_the_template_and_status_lists_it(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    unknown = cluster.flowplan("run", "ingest", "--param", "nope=1")
    assert unknown.code == 1 and "no parameter nope" in unknown.err and "input_key" in unknown.err
    assert cluster.server.list_objects("Workflow", NAMESPACE) == []

    started = cluster.flowplan("run", "ingest", "--param", "input_key=partners/2026-11-01.csv")
    assert started.code == 0, started.text
    (workflow,) = cluster.server.list_objects("Workflow", NAMESPACE)
    name = workflow["metadata"]["name"]
    assert name.startswith("recsys-prod-ingest-")
    assert f"argo -n {NAMESPACE} watch {name}" in started.out
    assert workflow["metadata"]["labels"] == {
        "flowplan.dev/project": "recsys",
        "flowplan.dev/branch": "prod",
        "flowplan.dev/flow": "ingest",
        "flowplan.dev/started-by": "manual",
    }
    assert workflow["spec"] == {
        "workflowTemplateRef": {"name": "recsys-prod-ingest"},
        "arguments": {"parameters": [{"name": "input_key", "value": "partners/2026-11-01.csv"}]},
    }
    view = parse(cluster.flowplan("status", "ingest", "--format", "json").out)
    (run,) = flow_view(view, "ingest")["runs"]
    assert (run["id"], run["outcome"]) == (name, "pending")

    # a branch that was never applied has no template to run
    other = cluster.flowplan("run", "ingest", "--branch", "pr-3")
    assert other.code == 1 and "not deployed on branch pr-3" in other.err
