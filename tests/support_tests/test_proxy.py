"""The counting proxy: what it counts, how it classifies, what its fault actions do to real clients.

The fault tests double as notes on the official clients' transport (urllib3 underneath both
`kubernetes` and botocore): which failures surface, which are retried behind the caller's back.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client

from tests.support.fixtures import ProxyEnv
from tests.support.proxy import (
    Delay,
    FaultRule,
    ForwardThenReset,
    ProxyRequest,
    ResetBeforeForward,
    Respond,
    classify,
    classify_aws,
    classify_kubernetes,
    fetch_counts,
    reset_remote,
    start_proxy,
)

G, V, NS = "argoproj.io", "v1alpha1", "ml-prod"


def cron(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "CronWorkflow", "metadata": {"name": name}, "spec": {"a": 1}}


@pytest.fixture
def custom(k8s_proxy: ProxyEnv) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_proxy.api_client())


# -- classification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/apis/argoproj.io/v1alpha1/namespaces/ns/cronworkflows", "", "list cronworkflows"),
        ("GET", "/apis/argoproj.io/v1alpha1/namespaces/ns/cronworkflows/x", "", "get cronworkflows"),
        ("GET", "/apis/argoproj.io/v1alpha1/cronworkflows", "labelSelector=a", "list cronworkflows"),
        ("GET", "/apis/argoproj.io/v1alpha1/namespaces/ns/workflows", "watch=true", "watch workflows"),
        ("POST", "/apis/argoproj.io/v1alpha1/namespaces/ns/workflows", "", "create workflows"),
        ("PUT", "/apis/argoproj.io/v1alpha1/namespaces/ns/workflows/w/status", "", "update workflows/status"),
        ("PATCH", "/api/v1/namespaces/ns/configmaps/c", "", "patch configmaps"),
        ("DELETE", "/api/v1/namespaces/ns/configmaps/c", "", "delete configmaps"),
        ("DELETE", "/api/v1/namespaces/ns/configmaps", "", "deletecollection configmaps"),
        ("GET", "/api/v1/namespaces/ns/configmaps/c", "", "get configmaps"),
        ("GET", "/api/v1/namespaces", "", "list namespaces"),
        ("GET", "/api/v1/namespaces/ns", "", "get namespaces"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/lock", "", "update leases"),
        ("GET", "/apis/argoproj.io/v1alpha1", "", None),
        ("GET", "/version", "", None),
    ],
)
def test_classify_kubernetes(method: str, path: str, query: str, expected: str | None) -> None:
    assert classify_kubernetes(method, path, query) == expected


def _signed(service: str) -> dict[str, str]:
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    }


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "expected"),
    [
        ("POST", "/", {"X-Amz-Target": "AWSStepFunctions.ListStateMachines"}, b"", "states:ListStateMachines"),
        ("POST", "/", {"X-Amz-Target": "AWSEvents.PutRule", **_signed("events")}, b"", "events:PutRule"),
        ("POST", "/", {"X-Amz-Target": "AmazonSSM.GetParameter"}, b"", "ssm:GetParameter"),
        ("POST", "/", {"X-Amz-Target": "DynamoDB_20120810.PutItem"}, b"", "dynamodb:PutItem"),
        ("GET", "/schedules/nightly", _signed("scheduler"), b"", "scheduler:GetSchedule"),
        ("GET", "/schedules", _signed("scheduler"), b"", "scheduler:ListSchedules"),
        ("POST", "/schedule-groups/grp", _signed("scheduler"), b"", "scheduler:CreateScheduleGroup"),
        ("GET", "/tags/arn%3Aaws%3Ascheduler", _signed("scheduler"), b"", "scheduler:ListTagsForResource"),
        ("POST", "/v1/describejobdefinitions", _signed("batch"), b"", "batch:DescribeJobDefinitions"),
        ("POST", "/", _signed("sts"), b"Action=GetCallerIdentity&Version=2011-06-15", "sts:GetCallerIdentity"),
        ("GET", "/nowhere/x", _signed("scheduler"), b"", "scheduler:GET /nowhere/x"),
        ("GET", "/api/v1/namespaces", {}, b"", None),
    ],
)
def test_classify_aws(method: str, path: str, headers: dict[str, str], body: bytes, expected: str | None) -> None:
    assert classify_aws(method, path, headers, body) == expected


def test_classify_falls_back_to_method_and_path() -> None:
    assert classify("POST", "/moto-api/reset?x=1", {}) == "POST /moto-api/reset"
    assert classify("GET", "/apis/argoproj.io/v1alpha1/namespaces/n/sensors?limit=5", {}) == "list sensors"


# -- counting through the real client --------------------------------------------------------------


def test_counts_distinguish_list_get_and_writes(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("a"))
    made = custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("b"))
    custom.list_namespaced_custom_object(G, V, NS, "cronworkflows", label_selector="app=x")
    custom.get_namespaced_custom_object(G, V, NS, "cronworkflows", "a")
    custom.get_namespaced_custom_object(G, V, NS, "cronworkflows", "b")
    made["spec"]["a"] = 2
    custom.replace_namespaced_custom_object(G, V, NS, "cronworkflows", "b", made)
    custom.patch_namespaced_custom_object(G, V, NS, "cronworkflows", "b", {"spec": {"c": 1}})
    custom.delete_namespaced_custom_object(G, V, NS, "cronworkflows", "a")
    core = client.CoreV1Api(custom.api_client)
    with pytest.raises(client.ApiException):
        core.read_namespaced_config_map("missing", NS)
    assert k8s_proxy.proxy.counts() == {
        "create cronworkflows": 2,
        "list cronworkflows": 1,
        "get cronworkflows": 2,
        "update cronworkflows": 1,
        "patch cronworkflows": 1,
        "delete cronworkflows": 1,
        "get configmaps": 1,
    }
    raw = k8s_proxy.proxy.raw_counts()
    assert raw[f"GET /apis/{G}/{V}/namespaces/{NS}/cronworkflows"] == 1
    assert raw[f"GET /apis/{G}/{V}/namespaces/{NS}/cronworkflows/a"] == 1
    assert raw[f"POST /apis/{G}/{V}/namespaces/{NS}/cronworkflows"] == 2
    assert k8s_proxy.proxy.total() == 9


def test_reset_counts_and_http_control_endpoints(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    custom.list_namespaced_custom_object(G, V, NS, "workflows")
    assert fetch_counts(k8s_proxy.url) == {"list workflows": 1}
    assert fetch_counts(k8s_proxy.url, raw=True) == {f"GET /apis/{G}/{V}/namespaces/{NS}/workflows": 1}
    reset_remote(k8s_proxy.url)
    assert k8s_proxy.proxy.counts() == {}
    custom.list_namespaced_custom_object(G, V, NS, "workflows")
    k8s_proxy.proxy.reset_counts()
    assert fetch_counts(k8s_proxy.url) == {}  # control requests are not counted


def test_keeps_connections_alive_on_both_sides(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    server = k8s_proxy.k8s.server
    before_upstream = server.connections_accepted
    before_client = k8s_proxy.proxy.connections_accepted
    for _ in range(20):
        custom.list_namespaced_custom_object(G, V, NS, "workflows")
    assert k8s_proxy.proxy.connections_accepted - before_client == 1
    assert server.connections_accepted - before_upstream == 1


def test_counts_aws_operations_through_boto3() -> None:
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    proxy = start_proxy(f"http://{host}:{port}")
    try:
        session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
        sfn = session.client("stepfunctions", endpoint_url=proxy.url)
        scheduler = session.client("scheduler", endpoint_url=proxy.url)
        sfn.list_state_machines()
        sfn.list_state_machines()
        scheduler.list_schedules()
        with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
            scheduler.get_schedule(Name="nightly")
        assert proxy.counts() == {
            "states:ListStateMachines": 2,
            "scheduler:ListSchedules": 1,
            "scheduler:GetSchedule": 1,
        }
    finally:
        proxy.stop()
        moto.stop()


# -- fault actions -------------------------------------------------------------------------------


def test_respond_answers_without_forwarding(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    rule = FaultRule(Respond.kubernetes(500, "InternalError", "boom"), key="create cronworkflows", times=1)
    k8s_proxy.proxy.rules.append(rule)
    with pytest.raises(client.ApiException) as info:
        custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("x"))
    assert info.value.status == 500
    assert "boom" in info.value.body
    assert k8s_proxy.k8s.server.get_object("CronWorkflow", NS, "x") is None  # upstream never saw it
    custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("x"))  # budget spent: passes
    assert k8s_proxy.proxy.counts() == {"create cronworkflows": 2}
    assert k8s_proxy.proxy.faults() == {"respond 500 create cronworkflows": 1}
    assert (rule.matched, rule.fired) == (2, 1)


def test_after_skips_the_first_matches(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    k8s_proxy.proxy.rules.append(FaultRule(Respond(503), key="list *", after=2, times=1))
    for _ in range(2):
        custom.list_namespaced_custom_object(G, V, NS, "sensors", _preload_content=True)
    with pytest.raises(client.ApiException) as info:
        custom.list_namespaced_custom_object(G, V, NS, "eventsources")
    assert info.value.status == 503
    custom.list_namespaced_custom_object(G, V, NS, "eventsources")


def test_delay_then_forward(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    k8s_proxy.proxy.rules.append(FaultRule(Delay(0.3), key="list workflows"))
    started = time.monotonic()
    assert custom.list_namespaced_custom_object(G, V, NS, "workflows")["items"] == []
    assert time.monotonic() - started >= 0.3
    assert k8s_proxy.proxy.faults() == {"delay 0.3 list workflows": 1}


def test_reset_before_forward_fails_a_create_cleanly(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    k8s_proxy.proxy.rules.append(FaultRule(ResetBeforeForward(), key="create cronworkflows", times=1))
    # POST is not retried by urllib3, and the error is urllib3's, not an ApiException.
    with pytest.raises(urllib3.exceptions.ProtocolError):
        custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("x"))
    assert k8s_proxy.k8s.server.get_object("CronWorkflow", NS, "x") is None
    assert k8s_proxy.proxy.counts() == {"create cronworkflows": 1}


def test_forward_then_reset_is_ambiguous(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    k8s_proxy.proxy.rules.append(FaultRule(ForwardThenReset(), key="create cronworkflows", times=1))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("x"))
    assert k8s_proxy.k8s.server.get_object("CronWorkflow", NS, "x") is not None  # it did happen


def test_urllib3_silently_retries_idempotent_calls_after_a_reset(
    k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi
) -> None:
    made = custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("x"))
    proxy = k8s_proxy.proxy
    proxy.reset_counts()
    proxy.rules[:] = [FaultRule(ResetBeforeForward(), key="get cronworkflows", times=1)]
    custom.get_namespaced_custom_object(G, V, NS, "cronworkflows", "x")  # succeeds on the retry
    assert proxy.counts() == {"get cronworkflows": 2}
    # An update that succeeded upstream, then lost its answer, is replayed: the replay is stale.
    proxy.rules[:] = [FaultRule(ForwardThenReset(), key="update cronworkflows", times=1)]
    made["spec"]["a"] = 2
    with pytest.raises(client.ApiException) as info:
        custom.replace_namespaced_custom_object(G, V, NS, "cronworkflows", "x", made)
    assert info.value.status == 409
    assert custom.get_namespaced_custom_object(G, V, NS, "cronworkflows", "x")["spec"]["a"] == 2
    # Same for a delete: the replay finds nothing and answers 404.
    proxy.rules[:] = [FaultRule(ForwardThenReset(), key="delete cronworkflows", times=1)]
    with pytest.raises(client.ApiException) as info:
        custom.delete_namespaced_custom_object(G, V, NS, "cronworkflows", "x")
    assert info.value.status == 404
    assert proxy.counts()["update cronworkflows"] == 2
    assert proxy.counts()["delete cronworkflows"] == 2


def test_custom_rule_callables_are_supported(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    seen: list[str] = []

    def spy(request: ProxyRequest) -> None:
        seen.append(f"{request.key} {request.query}")

    k8s_proxy.proxy.rules.append(spy)
    custom.list_namespaced_custom_object(G, V, NS, "workflows", limit=5)
    assert seen == ["list workflows limit=5"]


# -- as its own process --------------------------------------------------------------------------


@pytest.fixture
def proxy_process(k8s_proxy: ProxyEnv) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.proxy", "--upstream", k8s_proxy.k8s.url, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],  # the repository root, so `-m tests.support...` imports
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_runs_as_a_process(proxy_process: str, k8s_proxy: ProxyEnv, tmp_path: Any) -> None:
    from kubernetes import config

    from tests.support.kubeconfig import write_kubeconfig

    assert proxy_process.startswith("http://127.0.0.1:")
    path = write_kubeconfig(tmp_path / "kc", proxy_process, k8s_proxy.k8s.token)
    api = config.new_client_from_config(config_file=str(path))
    client.CustomObjectsApi(api).list_namespaced_custom_object(G, V, NS, "workflows")
    api.close()
    assert fetch_counts(proxy_process) == {"list workflows": 1}


def test_urllib3_honours_retry_after_on_idempotent_calls(k8s_proxy: ProxyEnv, custom: client.CustomObjectsApi) -> None:
    throttle = Respond.kubernetes(429, "TooManyRequests", retry_after=0)
    k8s_proxy.proxy.rules.append(FaultRule(throttle, key="list workflows", times=1))
    custom.list_namespaced_custom_object(G, V, NS, "workflows")  # retried by urllib3, not by flowplan
    assert k8s_proxy.proxy.counts() == {"list workflows": 2}
    k8s_proxy.proxy.rules[:] = [FaultRule(throttle, key="create cronworkflows", times=1)]
    with pytest.raises(client.ApiException) as info:
        custom.create_namespaced_custom_object(G, V, NS, "cronworkflows", cron("x"))
    assert info.value.status == 429
