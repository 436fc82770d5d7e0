"""The Step Functions example against moto, through the CLI: apply, nothing to do, targeted changes, removal.

Every assertion about AWS reads moto directly (not through the proxy); every
assertion about calls reads the proxy, which sees only flowplan's requests.
"""

from __future__ import annotations

import json

from backends.stepfunctions.normalize import PUBLISHED_KEY
from planner.resources import FLOW_KEY, MANAGED_BY_KEY, PROJECT_KEY, PROTECT_KEY, SPEC_HASH_KEY
from tests.backends.stepfunctions.helpers import EXAMPLE_KINDS, Workspace, address, budget, over_budget
from tests.support.aws_fixtures import AwsEnv

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:"


def _job_names(aws: AwsEnv, status: str = "ACTIVE") -> list[str]:
    jobs = aws.client("batch").describe_job_definitions(status=status)["jobDefinitions"]
    return sorted(j["jobDefinitionName"] for j in jobs)


def test_apply_the_example_then_nothing_to_do_within_the_call_budget(example: Workspace, aws: AwsEnv) -> None:
    first = example.apply()
    assert first.code == 0, first.text
    assert f"Apply complete: {sum(EXAMPLE_KINDS.values())} created" in first.out

    sfn = aws.client("stepfunctions")
    machines = sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"])
    assert machines == ["recsys-prod-features", "recsys-prod-ingest", "recsys-prod-report", "recsys-prod-train"]
    train = ARN + "recsys-prod-train"
    alias = sfn.describe_state_machine_alias(stateMachineAliasArn=train + ":live")
    assert alias["routingConfiguration"] == [{"stateMachineVersionArn": train + ":1", "weight": 100}]
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=train)["tags"]}
    assert tags[MANAGED_BY_KEY] == "flowplan" and tags[FLOW_KEY] == "train" and tags[PROTECT_KEY] == "true"
    assert SPEC_HASH_KEY in tags and PUBLISHED_KEY in tags
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=train)["definition"])
    assert definition["States"]["start: fan-out"]["Type"] == "Parallel"

    scheduler = aws.client("scheduler")
    schedule = scheduler.get_schedule(GroupName="recsys-prod", Name="recsys-prod-train")
    assert schedule["ScheduleExpression"] == "cron(30 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["Target"]["Arn"] == train + ":live"
    assert json.loads(schedule["Target"]["Input"]) == {"epochs": "20", "learning_rate": "0.001"}
    group = scheduler.get_schedule_group(Name="recsys-prod")
    group_tags = {t["Key"]: t["Value"] for t in scheduler.list_tags_for_resource(ResourceArn=group["Arn"])["Tags"]}
    assert group_tags[PROJECT_KEY] == "recsys"

    events = aws.client("events")
    rules = sorted(r["Name"] for r in events.list_rules(NamePrefix="recsys-prod-")["Rules"])
    assert rules == [
        "recsys-prod-features-after-ingest",
        "recsys-prod-ingest-on-raw-data-landed",
        "recsys-prod-report-after-train",
    ]
    (target,) = events.list_targets_by_rule(Rule="recsys-prod-report-after-train")["Targets"]
    assert target["Arn"] == ARN + "recsys-prod-report:live"
    assert target["RoleArn"] == "arn:aws:iam::123456789012:role/flowplan-events"

    assert len(_job_names(aws)) == EXAMPLE_KINDS["JobDefinition"]
    ssm = aws.client("ssm").get_parameters_by_path(Path="/flowplan/recsys/prod/sinks")["Parameters"]
    assert len(ssm) == EXAMPLE_KINDS["Parameter"]

    # The inventory lives in the DynamoDB table the first apply created; no lock is left behind.
    table = aws.client("dynamodb").describe_table(TableName="flowplan-state")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    items = aws.client("dynamodb").scan(TableName="flowplan-state")["Items"]
    assert "lock" not in {i["sk"]["S"] for i in items}

    aws.proxy.reset_counts()
    plan = example.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.text
    assert "No changes" in plan.out
    counts = aws.proxy.counts()
    assert over_budget(counts, budget(EXAMPLE_KINDS)) == {}, "a no-change plan exceeds the call budget (issue 12)"
    # What it is today (docs/stepfunctions.md quotes it): a change here is worth a look, not only a breach.
    assert counts == {
        "batch:DescribeJobDefinitions": 1,
        "dynamodb:Query": 1,
        "events:ListRules": 1,
        "events:ListTagsForResource": 3,
        "events:ListTargetsByRule": 3,
        "scheduler:GetSchedule": 3,
        "scheduler:GetScheduleGroup": 1,
        "scheduler:ListSchedules": 1,
        "scheduler:ListTagsForResource": 1,
        "ssm:GetParametersByPath": 1,
        "ssm:ListTagsForResource": 3,
        "states:DescribeStateMachine": 4,
        "tag:GetResources": 1,
    }

    aws.proxy.reset_counts()
    again = example.apply()
    assert again.code == 0, again.text
    assert aws.writes() == {}, "a second apply must not write (nor take the lock)"


def test_each_change_updates_only_what_depends_on_it(example: Workspace, aws: AwsEnv) -> None:
    assert example.apply().code == 0
    original = example.manifest.read_text()
    jobs = {name.rsplit("-", 1)[0]: name for name in _job_names(aws)}

    def changes_after(old: str, new: str) -> dict[str, str]:
        example.manifest.write_text(original)
        example.edit(old, new)
        return example.changes()

    assert changes_after('cron: "30 2 * * *"', 'cron: "45 3 * * *"') == {
        address("Schedule", "recsys-prod-train"): "update"
    }
    step = changes_after('resources: {cpu: "8", memory: 32Gi}', 'resources: {cpu: "16", memory: 32Gi}')
    created = [a for a, action in step.items() if action == "create"]
    assert len(created) == 1 and created[0].startswith(address("JobDefinition", "recsys-prod-train-train-gbdt-"))
    assert step == {
        created[0]: "create",
        address("JobDefinition", jobs["recsys-prod-train-train-gbdt"]): "delete",
        address("StateMachine", "recsys-prod-train"): "update",
    }
    assert changes_after("{path: key, op: prefix, value: partners/}", "{path: key, op: prefix, value: incoming/}") == {
        address("Rule", "recsys-prod-ingest-on-raw-data-landed"): "update"
    }
    assert changes_after("ttl: 2d", "ttl: 3d") == {
        address("Parameter", "flowplan.recsys.prod.sinks.feature-cache"): "update"
    }

    # Apply the step change: a new job definition, a new version behind the alias, the old revision gone.
    example.manifest.write_text(original)
    example.edit('resources: {cpu: "8", memory: 32Gi}', 'resources: {cpu: "16", memory: 32Gi}')
    applied = example.apply()
    assert applied.code == 0, applied.text
    assert "1 created, 1 updated, 0 replaced, 1 destroyed" in applied.out
    assert jobs["recsys-prod-train-train-gbdt"] in _job_names(aws, "INACTIVE")
    train = ARN + "recsys-prod-train"
    alias = aws.client("stepfunctions").describe_state_machine_alias(stateMachineAliasArn=train + ":live")
    assert alias["routingConfiguration"][0]["stateMachineVersionArn"] == train + ":2"
    assert example.run("plan", "--detailed-exitcode").code == 0


def test_removing_a_flow_deletes_its_machine_schedule_rules_and_targets_only(example: Workspace, aws: AwsEnv) -> None:
    assert example.apply().code == 0
    report_job = next(n for n in _job_names(aws) if n.startswith("recsys-prod-report-start-"))
    text = example.manifest.read_text()
    example.manifest.write_text(text[: text.index("\n  report:\n")] + "\n")
    assert example.changes() == {
        address("StateMachine", "recsys-prod-report"): "delete",
        address("Schedule", "recsys-prod-report"): "delete",
        address("Rule", "recsys-prod-report-after-train"): "delete",
        address("JobDefinition", report_job): "delete",
    }
    aws.proxy.reset_counts()
    result = example.apply()
    assert result.code == 0, result.text
    writes = aws.writes()
    assert writes["events:RemoveTargets"] == 1 and writes["events:DeleteRule"] == 1
    assert writes["states:DeleteStateMachine"] == 1 and writes["scheduler:DeleteSchedule"] == 1
    assert not any(op.startswith(("states:Create", "states:Update", "events:Put")) for op in writes)

    machines = sorted(m["name"] for m in aws.client("stepfunctions").list_state_machines()["stateMachines"])
    assert machines == ["recsys-prod-features", "recsys-prod-ingest", "recsys-prod-train"]
    rules = sorted(r["Name"] for r in aws.client("events").list_rules(NamePrefix="recsys-prod-")["Rules"])
    assert rules == ["recsys-prod-features-after-ingest", "recsys-prod-ingest-on-raw-data-landed"]
    schedules = aws.client("scheduler").list_schedules(GroupName="recsys-prod")["Schedules"]
    assert sorted(s["Name"] for s in schedules) == ["recsys-prod-ingest", "recsys-prod-train"]
    assert report_job in _job_names(aws, "INACTIVE") and len(_job_names(aws)) == 10
    assert example.run("plan", "--detailed-exitcode").code == 0
