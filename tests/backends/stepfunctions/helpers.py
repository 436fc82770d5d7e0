"""Shared helpers for the Step Functions tests; holds no tests itself.

Live tests drive flowplan the way a person does — ``planner.cli.run([...])``
on a copy of ``examples/stepfunctions/flows.yaml`` whose var file points
``endpoint_url`` at the counting proxy in front of moto — so manifest loading,
boto3 and the HTTP calls are all real. Test setup and inspection talk to moto
directly (``AwsEnv.client``), so the proxy counts only flowplan's calls.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.stepfunctions.compile import StepFunctionsCompiler
from planner.cli import run
from planner.contract import CompileContext
from planner.manifest import Manifest, load_manifest
from planner.resources import Provenance, Resource
from tests.support.aws_fixtures import AwsEnv

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "stepfunctions"
EXAMPLE_VARS = EXAMPLE / "prod.vars.yaml"
PROVENANCE = Provenance("0.1.0", "f" * 64, "0" * 40)
#: What the example deploys: 4 flows with 11 steps, 3 schedules, 3 triggers and 3 sinks.
EXAMPLE_KINDS = {
    "JobDefinition": 11,
    "Parameter": 3,
    "Rule": 3,
    "Schedule": 3,
    "ScheduleGroup": 1,
    "StateMachine": 4,
}


def load(path: Path = EXAMPLE / "flows.yaml", var_files: tuple[Path, ...] = (EXAMPLE_VARS,), **kw: Any) -> Manifest:
    return load_manifest(path, var_files=[str(v) for v in var_files], **kw)


def compile_manifest(manifest: Manifest, backend: str = "aws") -> list[Resource]:
    return StepFunctionsCompiler().compile(CompileContext(manifest, manifest.backends[backend], PROVENANCE))


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class Workspace:
    """A copy of the example (or any manifest text) aimed at moto through the proxy."""

    def __init__(self, root: Path, aws: AwsEnv, manifest: str | None = None, **extra_vars: str) -> None:
        self.root = root
        self.aws = aws
        self.manifest = root / "flows.yaml"
        self.vars = root / "test.vars.yaml"
        if manifest is None:
            shutil.copy(EXAMPLE / "flows.yaml", self.manifest)
        else:
            self.manifest.write_text(manifest)
        values = {
            "region": aws.region,
            "account_id": aws.account,
            "job_queue": "flowplan-batch",
            "endpoint_url": aws.url,
            **extra_vars,
        }
        self.vars.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))

    @property
    def args(self) -> list[str]:
        return ["-f", str(self.manifest), "--var-file", str(self.vars)]

    def run(self, command: str, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([command, *self.args, *args])
        return Result(code, out.getvalue(), err.getvalue())

    def apply(self, *args: str) -> Result:
        return self.run("apply", "--auto-approve", *args)

    def plan_json(self, *args: str) -> dict[str, Any]:
        result = self.run("plan", "--format", "json", *args)
        assert result.code == 0, result.text
        data: dict[str, Any] = json.loads(result.out)
        return data

    def changes(self, *args: str) -> dict[str, str]:
        """``{address: action}`` of a plan."""
        return {c["address"]: c["action"] for c in self.plan_json(*args)["changes"]}

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, f"{old!r} is not in the manifest"
        self.manifest.write_text(text.replace(old, new, 1))


def address(kind: str, name: str) -> str:
    return f"aws.{kind}.eu-west-1/{name}"


#: A small manifest for the fault, conflict, error and lock tests: 8 resources, every kind once or twice.
TINY = """\
version: 1
project: tiny
vars:
  region: {}
  account_id: {}
  job_queue: {}
  endpoint_url: {default: ""}
backends:
  aws:
    type: stepfunctions
    endpoint_url: "{{ vars.endpoint_url }}"
    stepfunctions:
      region: "{{ vars.region }}"
      account_id: "{{ vars.account_id }}"
      execution_role_arn: "arn:aws:iam::{{ vars.account_id }}:role/run"
      events_role_arn: "arn:aws:iam::{{ vars.account_id }}:role/start"
      job_queue: "{{ vars.job_queue }}"
sinks:
  store: {type: cache, uri: "redis://cache:6379/0", key_prefix: "k/"}
flows:
  up:
    image: busybox
    schedule: {cron: "0 1 * * *", timezone: Europe/Paris}
    sinks: [store]
    steps:
      start: {command: [echo, up], resources: {cpu: "1", memory: 1Gi}}
  down:
    image: busybox
    triggers: [{after: up}]
    steps:
      start: {command: [echo, down], resources: {cpu: "1", memory: 1Gi}}
"""
TINY_RESOURCES = 8


# --------------------------------------------------------------------------- the call budget (issue 12)

#: One page each: the listings.
LISTINGS = {
    "tag:GetResources": 1,
    "events:ListRules": 1,
    "scheduler:GetScheduleGroup": 1,
    "scheduler:ListTagsForResource": 1,
    "scheduler:ListSchedules": 1,
    "batch:DescribeJobDefinitions": 1,
    "ssm:GetParametersByPath": 1,
    "dynamodb:Query": 1,
}


def budget(kinds: Mapping[str, int]) -> dict[str, int]:
    """The most calls, by operation, a no-change plan of ``kinds`` resources may make."""
    return {
        **LISTINGS,
        "states:DescribeStateMachine": kinds["StateMachine"],
        "scheduler:GetSchedule": kinds["Schedule"],
        "events:ListTargetsByRule": kinds["Rule"],
        "events:ListTagsForResource": kinds["Rule"],
        "ssm:ListTagsForResource": kinds["Parameter"],
    }


def over_budget(counts: Mapping[str, int], allowed: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """``{operation: (made, allowed)}`` for every operation over its budget (unbudgeted ones allow 0)."""
    return {op: (n, allowed.get(op, 0)) for op, n in sorted(counts.items()) if n > allowed.get(op, 0)}
