"""Test-server features beyond the Kubernetes contract: harness access, options, process mode, kubectl.

The contract itself (what a real apiserver does) lives in test_k8s_server_contract.py; these
tests cover what only the test server has (put_object, reset, start options) and how the
outside world (kubectl, other processes) reaches it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.support.fixtures import K8sEnv
from tests.support.k8s_server import (
    K8sTestServer,
    load_principal,
    merge_patch,
    parse_label_selector,
    start_server,
)

G, V, NS = "argoproj.io", "v1alpha1", "ml-prod"
RBAC = Path(__file__).resolve().parents[2] / "examples" / "argo" / "rbac.yaml"


def workflow(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "Workflow", "metadata": {"name": name, "namespace": NS}, **extra}


def raw(server: K8sTestServer, method: str, path: str, *, token: str | None = None, **headers: str) -> Any:
    """A bare HTTP call, for what the typed client cannot express."""
    req = urllib.request.Request(server.url + path, method=method, headers=headers)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def custom(k8s: K8sEnv) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s.api_client())


# -- harness access ------------------------------------------------------------------------------


def test_put_object_sets_status_like_a_controller(k8s: K8sEnv, custom: client.CustomObjectsApi) -> None:
    made = custom.create_namespaced_custom_object(G, V, NS, "workflows", workflow("run-1", spec={}))
    stored = k8s.server.set_status("Workflow", NS, "run-1", {"phase": "Succeeded"})
    assert stored["metadata"]["uid"] == made["metadata"]["uid"]
    assert int(stored["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    seen = custom.get_namespaced_custom_object(G, V, NS, "workflows", "run-1")
    assert seen["status"] == {"phase": "Succeeded"}
    managers = {e["manager"] for e in seen["metadata"]["managedFields"]}
    assert managers == {"OpenAPI-Generator", "test-harness"}


def test_put_object_creates_and_lists(k8s: K8sEnv) -> None:
    k8s.server.put_object(workflow("a", spec={}))
    k8s.server.create_namespace("other")
    k8s.server.put_object({**workflow("b", spec={}), "metadata": {"name": "b", "namespace": "other"}})
    assert [o["metadata"]["name"] for o in k8s.server.list_objects("Workflow")] == ["a", "b"]
    assert [o["metadata"]["name"] for o in k8s.server.list_objects("Workflow", NS)] == ["a"]
    assert k8s.server.delete_object("Workflow", NS, "a") is True
    assert k8s.server.get_object("Workflow", NS, "a") is None


def test_reset_forgets_objects_and_tokens_but_not_versions(k8s: K8sEnv) -> None:
    k8s.server.put_object(workflow("a", spec={}))
    k8s.server.add_token("extra")
    version = int(k8s.server.resource_version)
    k8s.server.reset()
    assert k8s.server.list_objects("Workflow") == []
    assert raw(k8s.server, "GET", "/api/v1/namespaces", token="extra")[0] == 401
    assert int(k8s.server.resource_version) > version


# -- options -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def status_server() -> Iterator[K8sTestServer]:
    server = start_server(status_subresource=True, auto_namespaces=False)
    yield server
    server.stop()


def test_status_subresource_mode(status_server: K8sTestServer, tmp_path: Path) -> None:
    status_server.reset()
    api = config.new_client_from_config(config_file=str(status_server.write_kubeconfig(tmp_path / "kc")))
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    made = custom.create_namespaced_custom_object(G, V, NS, "workflows", workflow("w", spec={}, status={"x": 1}))
    assert "status" not in made  # dropped on create
    made["status"] = {"phase": "Running"}
    ignored = custom.replace_namespaced_custom_object(G, V, NS, "workflows", "w", made)
    assert "status" not in ignored
    assert ignored["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]  # a no-op
    updated = custom.replace_namespaced_custom_object_status(G, V, NS, "workflows", "w", made)
    assert updated["status"] == {"phase": "Running"}
    assert updated["metadata"]["generation"] == 1
    entry = [e for e in updated["metadata"]["managedFields"] if e.get("subresource") == "status"]
    assert entry and "f:status" in entry[0]["fieldsV1"]
    code, listing = raw(status_server, "GET", f"/apis/{G}/{V}", token=status_server.admin_token)
    assert code == 200
    assert "workflows/status" in [r["name"] for r in listing["resources"]]
    api.close()


def test_started_without_argo_crds() -> None:
    with start_server(no_argo_crds=True) as server:
        assert raw(server, "GET", f"/apis/{G}/{V}/namespaces/{NS}/workflows", token=server.admin_token)[0] == 404
        groups = raw(server, "GET", "/apis", token=server.admin_token)[1]["groups"]
        assert [g["name"] for g in groups] == ["coordination.k8s.io"]
        server.set_argo_crds(True)
        assert raw(server, "GET", f"/apis/{G}/{V}/namespaces/{NS}/workflows", token=server.admin_token)[0] == 200
        server.reset()  # back to the start-up configuration
        assert raw(server, "GET", f"/apis/{G}/{V}/namespaces/{NS}/workflows", token=server.admin_token)[0] == 404


def test_missing_namespace_is_404_without_auto_provisioning(status_server: K8sTestServer, tmp_path: Path) -> None:
    status_server.reset()
    api = config.new_client_from_config(config_file=str(status_server.write_kubeconfig(tmp_path / "kc")))
    custom = client.CustomObjectsApi(api)
    with pytest.raises(client.ApiException) as info:
        body = {"apiVersion": f"{G}/{V}", "kind": "Workflow", "metadata": {"name": "w"}, "spec": {}}
        custom.create_namespaced_custom_object(G, V, "nope", "workflows", body)
    assert info.value.status == 404
    assert json.loads(info.value.body)["message"] == 'namespaces "nope" not found'
    api.close()


def test_deleting_a_namespace_deletes_its_objects(k8s: K8sEnv, custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(G, V, NS, "workflows", workflow("w", spec={}))
    core = client.CoreV1Api(custom.api_client)
    assert NS in [n.metadata.name for n in core.list_namespace().items]  # auto-provisioned
    core.delete_namespace(NS)
    assert k8s.server.list_objects("Workflow") == []


def test_watch_and_server_side_apply_are_refused(k8s: K8sEnv, custom: client.CustomObjectsApi) -> None:
    path = f"/apis/{G}/{V}/namespaces/{NS}/workflows?watch=true"
    assert raw(k8s.server, "GET", path, token=k8s.token)[0] == 405
    custom.create_namespaced_custom_object(G, V, NS, "workflows", workflow("w", spec={}))
    with pytest.raises(client.ApiException) as info:
        custom.patch_namespaced_custom_object(
            G, V, NS, "workflows", "w", {"spec": {}}, _content_type="application/apply-patch+yaml", field_manager="x"
        )
    assert info.value.status == 415


def test_unauthenticated_and_anonymous(k8s: K8sEnv) -> None:
    assert raw(k8s.server, "GET", "/version")[0] == 200
    assert raw(k8s.server, "GET", "/api/v1/namespaces")[0] == 401
    k8s.server.allow_anonymous()
    status, body = raw(k8s.server, "GET", "/api/v1/namespaces")
    assert status == 200 and body["kind"] == "NamespaceList"
    assert raw(k8s.server, "GET", "/api/v1/namespaces", token="bogus")[0] == 401


def test_rbac_resource_names_and_cluster_scope(k8s: K8sEnv) -> None:
    role = {
        "kind": "Role",
        "metadata": {"name": "one", "namespace": NS},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"], "resourceNames": ["a"]}],
    }
    k8s.server.add_token("named", role)
    k8s.server.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": NS}})
    base = f"/api/v1/namespaces/{NS}/configmaps"
    assert raw(k8s.server, "GET", f"{base}/a", token="named")[0] == 200
    assert raw(k8s.server, "GET", f"{base}/b", token="named")[0] == 403
    assert raw(k8s.server, "GET", base, token="named")[0] == 403
    assert raw(k8s.server, "GET", f"{base}?fieldSelector=metadata.name%3Da", token="named")[0] == 200
    status, body = raw(k8s.server, "GET", "/api/v1/configmaps", token="named")
    assert status == 403 and body["message"].endswith("at the cluster scope")


def test_example_role_grants_exactly_the_documented_verbs() -> None:
    principal = load_principal(RBAC, namespace="ns")
    assert principal.user == "system:serviceaccount:ns:flowplan"
    assert principal.namespace == "ns"
    full = {"get", "list", "create", "update", "patch", "delete"}
    expected = {
        ("argoproj.io", "workflowtemplates"): full,
        ("argoproj.io", "cronworkflows"): full,
        ("argoproj.io", "sensors"): full,
        ("argoproj.io", "eventsources"): full,
        ("argoproj.io", "workflows"): {"get", "list", "create"},
        ("", "configmaps"): full,
        ("coordination.k8s.io", "leases"): full,
        ("", "secrets"): set(),
        ("argoproj.io", "workflows/status"): set(),
    }
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
    for (group, resource), allowed in expected.items():
        granted = {v for v in verbs if principal.allows(v, group, resource, "ns", "x")}
        assert granted == allowed, (group, resource)
    assert not principal.allows("get", "argoproj.io", "cronworkflows", "other-ns", "x")
    docs = list(yaml.safe_load_all(RBAC.read_text()))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding"]


def test_secrets_take_string_data(k8s: K8sEnv) -> None:
    core = client.CoreV1Api(k8s.api_client())
    made = core.create_namespaced_secret(
        NS, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
    )
    assert made.data == {"k": "dg=="} and made.type == "Opaque"


def test_cluster_wide_list_and_deletecollection(k8s: K8sEnv, custom: client.CustomObjectsApi) -> None:
    for ns, name, app in (("a", "x", "1"), ("b", "y", "1"), ("b", "z", "2")):
        k8s.server.create_namespace(ns)
        body = workflow(name, spec={})
        body["metadata"] = {"name": name, "labels": {"app": app}}
        custom.create_namespaced_custom_object(G, V, ns, "workflows", body)
    listed = custom.list_cluster_custom_object(G, V, "workflows", label_selector="app=1")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [("a", "x"), ("b", "y")]
    custom.delete_collection_namespaced_custom_object(G, V, "b", "workflows", label_selector="app=1")
    assert [o["metadata"]["name"] for o in k8s.server.list_objects("Workflow")] == ["x", "z"]


def test_protobuf_bodies_are_415(k8s: K8sEnv) -> None:
    req = urllib.request.Request(
        f"{k8s.url}/api/v1/namespaces/{NS}/configmaps",
        data=b"k8s\x00",
        method="POST",
        headers={"Authorization": f"Bearer {k8s.token}", "Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 415


def test_table_answers_for_kubectl(k8s: K8sEnv) -> None:
    k8s.server.put_object(workflow("w", spec={}))
    status, table = raw(
        k8s.server,
        "GET",
        f"/apis/{G}/{V}/namespaces/{NS}/workflows",
        token=k8s.token,
        Accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    assert status == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"][0] == "w"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_continue_token_from_before_a_reset_is_410(k8s: K8sEnv, custom: client.CustomObjectsApi) -> None:
    for i in range(3):
        k8s.server.put_object(workflow(f"w{i}", spec={}))
    token = custom.list_namespaced_custom_object(G, V, NS, "workflows", limit=1)["metadata"]["continue"]
    k8s.server.reset()
    with pytest.raises(client.ApiException) as info:
        custom.list_namespaced_custom_object(G, V, NS, "workflows", limit=1, _continue=token)
    assert info.value.status == 410
    assert json.loads(info.value.body)["reason"] == "Expired"


def test_thousands_of_objects_list_in_pages(k8s: K8sEnv, custom: client.CustomObjectsApi) -> None:
    for i in range(3000):
        labels = {"app": "big", "shard": str(i % 3)}
        k8s.server.put_object(
            {**workflow(f"w{i:05d}", spec={}), "metadata": {"name": f"w{i:05d}", "namespace": NS, "labels": labels}}
        )
    names: list[str] = []
    token = None
    while True:
        page = custom.list_namespaced_custom_object(
            G, V, NS, "workflows", label_selector="shard=1", limit=250, _continue=token
        )
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert len(names) == 1000 and names == sorted(names)


def test_selector_parser_and_merge_patch_units() -> None:
    reqs = parse_label_selector("a=1, b in (x, y),!c,d notin (z),e")
    assert [r.op for r in reqs] == ["=", "in", "!exists", "notin", "exists"]
    assert reqs[1].values == frozenset({"x", "y"})
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None}, "l": [2]}) == {"a": {"c": 2}, "l": [2]}


# -- as its own process, and kubectl -------------------------------------------------------------


@pytest.fixture(scope="module")
def server_process() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.k8s_server", "--port", "0", "--rbac", str(RBAC), "--rbac-namespace", NS],
        stdout=subprocess.PIPE,
        text=True,
        cwd=RBAC.parents[2],  # the repository root, so `-m tests.support...` imports
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_runs_as_a_process_with_an_rbac_token(server_process: str, tmp_path: Path) -> None:
    from tests.support.k8s_server import DEFAULT_ADMIN_TOKEN, DEFAULT_RBAC_TOKEN
    from tests.support.kubeconfig import write_kubeconfig

    assert server_process.startswith("http://127.0.0.1:")
    admin = config.new_client_from_config(
        config_file=str(write_kubeconfig(tmp_path / "a", server_process, DEFAULT_ADMIN_TOKEN))
    )
    limited = config.new_client_from_config(
        config_file=str(write_kubeconfig(tmp_path / "r", server_process, DEFAULT_RBAC_TOKEN))
    )
    assert client.VersionApi(admin).get_code().major == "1"
    client.CoreV1Api(admin).list_namespaced_secret(NS)
    with pytest.raises(client.ApiException) as info:
        client.CoreV1Api(limited).list_namespaced_secret(NS)
    assert info.value.status == 403
    assert client.CustomObjectsApi(limited).list_namespaced_custom_object(G, V, NS, "cronworkflows")["items"] == []
    admin.close()
    limited.close()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_gets_argo_kinds_by_label(k8s: K8sEnv, tmp_path: Path) -> None:
    # client-go never sends a bearer token over plain http (kubernetes/kubectl#744): allow anonymous.
    k8s.server.allow_anonymous()
    for kind, name, app in (
        ("WorkflowTemplate", "t1", "x"),
        ("CronWorkflow", "c1", "x"),
        ("CronWorkflow", "c2", "y"),
        ("Sensor", "s1", "x"),
        ("EventSource", "e1", "x"),
    ):
        k8s.server.put_object(
            {
                "apiVersion": f"{G}/{V}",
                "kind": kind,
                "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
                "spec": {},
            }
        )
    base = ["kubectl", "--kubeconfig", str(k8s.kubeconfig_path), "--cache-dir", str(tmp_path / "cache"), "-n", NS]
    out = subprocess.run(
        [*base, "get", "workflowtemplates,cronworkflows,sensors", "-l", "app=x", "-o", "yaml"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    listing = yaml.safe_load(out)
    assert [(i["kind"], i["metadata"]["name"]) for i in listing["items"]] == [
        ("WorkflowTemplate", "t1"),
        ("CronWorkflow", "c1"),
        ("Sensor", "s1"),
    ]
    table = subprocess.run([*base, "get", "cwf"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert table.split()[:2] == ["NAME", "AGE"] and "c1" in table and "c2" in table
    # Writes of custom resources work with --validate=false (no OpenAPI documents are served).
    manifest = yaml.safe_dump(
        {"apiVersion": f"{G}/{V}", "kind": "CronWorkflow", "metadata": {"name": "c3"}, "spec": {"schedule": "@daily"}}
    )
    subprocess.run(
        [*base, "apply", "--validate=false", "-f", "-"],
        input=manifest,
        text=True,
        capture_output=True,
        timeout=60,
        check=True,
    )
    stored = k8s.server.get_object("CronWorkflow", NS, "c3")
    assert stored is not None
    assert stored["metadata"]["managedFields"][0]["manager"] == "kubectl-client-side-apply"


def test_concurrent_writers_get_unique_versions_and_conflicts(k8s: K8sEnv) -> None:
    import threading

    api = k8s.api_client()
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, NS, "workflows", workflow("shared", spec={"n": 0}))
    outcomes: list[str] = []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        for i in range(20):
            custom.create_namespaced_custom_object(G, V, NS, "workflows", workflow(f"w{worker}-{i}", spec={}))
            current = custom.get_namespaced_custom_object(G, V, NS, "workflows", "shared")
            current["spec"]["n"] += 1
            try:
                custom.replace_namespaced_custom_object(G, V, NS, "workflows", "shared", current)
                result = "ok"
            except client.ApiException as exc:
                result = str(exc.status)
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    api.close()
    stored = k8s.server.list_objects("Workflow", NS)
    versions = [o["metadata"]["resourceVersion"] for o in stored]
    assert len(stored) == 121 and len(set(versions)) == 121
    assert set(outcomes) <= {"ok", "409"}
    shared = k8s.server.get_object("Workflow", NS, "shared")
    assert shared is not None and shared["spec"]["n"] == outcomes.count("ok")  # no lost update
