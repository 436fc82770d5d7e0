"""Shared helpers for the live Argo backend tests (``test_live_*.py``); holds no tests itself.

Every test drives flowplan the way a person does — ``planner.cli.run([...])``
with ``$KUBECONFIG`` pointing at the counting proxy in front of the
Kubernetes API test server — so the kubeconfig loading, the official client
and the HTTP calls are all real. The proxy's counts are what the assertions
about calls read.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.argo import client as argo_client
from backends.argo.backend import ArgoBackend
from planner.cli import run
from planner.contract import Scope
from planner.manifest import load_manifest
from tests.support.fixtures import ProxyEnv
from tests.support.proxy import CountingProxy

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "argo"
NAMESPACE = "ml-test"
PROJECT = "recsys"
#: The example applies 13 objects: 3 sink ConfigMaps, the flow-events EventSource, 4 WorkflowTemplates,
#: 3 CronWorkflows and 2 Sensors.
EXAMPLE_OBJECTS = {"ConfigMap": 3, "EventSource": 1, "WorkflowTemplate": 4, "CronWorkflow": 3, "Sensor": 2}
WRITE_VERBS = ("create", "update", "patch", "delete")

#: A fourth schedule-and-event flow some tests add and remove (template, cron workflow and sensor of its own).
DIGEST_FLOW = """
  digest:
    description: A daily digest, also sent when a partner file lands.
    image: "{{ vars.registry }}/report:{{ vars.image_tag }}"
    schedule: {cron: "0 8 * * *"}
    parameters:
      input_key: {default: "partners/latest.csv"}
    triggers:
      - event: raw-data-landed
    sinks: [warehouse]
    steps:
      start:
        command: [python, -m, report.digest]
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Cluster:
    """The test server behind the counting proxy, and a copy of examples/argo to run flowplan on."""

    env: ProxyEnv
    workdir: Path

    @property
    def proxy(self) -> CountingProxy:
        return self.env.proxy

    @property
    def server(self) -> Any:
        return self.env.k8s.server

    @property
    def manifest(self) -> Path:
        return self.workdir / "flows.yaml"

    def args(self) -> list[str]:
        return ["-f", str(self.manifest), "--var", f"namespace={NAMESPACE}", "--var", f"sensor_namespace={NAMESPACE}"]

    def flowplan(self, command: str, *args: str) -> Result:
        """Run ``flowplan COMMAND -f flows.yaml --var namespace=… ARGS`` in this process; capture its output."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([command, *self.args(), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def apply(self, *args: str) -> Result:
        return self.flowplan("apply", "--auto-approve", *args)

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, f"{old!r} is not in the manifest"
        self.manifest.write_text(text.replace(old, new, 1))

    def add_digest_flow(self) -> None:
        self.edit("\nflows:\n", "\nflows:\n" + DIGEST_FLOW.lstrip("\n"))

    def counts(self) -> dict[str, int]:
        return self.proxy.counts()

    def writes(self) -> dict[str, int]:
        """Write calls the proxy saw, by ``"<verb> <resource>"``."""
        return {k: v for k, v in self.counts().items() if k.split(" ", 1)[0] in WRITE_VERBS}

    def resource_writes(self) -> dict[str, int]:
        """Writes to the Argo kinds and sink ConfigMaps (not the inventory's ConfigMaps, not the lease)."""
        raw = self.proxy.raw_counts()
        out: dict[str, int] = {}
        for key, count in raw.items():
            method, path = key.split(" ", 1)
            if method == "GET" or "/leases" in path or "/configmaps/flowplan-inventory-" in path:
                continue
            if method == "POST" and path.endswith("/configmaps"):
                continue  # a create's path has no name; sink creates are checked through the server state
            out[key] = out.get(key, 0) + count
        return out

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        return {o["metadata"]["name"]: o for o in self.server.list_objects(kind, NAMESPACE)}

    def owned_objects(self) -> dict[str, list[str]]:
        """Names of flowplan's objects per kind (the inventory's ConfigMaps excluded)."""
        out: dict[str, list[str]] = {}
        for kind in ("ConfigMap", "EventSource", "WorkflowTemplate", "CronWorkflow", "Sensor"):
            names = [
                name
                for name, obj in self.objects(kind).items()
                if (obj["metadata"].get("labels") or {}).get("flowplan.dev/project") == PROJECT
                and "flowplan.dev/inventory" not in (obj["metadata"].get("labels") or {})
            ]
            out[kind] = sorted(names)
        return out

    def backend(self, **extra: Any) -> ArgoBackend:
        """The backend opened directly (for tests below the CLI), pointed at the proxy."""
        manifest = load_manifest(self.manifest, cli_vars={"namespace": NAMESPACE, "sensor_namespace": NAMESPACE})
        spec = manifest.backends["cluster"]
        options = {"kubeconfig": str(self.env.kubeconfig_path), "retry": argo_client.FAST_RETRY, **extra}
        return ArgoBackend(spec, Scope("cluster", manifest.project, manifest.branch), options)


@pytest.fixture
def cluster(k8s_proxy: ProxyEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """An empty test server, the proxy counting from zero, and a private copy of examples/argo."""
    workdir = tmp_path / "argo"
    shutil.copytree(EXAMPLE, workdir)
    monkeypatch.setenv("KUBECONFIG", str(k8s_proxy.kubeconfig_path))
    monkeypatch.setenv("FLOWPLAN_LOCK_HOLDER", "pytest")
    monkeypatch.setattr(argo_client, "DEFAULT_RETRY", argo_client.FAST_RETRY)
    yield Cluster(k8s_proxy, workdir)


def only_lists(counts: dict[str, int]) -> bool:
    return all(key.startswith("list ") for key in counts)
