"""Fixtures made by Metaflow itself: ``python flow.py argo-workflows create`` against the test servers.

For tests that need what *Metaflow* deploys (adoption of Metaflow-deployed
flows, issue 8): the real command, unstubbed, with the same settings flowplan
compiles with (:func:`backends.metaflow.settings.compile_environment`), its
Kubernetes client pointed at the project's Kubernetes API test server by a
kubeconfig, and its code package uploaded to moto's S3. What lands in the
test server (WorkflowTemplate, CronWorkflow, Sensor) is what Metaflow would
put in a real cluster.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from backends.metaflow.settings import compile_environment, settings_for
from planner.manifest import load_manifest

__all__ = ["metaflow_create"]


def metaflow_create(
    manifest_file: Path,
    backend: str,
    flow_file: Path,
    kubeconfig: Path,
    *,
    branch: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Deploy ``flow_file`` the way a Metaflow user does, with ``backend``'s settings from the manifest.

    ``branch`` None is ``--production``; otherwise ``--branch BRANCH``. Returns
    the finished process (its stderr holds Metaflow's messages); raises if the
    command fails.
    """
    loaded = load_manifest(manifest_file)
    settings = settings_for(loaded.backends[backend], manifest_file.parent)
    home = manifest_file.parent / ".metaflow-home"
    home.mkdir(exist_ok=True)
    env = compile_environment(settings.env, str(home), settings)
    env["KUBECONFIG"] = str(kubeconfig)
    env.update(extra_env or {})
    args = [sys.executable, str(flow_file), "--no-pylint"]
    args += ["--production"] if branch is None else ["--branch", branch]
    target = "argo-workflows" if settings.target == "argo" else "step-functions"
    args += [target, "create"]
    done = subprocess.run(args, cwd=flow_file.parent, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"Metaflow's {target} create failed:\n{done.stderr[-3000:]}")
    return done
