"""A small GitHub Actions runner for the example workflows: runs their shell steps for real.

It reads a workflow, evaluates the few expressions the examples use (``${{ a.b }}``
lookups, ``==``/``!=``/``&&``/``||``, ``always()``/``success()``/``failure()``), runs
every ``run:`` step with ``bash -e`` in the project directory (as Actions does:
``set -eo pipefail``, ``GITHUB_OUTPUT`` read back into ``steps.<id>.outputs``), and
stands in for the actions they use: checkout and setup-python do nothing (the project
and flowplan are already there), upload/download-artifact copy to and from an artifact
folder. Network tools (``gh``, ``pip``, ``curl``) are stubs on ``PATH`` that record
their arguments (see :func:`install_stubs`).
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
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))

    def name(match: re.Match[str]) -> str:
        return repr(_lookup(context, match.group(0)))

    text = re.sub(r"\b(?:github|steps|env|vars|secrets|inputs)(?:\.[A-Za-z0-9_-]+)+", name, text)
    return eval(text, {"__builtins__": {}}, {})


def substitute(value: str, context: Mapping[str, Any]) -> str:
    return _EXPR.sub(lambda m: str(evaluate(m.group(1), context, failed=False)), value)


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
    result = JobResult()
    if "if" in spec and not evaluate(spec["if"], context, failed=False):
        return result
    base_env = {**env, **{k: substitute(str(v), context) for k, v in (data.get("env") or {}).items()}}
    base_env.update({k: substitute(str(v), context) for k, v in (spec.get("env") or {}).items()})
    base_env.update(overrides or {})
    context["env"] = base_env
    failed = False
    for index, step in enumerate(spec["steps"]):
        name = step.get("name") or step.get("uses") or f"step {index}"
        condition = step.get("if", "success()")
        if not evaluate(condition, context, failed=failed):
            result.steps.append(StepResult(name, ran=False))
            continue
        if "uses" in step:
            code = _action(
                step["uses"],
                {k: substitute(str(v), context) for k, v in (step.get("with") or {}).items()},
                workdir,
                artifacts,
            )
            result.steps.append(StepResult(name, True, code))
            failed = failed or code != 0
            continue
        step_env = {**base_env, **{k: substitute(str(v), context) for k, v in (step.get("env") or {}).items()}}
        output = workdir / f".github_output_{index}"
        output.write_text("")
        step_env["GITHUB_OUTPUT"] = str(output)
        script = substitute(step["run"], context)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workdir,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        if step.get("id"):
            context["steps"][step["id"]] = {
                "outputs": outputs,
                "outcome": "success" if proc.returncode == 0 else "failure",
            }
        result.steps.append(StepResult(name, True, proc.returncode, proc.stdout + proc.stderr))
        failed = failed or proc.returncode != 0
    return result


def _action(uses: str, inputs: Mapping[str, str], workdir: Path, artifacts: Path) -> int:
    action = uses.split("@")[0]
    if action in ("actions/checkout", "actions/setup-python"):
        return 0
    if action == "actions/upload-artifact":
        target = artifacts / inputs["name"]
        target.mkdir(parents=True, exist_ok=True)
        for pattern in inputs["path"].split():
            for source in workdir.glob(pattern.rstrip("/")):
                if source.is_dir():
                    shutil.copytree(source, target / source.name, dirs_exist_ok=True)
                else:
                    shutil.copy(source, target / source.name)
        return 0
    raise AssertionError(f"the runner does not know {uses}")


STUB = r'''#!{python}
"""Stand-in for {name}: records its arguments; answers the few calls the workflows read."""
import json, os, shutil, sys
from pathlib import Path

args = sys.argv[1:]
entry = {{"tool": "{name}", "args": args}}
for arg in args:
    for prefix in ("body=@", "body@"):
        if arg.startswith(prefix):
            entry["body"] = Path(arg[len(prefix):]).read_text()
for flag in ("--body-file",):
    if flag in args:
        entry["body"] = Path(args[args.index(flag) + 1]).read_text()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
answers = Path(os.environ["STUB_ANSWERS"])
if "{name}" == "gh":
    if args[:1] == ["api"] and "--paginate" in args and (answers / "comments.tsv").exists():
        sys.stdout.write((answers / "comments.tsv").read_text())
    elif args[:2] == ["run", "list"] and (answers / "run_id").exists():
        sys.stdout.write((answers / "run_id").read_text())
    elif args[:2] == ["run", "download"]:
        name = args[args.index("--name") + 1]
        target = Path(args[args.index("--dir") + 1])
        shutil.copytree(Path(os.environ["ARTIFACTS"]) / name, target, dirs_exist_ok=True)
    elif args[:2] == ["issue", "list"] and (answers / "issue").exists():
        sys.stdout.write((answers / "issue").read_text())
if "{name}" == "curl" and "-X" not in args and (answers / "notes.json").exists():
    sys.stdout.write((answers / "notes.json").read_text())
'''


def install_stubs(folder: Path, names: tuple[str, ...] = ("gh", "pip", "curl")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(STUB.format(python=sys.executable, name=name))
        path.chmod(0o755)
    # `python -m pip install flowplan`: flowplan is already installed; a python that forwards `-m pip` to the stub
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
    }
