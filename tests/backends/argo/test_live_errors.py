"""Errors a person can act on (RBAC, credentials, CRDs, reachability, kubeconfig) and the example Role.

Every failure here goes through the CLI and must come out as exit code 1 and
one paragraph naming what to fix — never a traceback.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import yaml

from backends.argo.client import ClusterSettings, Connection
from tests.backends.argo.test_live_support import EXAMPLE, NAMESPACE, Cluster, Result, cluster
from tests.support.kubeconfig import write_kubeconfig

__all__ = ["cluster"]

RBAC = EXAMPLE / "rbac.yaml"


def _as(cluster: Cluster, monkeypatch: pytest.MonkeyPatch, token: str, url: str | None = None) -> Path:
    path = write_kubeconfig(cluster.workdir / f"kubeconfig-{token}", url or cluster.proxy.url, token)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def _one_paragraph_error(result: Result) -> str:
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    assert result.err.startswith("Error: "), result.err
    return result.err


def _role(verbs_by_resource: dict[tuple[str, str], list[str]]) -> dict[str, object]:
    rules = [{"apiGroups": [g], "resources": [r], "verbs": v} for (g, r), v in verbs_by_resource.items()]
    return {"kind": "Role", "metadata": {"name": "narrow", "namespace": NAMESPACE}, "rules": rules}


def test_the_example_role_allows_every_verb_flowplan_uses(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.server.add_token("sa-flowplan", RBAC, namespace=NAMESPACE)
    _as(cluster, monkeypatch, "sa-flowplan")
    cluster.add_digest_flow()
    steps = [cluster.apply(), cluster.flowplan("apply", "--auto-approve", "--dry-run", "server")]
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    steps.append(cluster.apply())  # update
    text = cluster.manifest.read_text()
    cluster.manifest.write_text(text[: text.index("  digest:\n")] + text[text.index("\n  ingest:\n") + 1 :])
    steps.append(cluster.apply())  # delete
    steps.append(cluster.flowplan("plan", "--detailed-exitcode"))
    steps.append(cluster.flowplan("force-unlock", "--yes"))
    for step in steps:
        assert step.code == 0, step.text
    used = {key.split(" ")[0] for key in cluster.counts()}
    assert used == {"list", "create", "update", "delete", "get"}
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d and d["kind"] == "Role")
    granted = {
        (g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    for key in cluster.counts():
        verb, resource = key.split(" ")
        group = {"configmaps": "", "leases": "coordination.k8s.io"}.get(resource, "argoproj.io")
        assert verb in granted[(group, resource)], key


def test_a_narrower_token_gets_the_forbidden_verb_and_resource(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = ["get", "list", "create", "update", "delete"]
    verbs = {
        ("argoproj.io", "workflowtemplates"): everything,
        ("argoproj.io", "cronworkflows"): ["get", "list", "create", "delete"],  # no update
        ("argoproj.io", "sensors"): everything,
        ("argoproj.io", "eventsources"): everything,
        ("", "configmaps"): everything,
        ("coordination.k8s.io", "leases"): everything,
    }
    cluster.server.add_token("narrow", _role(verbs), namespace=NAMESPACE, user="system:serviceaccount:ml-test:ci")
    _as(cluster, monkeypatch, "narrow")
    assert cluster.apply().code == 0
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    result = cluster.apply()
    assert result.code == 1
    assert "forbidden: flowplan may not update cronworkflows.argoproj.io in namespace 'ml-test'" in result.err
    assert 'User "system:serviceaccount:ml-test:ci" cannot update resource "cronworkflows"' in result.err
    assert "grant the verb 'update' on resource 'cronworkflows' in API group argoproj.io" in result.err

    verbs[("argoproj.io", "sensors")] = ["get", "create"]  # no list: planning itself fails
    cluster.server.add_token("narrower", _role(verbs), namespace=NAMESPACE)
    _as(cluster, monkeypatch, "narrower")
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert "forbidden: flowplan may not list sensors.argoproj.io in namespace 'ml-test'" in err
    assert "examples/argo/rbac.yaml" in err


def test_missing_argo_crds_name_each_crd_and_what_installs_it(cluster: Cluster) -> None:
    cluster.server.set_argo_crds(False)
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert "does not serve" in err and "the CRDs are not installed" in err
    for crd in ("workflowtemplates.argoproj.io", "cronworkflows.argoproj.io", "sensors.argoproj.io"):
        assert crd in err
    assert "eventsources.argoproj.io" in err
    assert "(Argo Events)" in err and "(Argo Workflows)" in err
    assert "install Argo Events and Argo Workflows" in err


def test_a_bad_token_is_reported_as_rejected_credentials(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    _as(cluster, monkeypatch, "expired-token")
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert "rejected flowplan's credentials (401 Unauthorized)" in err
    assert "expired" in err and "create token" in err


def test_an_unreachable_cluster_is_named_with_its_address(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    _as(cluster, monkeypatch, "x", url=f"http://127.0.0.1:{closed}")
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert f"cannot reach the Kubernetes API of cluster http://127.0.0.1:{closed} (context flowplan-test)" in err
    assert "connection refused (after 5 attempts)" in err and "kubectl cluster-info" in err

    _as(cluster, monkeypatch, "y", url="http://flowplan-no-such-host.invalid:6443")
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert "the host name does not resolve (flowplan-no-such-host.invalid)" in err


def test_a_missing_kubeconfig_or_context_says_where_it_looked(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.workdir / "nope.kubeconfig"))
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert "no kubeconfig found at $KUBECONFIG" in err and "nope.kubeconfig" in err

    monkeypatch.setenv("KUBECONFIG", str(cluster.env.kubeconfig_path))
    cluster.edit("    type: argo\n", "    type: argo\n    context: staging-eu\n")
    err = _one_paragraph_error(cluster.flowplan("plan"))
    assert "context 'staging-eu' is not in $KUBECONFIG" in err
    assert "contexts there: flowplan-test" in err


def test_a_relative_kubeconfig_setting_is_read_from_the_manifests_directory(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_kubeconfig(cluster.workdir / "cluster.kubeconfig", cluster.proxy.url, cluster.server.admin_token)
    cluster.edit("    type: argo\n", "    type: argo\n    kubeconfig: cluster.kubeconfig\n")
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.chdir(cluster.workdir.parent)
    result = cluster.flowplan("plan")
    assert result.code == 0, result.text
    assert f"cluster {cluster.proxy.url} (context flowplan-test), namespace ml-test" in result.out


def test_turning_tls_verification_off_warns_and_shows_in_the_plan(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.edit("    type: argo\n", "    type: argo\n    verify_tls: false\n")
    with caplog.at_level(logging.WARNING, logger="flowplan.argo"):
        result = cluster.flowplan("plan")
    assert result.code == 0, result.text
    assert "[TLS NOT VERIFIED]" in result.out
    assert any("does not verify the API server's TLS certificate" in r.getMessage() for r in caplog.records)


def test_in_cluster_configuration_is_used_in_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setattr("backends.argo.connection.SERVICE_ACCOUNT_TOKEN", str(token))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config: detected by itself
    connection = Connection(ClusterSettings("cluster"))
    assert connection.describe() == "cluster https://10.96.0.1:443 (in-cluster)"

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    from planner.errors import BackendError

    with pytest.raises(BackendError, match="cannot use the pod's service account"):
        Connection(ClusterSettings("cluster", in_cluster=True)).api_client()
