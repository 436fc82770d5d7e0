"""The test server checks names, labels and namespaces as kube-apiserver does, as full matches.

Each rule is the apiserver's (k8s.io/apimachinery validation: IsDNS1123Subdomain, IsDNS1123Label,
IsQualifiedName, IsValidLabelValue; NamespaceLifecycle admission): a value that breaks it answers
422 `Invalid` with a cause naming the field, a create in a namespace that does not exist answers
404, and a valid value with a trailing newline (which Python's `$` would let through) breaks every
rule. Through the official client, over HTTP, like flowplan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.support.fixtures import K8sEnv
from tests.support.k8s_server import ApiError

NS = "ml-prod"


def _config_map(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"k": "v"}}


def _error(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(client.ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def _invalid_fields(call: Callable[[], Any]) -> list[str]:
    """The fields a 422 `Invalid` answer names (fails if the answer is anything else)."""
    code, status = _error(call)
    assert (code, status["reason"]) == (422, "Invalid"), status
    return [cause["field"] for cause in status["details"]["causes"]]


@pytest.fixture
def core(k8s: K8sEnv) -> client.CoreV1Api:
    return client.CoreV1Api(k8s.api_client())


@pytest.fixture
def custom(k8s: K8sEnv) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s.api_client())


# -- object names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["greet", "a.b-c", "0x", "a" * 253])
def test_a_dns_subdomain_name_is_accepted(core: client.CoreV1Api, name: str) -> None:
    core.create_namespaced_config_map(NS, _config_map(name))
    assert core.read_namespaced_config_map(name, NS).metadata.name == name


@pytest.mark.parametrize(
    "name", ["greet\n", "greet\r", "Greet", "greet_x", "-greet", "greet.", "gr\u0435et", "a" * 254]
)
def test_an_object_name_that_is_not_a_dns_subdomain_is_422(core: client.CoreV1Api, name: str) -> None:
    assert _invalid_fields(lambda: core.create_namespaced_config_map(NS, _config_map(name))) == ["metadata.name"]


def test_a_custom_resource_name_with_a_trailing_newline_is_422(custom: client.CustomObjectsApi) -> None:
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "greet\n"}, "spec": {}}
    fields = _invalid_fields(
        lambda: custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "cronworkflows", body)
    )
    assert fields == ["metadata.name"]


@pytest.mark.parametrize("name", ["team-a", "a" * 63])
def test_a_namespace_name_is_a_dns_label(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert core.read_namespace(name).metadata.name == name


@pytest.mark.parametrize("name", ["team.a", "team-a\n", "Team", "a" * 64])
def test_a_namespace_name_that_is_not_a_dns_label_is_422(core: client.CoreV1Api, name: str) -> None:
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    assert _invalid_fields(lambda: core.create_namespace(body)) == ["metadata.name"]


# -- labels and annotations -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["app", "example.com/app", "a" * 63, "app.kubernetes.io/name", "A_b.c"])
def test_a_qualified_label_key_is_accepted(core: client.CoreV1Api, key: str) -> None:
    core.create_namespaced_config_map(NS, _config_map("x", labels={key: "v"}))


@pytest.mark.parametrize(
    "key", ["app\n", "example.com/app\n", "Example.com/app", "a/b/c", "/app", "a" * 64, "a" * 254 + "/b", "-app"]
)
def test_a_label_key_that_is_not_a_qualified_name_is_422(core: client.CoreV1Api, key: str) -> None:
    fields = _invalid_fields(lambda: core.create_namespaced_config_map(NS, _config_map("x", labels={key: "v"})))
    assert set(fields) == {"metadata.labels"}


@pytest.mark.parametrize("value", ["", "v", "a" * 63, "My_value.1"])
def test_a_label_value_is_accepted(core: client.CoreV1Api, value: str) -> None:
    core.create_namespaced_config_map(NS, _config_map("x", labels={"app": value}))
    assert core.read_namespaced_config_map("x", NS).metadata.labels == {"app": value}


@pytest.mark.parametrize("value", ["v\n", "v\r", "v\x00", "a" * 64, "-v", "v v", "\u0430"])
def test_a_label_value_that_breaks_the_rule_is_422(core: client.CoreV1Api, value: str) -> None:
    fields = _invalid_fields(lambda: core.create_namespaced_config_map(NS, _config_map("x", labels={"app": value})))
    assert fields == ["metadata.labels"]


def test_an_annotation_key_with_a_trailing_newline_is_422(core: client.CoreV1Api) -> None:
    fields = _invalid_fields(
        lambda: core.create_namespaced_config_map(NS, _config_map("x", annotations={"example.com/a\n": "v"}))
    )
    assert fields == ["metadata.annotations"]


def test_a_config_map_key_with_a_trailing_newline_is_422(core: client.CoreV1Api) -> None:
    body = {**_config_map("x"), "data": {"key\n": "v"}}
    assert _invalid_fields(lambda: core.create_namespaced_config_map(NS, body)) == ["data[key\n]"]


# -- namespaces ------------------------------------------------------------------------------------


def test_a_create_in_a_namespace_that_does_not_exist_is_404(k8s: K8sEnv, core: client.CoreV1Api) -> None:
    code, status = _error(lambda: core.create_namespaced_config_map("nowhere", _config_map("x")))
    assert (code, status["reason"], status["message"]) == (404, "NotFound", 'namespaces "nowhere" not found')
    assert status["details"] == {"name": "nowhere", "kind": "namespaces"}
    assert k8s.server.get_object("Namespace", None, "nowhere") is None


def test_a_create_in_a_namespace_named_with_a_newline_is_404_not_stored(k8s: K8sEnv, core: client.CoreV1Api) -> None:
    code, status = _error(lambda: core.create_namespaced_config_map(NS + "\n", _config_map("x")))
    assert (code, status["reason"]) == (404, "NotFound")
    assert k8s.server.list_objects("ConfigMap", NS + "\n") == []


def test_a_namespace_created_by_the_harness_exists_until_the_reset(k8s: K8sEnv, core: client.CoreV1Api) -> None:
    k8s.server.create_namespace("team-b")
    core.create_namespaced_config_map("team-b", _config_map("x"))
    k8s.server.reset()
    assert _error(lambda: core.create_namespaced_config_map("team-b", _config_map("y")))[0] == 404


def test_auto_namespaces_is_an_explicit_option(k8s: K8sEnv, core: client.CoreV1Api) -> None:
    k8s.server.set_auto_namespaces(True)
    core.create_namespaced_config_map("made-on-demand", _config_map("x"))
    assert k8s.server.get_object("Namespace", None, "made-on-demand") is not None
    # Auto-provisioning creates a Namespace object, so its name is checked as one.
    assert _invalid_fields(lambda: core.create_namespaced_config_map("Bad_Name", _config_map("x"))) == ["metadata.name"]
    k8s.server.reset()
    assert _error(lambda: core.create_namespaced_config_map("made-again", _config_map("x")))[0] == 404


def test_a_harness_put_in_a_missing_namespace_is_refused_too(k8s: K8sEnv) -> None:
    with pytest.raises(ApiError, match="not found"):
        k8s.server.put_object({**_config_map("x"), "metadata": {"name": "x", "namespace": "nowhere"}})
