"""Metaflow flows on the Step Functions backend, against moto (S3, Batch, Step Functions, EventBridge).

Metaflow refuses ``@trigger_on_finish`` and a ``@schedule`` time zone on Step
Functions; flowplan deploys them as an EventBridge rule on the upstream's
successful executions and a Scheduler schedule in the flow's time zone. The
Batch job definitions Metaflow registers while compiling are planned
resources instead: planning makes no AWS write.
"""

from __future__ import annotations

import json
from typing import Any

from tests.backends.metaflow.conftest import (
    Workspace,
    make_batch_queue,
    manifest,
    metaflow_flow,
    metaflow_settings,
    sfn_settings,
)
from tests.backends.metaflow.test_live import aws_writes

UPSTREAM = "recsys.prod.LinearFlow"
DOWNSTREAM = "recsys.prod.DownstreamFlow"


def status_change(aws: Any, machine: str, status: str) -> dict[str, Any]:
    """The event Step Functions puts on the default bus when an execution of ``machine`` ends."""
    arn = f"arn:aws:states:{aws.region}:{aws.account}:stateMachine:{machine}"
    return {
        "version": "0",
        "id": "6c1b7e9c-0000-0000-0000-000000000000",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": aws.account,
        "time": "2026-01-01T02:10:00Z",
        "region": aws.region,
        "resources": [f"arn:aws:states:{aws.region}:{aws.account}:execution:{machine}:run-1"],
        "detail": {
            "executionArn": f"arn:aws:states:{aws.region}:{aws.account}:execution:{machine}:run-1",
            "stateMachineArn": arn,
            "name": "run-1",
            "status": status,
        },
    }


def test_trigger_on_finish_becomes_a_rule_on_the_upstreams_success(workspace: Workspace) -> None:
    ws = workspace
    aws = ws.aws
    make_batch_queue(aws)
    aws.proxy.reset_counts()
    backend = {
        "type": "stepfunctions",
        "endpoint_url": aws.url,
        "stepfunctions": sfn_settings(aws),
        "metaflow": metaflow_settings(aws),
    }
    ws.write(manifest(backend, {"linear": metaflow_flow("linear"), "downstream": metaflow_flow("downstream")}))

    planned = ws.flowplan("plan")
    assert planned.code == 0, planned.text
    assert aws_writes(ws) == {}, aws.proxy.counts()
    assert aws.proxy.counts().get("batch:DescribeJobQueues")  # Metaflow's own platform lookup: a read
    for kind in ("CodePackage", "JobDefinition", "StateMachine", "Schedule", "Rule"):
        assert f"ml.{kind}." in planned.out

    applied = ws.flowplan("apply", "--auto-approve")
    assert applied.code == 0, applied.text

    # The rule routes Step Functions' own status-change event of the upstream's success, and nothing else.
    # moto neither starts executions from rules nor implements TestEventPattern, so a probe rule with the
    # deployed rule's pattern, verbatim, and a queue as target (set up on moto directly) shows what matches.
    events, sqs = aws.client("events"), aws.client("sqs")
    (rule,) = [r for r in events.list_rules()["Rules"] if "downstream" in r["Name"]]
    queue = sqs.create_queue(QueueName="matched")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    events.create_event_bus(Name="probe")  # on the default bus moto would fail to deliver to the real target
    events.put_rule(Name="probe", EventBusName="probe", EventPattern=rule["EventPattern"], State="ENABLED")
    events.put_targets(Rule="probe", EventBusName="probe", Targets=[{"Id": "probe", "Arn": queue_arn}])
    for machine, status in ((UPSTREAM, "FAILED"), (DOWNSTREAM, "SUCCEEDED"), (UPSTREAM, "SUCCEEDED")):
        event = status_change(aws, machine, status)
        events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                    "EventBusName": "probe",
                }
            ]
        )
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    matched = [json.loads(m["Body"])["detail"] for m in received]
    assert [(d["stateMachineArn"].rsplit(":", 1)[1], d["status"]) for d in matched] == [(UPSTREAM, "SUCCEEDED")]

    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == f"arn:aws:states:{aws.region}:{aws.account}:stateMachine:{DOWNSTREAM}:live"
    assert json.loads(target["Input"]) == {"Parameters": "{}"}  # what `step-functions trigger` sends
    assert target["RoleArn"].endswith(":role/sfn-events")

    # The machines exist under Metaflow's names, and the schedule keeps @schedule's time zone.
    machines = {m["name"] for m in aws.client("stepfunctions").list_state_machines()["stateMachines"]}
    assert {UPSTREAM, DOWNSTREAM} <= machines
    (schedule,) = aws.client("scheduler").list_schedules()["Schedules"]
    detail = aws.client("scheduler").get_schedule(Name=schedule["Name"], GroupName=schedule["GroupName"])
    assert detail["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert detail["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert detail["Target"]["Arn"].endswith(f":stateMachine:{UPSTREAM}:live")
    # The job definition Metaflow would have registered, registered once by flowplan.
    definitions = aws.client("batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    assert [d["jobDefinitionName"].startswith("metaflow_") for d in definitions] == [True]
