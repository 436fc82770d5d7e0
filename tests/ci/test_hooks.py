"""The pre-commit hooks of .pre-commit-hooks.yaml, run as pre-commit runs them: entry, then args.

The GitOps render check is the point: a commit whose ``deploy/`` (or ``.flowplan/``) is not
what ``flowplan apply`` would write fails, so the diff reviewers read is the diff that deploys.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.planner.loop import REPO

HOOKS = {hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}


def run_hook(hook_id: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }
    command = [*shlex.split(HOOKS[hook_id]["entry"]), *HOOKS[hook_id].get("args", []), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copy(REPO / "flows.yaml", tmp_path / "flows.yaml")
    return tmp_path


def test_hooks_are_declared_for_pre_commit() -> None:
    assert set(HOOKS) == {"flowplan-validate", "flowplan-schema", "flowplan-render-check"}
    for hook in HOOKS.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert hook["name"] and hook["description"] and hook["files"]


def test_render_check_fails_on_a_stale_deploy_and_passes_after_apply(repo: Path) -> None:
    first = run_hook("flowplan-render-check", repo)
    assert first.returncode == 2 and "run flowplan apply and commit both" in first.stderr
    assert (
        subprocess.run(
            ["flowplan", "apply", "--auto-approve"],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            capture_output=True,
        ).returncode
        == 0
    )
    assert run_hook("flowplan-render-check", repo).returncode == 0
    manifest = repo / "flows.yaml"
    manifest.write_text(manifest.read_text().replace("30 2 * * *", "0 4 * * *"))
    assert run_hook("flowplan-render-check", repo).returncode == 2  # manifest changed, deploy/ not re-rendered


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_validate_and_schema_hooks(repo: Path) -> None:
    assert run_hook("flowplan-validate", repo).returncode == 0
    manifest = repo / "flows.yaml"
    manifest.write_text(manifest.read_text().replace("30 2 * * *", "61 2 * * *"))
    bad = run_hook("flowplan-validate", repo)
    assert bad.returncode == 1 and "flows.yaml:21:11" in bad.stderr

    stale = run_hook("flowplan-schema", repo, "editor/flows.schema.json")
    assert stale.returncode == 1  # the folder does not even exist yet: nothing to compare, cannot write
    (repo / "editor").mkdir()
    stale = run_hook("flowplan-schema", repo, "editor/flows.schema.json")
    assert stale.returncode == 1 and "rewritten, add it to the commit" in stale.stderr
    assert (repo / "editor/flows.schema.json").read_text() == (REPO / "docs/flows.schema.json").read_text()
    assert run_hook("flowplan-schema", repo, "editor/flows.schema.json").returncode == 0
