"""Conflicts, ambiguous outcomes and retries: the writer never overwrites blindly and never duplicates.

Faults are real: the counting proxy resets connections before or after the
server applied a write, answers 429/503 itself, delays past the client's
timeout, or lets the test make an out-of-band write at the exact moment a
request passes through it.
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import pytest

from backends.argo.client import CONFIG_MAP, FAST_RETRY, Kube, RetryPolicy
from planner.cli import run
from planner.contract import Scope
from planner.errors import BackendError, ConflictError, TransientError
from planner.resources import Address, Resource
from tests.backends.argo.test_live_support import NAMESPACE, Cluster, cluster
from tests.support.proxy import Delay, FaultRule, ForwardThenReset, ProxyRequest, ResetBeforeForward, Respond

__all__ = ["cluster"]

ARGO = f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}"


def _edit_by_hand(cluster: Cluster, kind: str, name: str, label: str = "edited") -> dict[str, Any]:
    """An out-of-band change, as `kubectl edit` would make it (another field manager)."""
    obj = cluster.server.get_object(kind, NAMESPACE, name)
    assert obj is not None
    obj["metadata"].setdefault("labels", {})["edited-by"] = label
    return cluster.server.put_object(obj, manager="kubectl-edit")


# --------------------------------------------------------------------------- stale plans and 409s


def test_an_out_of_band_edit_between_plan_and_apply_refuses_the_saved_plan(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    plan_file = str(cluster.workdir / "plan.json")
    assert cluster.flowplan("plan", "--out", plan_file).code == 0
    _edit_by_hand(cluster, "CronWorkflow", "recsys-prod-train")

    cluster.proxy.reset_counts()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run(["apply", plan_file])
    assert code == 1
    assert "stale" in err.getvalue() and "nothing was written" in err.getvalue()
    assert cluster.writes() == {}  # no lock taken, no inventory touched, no object written
    train = cluster.objects("CronWorkflow")["recsys-prod-train"]
    assert train["spec"]["schedules"] == ["30 2 * * *"]
    assert train["metadata"]["labels"]["edited-by"] == "edited"


def test_a_409_during_apply_stops_that_resource_and_its_dependents_and_a_rerun_converges(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    # Retag the ingest flow: its template, cron workflow and sensor all change; the latter two depend on the first.
    cluster.edit("tags: {team: data-eng}", "tags: {team: data-platform}")
    raced: list[str] = []

    def race(request: ProxyRequest) -> None:
        """Someone edits the template by hand after the re-plan under the lock, just before flowplan's PUT."""
        if request.method == "PUT" and request.path == f"{ARGO}/workflowtemplates/recsys-prod-ingest" and not raced:
            raced.append(request.path)
            _edit_by_hand(cluster, "WorkflowTemplate", "recsys-prod-ingest", "racer")
        return None

    cluster.proxy.rules.append(race)
    result = cluster.apply()
    assert result.code == 1
    assert raced
    assert "failed  cluster.WorkflowTemplate.ml-test/recsys-prod-ingest: " in result.err
    assert "changed since the plan (last written by kubectl-edit" in result.err
    assert "skipped cluster.CronWorkflow.ml-test/recsys-prod-ingest" in result.err
    assert "skipped cluster.Sensor.ml-test/recsys-prod-ingest" in result.err
    assert "someone changed these objects since the plan" in result.err
    template = cluster.objects("WorkflowTemplate")["recsys-prod-ingest"]
    assert template["metadata"]["labels"]["edited-by"] == "racer"  # not overwritten
    assert template["metadata"]["labels"]["team"] == "data-eng"
    cron = cluster.objects("CronWorkflow")["recsys-prod-ingest"]
    assert cron["metadata"]["labels"]["team"] == "data-eng"  # skipped: untouched

    cluster.proxy.rules.clear()
    again = cluster.apply()
    assert again.code == 0, again.text
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0
    for kind in ("WorkflowTemplate", "CronWorkflow", "Sensor"):
        labels = cluster.objects(kind)["recsys-prod-ingest"]["metadata"]["labels"]
        assert labels["team"] == "data-platform" and "edited-by" not in labels


def test_an_injected_409_on_delete_keeps_the_object(cluster: Cluster) -> None:
    cluster.add_digest_flow()
    assert cluster.apply().code == 0
    text = cluster.manifest.read_text()
    cluster.manifest.write_text(text[: text.index("  digest:\n")] + text[text.index("\n  ingest:\n") + 1 :])
    cluster.proxy.rules.append(
        FaultRule(Respond.kubernetes(409, "Conflict", "precondition failed"), key="delete cronworkflows", times=1)
    )
    result = cluster.apply()
    assert result.code == 1
    assert "cluster.CronWorkflow.ml-test/recsys-prod-digest" in result.err
    assert "recsys-prod-digest" in cluster.objects("CronWorkflow")
    cluster.proxy.rules.clear()
    assert cluster.apply().code == 0
    assert "recsys-prod-digest" not in cluster.objects("CronWorkflow")


# --------------------------------------------------------------------------- ambiguous outcomes


def test_a_create_whose_answer_is_lost_is_read_back_and_not_duplicated(cluster: Cluster) -> None:
    cluster.proxy.rules.append(FaultRule(ForwardThenReset(), key="create workflowtemplates", times=2))
    result = cluster.apply()
    assert result.code == 0, result.text
    counts = cluster.counts()
    assert counts["create workflowtemplates"] == 4  # the two lost answers were confirmed by reading back
    assert counts["get workflowtemplates"] == 2
    assert len(cluster.objects("WorkflowTemplate")) == 4
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_a_create_reset_before_it_reached_the_server_is_sent_again(cluster: Cluster) -> None:
    cluster.proxy.rules.append(FaultRule(ResetBeforeForward(), key="create sensors", times=1))
    result = cluster.apply()
    assert result.code == 0, result.text
    counts = cluster.counts()
    assert counts["create sensors"] == 3 and counts["get sensors"] == 1
    assert sorted(cluster.objects("Sensor")) == ["recsys-prod-features", "recsys-prod-ingest"]


def test_an_update_and_a_delete_whose_answers_are_lost_succeed_once(cluster: Cluster) -> None:
    cluster.add_digest_flow()
    assert cluster.apply().code == 0
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    text = cluster.manifest.read_text()
    cluster.manifest.write_text(text[: text.index("  digest:\n")] + text[text.index("\n  ingest:\n") + 1 :])
    cluster.proxy.rules.extend(
        [
            FaultRule(ForwardThenReset(), key="update cronworkflows", times=1),
            FaultRule(ForwardThenReset(), key="delete sensors", times=1),
        ]
    )
    cluster.proxy.reset_counts()
    result = cluster.apply()
    assert result.code == 0, result.text
    counts = cluster.counts()
    assert counts["update cronworkflows"] == 1 and counts["delete sensors"] == 1  # no replay, no false 409/404
    assert cluster.objects("CronWorkflow")["recsys-prod-train"]["spec"]["schedules"] == ["45 3 * * *"]
    assert "recsys-prod-digest" not in cluster.objects("Sensor")
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_an_update_timed_out_is_resolved_by_reading_back(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    backend = cluster.backend(timeout=(2.0, 0.3))
    live = backend.reader().read(Scope("cluster", "recsys", "prod"), [])
    address = Address("cluster", "CronWorkflow", NAMESPACE, "recsys-prod-report")
    current = live.owned[address]
    body = copy.deepcopy(current.body)
    body["spec"]["timezone"] = "Europe/Paris"
    cluster.proxy.rules.append(FaultRule(Delay(0.6), key="update cronworkflows", times=1))
    cluster.proxy.reset_counts()
    backend.writer().update(Resource(address, body), current)
    counts = cluster.counts()
    assert counts["get cronworkflows"] >= 1  # the timed-out PUT was resolved by reading back
    assert counts["update cronworkflows"] in (1, 2)  # a retry after "untouched" meets the late PUT's 409 → read back
    stored = cluster.objects("CronWorkflow")["recsys-prod-report"]
    assert stored["spec"]["timezone"] == "Europe/Paris"


def test_an_ambiguous_update_that_finds_someone_elses_change_is_a_conflict(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    backend = cluster.backend()
    live = backend.reader().read(Scope("cluster", "recsys", "prod"), [])
    address = Address("cluster", "CronWorkflow", NAMESPACE, "recsys-prod-report")
    body = copy.deepcopy(live.owned[address].body)
    body["spec"]["suspend"] = True

    def edit_then_reset(request: ProxyRequest) -> ResetBeforeForward | None:
        if request.key == "update cronworkflows":
            _edit_by_hand(cluster, "CronWorkflow", "recsys-prod-report")
            return ResetBeforeForward()
        return None

    cluster.proxy.rules.append(edit_then_reset)
    with pytest.raises(ConflictError, match=r"changed since the plan \(last written by kubectl-edit"):
        backend.writer().update(Resource(address, body), live.owned[address])
    assert cluster.objects("CronWorkflow")["recsys-prod-report"]["spec"]["suspend"] is False


# --------------------------------------------------------------------------- retries and immediate errors


def test_429_and_503_are_retried_with_backoff_and_the_apply_converges(cluster: Cluster) -> None:
    cluster.proxy.rules.extend(
        [
            FaultRule(Respond.kubernetes(429, "TooManyRequests", retry_after=0), key="list cronworkflows", times=2),
            FaultRule(Respond.kubernetes(503, "ServiceUnavailable"), key="create cronworkflows", times=2),
            FaultRule(Respond.kubernetes(500, "InternalError"), key="update configmaps", times=1),
        ]
    )
    result = cluster.apply()
    assert result.code == 0, result.text
    assert len(cluster.objects("CronWorkflow")) == 3
    faults = cluster.proxy.faults()
    assert faults["respond 429 list cronworkflows"] == 2 and faults["respond 503 create cronworkflows"] == 2
    assert cluster.flowplan("plan", "--detailed-exitcode").code == 0


def test_retries_are_bounded_and_fail_only_that_resource(cluster: Cluster) -> None:
    cluster.proxy.rules.append(
        FaultRule(Respond.kubernetes(503, "ServiceUnavailable", "etcd is sad"), path=r"/sensors$", method="POST")
    )
    result = cluster.apply()
    assert result.code == 1
    assert cluster.counts()["create sensors"] == 2 * FAST_RETRY.attempts
    assert "kept failing (HTTP 503 ServiceUnavailable: etcd is sad; 5 attempts)" in result.err
    assert len(cluster.objects("CronWorkflow")) == 3  # independent resources went through
    cluster.proxy.rules.clear()
    assert cluster.apply().code == 0


def test_another_4xx_is_an_immediate_error_quoting_the_server(cluster: Cluster) -> None:
    backend = cluster.backend()
    address = Address("cluster", "ConfigMap", NAMESPACE, "Not_A_Name")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name", "namespace": NAMESPACE}}
    with pytest.raises(BackendError) as caught:
        backend.writer().create(Resource(address, {**body, "data": {"k": "v"}}))
    assert not isinstance(caught.value, TransientError)
    assert 'ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value' in caught.value.message
    assert "HTTP 422 Invalid" in caught.value.message
    assert cluster.counts() == {"create configmaps": 1}


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(attempts=5, base=0.1, cap=1.0, retry_after_cap=30.0)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=300.0) == 30.0
    delays = [policy.delay(n) for n in range(1, 6) for _ in range(20)]
    assert all(0.05 <= d <= 1.0 for d in delays) and len(set(delays)) > 10  # jittered, bounded


def test_the_client_sleeps_for_retry_after(cluster: Cluster) -> None:
    backend = cluster.backend()
    slept: list[float] = []
    kube = Kube(backend.connection, retry=RetryPolicy(attempts=3, base=0.01, cap=0.02), sleep=slept.append)
    cluster.proxy.rules.append(
        FaultRule(Respond.kubernetes(429, "TooManyRequests", retry_after=3), key="list configmaps", times=1)
    )
    assert kube.list(CONFIG_MAP, NAMESPACE) == []
    assert slept == [3.0]


# --------------------------------------------------------------------------- replace


def test_replace_deletes_with_preconditions_then_creates_and_a_dry_run_persists_nothing(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    backend = cluster.backend()
    live = backend.reader().read(Scope("cluster", "recsys", "prod"), [])
    address = Address("cluster", "CronWorkflow", NAMESPACE, "recsys-prod-report")
    current = live.owned[address]
    body = copy.deepcopy(current.body)
    body["spec"]["timezone"] = "Asia/Tokyo"

    backend.writer(dry_run=True).replace(Resource(address, body), current)
    untouched = cluster.objects("CronWorkflow")["recsys-prod-report"]
    assert untouched["metadata"]["uid"] == current.meta["uid"] and untouched["spec"]["timezone"] != "Asia/Tokyo"

    cluster.proxy.reset_counts()
    backend.writer().replace(Resource(address, body), current)
    replaced = cluster.objects("CronWorkflow")["recsys-prod-report"]
    assert replaced["metadata"]["uid"] != current.meta["uid"] and replaced["spec"]["timezone"] == "Asia/Tokyo"
    assert cluster.writes() == {"delete cronworkflows": 1, "create cronworkflows": 1}
    with pytest.raises(ConflictError, match="changed since the plan"):
        backend.writer().delete(current)  # the planned uid and resourceVersion are gone: never deletes the new one
