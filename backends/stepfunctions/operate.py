"""Operating what the Step Functions backend deployed: executions, trigger plumbing, manual runs,
branch deployments, and rollbacks that move the ``live`` alias back.

Calls, and why each:

================================  ================================================================
``ListExecutions``                one page per flow (``maxResults`` = the runs shown) on the state
                                  machine's own ARN, which lists executions started through its
                                  versions and its ``live`` alias too
``GetExecutionHistory``           only for a ``RUNNING`` execution, newest event only: says which
                                  state it is in (and, on emulators whose executions never end,
                                  how it ended: moto's documented ``SF_EXECUTION_HISTORY_TYPE``
                                  simulation keeps a "successful" execution ``RUNNING`` and puts
                                  ``ExecutionSucceeded`` in its history)
``DescribeExecution``             the newest failed execution per flow, for its error and cause
``StartExecution``                ``flowplan run``, on the ``live`` alias, with a generated name:
                                  retrying the same name and input is idempotent on AWS
``DescribeStateMachineAlias``,    a rollback: the version the alias runs now, then versions below
``DescribeStateMachine`` (per     it, newest first, until one holds the revision's definition
version)                          (at most :data:`VERSION_PROBES`)
``dynamodb:Scan``,                ``flowplan branches``: the inventory heads of the project (one
``tag:GetResources``              Scan, filtered), and the project's tagged resources
================================  ================================================================

Trigger plumbing needs no call: the reader already holds each schedule's and rule's state and
targets, and whether the ``live`` alias runs the definition flowplan published.

A rollback on Step Functions is an ordinary plan and apply of the revision's objects, with one
difference in how a state machine is updated (:class:`RollbackWriter`): instead of publishing the
old definition again as a new version, the machine's definition is set back (unpublished) and the
``live`` alias moved to the version that was published for that definition. Revisions do not
record version numbers, so the version is found by content, newest first.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from backends.stepfunctions.aws import Aws, AwsError
from backends.stepfunctions.compile import ALIAS, alias_arn, machine_arn
from backends.stepfunctions.normalize import dumps, published_hash, state_machine_body
from backends.stepfunctions.reader import Found, StepFunctionsReader
from backends.stepfunctions.state import DynamoInventory, StateTable
from backends.stepfunctions.writer import StepFunctionsWriter
from planner.contract import (
    BranchInfo,
    FlowTarget,
    LiveState,
    Run,
    RunOutcome,
    Scope,
    Submitted,
    TriggerHealth,
)
from planner.contract import (
    RollbackWriter as ContractRollbackWriter,
)
from planner.errors import BackendError, FlowplanError
from planner.manifest import StepFunctionsSettings
from planner.resources import BRANCH_KEY, MANAGED_BY, MANAGED_BY_KEY, PROJECT_KEY, Resource

__all__ = ["VERSION_PROBES", "RollbackWriter", "StepFunctionsOperator", "execution_run"]

#: Versions below the alias's current one a rollback looks at for the revision's definition.
VERSION_PROBES = 50
_STATUS: Mapping[str, RunOutcome] = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "aborted",
    "PENDING_REDRIVE": "failed",
    "RUNNING": "running",
}
_TERMINAL: Mapping[str, RunOutcome] = {
    "ExecutionSucceeded": "succeeded",
    "ExecutionFailed": "failed",
    "ExecutionTimedOut": "failed",
    "ExecutionAborted": "aborted",
}
_MISSING = frozenset({"StateMachineDoesNotExist", "ResourceNotFound", "ResourceNotFoundException"})


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else None


def execution_run(flow: str, execution: Mapping[str, Any]) -> Run:
    """A ``ListExecutions`` item as a :class:`~planner.contract.Run`."""
    status = str(execution.get("status", ""))
    return Run(
        flow=flow,
        id=str(execution.get("name", "")),
        outcome=_STATUS.get(status, "unknown"),
        started=_iso(execution.get("startDate")),
        finished=_iso(execution.get("stopDate")),
        detail=status,
    )


def _machine(flow: FlowTarget) -> Resource | None:
    return next((r for r in flow.resources if r.address.kind == "StateMachine"), None)


class StepFunctionsOperator:
    """The :class:`~planner.contract.Operator` of a Step Functions backend."""

    def __init__(
        self,
        aws: Aws,
        settings: StepFunctionsSettings,
        name: str,
        *,
        table: StateTable,
        reader: Callable[[], StepFunctionsReader],
        where: str,
        parallelism: int,
        readback_delay: float,
    ) -> None:
        """The backend's parts an operator uses: ``reader`` makes a fresh reader (a rollback writer reads
        back through its own), ``where`` names the account and region in messages."""
        self.aws = aws
        self.settings = settings
        self.name = name
        self.table = table
        self.reader = reader
        self.where = where
        self.parallelism = parallelism
        self.readback_delay = readback_delay

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        workers = min(self.parallelism, len(items))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flowplan-aws-ops") as pool:
            return list(pool.map(fn, items))

    # -- runs --------------------------------------------------------------------------

    def runs(self, scope: Scope, flows: Sequence[FlowTarget], limit: int) -> dict[str, list[Run]]:
        targets = [(f.name, m) for f in flows if (m := _machine(f)) is not None]
        listed = self._map(lambda item: self._flow_runs(item[0], item[1], limit), targets)
        result: dict[str, list[Run]] = {f.name: [] for f in flows}
        result.update({name: runs for (name, _), runs in zip(targets, listed, strict=True)})
        return result

    def _flow_runs(self, flow: str, machine: Resource, limit: int) -> list[Run]:
        arn = machine_arn(self.settings, machine.address.name)
        try:
            page = self.aws.call("stepfunctions", "ListExecutions", resource=arn, stateMachineArn=arn, maxResults=limit)
        except AwsError as exc:
            if exc.code in _MISSING:
                return []
            raise
        executions = sorted(page.get("executions", []), key=lambda e: e.get("startDate") or 0, reverse=True)[:limit]
        runs = []
        newest_failure = True
        for execution in executions:
            run = execution_run(flow, execution)
            if run.outcome == "running":
                run = self._running(run, str(execution["executionArn"]))
            if run.outcome == "failed" and newest_failure:
                newest_failure = False
                run = self._why(run, str(execution["executionArn"]))
            runs.append(run)
        return runs

    def _running(self, run: Run, execution_arn: str) -> Run:
        """Which state a running execution is in; or how it ended, when the history already says so."""
        answer = self.aws.call(
            "stepfunctions",
            "GetExecutionHistory",
            resource=execution_arn,
            executionArn=execution_arn,
            reverseOrder=True,
            maxResults=1,
        )
        events = [e for e in answer.get("events", []) if isinstance(e, dict)]
        if not events:
            return run
        last = max(events, key=lambda e: int(e.get("id", 0)))
        kind = str(last.get("type", ""))
        if kind in _TERMINAL:
            finished = _iso(last.get("timestamp"))
            if finished is not None and run.started is not None and finished < run.started:
                finished = None  # an emulator's canned history: its clock is not the execution's
            return Run(run.flow, run.id, _TERMINAL[kind], run.started, finished, f"{kind} (from its history)")
        entered = last.get("stateEnteredEventDetails") or {}
        where = f"in state {entered['name']}" if entered.get("name") else f"last event {kind}"
        return Run(run.flow, run.id, "running", run.started, None, where)

    def _why(self, run: Run, execution_arn: str) -> Run:
        described = self.aws.call(
            "stepfunctions", "DescribeExecution", resource=execution_arn, executionArn=execution_arn
        )
        error, cause = described.get("error"), described.get("cause")
        if not error and not cause:
            return run
        detail = f"{run.detail}: {error or ''}" + (f" ({str(cause)[:200]})" if cause else "")
        return Run(run.flow, run.id, run.outcome, run.started, run.finished, detail)

    # -- trigger plumbing --------------------------------------------------------------

    def trigger_health(
        self, scope: Scope, flows: Sequence[FlowTarget], live: LiveState
    ) -> dict[str, list[TriggerHealth]]:
        result: dict[str, list[TriggerHealth]] = {}
        for flow in flows:
            found: list[TriggerHealth] = []
            machine = _machine(flow)
            alias = alias_arn(self.settings, machine.address.name) if machine else None
            runnable = [r for r in flow.resources if r.address.kind in ("Schedule", "Rule")]
            if machine is not None and runnable:
                found.append(self._alias_health(flow.name, machine, live))
            for resource in sorted(runnable, key=lambda r: r.address.sort_key()):
                current = live.owned.get(resource.address)
                kind = "schedule" if resource.address.kind == "Schedule" else "rule"
                if current is None:
                    found.append(
                        TriggerHealth(flow.name, kind, resource.address.name, "missing", False, "not deployed")
                    )
                    continue
                found.append(self._target_health(flow.name, kind, resource.address.name, current.body, alias))
            result[flow.name] = found
        return result

    def _alias_health(self, flow: str, machine: Resource, live: LiveState) -> TriggerHealth:
        current = live.owned.get(machine.address)
        name = f"{machine.address.name}:{ALIAS}"
        if current is None:
            return TriggerHealth(flow, "alias", name, "missing", False, "the state machine is not deployed")
        state = str(current.body.get("alias", ""))
        if state == ALIAS:
            return TriggerHealth(flow, "alias", name, "enabled", True, "runs the definition flowplan published")
        return TriggerHealth(flow, "alias", name, "degraded", False, state.removeprefix(f"{ALIAS} ").strip("()"))

    @staticmethod
    def _target_health(flow: str, kind: str, name: str, body: Mapping[str, Any], alias: str | None) -> TriggerHealth:
        enabled = str(body.get("State", "ENABLED")) == "ENABLED"
        targets = [body["Target"]] if isinstance(body.get("Target"), dict) else list(body.get("Targets") or [])
        arns = [str(t.get("Arn", "")) for t in targets if isinstance(t, dict)]
        if not arns:
            return TriggerHealth(flow, kind, name, "degraded", False, "it has no target: it starts nothing")
        if alias is not None and alias not in arns:
            return TriggerHealth(flow, kind, name, "degraded", False, f"it starts {', '.join(arns)}, not {alias}")
        if kind == "schedule":
            state = "enabled" if enabled else "suspended"
            return TriggerHealth(
                flow, kind, name, state, True, f"starts {ALIAS}" + ("" if enabled else " when enabled")
            )
        if not enabled:
            return TriggerHealth(flow, kind, name, "disabled", False, "the rule is DISABLED: its events start nothing")
        return TriggerHealth(flow, kind, name, "enabled", True, f"on bus {body.get('EventBusName', 'default')}")

    # -- run now -----------------------------------------------------------------------

    def submit(self, scope: Scope, flow: FlowTarget, params: Mapping[str, str]) -> Submitted:
        machine = _machine(flow)
        if machine is None:
            raise BackendError(f"flow {flow.name} has no state machine on backend {self.name!r}")
        unknown = sorted(set(params) - set(flow.parameters))
        if unknown:
            raise FlowplanError(
                f"flow {flow.name} has no parameter {', '.join(unknown)}",
                hint="its parameters: " + (", ".join(sorted(flow.parameters)) or "none"),
            )
        arn = machine_arn(self.settings, machine.address.name)
        found = self.reader().state_machine(arn)
        if found is None:
            raise BackendError(
                f"flow {flow.name} is not deployed on branch {scope.branch}: state machine {arn} does not exist",
                hint=f"apply first: flowplan apply --branch {scope.branch}",
            )
        payload = dumps({**flow.parameters, **params})
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        name = f"flowplan-run-{stamp}-{uuid.uuid4().hex[:8]}"
        alias = alias_arn(self.settings, machine.address.name)
        notes: list[str] = []
        try:
            started = self._start(alias, name, payload)
        except AwsError as exc:
            if exc.code not in _MISSING or found.body.get("alias") != ALIAS:
                raise
            # The endpoint does not start executions on aliases (moto), and the machine's own definition is
            # the one the alias runs (the published mark says so): starting the machine runs the same thing.
            started = self._start(arn, name, payload)
            notes.append(
                f"the endpoint refused to start the {ALIAS} alias ({exc.code}); started the state machine itself, "
                "whose definition is the one flowplan published to the alias"
            )
        execution = str(started["executionArn"])
        region = self.settings.region
        console = (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}"
        )
        return Submitted(
            flow=flow.name,
            id=name,
            where=self.where,
            watch=(
                console,
                f"aws stepfunctions describe-execution --region {region} --execution-arn {execution}",
                f"flowplan status {flow.name} --branch {scope.branch}",
            ),
            notes=tuple(notes),
        )

    def _start(self, arn: str, name: str, payload: str) -> Mapping[str, Any]:
        answer: Mapping[str, Any] = self.aws.call(
            "stepfunctions", "StartExecution", resource=arn, stateMachineArn=arn, name=name, input=payload
        )
        return answer

    # -- branch deployments ------------------------------------------------------------

    def branches(self, project: str) -> list[BranchInfo]:
        prefix = f"{self.name}/{project}/"
        tracked: list[str] = []
        try:
            for page in self.aws.pages(
                "dynamodb",
                "Scan",
                resource=self.table.name,
                TableName=self.table.name,
                ProjectionExpression="pk",
                FilterExpression="begins_with(pk, :prefix) AND sk = :head",
                ExpressionAttributeValues={":prefix": {"S": prefix}, ":head": {"S": "inventory"}},
            ):
                tracked += [str(item["pk"]["S"])[len(prefix) :] for item in page.get("Items", [])]
        except AwsError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        counts: dict[str, int] = {}
        filters = [{"Key": MANAGED_BY_KEY, "Values": [MANAGED_BY]}, {"Key": PROJECT_KEY, "Values": [project]}]
        for page in self.aws.pages("resourcegroupstaggingapi", "GetResources", TagFilters=filters):
            for item in page.get("ResourceTagMappingList", []):
                arn = str(item.get("ResourceARN", ""))
                if arn.startswith("arn:") and ":states:" in arn and arn.count(":") > 6:
                    continue  # a machine's version or alias, not another object
                tags = {t.get("Key"): t.get("Value") for t in item.get("Tags", [])}
                branch = tags.get(BRANCH_KEY)
                if branch:
                    counts[str(branch)] = counts.get(str(branch), 0) + 1
        branches = sorted(set(tracked))
        states = self._map(lambda b: DynamoInventory(self.table, Scope(self.name, project, b)).load(), branches)
        loaded = dict(zip(branches, states, strict=True))
        result = []
        for branch in sorted(set(branches) | set(counts)):
            state = loaded.get(branch)
            if not (state and state.entries) and not counts.get(branch):
                continue  # destroyed: an inventory with its history may remain, the deployment does not
            result.append(
                BranchInfo(
                    backend=self.name,
                    branch=branch,
                    tracked=len(state.entries) if state else 0,
                    marked=counts.get(branch, 0),
                    last=state.revisions[-1] if state and state.revisions else None,
                    has_inventory=state is not None,
                )
            )
        return result

    # -- rollback ----------------------------------------------------------------------

    def rollback_writer(self, scope: Scope, dry_run: bool = False) -> ContractRollbackWriter | None:
        return RollbackWriter(
            self.aws,
            self.settings,
            scope,
            self.reader(),
            dry_run=dry_run,
            readback_delay=self.readback_delay,
        )


class RollbackWriter(StepFunctionsWriter):
    """The Step Functions writer, except that a state machine returns to a version it already published.

    Publishing the old definition again would work but leave the history of versions saying
    something else happened; moving ``live`` back to the version published for that definition is
    what a person rolling back means (and what Step Functions' own alias rollbacks do).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``(machine, version ARN)`` for every alias moved back (for the rollback's summary)
        self._restored: list[tuple[str, str]] = []
        self._restored_lock = threading.Lock()

    def restored(self) -> Sequence[tuple[str, str]]:
        with self._restored_lock:
            return list(self._restored)

    def _update_statemachine(self, resource: Resource, current: Found) -> None:
        if self.dry_run:
            return
        arn = str(current.meta["arn"])
        version = self.published_version(arn, resource.body)
        if version is None:
            super()._update_statemachine(resource, current)  # no such version kept: publish it again
            return
        body = resource.body
        # The machine's own definition goes back too (unpublished): it is what the reader compares.
        self.aws.call(
            "stepfunctions",
            "UpdateStateMachine",
            resource=arn,
            stateMachineArn=arn,
            definition=dumps(body["definition"]),
            roleArn=body["roleArn"],
            **self._machine_settings(body),
        )
        self._publish(resource, arn, version, alias_exists=True, tags=current.tags)
        with self._restored_lock:
            self._restored.append((str(body.get("name", arn)), version))

    def published_version(self, arn: str, body: Mapping[str, Any]) -> str | None:
        """The newest version of ``arn`` whose definition, role and type are ``body``'s, or None."""
        wanted = published_hash(body)
        try:
            alias = self.aws.call(
                "stepfunctions", "DescribeStateMachineAlias", resource=arn, stateMachineAliasArn=f"{arn}:{ALIAS}"
            )
        except AwsError as exc:
            if exc.code in _MISSING:
                return None
            raise
        routes = alias.get("routingConfiguration") or []
        if not routes:
            return None
        newest = str(routes[0].get("stateMachineVersionArn", "")).rsplit(":", 1)[-1]
        if not newest.isdigit():
            return None
        for number in range(int(newest), max(0, int(newest) - VERSION_PROBES), -1):
            version = f"{arn}:{number}"
            try:
                described = self.aws.call(
                    "stepfunctions", "DescribeStateMachine", resource=version, stateMachineArn=version
                )
            except AwsError as exc:
                if exc.code in _MISSING:
                    continue  # a version deleted by hand
                raise
            if published_hash(state_machine_body(described, {})) == wanted:
                return version
        return None
