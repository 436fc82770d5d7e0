"""``flowplan run`` and ``flowplan status`` against moto: real StartExecution and ListExecutions calls.

moto decides how an execution ends with its documented ``SF_EXECUTION_HISTORY_TYPE`` (read when
the execution starts): unset, the execution stays RUNNING and its history ends in
ExecutionSucceeded; ``FAILURE`` makes it FAILED with an ExecutionFailed history.
"""

from __future__ import annotations

import pytest

from tests.backends.stepfunctions.helpers import Workspace
from tests.operate.helpers import flow_view, generated, instants, parse, wall_clock_fires
from tests.support.aws_fixtures import AwsEnv


def _run(tiny: Workspace, monkeypatch: pytest.MonkeyPatch, outcome: str) -> str:
    if outcome == "failure":
        monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    else:
        monkeypatch.delenv("SF_EXECUTION_HISTORY_TYPE", raising=False)
    started = tiny.run("run", "up")
    monkeypatch.delenv("SF_EXECUTION_HISTORY_TYPE", raising=False)
    assert started.code == 0, started.text
    return started.out


def test_status_shows_executions_schedule_and_plumbing_and_exits_1_when_the_last_run_failed(
    tiny: Workspace, aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tiny.apply().code == 0
    aws.proxy.reset_counts()
    first = _run(tiny, monkeypatch, "success")
    assert "Started flowplan-run-" in first and "console.aws.amazon.com/states/home?region=eu-west-1" in first
    assert "aws stepfunctions describe-execution" in first
    # moto cannot start an alias; flowplan tried the alias first, then the machine the alias runs
    assert "refused to start the live alias" in first
    calls = aws.proxy.counts()
    assert calls["states:StartExecution"] == 2
    _run(tiny, monkeypatch, "failure")

    result = tiny.run("status", "--format", "json")
    assert result.code == 1, result.text
    view = parse(result.out)
    up = flow_view(view, "up")
    assert [r["outcome"] for r in up["runs"]] == ["failed", "succeeded"]
    assert all(r["id"].startswith("flowplan-run-") for r in up["runs"])
    assert view["alerts"] == [f"up: last run failed ({up['runs'][0]['id']})"]
    assert instants(up["schedule"]["next"]) == wall_clock_fires(1, 0, "Europe/Paris", generated(view), 3)
    assert not up["schedule"]["suspended"]
    assert {(t["kind"], t["state"], t["healthy"]) for t in up["triggers"]} == {
        ("alias", "enabled", True),
        ("schedule", "enabled", True),
    }
    down = flow_view(view, "down")
    assert down["runs"] == [] and down["schedule"] is None
    assert {(t["kind"], t["state"], t["healthy"]) for t in down["triggers"]} == {
        ("alias", "enabled", True),
        ("rule", "enabled", True),
    }

    _run(tiny, monkeypatch, "success")
    again = tiny.run("status", "up")
    assert again.code == 0, again.text
    assert again.out.count("ok        flowplan-run-") == 2 and "FAILED    flowplan-run-" in again.out

    # plumbing: a rule switched off by hand starts nothing: status says so and exits 1
    events = aws.client("events")
    events.disable_rule(Name="tiny-prod-down-after-up")
    broken = tiny.run("status", "down")
    assert broken.code == 1
    assert "[BROKEN] rule tiny-prod-down-after-up: disabled" in broken.out


def test_a_branch_beside_prod_its_suspended_schedule_and_an_unknown_parameter(tiny: Workspace, aws: AwsEnv) -> None:
    assert tiny.apply().code == 0
    assert tiny.apply("--branch", "pr-5").code == 0
    listed = tiny.run("branches", "--format", "json")
    assert listed.code == 0, listed.text
    (rows,) = parse(listed.out)["backends"].values()
    assert {r["branch"]: (r["objects"], r["revision"], r["production"]) for r in rows} == {
        "prod": (8, 1, True),
        "pr-5": (8, 1, False),
    }
    assert all(r["marked_objects"] >= 2 for r in rows)  # at least the machines (what the tagging API indexes)
    view = parse(tiny.run("status", "up", "--branch", "pr-5", "--format", "json").out)
    schedule = flow_view(view, "up")["schedule"]
    assert (schedule["suspended"], schedule["suspended_from"]) == (True, "deployed")
    refused = tiny.run("run", "up", "--branch", "pr-5", "--param", "epochs=3")
    assert refused.code == 1 and "no parameter epochs" in refused.err
    assert "states:StartExecution" not in aws.proxy.counts()
