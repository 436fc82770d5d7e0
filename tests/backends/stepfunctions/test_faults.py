"""Ambiguous outcomes and partial failures: non-idempotent creates are read back, never repeated blindly.

The counting proxy drops connections on purpose: ``ForwardThenReset`` lets moto
apply the request and then resets the client's connection (the answer is
lost: did it happen?), ``ResetBeforeForward`` resets without forwarding (it did
not happen, but the client cannot tell the difference).
"""

from __future__ import annotations

import pytest

from tests.backends.stepfunctions.helpers import TINY_RESOURCES, Workspace, address
from tests.support.aws_fixtures import AwsEnv
from tests.support.proxy import FaultRule, ForwardThenReset, ResetBeforeForward, Respond

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:"


def _revisions(aws: AwsEnv) -> dict[str, int]:
    """Every revision of every job definition (ACTIVE or not), by name."""
    counts: dict[str, int] = {}
    for job in aws.client("batch").describe_job_definitions()["jobDefinitions"]:
        counts[job["jobDefinitionName"]] = counts.get(job["jobDefinitionName"], 0) + 1
    return counts


def test_an_ambiguous_register_job_definition_leaves_one_revision(tiny: Workspace, aws: AwsEnv) -> None:
    aws.proxy.rules.append(FaultRule(ForwardThenReset(), key="batch:RegisterJobDefinition", times=1))
    result = tiny.apply()
    assert result.code == 0, result.text
    assert aws.proxy.faults() == {"reset-after batch:RegisterJobDefinition": 1}
    revisions = _revisions(aws)
    assert len(revisions) == 2 and set(revisions.values()) == {1}, revisions
    # Sent once per job definition: the lost answer was recovered by reading back, not by sending again.
    assert aws.proxy.counts()["batch:RegisterJobDefinition"] == 2
    assert tiny.run("plan", "--detailed-exitcode").code == 0


@pytest.mark.slow
def test_a_register_that_never_arrived_is_sent_again_once_read_back_proves_it(tiny: Workspace, aws: AwsEnv) -> None:
    aws.proxy.rules.append(FaultRule(ResetBeforeForward(), key="batch:RegisterJobDefinition", times=1))
    result = tiny.apply()
    assert result.code == 0, result.text
    assert set(_revisions(aws).values()) == {1}
    assert aws.proxy.counts()["batch:RegisterJobDefinition"] == 3


@pytest.mark.slow
def test_every_create_survives_a_lost_answer(tiny: Workspace, aws: AwsEnv) -> None:
    creates = (
        "states:CreateStateMachine",
        "states:CreateStateMachineAlias",
        "scheduler:CreateScheduleGroup",
        "scheduler:CreateSchedule",
        "ssm:PutParameter",
        "events:PutRule",
        "events:PutTargets",
        "dynamodb:PutItem",
    )
    for key in creates:
        aws.proxy.rules.append(FaultRule(ForwardThenReset(), key=key, times=1))
    result = tiny.apply()
    assert result.code == 0, result.text
    assert sum(aws.proxy.faults().values()) == len(creates)
    sfn = aws.client("stepfunctions")
    assert sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"]) == ["tiny-prod-down", "tiny-prod-up"]
    for name in ("tiny-prod-down", "tiny-prod-up"):
        aliases = sfn.list_state_machine_aliases(stateMachineArn=ARN + name)["stateMachineAliases"]
        assert len(aliases) == 1
    assert len(aws.client("scheduler").list_schedules(GroupName="tiny-prod")["Schedules"]) == 1
    (rule,) = aws.client("events").list_rules(NamePrefix="tiny-prod-")["Rules"]
    assert len(aws.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]) == 1
    assert tiny.run("plan", "--detailed-exitcode").code == 0


def test_a_run_that_dies_between_publishing_and_moving_the_alias_is_repaired(
    tiny: Workspace, aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tiny.apply().code == 0
    tiny.edit("command: [echo, down]", "command: [echo, down, again]")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws.proxy.rules.append(FaultRule(Respond.aws_json(500, "InternalFailure"), key="states:UpdateStateMachineAlias"))
    failed = tiny.apply()
    assert failed.code == 1
    assert "aws.StateMachine.eu-west-1/tiny-prod-down" in failed.err and "InternalFailure" in failed.err
    sfn = aws.client("stepfunctions")
    alias = sfn.describe_state_machine_alias(stateMachineAliasArn=ARN + "tiny-prod-down:live")
    assert alias["routingConfiguration"][0]["stateMachineVersionArn"].endswith(":1")  # still the old version

    # The definition is already new, but the alias is behind: the plan says so and the next apply finishes.
    aws.proxy.rules.clear()
    plan = tiny.plan_json()
    (change,) = [c for c in plan["changes"] if c["address"] == address("StateMachine", "tiny-prod-down")]
    assert change["action"] == "update"
    assert {d["path"]: d.get("after") for d in change["field_diffs"]}["/alias"] == "live"
    assert tiny.apply().code == 0
    alias = sfn.describe_state_machine_alias(stateMachineAliasArn=ARN + "tiny-prod-down:live")
    assert not alias["routingConfiguration"][0]["stateMachineVersionArn"].endswith(":1")
    assert tiny.run("plan", "--detailed-exitcode").code == 0


@pytest.mark.slow
def test_a_failed_write_stops_its_dependents_and_a_rerun_converges(tiny: Workspace, aws: AwsEnv) -> None:
    aws.proxy.rules.append(FaultRule(Respond.aws_json(400, "ValidationException", "no"), key="ssm:PutParameter"))
    failed = tiny.apply()
    assert failed.code == 1
    assert "failed  aws.Parameter.eu-west-1/flowplan.tiny.prod.sinks.store" in failed.err
    # The job definition of the flow using the sink waits; the other flow's resources went through.
    assert "skipped aws.JobDefinition.eu-west-1/tiny-prod-up-start-" in failed.err
    names = sorted(m["name"] for m in aws.client("stepfunctions").list_state_machines()["stateMachines"])
    assert names == ["tiny-prod-down"]
    aws.proxy.rules.clear()
    fixed = tiny.apply()
    assert fixed.code == 0, fixed.text
    assert f"{TINY_RESOURCES - 2} created" in fixed.out or "created" in fixed.out
    assert tiny.run("plan", "--detailed-exitcode").code == 0
