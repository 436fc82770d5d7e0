"""Seeding a server with the state a first apply leaves, without applying (for the 10,000-flow runs).

The benchmark measures applies up to 1,000 flows on the servers; larger live states are seeded:

* **Argo**: the compiled bodies, exactly what the writer POSTs, stored through the Kubernetes API
  test server's test-only ``/__harness__/objects`` side door (as a controller would store them, with
  flowplan as field manager), then the inventory saved by flowplan's own ``ConfigMapInventory``.
* **Step Functions**: flowplan's real ``StepFunctionsWriter.create`` runs for every resource against
  :class:`RecordingAws`, which answers "not found" to its checks and records each create call with
  its exact parameters; :mod:`bench.moto_server` replays them into moto's backends, and the
  inventory is saved by flowplan's own ``DynamoInventory``.

Either way the inventory holds what an apply records (entries and one revision with the applied
bodies), and the benchmark checks that a plan right after seeding has nothing to do.
"""

from __future__ import annotations

import base64
import datetime
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bench import servers
from planner.cli.session import ManifestOptions, Session, load
from planner.contract import Backend, CompileContext, InventoryEntry, InventoryState, Revision, Scope
from planner.resources import Resource, canonical_json

CHUNK = 2000
#: The order a first apply's waves create kinds in (dependencies first), for a faithful replay.
_KIND_ORDER = {
    "ConfigMap": 0,
    "EventSource": 1,
    "Parameter": 0,
    "ScheduleGroup": 0,
    "JobDefinition": 1,
    "WorkflowTemplate": 2,
    "StateMachine": 2,
    "CronWorkflow": 3,
    "Sensor": 3,
    "Rule": 3,
    "Schedule": 3,
}


def compiled(options: ManifestOptions) -> tuple[Session, str, Backend, list[Resource]]:
    session = load(options)
    name = sorted(session.backends)[0]
    backend = session.backends[name]
    resources = backend.compiler().compile(CompileContext(session.manifest, backend.spec, session.provenance))
    resources.sort(key=lambda r: (_KIND_ORDER.get(r.address.kind, 9), r.address.sort_key()))
    return session, name, backend, resources


def first_apply_inventory(session: Session, resources: Sequence[Resource]) -> InventoryState:
    """What an apply of ``resources`` into an empty backend records (planner/applying/revision.py does the same)."""
    from planner.applying.revision import as_change, hashed_sensitive

    entries = {r.address: InventoryEntry(r.spec_hash, "applied", r.flow) for r in resources}
    bodies = {str(r.address): hashed_sensitive(as_change(r)) for r in resources}
    packed = base64.b64encode(zlib.compress(canonical_json(bodies).encode(), 9)).decode()
    revision = Revision(
        number=1,
        time=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        who="bench",
        git_commit=session.provenance.git_commit,
        manifest_digest=session.provenance.manifest_digest,
        flowplan_version=session.provenance.flowplan_version,
        summary={"create": len(resources)},
        changes=[{"address": str(r.address), "action": "create"} for r in resources],
        bodies=packed,
    )
    return InventoryState(entries, [revision])


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def seed_argo(options: ManifestOptions, server_url: str, token: str) -> int:
    """Store every object a first apply creates, then the inventory; returns the object count.

    ``options`` must point the backend at the server itself (not the proxy): seeding is not measured.
    """
    session, name, backend, resources = compiled(options)
    for chunk in _chunks(resources):
        servers.post(
            f"{server_url}/__harness__/objects",
            {"objects": [r.body for r in chunk], "manager": "flowplan"},
            token=token,
        )
    scope = Scope(name, session.manifest.project, session.manifest.branch)
    backend.inventory(scope).save(first_apply_inventory(session, resources))
    return len(resources)


# --------------------------------------------------------------------------- Step Functions


class RecordingAws:
    """Stands in for :class:`backends.stepfunctions.aws.Aws` while the writer creates into an empty account.

    Reads answer "not found" (or empty); writes are recorded and answered the way AWS answers a
    first create. The recorded calls are what the writer would have sent, parameter for parameter.
    """

    READS = {
        "DescribeStateMachine": "StateMachineDoesNotExist",
        "DescribeStateMachineAlias": "ResourceNotFound",
        "DescribeRule": "ResourceNotFoundException",
        "GetSchedule": "ResourceNotFoundException",
        "GetScheduleGroup": "ResourceNotFoundException",
        "GetParameter": "ParameterNotFound",
    }

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.recorded: list[list[Any]] = []

    def calls(self) -> dict[str, int]:
        return {}

    def pages(self, service: str, operation: str, **params: Any) -> Iterator[Mapping[str, Any]]:
        if operation != "DescribeJobDefinitions":
            raise AssertionError(f"a create does not list {service}:{operation}")
        yield {"jobDefinitions": []}

    def call(self, service: str, operation: str, *, once: bool = False, resource: str = "", **params: Any) -> Any:
        from backends.stepfunctions.aws import AwsError

        if operation in self.READS:
            raise AwsError("not found (seeding)", code=self.READS[operation], operation=operation, status=400)
        if operation == "DescribeJobDefinitions":
            return {"jobDefinitions": []}
        if operation == "ListTagsForResource":
            return {"tags": [], "Tags": [], "TagList": []}
        self.recorded.append([service, operation, params])
        arn = f"arn:aws:{{}}:{self.region}:{self.account}:{{}}"
        if operation == "CreateStateMachine":
            machine = arn.format("states", f"stateMachine:{params['name']}")
            return {"stateMachineArn": machine, "stateMachineVersionArn": f"{machine}:1"}
        if operation == "CreateStateMachineAlias":
            return {"stateMachineAliasArn": params["routingConfiguration"][0]["stateMachineVersionArn"]}
        if operation == "RegisterJobDefinition":
            name = params["jobDefinitionName"]
            return {
                "jobDefinitionArn": arn.format("batch", f"job-definition/{name}:1"),
                "jobDefinitionName": name,
                "revision": 1,
            }
        if operation == "PutRule":
            return {"RuleArn": arn.format("events", f"rule/{params['Name']}")}
        if operation == "PutTargets":
            return {"FailedEntryCount": 0, "FailedEntries": []}
        if operation == "CreateSchedule":
            return {"ScheduleArn": arn.format("scheduler", f"schedule/{params.get('GroupName')}/{params['Name']}")}
        if operation == "CreateScheduleGroup":
            return {"ScheduleGroupArn": arn.format("scheduler", f"schedule-group/{params['Name']}")}
        if operation == "PutParameter":
            return {"Version": 1, "Tier": "Standard"}
        return {}


def record_stepfunctions_creates(backend: Any, scope: Scope, resources: Sequence[Resource]) -> list[list[Any]]:
    """The calls flowplan's writer makes to create ``resources`` in an empty account, in apply order."""
    from backends.stepfunctions.reader import StepFunctionsReader
    from backends.stepfunctions.writer import StepFunctionsWriter

    aws = RecordingAws(backend.settings.account_id, backend.settings.region)
    reader = StepFunctionsReader(aws, backend.settings, backend.spec.name, 1)  # type: ignore[arg-type]
    writer = StepFunctionsWriter(aws, backend.settings, scope, reader, readback_delay=0.0)  # type: ignore[arg-type]
    for resource in resources:
        writer.create(resource)
    return aws.recorded


def seed_stepfunctions(options: ManifestOptions, moto_url: str) -> int:
    """Replay a first apply's creates into moto, then save the inventory; returns the resource count.

    ``options`` must point the backend at moto itself (not the proxy).
    """
    session, name, backend, resources = compiled(options)
    scope = Scope(name, session.manifest.project, session.manifest.branch)
    calls = record_stepfunctions_creates(backend, scope, resources)
    for chunk in _chunks(calls, 5000):
        answer = servers.post(f"{moto_url}/__seed__/calls", {"calls": list(chunk)})
        if "error" in (answer or {}):
            raise RuntimeError(f"seeding moto failed: {answer['error']}")
    backend.inventory(scope).save(first_apply_inventory(session, resources))
    return len(resources)
