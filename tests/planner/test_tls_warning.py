"""A backend with TLS verification turned off is called out in every plan (issue 11, transport security)."""

from __future__ import annotations

import json
from pathlib import Path

from planner.cli import run
from tests.support.fixtures import K8sEnv

MANIFEST = """\
version: 1
project: tls
backends:
  cluster:
    type: argo
    kubeconfig: {kubeconfig}
    verify_tls: {verify}
    argo: {{namespace: ml}}
flows:
  f:
    image: busybox
    steps:
      start: {{command: [echo, hi]}}
"""


def _plan(tmp_path: Path, k8s: K8sEnv, verify: str, capsys: object) -> dict[str, object]:
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(MANIFEST.format(kubeconfig=k8s.kubeconfig_path, verify=verify))
    assert run(["plan", "-f", str(manifest), "--format", "json"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    return json.loads(out)  # type: ignore[no-any-return]


def test_plan_warns_when_tls_verification_is_off(tmp_path: Path, k8s: K8sEnv, capsys: object) -> None:
    plan = _plan(tmp_path, k8s, "false", capsys)
    assert any("verify_tls is false" in w for w in plan["warnings"])  # type: ignore[union-attr]


def test_no_warning_by_default(tmp_path: Path, k8s: K8sEnv, capsys: object) -> None:
    plan = _plan(tmp_path, k8s, "true", capsys)
    assert not any("verify_tls" in w for w in plan["warnings"])  # type: ignore[union-attr]
