"""Contract tests: what the Kubernetes API test server promises, through the official client.

Each test states a behaviour of a real kube-apiserver (with the Argo CRDs installed) that
flowplan relies on or must survive. They run against the test server by default; with
FLOWPLAN_TEST_KUBECONFIG set they run unchanged against that cluster (see docs/testing.md), so
a disagreement between the test server and Kubernetes shows up as a failing test here rather
than as a surprise in production. Tests that need what only the test server can arrange
(extra tokens, removing CRDs) skip on a real cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.fixtures import KubeTarget
from tests.support.kubeconfig import write_kubeconfig

pytestmark = pytest.mark.kubernetes

G, V = "argoproj.io", "v1alpha1"
EXAMPLE_RBAC = Path(__file__).resolve().parents[2] / "examples" / "argo" / "rbac.yaml"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
JSON = dict[str, Any]


def cron(name: str, schedule: str = "0 * * * *", labels: dict[str, str] | None = None) -> JSON:
    body: JSON = {
        "apiVersion": f"{G}/{V}",
        "kind": "CronWorkflow",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "workflowSpec": {"entrypoint": "main"}},
    }
    if labels:
        body["metadata"]["labels"] = labels
    return body


def status(exc: client.ApiException) -> JSON:
    """The Status body of an error answer."""
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def expect_error(code: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
    with pytest.raises(client.ApiException) as info:
        fn(*args, **kwargs)
    assert info.value.status == code, info.value.body
    return status(info.value)


class Ctx:
    """Shorthands over one KubeTarget."""

    def __init__(self, target: KubeTarget) -> None:
        self.t = target
        self.ns = target.namespace
        self.custom = client.CustomObjectsApi(target.api)
        self.core = client.CoreV1Api(target.api)
        self.coord = client.CoordinationV1Api(target.api)

    def create(self, body: JSON, plural: str = "cronworkflows", **kw: Any) -> JSON:
        result: JSON = self.custom.create_namespaced_custom_object(G, V, self.ns, plural, body, **kw)
        return result

    def get(self, name: str, plural: str = "cronworkflows") -> JSON:
        result: JSON = self.custom.get_namespaced_custom_object(G, V, self.ns, plural, name)
        return result

    def replace(self, name: str, body: JSON, plural: str = "cronworkflows", **kw: Any) -> JSON:
        result: JSON = self.custom.replace_namespaced_custom_object(G, V, self.ns, plural, name, body, **kw)
        return result

    def patch(self, name: str, body: Any, plural: str = "cronworkflows", **kw: Any) -> JSON:
        result: JSON = self.custom.patch_namespaced_custom_object(G, V, self.ns, plural, name, body, **kw)
        return result

    def delete(self, name: str, plural: str = "cronworkflows", **kw: Any) -> JSON:
        result: JSON = self.custom.delete_namespaced_custom_object(G, V, self.ns, plural, name, **kw)
        return result

    def list(self, plural: str = "cronworkflows", **kw: Any) -> JSON:
        result: JSON = self.custom.list_namespaced_custom_object(G, V, self.ns, plural, **kw)
        return result

    def names(self, **kw: Any) -> list[str]:
        return [item["metadata"]["name"] for item in self.list(**kw)["items"]]


@pytest.fixture
def k(kube_target: KubeTarget) -> Ctx:
    return Ctx(kube_target)


# -- create / get ------------------------------------------------------------------------------


def test_create_answers_201_with_server_fields(k: Ctx) -> None:
    data, code, _ = k.custom.create_namespaced_custom_object_with_http_info(
        G, V, k.ns, "cronworkflows", cron("nightly", labels={"app": "x"})
    )
    assert code == 201
    meta = data["metadata"]
    assert meta["name"] == "nightly" and meta["namespace"] == k.ns
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert meta["resourceVersion"].isdigit()
    assert RFC3339_Z.match(meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert data["spec"]["schedule"] == "0 * * * *"
    assert k.get("nightly") == data


def test_create_twice_is_409_already_exists(k: Ctx) -> None:
    k.create(cron("dup"))
    body = expect_error(409, k.create, cron("dup"))
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'cronworkflows.argoproj.io "dup" already exists'
    assert body["details"] == {"name": "dup", "group": "argoproj.io", "kind": "cronworkflows"}


def test_get_missing_is_404_not_found(k: Ctx) -> None:
    body = expect_error(404, k.get, "ghost")
    assert body["reason"] == "NotFound"
    assert body["message"] == 'cronworkflows.argoproj.io "ghost" not found'
    assert body["details"]["name"] == "ghost"


def test_create_with_resource_version_is_rejected(k: Ctx) -> None:
    body = cron("with-rv")
    body["metadata"]["resourceVersion"] = "123"
    answer = expect_error(500, k.create, body)
    assert answer["message"] == "resourceVersion should not be set on objects to be created"
    expect_error(404, k.get, "with-rv")


def test_generate_name_gets_a_suffix(k: Ctx) -> None:
    body = {"apiVersion": f"{G}/{V}", "kind": "Workflow", "metadata": {"generateName": "run-"}, "spec": {}}
    made = k.create(body, plural="workflows")
    assert re.fullmatch(r"run-[a-z0-9]{5}", made["metadata"]["name"])


# -- update ------------------------------------------------------------------------------------


def test_update_with_stale_resource_version_is_409_conflict(k: Ctx) -> None:
    first = k.create(cron("c"))
    fresh = k.replace("c", {**first, "spec": {**first["spec"], "schedule": "5 * * * *"}})
    assert int(fresh["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    body = expect_error(409, k.replace, "c", first)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on cronworkflows.argoproj.io "c": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert k.get("c")["spec"]["schedule"] == "5 * * * *"


def test_update_of_custom_resource_needs_resource_version(k: Ctx) -> None:
    made = k.create(cron("c"))
    del made["metadata"]["resourceVersion"]
    body = expect_error(422, k.replace, "c", made)
    assert body["reason"] == "Invalid"
    assert "metadata.resourceVersion" in body["message"]
    assert "must be specified for an update" in body["message"]


def test_update_of_missing_object_is_404(k: Ctx) -> None:
    body = cron("nobody")
    body["metadata"]["resourceVersion"] = "1"
    expect_error(404, k.replace, "nobody", body)


def test_generation_bumps_only_when_spec_changes(k: Ctx) -> None:
    made = k.create(cron("g"))
    labelled = k.patch("g", {"metadata": {"labels": {"team": "ml"}, "annotations": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    assert labelled["metadata"]["resourceVersion"] != made["metadata"]["resourceVersion"]
    changed = k.patch("g", {"spec": {"schedule": "1 * * * *"}})
    assert changed["metadata"]["generation"] == 2
    again = k.replace("g", changed)  # identical body: a no-op write
    assert again["metadata"]["generation"] == 2


def test_noop_update_keeps_resource_version(k: Ctx) -> None:
    made = k.create(cron("same"))
    again = k.replace("same", made)
    assert again["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    patched = k.patch("same", {"spec": {"schedule": "0 * * * *"}})
    assert patched["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]


def test_server_fields_in_an_update_body_are_not_taken(k: Ctx) -> None:
    made = k.create(cron("sf"))
    body = json.loads(json.dumps(made))
    body["metadata"]["creationTimestamp"] = "2001-01-01T00:00:00Z"
    body["metadata"]["generation"] = 42
    body["spec"]["schedule"] = "2 * * * *"
    updated = k.replace("sf", body)
    assert updated["metadata"]["creationTimestamp"] == made["metadata"]["creationTimestamp"]
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] == made["metadata"]["uid"]


def test_argo_status_is_written_through_the_main_resource(k: Ctx) -> None:
    # The Argo CRDs declare `subresources: {}`: the controllers write status with a plain update,
    # so status is stored and, being outside metadata, bumps the generation.
    wf = k.create(
        {"apiVersion": f"{G}/{V}", "kind": "Workflow", "metadata": {"name": "run-1"}, "spec": {}}, "workflows"
    )
    wf["status"] = {"phase": "Running"}
    updated = k.replace("run-1", wf, plural="workflows")
    assert updated["status"] == {"phase": "Running"}
    assert updated["metadata"]["generation"] == 2
    assert k.get("run-1", "workflows")["status"]["phase"] == "Running"


def test_managed_fields_name_manager_operation_and_time(k: Ctx) -> None:
    made = k.create(cron("mf", labels={"app": "x", "team": "a"}))
    (entry,) = made["metadata"]["managedFields"]
    assert entry["manager"] == "OpenAPI-Generator"  # the Python client's User-Agent, up to "/"
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == f"{G}/{V}"
    assert entry["fieldsType"] == "FieldsV1"
    assert RFC3339_Z.match(entry["time"])
    assert "f:spec" in entry["fieldsV1"]  # the Argo CRDs make spec one atomic field
    assert set(entry["fieldsV1"]["f:metadata"]["f:labels"]) >= {"f:app", "f:team"}
    patched = k.patch("mf", {"metadata": {"labels": {"app": "y"}}}, field_manager="flowplan")
    by_manager = {e["manager"]: e for e in patched["metadata"]["managedFields"]}
    assert set(by_manager) == {"OpenAPI-Generator", "flowplan"}
    assert by_manager["flowplan"]["fieldsV1"]["f:metadata"]["f:labels"] == {"f:app": {}}
    creator_labels = by_manager["OpenAPI-Generator"]["fieldsV1"]["f:metadata"]["f:labels"]
    assert "f:team" in creator_labels and "f:app" not in creator_labels


def test_spec_is_required_on_argo_kinds(k: Ctx) -> None:
    body = cron("nospec")
    del body["spec"]
    answer = expect_error(422, k.create, body)
    assert answer["details"]["causes"][0]["field"] == "spec"


def test_argo_events_status_is_a_subresource(k: Ctx) -> None:
    sensor = {"apiVersion": f"{G}/{V}", "kind": "Sensor", "metadata": {"name": "s"}, "spec": {"triggers": []}}
    made = k.create({**sensor, "status": {"conditions": []}}, "sensors")
    assert "status" not in made  # create cannot set status
    made["status"] = {"lastUpdated": "2026-01-01T00:00:00Z"}
    ignored = k.replace("s", made, "sensors")
    assert "status" not in ignored
    updated = k.custom.replace_namespaced_custom_object_status(G, V, k.ns, "sensors", "s", made)
    assert updated["status"] == {"lastUpdated": "2026-01-01T00:00:00Z"}
    assert updated["metadata"]["generation"] == 1  # status changes do not bump it


def test_name_mismatch_between_body_and_url_is_400(k: Ctx) -> None:
    made = k.create(cron("right"))
    made["metadata"]["name"] = "wrong"
    body = expect_error(400, k.replace, "right", made)
    assert body["reason"] == "BadRequest"
    assert "does not match" in body["message"]


def test_namespace_mismatch_between_body_and_url_is_400(k: Ctx) -> None:
    body = cron("elsewhere")
    body["metadata"]["namespace"] = "some-other-namespace"
    answer = expect_error(400, k.create, body)
    assert answer["reason"] == "BadRequest"
    assert "namespace" in answer["message"]


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bad_Name", "-lead", "trail-", "x" * 254, "UPPER"])
def test_invalid_names_are_422(k: Ctx, name: str) -> None:
    body = expect_error(422, k.create, cron(name))
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "CronWorkflow"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["message"].startswith(f'CronWorkflow.argoproj.io "{name}" is invalid: metadata.name: ')


def test_longest_valid_name_is_accepted(k: Ctx) -> None:
    name = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    assert k.create(cron(name))["metadata"]["name"] == name


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ({"app": "has space"}, "metadata.labels"),
        ({"app": "v" * 64}, "metadata.labels"),
        ({"bad key!": "v"}, "metadata.labels"),
        ({"a/b/c": "v"}, "metadata.labels"),
        ({"Example.COM/app": "v"}, "metadata.labels"),
    ],
)
def test_invalid_labels_are_422(k: Ctx, labels: dict[str, str], field: str) -> None:
    body = expect_error(422, k.create, cron("labelled", labels=labels))
    assert body["details"]["causes"][0]["field"] == field


def test_valid_label_forms_are_accepted(k: Ctx) -> None:
    labels = {"flowplan.dev/project": "recsys", "app": "", "a.b_c-d": "V.1_2-3", "k": "x" * 63}
    assert k.create(cron("ok-labels", labels=labels))["metadata"]["labels"] == labels


# -- list: selectors and pages -----------------------------------------------------------------


@pytest.fixture
def labelled(k: Ctx) -> Ctx:
    for name, labels in {
        "a": {"app": "x", "tier": "web"},
        "b": {"app": "x", "tier": "db"},
        "c": {"app": "y"},
        "d": {"tier": "web"},
        "e": {},
    }.items():
        k.create(cron(name, labels=labels or None))
    return k


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=x", ["a", "b"]),
        ("app==x", ["a", "b"]),
        ("app!=x", ["c", "d", "e"]),
        ("app in (x,y)", ["a", "b", "c"]),
        ("app notin (x)", ["c", "d", "e"]),
        ("app", ["a", "b", "c"]),
        ("!app", ["d", "e"]),
        ("app=x,tier=web", ["a"]),
        ("tier in (web),!app", ["d"]),
        ("app=z", []),
    ],
)
def test_label_selector_forms(labelled: Ctx, selector: str, expected: list[str]) -> None:
    assert labelled.names(label_selector=selector) == expected


def test_malformed_label_selector_is_400(labelled: Ctx) -> None:
    body = expect_error(400, labelled.list, label_selector="app in x")
    assert body["reason"] == "BadRequest"


def test_field_selector_on_name(labelled: Ctx) -> None:
    assert labelled.names(field_selector="metadata.name=c") == ["c"]
    assert labelled.names(field_selector="metadata.name!=c") == ["a", "b", "d", "e"]
    expect_error(400, labelled.list, field_selector="spec.schedule=x")


def test_list_carries_kind_and_resource_version(labelled: Ctx) -> None:
    listing = labelled.list()
    assert listing["kind"] == "CronWorkflowList"
    assert listing["apiVersion"] == f"{G}/{V}"
    assert listing["metadata"]["resourceVersion"].isdigit()
    assert all(item["kind"] == "CronWorkflow" for item in listing["items"])


def test_pagination_with_limit_and_continue(k: Ctx) -> None:
    names = [f"flow-{i:02d}" for i in range(25)]
    for name in reversed(names):  # creation order differs from key order
        k.create(cron(name, labels={"app": "paged"}))
    seen: list[str] = []
    pages = 0
    token = None
    first_rv = None
    while True:
        page = k.list(label_selector="app=paged", limit=10, _continue=token)
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        assert len(page["items"]) <= 10
        first_rv = first_rv or page["metadata"]["resourceVersion"]
        assert page["metadata"]["resourceVersion"] == first_rv  # one consistent snapshot
        token = page["metadata"].get("continue")
        if pages == 1:
            # A write between pages is not visible to the rest of this list.
            k.create(cron("flow-zz", labels={"app": "paged"}))
        if not token:
            break
    assert pages == 3
    assert seen == names


def test_pagination_without_selector_reports_remaining_items(k: Ctx) -> None:
    for i in range(5):
        k.create(cron(f"r{i}"))
    page = k.list(limit=2)
    assert len(page["items"]) == 2
    assert page["metadata"]["remainingItemCount"] == 3
    assert page["metadata"]["continue"]


def test_garbage_continue_token_is_rejected(k: Ctx) -> None:
    k.create(cron("x"))
    with pytest.raises(client.ApiException) as info:
        k.list(limit=1, _continue="not-a-token")
    assert info.value.status in (400, 410)


# -- patch ---------------------------------------------------------------------------------------


def test_merge_patch_merges_and_null_deletes(k: Ctx) -> None:
    k.create(cron("mp", labels={"app": "x", "drop": "me"}))
    patched = k.patch("mp", {"metadata": {"labels": {"drop": None, "new": "1"}}, "spec": {"suspend": True}})
    assert patched["metadata"]["labels"] == {"app": "x", "new": "1"}
    assert patched["spec"]["suspend"] is True
    assert patched["spec"]["schedule"] == "0 * * * *"


def test_json_patch(k: Ctx) -> None:
    k.create(cron("jp"))
    ops = [
        {"op": "test", "path": "/spec/schedule", "value": "0 * * * *"},
        {"op": "replace", "path": "/spec/schedule", "value": "7 * * * *"},
        {"op": "add", "path": "/metadata/labels", "value": {}},
        {"op": "add", "path": "/metadata/labels/flowplan.dev~1team", "value": "ml"},  # "~1" escapes "/"
    ]
    patched = k.patch("jp", ops, _content_type="application/json-patch+json")
    assert patched["spec"]["schedule"] == "7 * * * *"
    assert patched["metadata"]["labels"] == {"flowplan.dev/team": "ml"}
    # A failed `test` op rejects the whole patch.
    failing = [{"op": "test", "path": "/spec/schedule", "value": "nope"}, {"op": "remove", "path": "/spec"}]
    body = expect_error(422, k.patch, "jp", failing, _content_type="application/json-patch+json")
    assert body["reason"] == "Invalid"
    assert k.get("jp")["spec"]["schedule"] == "7 * * * *"


def test_patch_with_stale_resource_version_is_409(k: Ctx) -> None:
    made = k.create(cron("p"))
    k.patch("p", {"spec": {"schedule": "3 * * * *"}})
    stale = {"metadata": {"resourceVersion": made["metadata"]["resourceVersion"]}, "spec": {"suspend": True}}
    assert expect_error(409, k.patch, "p", stale)["reason"] == "Conflict"


def test_strategic_merge_patch_on_custom_resource_is_415(k: Ctx) -> None:
    k.create(cron("smp"))
    body = expect_error(
        415, k.patch, "smp", {"spec": {"suspend": True}}, _content_type="application/strategic-merge-patch+json"
    )
    assert body["reason"] == "UnsupportedMediaType"


def test_patch_missing_object_is_404(k: Ctx) -> None:
    expect_error(404, k.patch, "ghost", {"spec": {}})


# -- delete --------------------------------------------------------------------------------------


def test_delete_returns_the_object_and_removes_it(k: Ctx) -> None:
    made = k.create(cron("d"))
    gone = k.delete("d")
    assert gone["metadata"]["uid"] == made["metadata"]["uid"]
    expect_error(404, k.get, "d")
    expect_error(404, k.delete, "d")


def test_delete_preconditions(k: Ctx) -> None:
    made = k.create(cron("pre"))
    meta = made["metadata"]
    wrong_uid = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000"))
    body = expect_error(409, k.delete, "pre", body=wrong_uid)
    assert body["reason"] == "Conflict"
    assert "Precondition failed: UID in precondition" in body["message"]
    k.patch("pre", {"spec": {"suspend": True}})
    stale_rv = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=meta["resourceVersion"]))
    body = expect_error(409, k.delete, "pre", body=stale_rv)
    assert "Precondition failed: ResourceVersion in precondition" in body["message"]
    assert k.get("pre")["metadata"]["uid"] == meta["uid"]
    current = k.get("pre")["metadata"]
    right = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=current["uid"], resource_version=current["resourceVersion"])
    )
    k.delete("pre", body=right)
    expect_error(404, k.get, "pre")


def test_delete_with_finalizer_marks_then_update_completes(k: Ctx) -> None:
    body = cron("fin")
    body["metadata"]["finalizers"] = ["flowplan.dev/test"]
    k.create(body)
    pending = k.delete("fin")
    assert pending["metadata"]["deletionTimestamp"]
    assert k.get("fin")["metadata"]["deletionTimestamp"]
    k.patch("fin", {"metadata": {"finalizers": None}})
    expect_error(404, k.get, "fin")


# -- dry run -------------------------------------------------------------------------------------


def test_dry_run_all_persists_nothing(k: Ctx) -> None:
    answer = k.create(cron("dry"), dry_run="All")
    assert answer["metadata"]["name"] == "dry"
    expect_error(404, k.get, "dry")
    made = k.create(cron("real"))
    rv = made["metadata"]["resourceVersion"]
    would = k.replace("real", {**made, "spec": {**made["spec"], "schedule": "4 * * * *"}}, dry_run="All")
    assert would["spec"]["schedule"] == "4 * * * *"
    k.patch("real", {"spec": {"suspend": True}}, dry_run="All")
    k.delete("real", dry_run="All")
    after = k.get("real")
    assert after["metadata"]["resourceVersion"] == rv
    assert after["spec"] == made["spec"]
    # Dry runs still validate.
    expect_error(422, k.create, cron("Bad_Name"), dry_run="All")
    expect_error(409, k.create, cron("real"), dry_run="All")


# -- core kinds ----------------------------------------------------------------------------------


def test_configmaps_have_no_generation_and_allow_unconditional_update(k: Ctx) -> None:
    made = k.core.create_namespaced_config_map(
        k.ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="inv", labels={"app": "x"}), data={"a": "1"})
    )
    assert made.metadata.generation is None
    first_rv = made.metadata.resource_version
    made.data = {"a": "2"}
    made.metadata.resource_version = None
    replaced = k.core.replace_namespaced_config_map("inv", k.ns, made)
    assert replaced.data == {"a": "2"}
    # The client's default patch type for built-in kinds is strategic merge; ConfigMaps take it.
    patched = k.core.patch_namespaced_config_map("inv", k.ns, {"data": {"b": "3"}})
    assert patched.data == {"a": "2", "b": "3"}
    stale = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="inv", resource_version=first_rv), data={})
    body = expect_error(409, k.core.replace_namespaced_config_map, "inv", k.ns, stale)
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "inv"')
    listed = k.core.list_namespaced_config_map(k.ns, label_selector="app=x")
    assert [cm.metadata.name for cm in listed.items] == ["inv"]


def test_configmap_delete_answers_a_success_status(k: Ctx) -> None:
    k.core.create_namespaced_config_map(k.ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bye")))
    # Client 37.x hands this Status back as a plain dict.
    answer = k.core.delete_namespaced_config_map("bye", k.ns)
    answer = answer if isinstance(answer, dict) else answer.to_dict()
    assert answer["status"] == "Success"
    assert answer["details"]["name"] == "bye"
    assert answer["details"]["kind"] == "configmaps"


def test_configmap_over_one_mebibyte_is_422(k: Ctx) -> None:
    big = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="big"), data={"blob": "x" * (1024 * 1024)})
    body = expect_error(422, k.core.create_namespaced_config_map, k.ns, big)
    assert "1048576" in body["message"]


def test_lease_round_trip_and_conflict(k: Ctx) -> None:
    now = datetime.now(UTC).replace(microsecond=123456)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="flowplan-lock"),
        spec=client.V1LeaseSpec(holder_identity="me", lease_duration_seconds=30, acquire_time=now, renew_time=now),
    )
    made = k.coord.create_namespaced_lease(k.ns, lease)
    assert made.spec.holder_identity == "me"
    assert made.spec.renew_time == now
    made.spec.renew_time = now + timedelta(seconds=5)
    renewed = k.coord.replace_namespaced_lease("flowplan-lock", k.ns, made)
    assert renewed.spec.renew_time == now + timedelta(seconds=5)
    made.spec.holder_identity = "someone-else"  # still carries the old resourceVersion
    body = expect_error(409, k.coord.replace_namespaced_lease, "flowplan-lock", k.ns, made)
    assert body["details"]["group"] == "coordination.k8s.io"
    assert k.coord.read_namespaced_lease("flowplan-lock", k.ns).spec.holder_identity == "me"


def test_resource_versions_increase(k: Ctx) -> None:
    versions = [int(k.create(cron(f"rv{i}"))["metadata"]["resourceVersion"]) for i in range(5)]
    assert versions == sorted(versions) and len(set(versions)) == 5


def test_version_endpoint_satisfies_the_client(k: Ctx) -> None:
    info = client.VersionApi(k.t.api).get_code()
    assert info.major and info.minor and info.git_version


# -- auth (test server only) ---------------------------------------------------------------------


def _client_with_token(target: KubeTarget, token: str, tmp_path: Any) -> client.ApiClient:
    from kubernetes import config

    server = target.require_test_server("adds tokens")
    path = write_kubeconfig(tmp_path / f"kc-{token}", server.url, token)
    api = config.new_client_from_config(config_file=str(path))
    target.created_clients.append(api)
    return api


def test_unknown_token_is_401(kube_target: KubeTarget, tmp_path: Any) -> None:
    api = _client_with_token(kube_target, "no-such-token", tmp_path)
    body = expect_error(401, client.CustomObjectsApi(api).list_namespaced_custom_object, G, V, "x", "cronworkflows")
    assert body["reason"] == "Unauthorized"


def test_rbac_role_forbids_what_it_does_not_grant(kube_target: KubeTarget, tmp_path: Any) -> None:
    server = kube_target.require_test_server("loads a Role for a token")
    ns = kube_target.namespace
    server.add_token("sa-token", EXAMPLE_RBAC, namespace=ns)
    custom = client.CustomObjectsApi(_client_with_token(kube_target, "sa-token", tmp_path))
    wf = {"apiVersion": f"{G}/{V}", "kind": "Workflow", "metadata": {"name": "run"}, "spec": {}}
    custom.create_namespaced_custom_object(G, V, ns, "workflows", wf)  # granted: create workflows
    body = expect_error(403, custom.delete_namespaced_custom_object, G, V, ns, "workflows", "run")
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'workflows.argoproj.io "run" is forbidden: User "system:serviceaccount:{ns}:flowplan" cannot delete '
        f'resource "workflows" in API group "argoproj.io" in the namespace "{ns}"'
    )
    assert body["details"] == {"name": "run", "group": "argoproj.io", "kind": "workflows"}
    # Secrets are not granted at all; other namespaces neither.
    expect_error(403, client.CoreV1Api(custom.api_client).list_namespaced_secret, ns)
    body = expect_error(403, custom.list_namespaced_custom_object, G, V, "elsewhere", "cronworkflows")
    assert 'cannot list resource "cronworkflows"' in body["message"]
    assert custom.list_namespaced_custom_object(G, V, ns, "cronworkflows")["items"] == []


def test_missing_argo_crds_answer_404(kube_target: KubeTarget) -> None:
    server = kube_target.require_test_server("removes the Argo CRDs")
    server.set_argo_crds(False)
    k = Ctx(kube_target)
    body = expect_error(404, k.list)
    assert body["reason"] == "NotFound"
    expect_error(404, k.create, cron("x"))
    groups = client.ApisApi(kube_target.api).get_api_versions()
    assert "argoproj.io" not in [g.name for g in groups.groups]
    # ConfigMaps are still served.
    assert k.core.list_namespaced_config_map(k.ns).items == []
