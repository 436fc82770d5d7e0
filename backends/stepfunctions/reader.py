"""Reading what is deployed: list and page through each kind, describe in parallel.

Calls per plan (a budget: ``tests/backends/stepfunctions`` counts them
through the proxy):

=================  ==========================================================
kind               calls
=================  ==========================================================
StateMachine       ``tag:GetResources`` (pages, filtered by the project and
                   branch tags) + one ``DescribeStateMachine`` each; a desired
                   machine the tag listing missed is described (and its tags
                   listed) to tell "absent" from "someone else's"
Rule               ``ListRules(NamePrefix)`` per bus (pages) + one
                   ``ListTagsForResource`` and, when ours or in the way, one
                   ``ListTargetsByRule`` each
ScheduleGroup      ``GetScheduleGroup`` + its ``ListTagsForResource``
Schedule           ``ListSchedules(GroupName)`` (pages) + one ``GetSchedule``
                   each
JobDefinition      ``DescribeJobDefinitions(status=ACTIVE)`` (pages; tags
                   come with each revision)
Parameter          ``GetParametersByPath`` (pages) + one
                   ``ListTagsForResource`` each
=================  ==========================================================

Ownership comes from the tags (schedules from their tagged group). Whatever
carries this project's and branch's markers is ``owned``; anything else at a
desired address is in ``others`` (a conflict the planner reports and never
touches); anything else is ignored.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from backends.origin import made_by
from backends.stepfunctions.aws import Aws, AwsError
from backends.stepfunctions.compile import ALIAS, alias_arn, machine_arn
from backends.stepfunctions.names import (
    fit,
    parameter_address_name,
    parameter_path,
    rule_prefix,
)
from backends.stepfunctions.normalize import (
    group_body,
    job_definition_body,
    parameter_body,
    rule_body,
    schedule_body,
    state_machine_body,
    tag_dict,
    version_of,
)
from planner.contract import LiveState, Reader, Scope
from planner.manifest import StepFunctionsSettings
from planner.resources import (
    BRANCH_KEY,
    FLOW_KEY,
    MANAGED_BY,
    MANAGED_BY_KEY,
    PROJECT_KEY,
    PROTECT_KEY,
    SPEC_HASH_KEY,
    Address,
    LiveResource,
    Owner,
    Resource,
)

__all__ = ["Found", "StepFunctionsReader", "owner_of"]

T = TypeVar("T")
R = TypeVar("R")

_MISSING = frozenset(
    {
        "StateMachineDoesNotExist",
        "ResourceNotFoundException",
        "ResourceNotFound",
        "ParameterNotFound",
    }
)


def owner_of(tags: Mapping[str, str]) -> Owner | None:
    """Who the markers say owns a resource; None without flowplan's markers."""
    if tags.get(MANAGED_BY_KEY) != MANAGED_BY or PROJECT_KEY not in tags or BRANCH_KEY not in tags:
        return None
    return Owner(tags[PROJECT_KEY], tags[BRANCH_KEY], tags.get(FLOW_KEY))


@dataclass
class Found:
    """One live resource before it is sorted into owned and others."""

    address: Address
    body: dict[str, Any]
    version: str
    tags: Mapping[str, str]
    meta: dict[str, Any] = field(default_factory=dict)
    owner: Owner | None = None

    def live(self) -> LiveResource:
        owner = self.owner if self.owner is not None else owner_of(self.tags)
        return LiveResource(
            address=self.address,
            body=self.body,
            version=self.version,
            owner=owner,
            spec_hash=self.tags.get(SPEC_HASH_KEY),
            meta=self.meta,
            protected=self.tags.get(PROTECT_KEY) == "true",
            made_by=made_by(self.body),
        )


class StepFunctionsReader(Reader):
    """The :class:`~planner.contract.Reader` of a Step Functions backend."""

    def __init__(self, aws: Aws, settings: StepFunctionsSettings, backend: str, parallelism: int = 8) -> None:
        self.aws = aws
        self.settings = settings
        self.backend = backend
        self.parallelism = max(1, parallelism)

    # -- helpers shared with the writer ------------------------------------------------

    def address(self, kind: str, name: str) -> Address:
        return Address(self.backend, kind, self.settings.region, name)

    def base(self, scope: Scope) -> str:
        return f"{self.settings.name_prefix}{scope.project}-{scope.branch}"

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` on a bounded pool (describes in parallel, errors re-raised in order)."""
        todo = list(items)
        if len(todo) <= 1 or self.parallelism == 1:
            return [fn(item) for item in todo]
        workers = min(self.parallelism, len(todo))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flowplan-aws-read") as pool:
            return list(pool.map(fn, todo))

    # -- the read ----------------------------------------------------------------------

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        before = self.aws.calls()
        wanted = {r.address for r in desired}
        by_kind: dict[str, list[Resource]] = {}
        for resource in desired:
            by_kind.setdefault(resource.address.kind, []).append(resource)
        jobs: dict[str, Callable[[], list[Found]]] = {
            "machines": lambda: self.state_machines(scope, by_kind.get("StateMachine", [])),
            "rules": lambda: self.rules(scope, {r.address.name for r in by_kind.get("Rule", [])}),
            "schedules": lambda: self.schedules(scope, {r.address.name for r in by_kind.get("Schedule", [])}),
            "jobs": lambda: self.job_definitions(scope, {r.address.name for r in by_kind.get("JobDefinition", [])}),
            "parameters": lambda: self.parameters(scope),
        }
        with concurrent.futures.ThreadPoolExecutor(len(jobs), thread_name_prefix="flowplan-aws-list") as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            results = {name: future.result() for name, future in futures.items()}
        found = [item for name in jobs for item in results[name]]
        _schedules_follow_their_machines(found, self.settings)
        state = LiveState()
        for item in found:
            live = item.live()
            if live.owned_by(scope.project, scope.branch):
                state.owned[item.address] = live
            elif item.address in wanted:
                state.others[item.address] = live
        after = self.aws.calls()
        state.calls = {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] != before.get(k, 0)}
        return state

    # -- state machines ----------------------------------------------------------------

    def state_machines(self, scope: Scope, desired: Sequence[Resource]) -> list[Found]:
        tagged: dict[str, dict[str, str]] = {}
        filters = [
            {"Key": MANAGED_BY_KEY, "Values": [MANAGED_BY]},
            {"Key": PROJECT_KEY, "Values": [scope.project]},
            {"Key": BRANCH_KEY, "Values": [scope.branch]},
        ]
        for page in self.aws.pages(
            "resourcegroupstaggingapi", "GetResources", TagFilters=filters, ResourceTypeFilters=["states:stateMachine"]
        ):
            for item in page.get("ResourceTagMappingList", []):
                arn = str(item["ResourceARN"])
                if arn.count(":") == 6:  # a machine, not a version or alias
                    tagged[arn] = tag_dict(item.get("Tags", []))
        todo: list[tuple[str, dict[str, str] | None]] = list(tagged.items())
        for resource in desired:
            arn = machine_arn(self.settings, resource.address.name)
            if arn not in tagged:
                todo.append((arn, None))
        return [f for f in self._map(self._machine, todo) if f is not None]

    def _machine(self, item: tuple[str, dict[str, str] | None]) -> Found | None:
        arn, tags = item
        return self.state_machine(arn, tags)

    def state_machine(self, arn: str, tags: Mapping[str, str] | None = None) -> Found | None:
        """One machine (``tags`` from a listing, else looked up); None when it does not exist."""
        try:
            describe = self.aws.call("stepfunctions", "DescribeStateMachine", stateMachineArn=arn, resource=arn)
        except AwsError as exc:
            if exc.code in _MISSING:
                return None
            raise
        if describe.get("status") == "DELETING":
            return None  # DeleteStateMachine is asynchronous on AWS: being deleted is deleted
        if tags is None:
            tags = tag_dict(
                self.aws.call("stepfunctions", "ListTagsForResource", resourceArn=arn, resource=arn).get("tags", []),
                "key",
                "value",
            )
        body = state_machine_body(describe, tags)
        address = self.address("StateMachine", str(describe["name"]))
        meta = {"arn": arn, "alias_arn": f"{arn}:{ALIAS}"}
        return Found(address, body, version_of(body), tags, meta)

    # -- rules -------------------------------------------------------------------------

    def buses(self) -> list[str]:
        """Where rules of this backend live: ``after:`` rules on default, event rules on the configured bus."""
        return sorted({"default", self.settings.event_bus})

    def rules(self, scope: Scope, desired: set[str]) -> list[Found]:
        prefix = rule_prefix(self.base(scope))
        listed: list[dict[str, Any]] = []
        for bus in self.buses():
            for page in self.aws.pages("events", "ListRules", NamePrefix=prefix, EventBusName=bus):
                listed += [dict(rule, EventBusName=rule.get("EventBusName", bus)) for rule in page.get("Rules", [])]
        found = [f for f in self._map(lambda rule: self._rule(scope, rule, desired), listed) if f is not None]
        # A name on two buses (the bus setting changed): the one on the bus we want wins.
        unique: dict[Address, Found] = {}
        for item in sorted(found, key=lambda f: f.body.get("EventBusName") == self.settings.event_bus):
            unique[item.address] = item
        return list(unique.values())

    def _rule(self, scope: Scope, rule: Mapping[str, Any], desired: set[str]) -> Found | None:
        name = str(rule["Name"])
        arn = str(rule["Arn"])
        tags = tag_dict(self.aws.call("events", "ListTagsForResource", ResourceARN=arn, resource=arn).get("Tags", []))
        owner = owner_of(tags)
        mine = owner is not None and (owner.project, owner.branch) == (scope.project, scope.branch)
        if not mine and name not in desired:
            return None
        return self.rule(rule, tags)

    def rule(self, rule: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        name = str(rule["Name"])
        bus = str(rule.get("EventBusName", "default"))
        targets: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Rule": name, "EventBusName": bus}
            if token:
                params["NextToken"] = token
            page = self.aws.call("events", "ListTargetsByRule", resource=str(rule.get("Arn", name)), **params)
            targets += page.get("Targets", [])
            token = page.get("NextToken")
            if not token:
                break
        body = rule_body(rule, targets, tags)
        meta = {"arn": rule.get("Arn"), "bus": bus, "targets": sorted(str(t["Id"]) for t in targets)}
        return Found(self.address("Rule", name), body, version_of(body), tags, meta)

    # -- schedules ---------------------------------------------------------------------

    def group_name(self, scope: Scope) -> str:
        return fit(self.base(scope), "ScheduleGroup").physical

    def group(self, name: str) -> Found | None:
        try:
            group = self.aws.call("scheduler", "GetScheduleGroup", Name=name, resource=name)
        except AwsError as exc:
            if exc.code in _MISSING:
                return None
            raise
        if group.get("State") == "DELETING":
            return None
        arn = str(group["Arn"])
        tags = tag_dict(self.aws.call("scheduler", "ListTagsForResource", ResourceArn=arn, resource=arn).get("Tags"))
        body = group_body(group, tags)
        return Found(self.address("ScheduleGroup", name), body, version_of(body), tags, {"arn": arn})

    def schedules(self, scope: Scope, desired: set[str]) -> list[Found]:
        group = self.group(self.group_name(scope))
        if group is None:
            return []
        owner = owner_of(group.tags)
        mine = owner is not None and (owner.project, owner.branch) == (scope.project, scope.branch)
        names: list[str] = []
        for page in self.aws.pages("scheduler", "ListSchedules", GroupName=group.body["Name"]):
            names += [str(s["Name"]) for s in page.get("Schedules", [])]
        if not mine:
            names = [n for n in names if n in desired]
        found = [f for f in self._map(lambda n: self.schedule(group.body["Name"], n, owner), names) if f is not None]
        return [group, *found]

    def schedule(self, group: str, name: str, owner: Owner | None) -> Found | None:
        try:
            answer = self.aws.call("scheduler", "GetSchedule", GroupName=group, Name=name, resource=f"{group}/{name}")
        except AwsError as exc:
            if exc.code in _MISSING:
                return None
            raise
        body = schedule_body(answer)
        meta = {"arn": answer.get("Arn"), "group": group}
        # Scheduler has no tags on schedules: the group's markers stand for them (the flow comes later).
        tags = {MANAGED_BY_KEY: MANAGED_BY, PROJECT_KEY: owner.project, BRANCH_KEY: owner.branch} if owner else {}
        return Found(self.address("Schedule", name), body, version_of(body), tags, meta, owner)

    # -- job definitions ---------------------------------------------------------------

    def job_definitions(self, scope: Scope, desired: set[str]) -> list[Found]:
        prefix = self.base(scope) + "-"
        revisions: dict[str, list[Mapping[str, Any]]] = {}
        for page in self.aws.pages("batch", "DescribeJobDefinitions", status="ACTIVE"):
            for job in page.get("jobDefinitions", []):
                name = str(job["jobDefinitionName"])
                if name.startswith(prefix) or name in desired:
                    revisions.setdefault(name, []).append(job)
        return [self.job_definition(name, revs) for name, revs in sorted(revisions.items())]

    def job_definition(self, name: str, revisions: Sequence[Mapping[str, Any]]) -> Found:
        """One name's ACTIVE revisions: the newest is the body, every one is deregistered on delete.

        More than one ACTIVE revision (a register whose lost answer landed after it was sent again, an update
        stopped before it deregistered the old one) shows as ``activeRevisions`` in the body, which the
        desired body never has: the plan updates it, and the update keeps one revision.
        """
        ordered = sorted(revisions, key=lambda job: int(job.get("revision", 0)))
        latest = ordered[-1]
        body = job_definition_body(latest)
        if len(ordered) > 1:
            body["activeRevisions"] = len(ordered)
        arns = [str(job["jobDefinitionArn"]) for job in ordered]
        return Found(self.address("JobDefinition", name), body, version_of(body, arns), body["tags"], {"arns": arns})

    # -- SSM parameters ----------------------------------------------------------------

    def parameter_root(self, scope: Scope) -> str:
        return parameter_path(self.settings.name_prefix, scope.project, scope.branch, "x").rsplit("/", 1)[0]

    def parameters(self, scope: Scope) -> list[Found]:
        items: list[Mapping[str, Any]] = []
        for page in self.aws.pages("ssm", "GetParametersByPath", Path=self.parameter_root(scope), Recursive=True):
            items += page.get("Parameters", [])
        return self._map(self.parameter, items)

    def parameter(self, item: Mapping[str, Any]) -> Found:
        name = str(item["Name"])
        tags = tag_dict(
            self.aws.call("ssm", "ListTagsForResource", ResourceType="Parameter", ResourceId=name, resource=name).get(
                "TagList", []
            )
        )
        body = parameter_body(item, tags)
        address = self.address("Parameter", parameter_address_name(name))
        return Found(address, body, version_of(body, item.get("Version")), tags, {"version": item.get("Version")})


def _schedules_follow_their_machines(found: list[Found], settings: StepFunctionsSettings) -> None:
    """A schedule's flow and protection are its target machine's (schedules carry no tags of their own)."""
    machines = {alias_arn(settings, f.address.name): f for f in found if f.address.kind == "StateMachine"}
    for item in found:
        if item.address.kind != "Schedule" or item.owner is None:
            continue
        machine = machines.get(str(item.body.get("Target", {}).get("Arn", "")))
        if machine is None:
            continue
        flow = machine.tags.get(FLOW_KEY)
        item.owner = Owner(item.owner.project, item.owner.branch, flow)
        tags = dict(item.tags)
        if flow:
            tags[FLOW_KEY] = flow
        if machine.tags.get(PROTECT_KEY) == "true":
            tags[PROTECT_KEY] = "true"
        item.tags = tags
