"""The example IAM policies grant what flowplan and the deployed resources call, scoped as AWS authorises.

moto does not enforce IAM on scoped resources or condition keys, so this test
judges the policies itself: the actions come from what flowplan really calls
(counted by the proxy over a plan, an apply, a changed apply, a rollback, a run,
``status`` and a destroy against moto), plus every operation the Step Functions
backend's code can call, plus what AWS implies (``iam:PassRole`` for every role
handed over, ``states:PublishStateMachineVersion`` for a create or update with
``publish``: the database's dependent actions); their resource types and
condition keys come from ``policy_sentry``'s offline IAM database. A request is
granted when an ``Allow`` statement matches its action, its resource ARN (IAM
wildcards) and its condition context.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from backends.stepfunctions.asl import BATCH_SUBMIT_SYNC
from planner.resources import Resource
from tests.backends.stepfunctions.helpers import EXAMPLE, REPO, Workspace, compile_manifest, load

POLICIES = EXAMPLE / "iam"
REGION, ACCOUNT = "eu-west-1", "123456789012"  # examples/stepfunctions/prod.vars.yaml
#: The proxy names services as their endpoints do; IAM's prefixes differ for these.
IAM_PREFIX = {"resourcegroupstaggingapi": "tag", "stepfunctions": "states"}
#: API operations that are not IAM actions, and the actions AWS checks instead.
NOT_ACTIONS = {
    "dynamodb:TransactWriteItems": (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ),
}


def _database() -> Any:
    try:
        from policy_sentry.querying import actions
    except ImportError:  # pragma: no cover - the test extra installs it
        message = "policy_sentry is not installed (pip install policy_sentry: the offline IAM database)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: the test extra installs it)")
        pytest.skip(message)
    return actions


def rows(action: str) -> list[dict[str, Any]]:
    """The database's entries for ``action`` (one per resource type); empty when IAM has no such action."""
    service, _, name = action.partition(":")
    found = _database().get_action_data(service, name)
    return list(found.get(service, [])) if isinstance(found, dict) else []


def policy(name: str) -> dict[str, Any]:
    text = (POLICIES / name).read_text().replace("REGION", REGION).replace("ACCOUNT", ACCOUNT)
    data: dict[str, Any] = json.loads(text)
    return data


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _wildcard(pattern: str, text: str) -> bool:
    """IAM's matching: ``*`` any run of characters (``:`` and ``/`` too), ``?`` one, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _format_regex(arn_format: str) -> str:
    return re.sub(r"\\\$\\\{[A-Za-z]+\\\}", ".+", re.escape(arn_format))


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = f" with {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra}"


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            if key not in context:
                return False
            values = _listed(wanted)
            if operator == "StringEquals" and context[key] not in values:
                return False
            if operator == "StringLike" and not any(_wildcard(v, context[key]) for v in values):
                return False
            if operator not in ("StringEquals", "StringLike"):
                raise AssertionError(f"the checker does not evaluate condition operator {operator}")
    return True


def allows(document: Mapping[str, Any], request: Request) -> bool:
    """True when an Allow statement grants ``request`` and no Deny statement refuses it."""
    allowed = False
    for statement in document["Statement"]:
        actions = _listed(statement["Action"])
        if not any(fnmatch.fnmatchcase(request.action.lower(), a.lower()) for a in actions):
            continue
        if not any(_wildcard(r, request.resource) for r in _listed(statement["Resource"])):
            continue
        if not _condition_holds(statement.get("Condition", {}), request.context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def _fits(resource: str, formats: list[str]) -> bool:
    if resource == "*":
        return True
    samples = [resource.replace("*", fill) for fill in ("x", "x:1", "x/x", "x:x")]  # what ``*`` may stand for
    return any(f != "*" and re.fullmatch(_format_regex(f), s) for f in formats for s in samples)


def problems_of(document: Mapping[str, Any]) -> list[str]:
    """What the IAM database says is wrong in a policy: unknown actions, resources or condition keys."""
    problems = []
    for statement in document["Statement"]:
        sid = statement.get("Sid", "?")
        keys = [key for tests in statement.get("Condition", {}).values() for key in tests]
        for action in _listed(statement["Action"]):
            entries = rows(action)
            if not entries:
                problems.append(f"{sid}: {action} is no IAM action")
                continue
            formats = [e["resource_arn_format"] for e in entries]
            fitting = [r for r in _listed(statement["Resource"]) if _fits(r, formats)]
            if not fitting:
                problems.append(f"{sid}: {action} acts on none of {statement['Resource']} (its resources: {formats})")
            if formats == ["*"] and statement["Resource"] != "*":
                problems.append(f"{sid}: {action} supports only Resource '*'")
            known = {k for e in entries for k in e["condition_keys"]}
            for key in keys:
                if not key.startswith("aws:") and key not in known:
                    problems.append(f"{sid}: {action} has no condition key {key}")
        for resource in _listed(statement["Resource"]):
            if not any(
                _fits(resource, [e["resource_arn_format"] for e in rows(a)]) for a in _listed(statement["Action"])
            ):
                problems.append(f"{sid}: no action of the statement acts on {resource}")
    return problems


# -- what flowplan calls -----------------------------------------------------------------------

#: The kinds of resource flowplan's deployer touches, by the database's ARN format (a regex on it).
_KINDS = {
    r":stateMachine:\$\{StateMachineName\}$": "machine",
    r":execution:\$\{StateMachineName\}:\$\{ExecutionId\}$": "execution",
    r"job-definition/\$\{JobDefinitionName\}$": "job-definition",
    r"job-definition/\$\{JobDefinitionName\}:\$\{Revision\}$": "job-definition-revision",
    r":rule/\$\{RuleName\}$": "rule",
    r":schedule/\$\{GroupName\}/\$\{ScheduleName\}$": "schedule",
    r":schedule-group/\$\{GroupName\}$": "schedule-group",
    r":parameter/\$\{ParameterNameWithoutLeadingSlash\}$": "parameter",
    r":table/\$\{TableName\}$": "table",
    r":role/\$\{RoleNameWithPath\}$": "role",
}


def _kind(arn_format: str) -> str | None:
    return next((kind for pattern, kind in _KINDS.items() if re.search(pattern, arn_format)), None)


def deployed_arns(resources: Iterable[Resource]) -> dict[str, list[str]]:
    """Concrete ARNs of each kind the example deploys (every one of them, so patterns must cover all)."""
    arns: dict[str, list[str]] = {kind: [] for kind in _KINDS.values()}
    base = f"{REGION}:{ACCOUNT}"
    roles = set()
    for resource in resources:
        body, name = resource.body, resource.address.name
        if resource.address.kind == "StateMachine":
            arns["machine"].append(f"arn:aws:states:{base}:stateMachine:{name}")
            arns["execution"].append(f"arn:aws:states:{base}:execution:{name}:run-1")
            roles.add(body["roleArn"])
        elif resource.address.kind == "JobDefinition":
            arns["job-definition"].append(f"arn:aws:batch:{base}:job-definition/{name}")
            arns["job-definition-revision"].append(f"arn:aws:batch:{base}:job-definition/{name}:1")
            roles.update(_listed(body["containerProperties"].get("executionRoleArn", [])))
        elif resource.address.kind == "Rule":
            bus = body["EventBusName"]
            arns["rule"].append(f"arn:aws:events:{base}:rule/{name}" if bus == "default" else f"rule/{bus}/{name}")
            roles.update(t["RoleArn"] for t in body["Targets"])
        elif resource.address.kind == "Schedule":
            arns["schedule"].append(f"arn:aws:scheduler:{base}:schedule/{body['GroupName']}/{name}")
            roles.add(body["Target"]["RoleArn"])
        elif resource.address.kind == "ScheduleGroup":
            arns["schedule-group"].append(f"arn:aws:scheduler:{base}:schedule-group/{name}")
        elif resource.address.kind == "Parameter":
            arns["parameter"].append(f"arn:aws:ssm:{base}:parameter{body['Name']}")
    arns["table"] = [f"arn:aws:dynamodb:{base}:table/flowplan-state"]
    arns["role"] = sorted(roles)
    return arns


def code_operations() -> set[str]:
    """Every ``service:Operation`` the Step Functions backend's code can call (``call``/``pages`` sites)."""
    found = set()
    for path in (REPO / "backends" / "stepfunctions").glob("*.py"):
        for service, operation in re.findall(r"\.(?:call|pages)\(\s*\"([a-z]+)\",\s*\"([A-Za-z]+)\"", path.read_text()):
            found.add(f"{IAM_PREFIX.get(service, service)}:{operation}")
    return found


def required(operations: Iterable[str], arns: Mapping[str, list[str]]) -> list[Request]:
    """The IAM requests behind ``operations``: their actions, implied actions, on every deployed resource."""
    actions: set[str] = set()
    for operation in operations:
        actions.update(NOT_ACTIONS.get(operation, (operation,)))
    for action in list(actions):
        actions.update(dependent for entry in rows(action) for dependent in entry["dependent_actions"])
    requests = []
    for action in sorted(actions):
        entries = rows(action)
        assert entries, f"{action} is no IAM action: map the operation in NOT_ACTIONS"
        kinds = {kind for e in entries if (kind := _kind(e["resource_arn_format"])) is not None}
        if not kinds:
            assert any(e["resource_arn_format"] == "*" for e in entries), f"{action}: no resource kind known"
            requests.append(Request(action, "*"))
        for kind in sorted(kinds):
            requests += [Request(action, arn) for arn in arns[kind]]
    return requests


def _record(example: Workspace) -> set[str]:
    seen: set[str] = set()

    def step(*args: str, code: int | None = 0) -> None:
        result = example.run(*args)
        assert code is None or result.code == code, result.text
        for operation in example.aws.proxy.counts():
            service, _, name = operation.partition(":")
            seen.add(f"{IAM_PREFIX.get(service, service)}:{name}")

    step("plan")
    step("apply", "--auto-approve")
    example.edit("command: [python, -m, ingest.fetch]", "command: [python, -m, ingest.fetch, --all]")
    step("apply", "--auto-approve")
    step("rollback", "--to", "1", "--auto-approve")
    step("run", "ingest")
    step("status", code=None)  # its exit code says whether what is deployed matches the edited manifest
    example.edit("protect: true", "protect: false")
    step("apply", "--auto-approve")
    step("destroy", "--auto-approve")
    return seen


@pytest.fixture(scope="module")
def resources() -> list[Resource]:
    return compile_manifest(load())


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deployer.json", "execution-role.json", "events-role.json"])
def test_each_policy_names_real_actions_resources_and_condition_keys(name: str) -> None:
    assert problems_of(policy(name)) == []


def test_the_checker_finds_what_was_wrong_with_the_policies_shipped_before() -> None:
    old_events = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "states:StartExecution",
                "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:recsys-*:live",
            }
        ]
    }
    start = Request(
        "states:StartExecution",
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:recsys-prod-ingest",
        {"states:StateMachineQualifier": "live"},
    )
    assert not allows(old_events, start)  # AWS authorises against the machine ARN
    wrong = {
        "Statement": [
            {
                "Sid": "A",
                "Effect": "Allow",
                "Action": ["dynamodb:TransactWriteItems", "batch:DescribeJobs"],
                "Resource": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/*",
            }
        ]
    }
    found = problems_of(wrong)
    assert any("TransactWriteItems is no IAM action" in p for p in found)
    assert any("DescribeJobs supports only Resource '*'" in p for p in found)


def test_the_events_role_starts_only_the_live_alias_of_the_projects_machines(resources: list[Resource]) -> None:
    events = policy("events-role.json")
    targets = [r.body["Target"]["Arn"] for r in resources if r.address.kind == "Schedule"]
    targets += [t["Arn"] for r in resources if r.address.kind == "Rule" for t in r.body["Targets"]]
    assert len(targets) == 6
    for target in targets:
        machine, _, qualifier = target.rpartition(":")
        assert qualifier == "live"
        assert allows(events, Request("states:StartExecution", machine, {"states:StateMachineQualifier": "live"}))
        assert not allows(events, Request("states:StartExecution", machine))  # the bare machine
        assert not allows(events, Request("states:StartExecution", machine, {"states:StateMachineQualifier": "3"}))
    other = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:payments-prod-settle"
    assert not allows(events, Request("states:StartExecution", other, {"states:StateMachineQualifier": "live"}))


def test_the_execution_role_runs_every_batch_task_and_reads_the_sink_secrets(resources: list[Resource]) -> None:
    role = policy("execution-role.json")
    arns = deployed_arns(resources)
    base = f"{REGION}:{ACCOUNT}"
    machines = [r.body["definition"] for r in resources if r.address.kind == "StateMachine"]
    assert all(BATCH_SUBMIT_SYNC in json.dumps(m) for m in machines)
    queue = f"arn:aws:batch:{base}:job-queue/flowplan-batch"
    requests = [
        Request("batch:SubmitJob", arn)
        for arn in [queue, f"arn:aws:batch:{base}:job/abc", *arns["job-definition"], *arns["job-definition-revision"]]
    ]
    requests += [Request("batch:TerminateJob", f"arn:aws:batch:{base}:job/abc"), Request("batch:DescribeJobs", "*")]
    managed_rule = f"arn:aws:events:{base}:rule/StepFunctionsGetEventsForBatchJobsRule"
    requests += [Request(a, managed_rule) for a in ("events:PutTargets", "events:PutRule", "events:DescribeRule")]
    secrets = {
        s["valueFrom"]
        for r in resources
        if r.address.kind == "JobDefinition"
        for s in r.body["containerProperties"].get("secrets", [])
    }
    assert secrets
    requests += [Request("secretsmanager:GetSecretValue", f"{arn}-AbCdEf") for arn in secrets]  # AWS's suffix
    denied = [str(r) for r in requests if not allows(role, r)]
    assert denied == []
    for request in requests:  # every action it needs is a real one, on a resource type it has
        assert rows(request.action), request.action


def test_the_deployer_may_do_everything_flowplan_did_and_can_do(example: Workspace, resources: list[Resource]) -> None:
    recorded = _record(example)
    assert {"states:CreateStateMachine", "states:UpdateStateMachine", "batch:DeregisterJobDefinition"} <= recorded
    assert {"states:StartExecution", "states:DeleteStateMachine", "scheduler:DeleteSchedule"} <= recorded
    requests = required(recorded | code_operations(), deployed_arns(resources))
    actions = {r.action for r in requests}
    assert {"states:PublishStateMachineVersion", "iam:PassRole"} <= actions  # implied, never called directly
    passed = {r.resource for r in requests if r.action == "iam:PassRole"}
    assert passed == {
        f"arn:aws:iam::{ACCOUNT}:role/flowplan-sfn-execution",
        f"arn:aws:iam::{ACCOUNT}:role/flowplan-events",
    }
    denied = [str(r) for r in requests if not allows(policy("deployer.json"), r)]
    assert denied == []


def test_the_readme_shows_exactly_the_policy_files() -> None:
    readme = (EXAMPLE / "README.md").read_text()
    for name in ("deployer.json", "execution-role.json", "events-role.json"):
        assert f"(iam/{name})" in readme, f"README.md does not link iam/{name}"
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", readme, re.DOTALL)]
    files = [
        json.loads((POLICIES / n).read_text()) for n in ("execution-role.json", "events-role.json", "deployer.json")
    ]
    assert blocks == files
