"""Generated state machines run in a local ASL interpreter: Batch's transient errors, attempts, timeouts, defaults.

moto cannot execute ``batch:submitJob.sync``; :mod:`tests.support.asl_runner`
runs flowplan's definitions in ``aws-local-stepfunctions`` with every Batch task
replaced by a script of outcomes, so what is asserted here is what the
definition does when Batch fails, not what the code that writes it says.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from backends.stepfunctions.asl import BATCH_SUBMIT_SYNC, BATCH_TRANSIENT_ERRORS, PLATFORM_RETRY_ATTEMPTS
from planner.resources import Resource
from tests.backends.stepfunctions.helpers import compile_manifest, load
from tests.support.asl_runner import Execution, execute, execute_all, interpreter

MANIFEST = """\
version: 1
project: plat
backends:
  aws:
    type: stepfunctions
    stepfunctions:
      region: eu-west-1
      account_id: "123456789012"
      execution_role_arn: "arn:aws:iam::123456789012:role/run"
      events_role_arn: "arn:aws:iam::123456789012:role/start"
      job_queue: queue
events:
  landed:
    source: s3
    type: object-created
    parameters:
      key: object.key
      size: object.size
flows:
  work:
    image: busybox
    parameters:
      key: {default: "partners/latest.csv"}
      size: {default: 0}
      mode: {default: full}
    triggers:
      - event: landed
    steps:
      start: {command: [echo, a], next: [train]}
      train: {command: [echo, b], retries: 1, timeout: 2h, next: [end]}
      end: {command: [echo, c]}
"""


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> list[Resource]:
    path = tmp_path_factory.mktemp("platform") / "flows.yaml"
    path.write_text(MANIFEST)
    return compile_manifest(load(Path(path), ()))


def _one(resources: list[Resource], kind: str) -> dict[str, Any]:
    [found] = [r.body for r in resources if r.address.kind == kind]
    return found


def _run(resources: list[Resource], execution_input: Any, **outcomes: list[str]) -> Execution:
    return execute(interpreter(), _one(resources, "StateMachine")["definition"], execution_input, outcomes)


def _tasks(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(state name, state)`` of every Batch task, inside Parallel branches and Map processors too."""
    found = []
    for name, state in machine["States"].items():
        if state.get("Resource") == BATCH_SUBMIT_SYNC:
            found.append((name, state))
        for branch in state.get("Branches", []):
            found += _tasks(branch)
        if "ItemProcessor" in state:
            found += _tasks(state["ItemProcessor"])
    return found


# -- tasks that survive the platform ----------------------------------------------------------


def test_every_batch_task_of_the_example_retries_batch_errors_with_jitter_and_says_its_attempt() -> None:
    machines = [r.body["definition"] for r in compile_manifest(load()) if r.address.kind == "StateMachine"]
    tasks = [task for machine in machines for _, task in _tasks(machine)]
    assert len(tasks) == 11  # the example's steps
    for task in tasks:
        first = task["Retry"][0]
        assert first["ErrorEquals"] == list(BATCH_TRANSIENT_ERRORS)
        assert first["JitterStrategy"] == "FULL" and first["BackoffRate"] >= 2 and first["MaxDelaySeconds"] > 0
        assert first["MaxAttempts"] == PLATFORM_RETRY_ATTEMPTS
        env = {e["Name"]: e for e in task["Parameters"]["ContainerOverrides"]["Environment"]}
        assert env["FLOWPLAN_ATTEMPT"]["Value.$"] == "States.Format('{}', $$.State.RetryCount)"
        if "TimeoutSeconds" in task:
            attempt = task["Parameters"]["Timeout"]["AttemptDurationSeconds"]
            assert attempt == max(60, task["TimeoutSeconds"])
        else:
            assert "Timeout" not in task["Parameters"]


@pytest.mark.parametrize("error", BATCH_TRANSIENT_ERRORS)
def test_a_step_without_retries_survives_transient_batch_errors(resources: list[Resource], error: str) -> None:
    run = _run(resources, {}, start=[error, error, "Batch.TooManyRequestsException", "ok"])
    assert run.status == "SUCCEEDED", run.cause
    starts = run.calls_of("start")
    assert len(starts) == 4
    assert [c.environment["FLOWPLAN_ATTEMPT"] for c in starts] == ["0", "1", "2", "3"]
    assert [c.state for c in run.calls] == ["start"] * 4 + ["train", "end"]


def test_transient_errors_fail_the_run_once_the_platform_retries_are_spent(resources: list[Resource]) -> None:
    run = _run(resources, {}, start=["Batch.ServerException"])
    assert run.status == "FAILED"
    assert run.error == "Batch.ServerException"
    assert len(run.calls_of("start")) == 1 + PLATFORM_RETRY_ATTEMPTS
    assert not run.calls_of("train")


def test_the_steps_own_retries_are_kept_apart_from_the_platforms(resources: list[Resource]) -> None:
    machine = _one(resources, "StateMachine")["definition"]
    fails_at_once, rides_out, gives_up = execute_all(
        interpreter(),
        [
            (machine, {}, {"start": ["States.TaskFailed"]}),  # start has retries: 0
            # train has retries: 1, and 3 throttles before a job failure do not use it up
            (machine, {}, {"train": ["Batch.TooManyRequestsException"] * 3 + ["States.TaskFailed", "ok"]}),
            (machine, {}, {"train": ["States.TaskFailed", "States.TaskFailed", "ok"]}),
        ],
    )
    assert (fails_at_once.status, fails_at_once.error, len(fails_at_once.calls)) == ("FAILED", "States.TaskFailed", 1)
    assert rides_out.status == "SUCCEEDED", rides_out.cause
    assert [c.environment["FLOWPLAN_ATTEMPT"] for c in rides_out.calls_of("train")] == ["0", "1", "2", "3", "4"]
    assert (gives_up.status, gives_up.error, len(gives_up.calls_of("train"))) == ("FAILED", "States.TaskFailed", 2)


def test_a_step_timeout_is_a_batch_attempt_timeout(resources: list[Resource]) -> None:
    run = _run(resources, {})
    [train] = run.calls_of("train")
    assert train.parameters["Timeout"] == {"AttemptDurationSeconds": 7200}
    assert "Timeout" not in run.calls_of("start")[0].parameters


def test_a_timeout_under_batchs_minimum_is_raised_and_the_plan_says_so(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(MANIFEST.replace("timeout: 2h", "timeout: 30s"))
    machine = next(r for r in compile_manifest(load(path, ())) if r.address.kind == "StateMachine")
    task = machine.body["definition"]["States"]["train"]
    assert (task["TimeoutSeconds"], task["Parameters"]["Timeout"]["AttemptDurationSeconds"]) == (30, 60)
    assert any("60s Batch attempt timeout" in note for note in machine.notes)


# -- defaults that hold ---------------------------------------------------------------------------

#: EventBridge's input transformer, written from its documentation
#: (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
#: InputPathsMap assigns each variable the value at its JSON path (dot notation) in the event;
#: "If you specify a variable to match a JSON path that doesn't exist in the event, that variable
#: isn't created and won't appear in the output" (Common Issues with transforming input); each
#: ``<variable>`` of InputTemplate is replaced by the variable's value, a string by its text
#: (quotes are the template's), anything else by its JSON. The page does not say what becomes of a
#: placeholder whose variable was not created: "empty" takes "won't appear" literally (the
#: placeholder vanishes, leaving ``""`` between the template's quotes), "kept" leaves it as written.
READINGS = ("empty", "kept")


def transform(transformer: dict[str, Any], event: dict[str, Any], reading: str) -> Any:
    variables: dict[str, str] = {}
    for name, path in transformer["InputPathsMap"].items():
        node: Any = event
        found = True
        for part in path.removeprefix("$.").split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                found = False
                break
        if found:
            variables[name] = node if isinstance(node, str) else json.dumps(node)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        return "" if reading == "empty" else match.group(0)

    return json.loads(re.sub(r"<([A-Za-z0-9_\-.]+)>", fill, transformer["InputTemplate"]))


def _event(detail: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "source": "s3", "detail-type": "object-created", "detail": detail}


def _params(run: Execution) -> dict[str, str]:
    env = run.calls_of("start")[0].environment
    return {k.removeprefix("FLOWPLAN_PARAM_").lower(): v for k, v in env.items() if k.startswith("FLOWPLAN_PARAM_")}


@pytest.mark.parametrize("reading", READINGS)
def test_an_event_without_a_mapped_path_runs_with_the_parameters_default(
    resources: list[Resource], reading: str
) -> None:
    [target] = _one(resources, "Rule")["Targets"]
    execution_input = transform(target["InputTransformer"], _event({"object": {"size": 42}}), reading)
    assert execution_input["key"] in ("", "<key>")  # what EventBridge starts the execution with
    run = _run(resources, execution_input)
    assert run.status == "SUCCEEDED", run.cause
    assert _params(run) == {"key": "partners/latest.csv", "size": "42", "mode": "full"}


@pytest.mark.parametrize("reading", READINGS)
def test_an_event_without_any_mapped_path_runs_with_every_default(resources: list[Resource], reading: str) -> None:
    [target] = _one(resources, "Rule")["Targets"]
    run = _run(resources, transform(target["InputTransformer"], _event({}), reading))
    assert _params(run) == {"key": "partners/latest.csv", "size": "0", "mode": "full"}


def test_values_an_event_carries_win_over_defaults(resources: list[Resource]) -> None:
    [target] = _one(resources, "Rule")["Targets"]
    event = _event({"object": {"key": "partners/2026-12-06.csv", "size": 7}})
    run = _run(resources, transform(target["InputTransformer"], event, "empty"))
    assert _params(run) == {"key": "partners/2026-12-06.csv", "size": "7", "mode": "full"}


def test_runs_not_started_by_an_event_merge_as_before(resources: list[Resource]) -> None:
    machine = _one(resources, "StateMachine")["definition"]
    nothing, some = execute_all(interpreter(), [(machine, {}, {}), (machine, {"mode": "delta", "size": "3"}, {})])
    assert _params(nothing) == {"key": "partners/latest.csv", "size": "0", "mode": "full"}
    assert _params(some) == {"key": "partners/latest.csv", "size": "3", "mode": "delta"}


def test_only_flows_with_event_mapped_parameters_get_the_default_states() -> None:
    machines = {
        r.address.name: r.body["definition"] for r in compile_manifest(load()) if r.address.kind == "StateMachine"
    }
    with_checks = {name for name, m in machines.items() if any(s["Type"] == "Choice" for s in m["States"].values())}
    assert with_checks == {"recsys-prod-ingest"}  # the only flow an event with parameters triggers


def test_every_machine_of_the_example_runs_each_step_and_rides_out_a_throttle() -> None:
    machines = {
        r.address.name: r.body["definition"] for r in compile_manifest(load()) if r.address.kind == "StateMachine"
    }
    names = sorted(machines)
    tasks = {name: {task for task, _ in _tasks(machines[name])} for name in names}
    throttled = [(machines[n], {}, {t: ["Batch.TooManyRequestsException", "ok"] for t in tasks[n]}) for n in names]
    *runs, plain = execute_all(interpreter(), [*throttled, (machines["recsys-prod-features"], {}, {})])
    ran = {}
    for name, run in zip(names, runs, strict=True):
        assert run.status == "SUCCEEDED", (name, run.cause)
        ran[name] = sorted({c.state for c in run.calls})
        assert set(ran[name]) == tasks[name]
        assert all(len(run.calls_of(t)) >= 2 for t in tasks[name])  # the throttle, then the job
    assert ran["recsys-prod-train"] == ["end", "evaluate", "start", "train-gbdt", "train-nn"]
    items = plain.calls_of("build")
    assert sorted(c.environment["FLOWPLAN_FOREACH_ITEM"] for c in items) == ["apac", "eu", "us"]


def test_a_missing_interpreter_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.delenv("FLOWPLAN_ASL_INTERPRETER", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"aws-local-stepfunctions@3\.0\.0 is not installed"):
        interpreter()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        interpreter()
