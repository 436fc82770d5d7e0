"""Pytest fixtures for the Kubernetes API test server and the counting proxy.

Plain fixture functions, imported by a conftest (`from tests.support.fixtures import *`), so
the lead's tests/conftest.py and tests/support_tests/conftest.py share one definition.

Cost model: the server and the proxy start once per session (per xdist worker) in about a
millisecond each; what each test gets is a `reset()` (clear objects and added tokens, restore
start-up settings), a counts reset, and a kubeconfig written into its own tmp dir.

* `k8s_server` (session): the `K8sTestServer`.
* `k8s` (function): `K8sEnv` with `.server`, `.url`, `.kubeconfig_path` (admin token), `.token`,
  `.api_client()`; the server is reset before the test.
* `k8s_proxy` (function): `ProxyEnv` with `.proxy` (counts and fault rules reset before and
  after the test), `.url`, `.kubeconfig_path` (admin token, pointing at the proxy),
  `.api_client()`, `.k8s`.
* `kube_target` (function): where the contract tests run: the test server by default, or the
  real cluster named by `FLOWPLAN_TEST_KUBECONFIG` (in a throwaway namespace, emptied after each
  test); `.server` is None on a real cluster so server-only tests can skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client, config

from tests.support.k8s_server import K8sTestServer, start_server
from tests.support.kubeconfig import write_kubeconfig
from tests.support.proxy import CountingProxy, start_proxy

__all__ = [
    "REAL_CLUSTER_ENV",
    "K8sEnv",
    "KubeTarget",
    "ProxyEnv",
    "_k8s_session_proxy",
    "_real_cluster_namespace",
    "k8s",
    "k8s_proxy",
    "k8s_server",
    "kube_target",
]

#: Point the `kubernetes`-marked contract tests at a real cluster (kubeconfig path).
REAL_CLUSTER_ENV = "FLOWPLAN_TEST_KUBECONFIG"
CONTRACT_NAMESPACE = "contract"


def _api_client(kubeconfig_path: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig_path))


@dataclass
class K8sEnv:
    """A reset test server plus an admin kubeconfig for it."""

    server: K8sTestServer
    url: str
    kubeconfig_path: Path
    token: str

    def api_client(self) -> client.ApiClient:
        """A fresh ApiClient loaded from the kubeconfig, as flowplan itself would build one."""
        return _api_client(self.kubeconfig_path)


@dataclass
class ProxyEnv:
    """The counting proxy in front of the test server, with a kubeconfig pointing at the proxy."""

    proxy: CountingProxy
    url: str
    kubeconfig_path: Path
    k8s: K8sEnv

    def api_client(self) -> client.ApiClient:
        return _api_client(self.kubeconfig_path)


@dataclass
class KubeTarget:
    """Where contract tests run: an ApiClient, a namespace, and the test server (None if real)."""

    api: client.ApiClient
    namespace: str
    server: K8sTestServer | None
    kubeconfig_path: Path
    created_clients: list[client.ApiClient] = field(default_factory=list)

    @property
    def is_real(self) -> bool:
        return self.server is None

    def require_test_server(self, why: str) -> K8sTestServer:
        """Skip on a real cluster: for what only the test server can arrange (tokens, CRDs)."""
        if self.server is None:
            pytest.skip(f"test-server only: {why}")
        return self.server


#: The namespaces the suite's manifests deploy to, present as on a cluster an administrator set up.
#: The server does not create namespaces on its own: a create anywhere else answers 404, as a
#: real cluster does (a test that wants more calls ``k8s.server.create_namespace``).
TEST_NAMESPACES = (
    CONTRACT_NAMESPACE,
    "argo",
    "argo-events",
    "ml",
    "ml-prod",
    "ml-staging",
    "ml-events",
    "ml-test",
    "ns",
    "payments",
    "shop",
    "jobs",
    "bench",
    "fraud",
    "fraud-staging",
)


@pytest.fixture(scope="session")
def k8s_server() -> Iterator[K8sTestServer]:
    """One Kubernetes API test server per session (per xdist worker), with the suite's namespaces."""
    server = start_server(namespaces=TEST_NAMESPACES)
    yield server
    server.stop()


@pytest.fixture
def k8s(k8s_server: K8sTestServer, tmp_path: Path) -> K8sEnv:
    """The session server, reset, with an admin kubeconfig in this test's tmp dir."""
    k8s_server.reset()
    path = k8s_server.write_kubeconfig(tmp_path / "kubeconfig")
    return K8sEnv(server=k8s_server, url=k8s_server.url, kubeconfig_path=path, token=k8s_server.admin_token)


@pytest.fixture(scope="session")
def _k8s_session_proxy(k8s_server: K8sTestServer) -> Iterator[CountingProxy]:
    proxy = start_proxy(k8s_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def k8s_proxy(k8s: K8sEnv, _k8s_session_proxy: CountingProxy, tmp_path: Path) -> Iterator[ProxyEnv]:
    """A counting proxy in front of the (reset) server; counts and fault rules start empty."""
    proxy = _k8s_session_proxy
    proxy.rules.clear()
    proxy.reset_counts()
    path = write_kubeconfig(tmp_path / "kubeconfig-proxy", proxy.url, k8s.token)
    yield ProxyEnv(proxy=proxy, url=proxy.url, kubeconfig_path=path, k8s=k8s)
    proxy.rules.clear()


@pytest.fixture(scope="session")
def _real_cluster_namespace() -> Iterator[tuple[Path, str] | None]:
    """With FLOWPLAN_TEST_KUBECONFIG set: a throwaway namespace, deleted at session end."""
    path = os.environ.get(REAL_CLUSTER_ENV)
    if not path:
        yield None
        return
    namespace = f"flowplan-contract-{uuid.uuid4().hex[:8]}"
    api = _api_client(Path(path))
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        yield Path(path), namespace
    finally:
        core.delete_namespace(namespace)
        api.close()


_CLEANUP = (
    ("argoproj.io", "v1alpha1", ("workflowtemplates", "cronworkflows", "workflows", "sensors", "eventsources")),
    ("coordination.k8s.io", "v1", ("leases",)),
)


def _empty_namespace(api: client.ApiClient, namespace: str) -> None:
    """Delete what a contract test left behind in the real cluster's throwaway namespace."""
    custom = client.CustomObjectsApi(api)
    for group, version, plurals in _CLEANUP:
        for plural in plurals:
            listing = cast(dict[str, Any], custom.list_namespaced_custom_object(group, version, namespace, plural))
            for item in listing["items"]:
                if item["metadata"].get("finalizers"):
                    patch = {"metadata": {"finalizers": None}}
                    custom.patch_namespaced_custom_object(
                        group, version, namespace, plural, item["metadata"]["name"], patch
                    )
                try:
                    custom.delete_namespaced_custom_object(group, version, namespace, plural, item["metadata"]["name"])
                except client.ApiException as exc:
                    if exc.status != 404:
                        raise
    core = client.CoreV1Api(api)
    for cm in core.list_namespaced_config_map(namespace).items:
        name = cm.metadata.name if cm.metadata else None
        if name and name != "kube-root-ca.crt":
            core.delete_namespaced_config_map(name, namespace)


@pytest.fixture
def kube_target(
    _real_cluster_namespace: tuple[Path, str] | None, k8s_server: K8sTestServer, tmp_path: Path
) -> Iterator[KubeTarget]:
    """An ApiClient for the contract tests: the test server, or the real cluster if configured."""
    if _real_cluster_namespace is None:
        k8s_server.reset()
        path = k8s_server.write_kubeconfig(tmp_path / "kubeconfig")
        target = KubeTarget(_api_client(path), CONTRACT_NAMESPACE, k8s_server, path)
    else:
        path, namespace = _real_cluster_namespace
        target = KubeTarget(_api_client(path), namespace, None, path)
    try:
        yield target
    finally:
        if target.is_real:
            _empty_namespace(target.api, target.namespace)
        target.api.close()
        for extra in target.created_clients:
            extra.close()
