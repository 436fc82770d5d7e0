"""A small GitHub Actions runner for the example workflows: runs their shell steps for real.

It reads a workflow, evaluates the few expressions the examples use (``${{ a.b }}``
lookups, ``==``/``!=``/``&&``/``||``, ``always()``/``success()``/``failure()``), runs
every ``run:`` step with ``bash -e`` in the project directory (as Actions does:
``set -eo pipefail``, ``GITHUB_OUTPUT`` read back into ``steps.<id>.outputs``), and
stands in for the actions they use: checkout and setup-python do nothing (the project
and flowplan are already there), upload/download-artifact copy to and from an artifact
folder. ``uses: ./`` runs this repository's composite Action (action.yml) step by step,
with its inputs, defaults and outputs. Network tools (``pip``, ``curl``) are stubs on
``PATH`` that record their arguments (see :func:`install_stubs`); GitHub's API is the local
server of tests/support/github_server.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StepResult:
    name: str
    ran: bool
    code: int = 0
    out: str = ""


@dataclass
class JobResult:
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.code == 0 for s in self.steps if s.ran)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on:` as True
    return data  # type: ignore[no-any-return]


def _lookup(context: Mapping[str, Any], dotted: str) -> Any:
    node: Any = context
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def evaluate(expression: str, context: Mapping[str, Any], *, failed: bool) -> Any:
    """The subset of Actions expressions the examples use, evaluated as Python."""
    text = expression.strip()
    text = text.replace("always()", "True").replace("success()", str(not failed)).replace("failure()", str(failed))
    text = text.replace("&&", " and ").replace("||", " or ")
    # bare true/false become Python's; quoted strings ('true' compared with an input) stay as they are
    text = re.sub(
        r"'[^']*'|\btrue\b|\bfalse\b", lambda m: m.group(0) if m.group(0)[0] == "'" else m.group(0).title(), text
    )

    def name(match: re.Match[str]) -> str:
        return repr(_lookup(context, match.group(0)))

    text = re.sub(r"\b(?:github|steps|env|vars|secrets|inputs|runner)(?:\.[A-Za-z0-9_-]+)+", name, text)
    return eval(text, {"__builtins__": {}}, {})


def substitute(value: str, context: Mapping[str, Any]) -> str:
    """``${{ ... }}`` replaced as Actions does: a missing value is empty, booleans are ``true``/``false``."""

    def text(match: re.Match[str]) -> str:
        found = evaluate(match.group(1), context, failed=False)
        if found is None:
            return ""
        return str(found).lower() if isinstance(found, bool) else str(found)

    return _EXPR.sub(text, value)


def run_job(
    workflow: Path,
    job: str,
    *,
    workdir: Path,
    context: Mapping[str, Any],
    env: Mapping[str, str],
    artifacts: Path,
    overrides: Mapping[str, str] | None = None,
) -> JobResult:
    """Run one job's steps in order; ``overrides`` win over the workflow's own ``env:`` (for tests)."""
    data = load(workflow)
    spec = data["jobs"][job]
    context = dict(context)
    context["steps"] = {}
    temp = workdir.parent / "runner-temp"
    temp.mkdir(exist_ok=True)
    context["runner"] = {"temp": str(temp), "os": "Linux"}
    result = JobResult()
    if "if" in spec and not evaluate(spec["if"], context, failed=False):
        return result
    base_env = {
        **env,
        "RUNNER_TEMP": str(temp),
        "RUNNER_OS": "Linux",
        "GITHUB_STEP_SUMMARY": str(temp / "step-summary.md"),
    }
    base_env.update({k: substitute(str(v), context) for k, v in (data.get("env") or {}).items()})
    base_env.update({k: substitute(str(v), context) for k, v in (spec.get("env") or {}).items()})
    base_env.update(overrides or {})
    context["env"] = base_env
    _run_steps(spec["steps"], context, base_env, workdir, artifacts, result)
    return result


def _run_steps(
    steps: list[dict[str, Any]],
    context: dict[str, Any],
    base_env: Mapping[str, str],
    workdir: Path,
    artifacts: Path,
    result: JobResult,
) -> bool:
    """Run steps as Actions does (a failed step skips the rest unless their ``if`` says otherwise)."""
    failed = False
    for index, step in enumerate(steps):
        name = step.get("name") or step.get("uses") or f"step {index}"
        condition = step.get("if", "success()")
        if not evaluate(condition, context, failed=failed):
            result.steps.append(StepResult(name, ran=False))
            continue
        if "uses" in step:
            inputs = {k: substitute(str(v), context) for k, v in (step.get("with") or {}).items()}
            code, outputs, out = _action(step["uses"], inputs, context, base_env, workdir, artifacts)
            outcome = "success" if code == 0 else "failure"
        else:
            code, outputs, out = _run_script(step, index, context, base_env, workdir)
            outcome = "success" if code == 0 else "failure"
        if step.get("id"):
            context["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome}
        result.steps.append(StepResult(name, True, code, out))
        failed = failed or code != 0
    return not failed


def _run_script(
    step: Mapping[str, Any], index: int, context: Mapping[str, Any], base_env: Mapping[str, str], workdir: Path
) -> tuple[int, dict[str, str], str]:
    step_env = {**base_env, **{k: substitute(str(v), context) for k, v in (step.get("env") or {}).items()}}
    output = Path(base_env.get("RUNNER_TEMP", str(workdir))) / f".github_output_{id(step)}_{index}"
    output.write_text("")
    step_env["GITHUB_OUTPUT"] = str(output)
    step_env.setdefault("GITHUB_ENV", str(output.with_name(output.name + "_env")))
    script = substitute(step["run"], context)
    cwd = workdir / substitute(str(step.get("working-directory", ".")), context)
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=step_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc.returncode, outputs, proc.stdout + proc.stderr


def _action(
    uses: str,
    inputs: Mapping[str, str],
    context: Mapping[str, Any],
    base_env: Mapping[str, str],
    workdir: Path,
    artifacts: Path,
) -> tuple[int, dict[str, str], str]:
    if uses == "./" or uses.startswith("acme/flowplan@"):
        return _composite(REPO_ROOT / "action.yml", inputs, context, base_env, workdir, artifacts)
    action = uses.split("@")[0]
    if action in ("actions/checkout", "actions/setup-python", "actions/cache", "aws-actions/configure-aws-credentials"):
        return 0, {"python-version": "3.11"} if action == "actions/setup-python" else {}, ""
    if action == "actions/upload-artifact":
        target = artifacts / inputs["name"]
        target.mkdir(parents=True, exist_ok=True)
        for pattern in inputs["path"].split():
            for source in _glob(workdir, pattern.rstrip("/")):
                if source.is_dir():
                    shutil.copytree(source, target / source.name, dirs_exist_ok=True)
                else:
                    shutil.copy(source, target / source.name)
        return 0, {}, ""
    if action == "actions/download-artifact":
        source = artifacts / inputs["name"]
        if not source.exists():
            return 1, {}, f"Unable to download artifact(s): Artifact not found for name: {inputs['name']}"
        shutil.copytree(source, workdir / inputs.get("path", "."), dirs_exist_ok=True)
        return 0, {}, ""
    raise AssertionError(f"the runner does not know {uses}")


def _glob(workdir: Path, pattern: str) -> list[Path]:
    path = Path(pattern)
    if path.is_absolute():
        return sorted(Path(path.anchor).glob(str(path.relative_to(path.anchor))))
    return sorted(workdir.glob(pattern))


def _composite(
    action_file: Path,
    given: Mapping[str, str],
    context: Mapping[str, Any],
    base_env: Mapping[str, str],
    workdir: Path,
    artifacts: Path,
) -> tuple[int, dict[str, str], str]:
    """A composite action: its inputs (defaults evaluated in the caller's context), steps and outputs."""
    spec = yaml.safe_load(action_file.read_text())
    inputs = {name: substitute(str(item.get("default", "")), context) for name, item in spec["inputs"].items()}
    unknown = set(given) - set(inputs)
    assert not unknown, f"{action_file} has no inputs {sorted(unknown)}"
    inputs.update(given)
    inner: dict[str, Any] = {
        "github": {**context.get("github", {}), "action_path": str(action_file.parent)},
        "runner": context.get("runner", {}),
        "inputs": inputs,
        "steps": {},
        "env": dict(base_env),
    }
    env = {**base_env, "GITHUB_ACTION_PATH": str(action_file.parent)}
    result = JobResult()
    ok = _run_steps(spec["runs"]["steps"], inner, env, workdir, artifacts, result)
    outputs = {name: substitute(str(item["value"]), inner) for name, item in spec.get("outputs", {}).items()}
    log = "\n".join(f"--- {s.name} (exit {s.code})\n{s.out}" for s in result.steps if s.ran)
    return (0 if ok else next(s.code for s in result.steps if s.ran and s.code)), outputs, log


STUB = r'''#!{python}
"""Stand-in for {name}: records its arguments; answers the few calls the pipelines read."""
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
entry = {{"tool": "{name}", "args": args}}
for arg in args:
    if arg.startswith("body@"):
        entry["body"] = Path(arg[len("body@"):]).read_text()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
answers = Path(os.environ["STUB_ANSWERS"])
if "{name}" == "curl" and "-X" not in args and (answers / "notes.json").exists():
    sys.stdout.write((answers / "notes.json").read_text())
'''


def install_stubs(folder: Path, names: tuple[str, ...] = ("pip", "curl")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(STUB.format(python=sys.executable, name=name))
        path.chmod(0o755)
    # `python -m pip install ...`: flowplan is already installed; a python that forwards `-m pip` to the stub
    python = folder / "python"
    python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; exec "{folder}/pip" "$@"; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)


def base_env(stubs: Path, log: Path, answers: Path, artifacts: Path) -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    return {
        "PATH": f"{stubs}:{bin_dir}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "STUB_LOG": str(log),
        "STUB_ANSWERS": str(answers),
        "ARTIFACTS": str(artifacts),
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
        # flowplan as a program imports this checkout, not whatever copy the virtualenv points at
        "PYTHONPATH": str(REPO_ROOT),
    }
