"""What flowplan does not own stays untouched; what changed since the plan is a conflict, not an overwrite.

moto is lenient where AWS is not (a create on an existing machine name returns
the old machine; tags of a deleted machine come back on a new one): these
tests arrange exactly those situations and check flowplan's own checks catch
them, so nothing here passes *because* of moto's leniency.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.stepfunctions.backend import StepFunctionsBackend
from planner.contract import Scope
from planner.errors import ConflictError
from planner.manifest import load_manifest
from planner.resources import LiveResource, Resource
from tests.backends.stepfunctions.helpers import Workspace, address, compile_manifest
from tests.support.aws_fixtures import AwsEnv

ROLE = "arn:aws:iam::123456789012:role/other-team"
ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:"
PASS = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})


def _snapshot(aws: AwsEnv) -> dict[str, Any]:
    """Everything about the look-alikes that flowplan must leave exactly as it was."""
    sfn, events, batch, ssm = (aws.client(s) for s in ("stepfunctions", "events", "batch", "ssm"))
    result: dict[str, Any] = {}
    for name in ("tiny-prod-down", "tiny-prod-legacy"):
        described = sfn.describe_state_machine(stateMachineArn=ARN + name)
        result[name] = (
            described["definition"],
            described["roleArn"],
            sfn.list_tags_for_resource(resourceArn=ARN + name)["tags"],
        )
    rule = events.describe_rule(Name="tiny-prod-zzz-handmade")
    result["rule"] = (rule["EventPattern"], rule["State"], events.list_targets_by_rule(Rule=rule["Name"])["Targets"])
    jobs = batch.describe_job_definitions(jobDefinitionName="tiny-prod-up-start-0123456789")["jobDefinitions"]
    result["job"] = [(j["revision"], j["status"]) for j in jobs]
    result["parameter"] = ssm.get_parameter(Name="/flowplan/tiny/prod/sinks/legacy")["Parameter"]["Value"]
    return result


def test_resources_flowplan_does_not_own_are_never_touched(tiny: Workspace, aws: AwsEnv) -> None:
    sfn, events = aws.client("stepfunctions"), aws.client("events")
    # At a name flowplan wants: untagged. At names flowplan might list: untagged, or another branch's.
    sfn.create_state_machine(name="tiny-prod-down", definition=PASS, roleArn=ROLE)
    sfn.create_state_machine(
        name="tiny-prod-legacy",
        definition=PASS,
        roleArn=ROLE,
        tags=[
            {"key": "app.kubernetes.io/managed-by", "value": "flowplan"},
            {"key": "flowplan.dev/project", "value": "tiny"},
            {"key": "flowplan.dev/branch", "value": "staging"},
        ],
    )
    events.put_rule(Name="tiny-prod-zzz-handmade", EventPattern=json.dumps({"source": ["x"]}))
    events.put_targets(Rule="tiny-prod-zzz-handmade", Targets=[{"Id": "t", "Arn": ARN + "tiny-prod-legacy"}])
    aws.client("batch").register_job_definition(
        jobDefinitionName="tiny-prod-up-start-0123456789",
        type="container",
        containerProperties={"image": "x", "vcpus": 1, "memory": 128},
    )
    aws.client("ssm").put_parameter(Name="/flowplan/tiny/prod/sinks/legacy", Value="{}", Type="String")
    before = _snapshot(aws)

    plan = tiny.plan_json()
    assert [c["address"] for c in plan["conflicts"]] == [address("StateMachine", "tiny-prod-down")]
    assert "not managed by flowplan" in plan["conflicts"][0]["owner"]
    applied = tiny.apply()
    assert applied.code == 1  # the conflict and the rule that would start it are left alone
    assert f"skipped {address('Rule', 'tiny-prod-down-after-up')}" in applied.err
    assert _snapshot(aws) == before

    destroyed = tiny.run("destroy", "--auto-approve")
    assert destroyed.code in (0, 1), destroyed.text
    assert _snapshot(aws) == before
    assert sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"]) == [
        "tiny-prod-down",
        "tiny-prod-legacy",
    ]


def test_tags_a_deleted_machine_left_behind_do_not_stick_to_the_new_one(tiny: Workspace, aws: AwsEnv) -> None:
    sfn = aws.client("stepfunctions")
    made = sfn.create_state_machine(
        name="tiny-prod-up", definition=PASS, roleArn=ROLE, tags=[{"key": "owner", "value": "someone-else"}]
    )
    sfn.delete_state_machine(stateMachineArn=made["stateMachineArn"])
    assert tiny.apply().code == 0
    tags = {t["key"] for t in sfn.list_tags_for_resource(resourceArn=ARN + "tiny-prod-up")["tags"]}
    assert "owner" not in tags
    assert tiny.run("plan", "--detailed-exitcode").code == 0


def _backend(tiny: Workspace) -> tuple[StepFunctionsBackend, list[Resource]]:
    manifest = load_manifest(tiny.manifest, var_files=[str(tiny.vars)])
    scope = Scope("aws", manifest.project, manifest.branch)
    return StepFunctionsBackend(manifest.backends["aws"], scope, {}), compile_manifest(manifest)


def test_a_create_never_takes_over_a_machine_that_appeared_since_the_plan(tiny: Workspace, aws: AwsEnv) -> None:
    backend, desired = _backend(tiny)
    (machine,) = [r for r in desired if str(r.address) == address("StateMachine", "tiny-prod-up")]
    sfn = aws.client("stepfunctions")
    sfn.create_state_machine(name="tiny-prod-up", definition=PASS, roleArn=ROLE)  # moto would answer "created"
    with pytest.raises(ConflictError, match="appeared since the plan"):
        backend.writer().create(machine)
    assert sfn.describe_state_machine(stateMachineArn=ARN + "tiny-prod-up")["definition"] == PASS
    assert sfn.list_tags_for_resource(resourceArn=ARN + "tiny-prod-up")["tags"] == []
    assert sfn.list_state_machine_aliases(stateMachineArn=ARN + "tiny-prod-up")["stateMachineAliases"] == []


def test_an_update_or_delete_of_something_changed_since_the_plan_is_a_conflict(tiny: Workspace, aws: AwsEnv) -> None:
    assert tiny.apply().code == 0
    backend, desired = _backend(tiny)
    scope = Scope("aws", "tiny", "prod")
    live = backend.reader().read(scope, desired).owned
    schedule_address = next(a for a in live if a.kind == "Schedule")
    planned: LiveResource = live[schedule_address]
    scheduler = aws.client("scheduler")
    current = scheduler.get_schedule(GroupName="tiny-prod", Name="tiny-prod-up")
    scheduler.update_schedule(
        Name="tiny-prod-up",
        GroupName="tiny-prod",
        ScheduleExpression="cron(0 9 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=current["Target"],
    )
    (resource,) = [r for r in desired if r.address == schedule_address]
    writer = backend.writer()
    with pytest.raises(ConflictError, match="changed since the plan"):
        writer.update(resource, planned)
    with pytest.raises(ConflictError, match="changed since the plan"):
        writer.delete(planned)
    assert scheduler.get_schedule(GroupName="tiny-prod", Name="tiny-prod-up")["ScheduleExpression"] == (
        "cron(0 9 * * ? *)"
    )


@pytest.mark.slow
def test_a_saved_plan_is_refused_after_an_out_of_band_change(tiny: Workspace, aws: AwsEnv) -> None:
    assert tiny.apply().code == 0
    tiny.edit('cron: "0 1 * * *"', 'cron: "0 2 * * *"')
    saved = tiny.root / "plan.bin"
    assert tiny.run("plan", "--out", str(saved)).code == 0
    events = aws.client("events")
    rule = events.describe_rule(Name="tiny-prod-down-after-up")
    events.put_rule(Name=rule["Name"], EventPattern=rule["EventPattern"], State="DISABLED")
    aws.proxy.reset_counts()
    out = tiny.run("apply", str(saved))
    assert out.code == 1 and "stale" in out.err
    assert aws.writes() == {}


@pytest.mark.slow
def test_changes_made_by_hand_are_drift_and_apply_restores_the_manifest(tiny: Workspace, aws: AwsEnv) -> None:
    assert tiny.apply().code == 0
    scheduler = aws.client("scheduler")
    current = scheduler.get_schedule(GroupName="tiny-prod", Name="tiny-prod-up")
    scheduler.update_schedule(  # paused by hand; the time zone is dropped too (UpdateSchedule replaces)
        Name="tiny-prod-up",
        GroupName="tiny-prod",
        ScheduleExpression=current["ScheduleExpression"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=current["Target"],
        State="DISABLED",
    )
    aws.client("stepfunctions").update_state_machine(
        stateMachineArn=ARN + "tiny-prod-down", loggingConfiguration={"level": "ERROR", "includeExecutionData": True}
    )
    plan = tiny.plan_json()
    changes = {c["address"]: c for c in plan["changes"]}
    assert set(changes) == {address("Schedule", "tiny-prod-up"), address("StateMachine", "tiny-prod-down")}
    schedule = {
        d["path"]: (d.get("before"), d.get("after"))
        for d in changes[address("Schedule", "tiny-prod-up")]["field_diffs"]
    }
    assert schedule == {"/State": ("DISABLED", "ENABLED"), "/ScheduleExpressionTimezone": ("UTC", "Europe/Paris")}
    machine = changes[address("StateMachine", "tiny-prod-down")]
    assert {d["path"] for d in machine["field_diffs"]} == {"/loggingConfiguration"}
    assert all(c["drifted"] for c in changes.values())
    assert tiny.apply().code == 0
    assert tiny.run("plan", "--detailed-exitcode").code == 0
    restored = scheduler.get_schedule(GroupName="tiny-prod", Name="tiny-prod-up")
    assert (restored["State"], restored["ScheduleExpressionTimezone"]) == ("ENABLED", "Europe/Paris")


def test_an_object_made_by_hand_can_be_imported(tiny: Workspace, aws: AwsEnv) -> None:
    sfn = aws.client("stepfunctions")
    sfn.create_state_machine(
        name="tiny-prod-down", definition=PASS, roleArn=ROLE, tags=[{"key": "cost-center", "value": "cc-1"}]
    )
    result = tiny.run("import", address("StateMachine", "tiny-prod-down"), "--auto-approve")
    assert result.code == 0, result.text
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=ARN + "tiny-prod-down")["tags"]}
    assert tags["flowplan.dev/project"] == "tiny" and "cost-center" not in tags
    assert json.loads(sfn.describe_state_machine(stateMachineArn=ARN + "tiny-prod-down")["definition"]) != json.loads(
        PASS
    )
    alias = sfn.describe_state_machine_alias(stateMachineAliasArn=ARN + "tiny-prod-down:live")
    assert alias["routingConfiguration"][0]["stateMachineVersionArn"].startswith(ARN + "tiny-prod-down:")
    assert tiny.apply().code == 0
    assert tiny.run("plan", "--detailed-exitcode").code == 0


def test_a_server_dry_run_checks_and_writes_nothing(tiny: Workspace, aws: AwsEnv) -> None:
    result = tiny.run("apply", "--auto-approve", "--dry-run", "server")
    assert result.code == 0, result.text
    assert "Dry run complete" in result.out
    assert aws.writes() == {}
    assert aws.client("stepfunctions").list_state_machines()["stateMachines"] == []
