"""Run a generated state machine in a local ASL interpreter, every Batch task mocked.

moto's executor cannot run ``batch:submitJob.sync``, so the tests execute the
definitions flowplan writes in ``aws-local-stepfunctions`` 3.0.0 (npm), with each
Task state's handler replaced by one that plays a script of outcomes ("ok" or
an error name such as ``Batch.ServerException``) and records the parameters
it was called with (the resolved ``ContainerOverrides`` included). Retry waits
are overridden to zero: the tests check which retrier fires and how often,
not the clock.

The package lives where .ci/run installs npm tools: ``<venv>/npm`` (or
``FLOWPLAN_ASL_INTERPRETER`` naming the package directory). When it or node is
missing, :func:`interpreter` skips the test, except under ``CI=true``, where it
fails: CI must not pass by not looking.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PACKAGE = "aws-local-stepfunctions"
VERSION = "3.0.0"
RUNNER = Path(__file__).with_name("asl_runner.mjs")


@dataclass(frozen=True)
class Interpreter:
    node: str
    module: Path  # the package's ESM entry point


@dataclass(frozen=True)
class Call:
    state: str
    parameters: Mapping[str, Any]

    @property
    def environment(self) -> dict[str, str]:
        """The container environment the Batch job was submitted with."""
        entries = self.parameters.get("ContainerOverrides", {}).get("Environment", [])
        return {entry["Name"]: entry["Value"] for entry in entries}


@dataclass(frozen=True)
class Execution:
    status: str
    output: Any
    error: str | None
    cause: str | None
    calls: tuple[Call, ...]

    def calls_of(self, state: str) -> list[Call]:
        return [call for call in self.calls if call.state == state]


def _candidates() -> list[Path]:
    named = os.environ.get("FLOWPLAN_ASL_INTERPRETER")
    found = [Path(named)] if named else []
    found.append(Path(sys.prefix) / "npm" / "node_modules" / PACKAGE)
    return found


def interpreter() -> Interpreter:
    """The installed interpreter; skips (fails under ``CI=true``) when node or the package is missing."""
    node = shutil.which("node")
    package = next((c for c in _candidates() if (c / "package.json").exists()), None)
    if node is None or package is None:
        message = (
            f"{PACKAGE}@{VERSION} is not installed (npm install --prefix {Path(sys.prefix) / 'npm'} "
            f"{PACKAGE}@{VERSION}, or set FLOWPLAN_ASL_INTERPRETER to its directory; node is needed too)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: .ci/run installs it)")
        pytest.skip(message)
    assert node is not None and package is not None
    version = json.loads((package / "package.json").read_text())["version"]
    assert version == VERSION, f"{PACKAGE} {version} found; the tests pin {VERSION}"
    return Interpreter(node, package / "build" / "main.node.esm.js")


Run = tuple[Mapping[str, Any], Any, Mapping[str, Sequence[str]]]


def execute_all(runner: Interpreter, runs: Sequence[Run]) -> list[Execution]:
    """Each ``(definition, input, outcomes)`` in one node process (loading the package takes seconds)."""
    request = {
        "module": str(runner.module),
        "runs": [{"definition": d, "input": i, "outcomes": dict(o)} for d, i, o in runs],
    }
    proc = subprocess.run(
        [runner.node, str(RUNNER)], input=json.dumps(request), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"the ASL runner failed: {proc.stderr}"
    return [
        Execution(
            status=answer["status"],
            output=answer.get("output"),
            error=answer.get("error"),
            cause=answer.get("cause"),
            calls=tuple(Call(c["state"], c["parameters"]) for c in answer["calls"]),
        )
        for answer in json.loads(proc.stdout)
    ]


def execute(
    runner: Interpreter,
    definition: Mapping[str, Any],
    execution_input: Any,
    outcomes: Mapping[str, Sequence[str]] | None = None,
) -> Execution:
    """Run ``definition`` on ``execution_input``; each task state plays its ``outcomes`` (the last repeats)."""
    [execution] = execute_all(runner, [(definition, execution_input, outcomes or {})])
    return execution
