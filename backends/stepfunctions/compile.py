"""Manifest → desired AWS resources for one Step Functions backend. Pure: no I/O, no SDK.

Per flow on the backend (``<base>`` is ``<name_prefix><project>-<branch>``):

- ``JobDefinition`` ``<base>-<flow>-<step>-<hash>`` per step (AWS Batch; the
  hash is over the step's logical name and content, so a changed step is a new
  name: registered first, the old one deregistered once nothing uses it);
- ``StateMachine`` ``<base>-<flow>``: STANDARD, one Batch task per step (see
  :mod:`backends.stepfunctions.asl`), published as a version behind the alias
  ``live`` on every change;
- ``Schedule`` ``<base>-<flow>`` in the group ``<base>`` when it has a
  schedule, targeting the alias;
- ``Rule`` ``<base>-<flow>-after-<upstream>`` / ``<base>-<flow>-on-<event>``
  per trigger, targeting the alias.

Shared by the flows of a project and branch:

- ``ScheduleGroup`` ``<base>``: the tagged owner of its schedules (Scheduler
  allows tags on groups only);
- ``Parameter`` (SSM) ``/flowplan/<prefix><project>/<branch>/sinks/<sink>``
  per sink a flow here uses: its non-secret settings as JSON.

Bodies are the *normalized* form the reader rebuilds from AWS's answers (see
:mod:`backends.stepfunctions.normalize`): definitions, inputs, patterns and
parameter values as parsed JSON; tags as a mapping. Ownership markers are tags
sent in the create call itself; the spec hash and provenance tags are
volatile (never hashed, never diffed), so a new commit alone changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.stepfunctions.asl import MIN_ATTEMPT_SECONDS, AslInputs, definition, state_names
from backends.stepfunctions.cron import AwsCronError, to_aws_cron
from backends.stepfunctions.cron import schedule_facts as aws_schedule_facts
from backends.stepfunctions.names import (
    LIMITS,
    Claim,
    Name,
    check_unique,
    cut,
    fit,
    parameter_address_name,
    parameter_path,
    rule_name,
)
from backends.stepfunctions.patterns import after_pattern, event_pattern, input_transformer
from planner.contract import CompileContext, Compiler, ScheduleFacts
from planner.errors import ManifestError, Problem
from planner.manifest import Backend as BackendSpec
from planner.manifest import Flow, Manifest, Schedule, Step, StepFunctionsSettings
from planner.resources import (
    BRANCH_KEY,
    FLOW_KEY,
    LOGICAL_NAME_KEY,
    MANAGED_BY,
    MANAGED_BY_KEY,
    PROJECT_KEY,
    PROTECT_KEY,
    PROVENANCE_KEYS,
    SPEC_HASH_KEY,
    Address,
    Provenance,
    Resource,
    Toggle,
    digest,
    join_pointer,
    pointers_to_values,
    spec_hash,
)
from planner.schedule import CronError

__all__ = [
    "ALIAS",
    "DEFAULT_MEMORY_MIB",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_VCPUS",
    "KINDS",
    "TAGS_FIELD",
    "StepFunctionsCompiler",
    "alias_arn",
    "machine_arn",
    "partition",
    "volatile_paths",
]

#: The alias schedules and rules start; every apply publishes a version and moves it.
ALIAS = "live"
KINDS = ("JobDefinition", "Parameter", "Rule", "Schedule", "ScheduleGroup", "StateMachine")
#: Where each kind keeps its tags in the body (each API's own spelling). Schedules have none.
TAGS_FIELD: Mapping[str, str] = {
    "StateMachine": "tags",
    "JobDefinition": "tags",
    "Rule": "Tags",
    "ScheduleGroup": "Tags",
    "Parameter": "Tags",
}
#: What Scheduler returns when no retry policy was given; written out so the reader needs no defaulting.
DEFAULT_RETRY_POLICY: Mapping[str, int] = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
DEFAULT_VCPUS = 1
DEFAULT_MEMORY_MIB = 2048
#: Batch on EC2: at least 4 MiB; SSM Standard tier: 4 KB values.
MIN_MEMORY_MIB = 4
MAX_PARAMETER_BYTES = 4096
TARGET_ID = "flowplan"
_MIB = 2**20


def volatile_paths(kind: str) -> tuple[str, ...]:
    """The spec-hash and provenance tags of ``kind``: excluded from hashing and diffing."""
    tags = TAGS_FIELD.get(kind)
    if tags is None:
        return ()
    return tuple(join_pointer([tags, key]) for key in (SPEC_HASH_KEY, *PROVENANCE_KEYS))


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def machine_arn(settings: StepFunctionsSettings, name: str) -> str:
    return f"arn:{partition(settings.region)}:states:{settings.region}:{settings.account_id}:stateMachine:{name}"


def alias_arn(settings: StepFunctionsSettings, name: str) -> str:
    return f"{machine_arn(settings, name)}:{ALIAS}"


class StepFunctionsCompiler(Compiler):
    """The :class:`~planner.contract.Compiler` for backends rendering Step Functions (``stepfunctions``, ``files``)."""

    def schedule_facts(self, kind: str, body: Mapping[str, Any] | None) -> ScheduleFacts | None:
        """Scheduler schedules and scheduled EventBridge rules, with AWS cron read back as standard cron."""
        return aws_schedule_facts(body) if kind in ("Schedule", "Rule") else None

    def compile(self, context: CompileContext) -> list[Resource]:
        """Desired resources for ``context.backend``, sorted by address.

        Raises ManifestError for what Step Functions cannot run: ``concurrency``
        other than allow, a cron restricting both day fields, a sink whose only
        credential is a Kubernetes secret, schedules or triggers without an
        events role, event filters EventBridge cannot express, names that
        collide once cut to AWS's limits.
        """
        return _Compilation(context).run()


@dataclass
class _Draft:
    kind: str
    name: Name
    body: dict[str, Any]
    flow: Flow | None = None
    depends_on: tuple[Address, ...] = ()
    notes: list[str] = field(default_factory=list)
    replace_paths: tuple[str, ...] = ()
    protect: bool | None = None  # None: the flow's protect

    @property
    def protected(self) -> bool:
        if self.protect is not None:
            return self.protect
        return self.flow.protect if self.flow is not None else False


@dataclass(frozen=True)
class _FlowNames:
    machine: Name
    schedule: Name | None
    jobs: Mapping[str, Name]
    rules: Mapping[str, Name]  # trigger key -> name


def _settings(backend: BackendSpec) -> StepFunctionsSettings:
    if backend.stepfunctions is None or backend.renders != "stepfunctions":
        raise ManifestError(
            Problem(
                backend.loc,
                f"backends.{backend.name}",
                f"backend {backend.name!r} does not render Step Functions resources",
                "give it type: stepfunctions, or type: files with render: stepfunctions and a stepfunctions: block",
            )
        )
    return backend.stepfunctions


def sink_env_name(sink: str) -> str:
    """``feature-cache`` → ``FEATURE_CACHE``, the middle of every ``FLOWPLAN_SINK_*`` variable."""
    return sink.upper().replace("-", "_")


class _Compilation:
    """One compile: checks first (every problem at once), then names, then resources, then markers."""

    def __init__(self, context: CompileContext) -> None:
        self.manifest: Manifest = context.manifest
        self.backend = context.backend
        self.settings = _settings(context.backend)
        self.provenance: Provenance = context.provenance
        self.flows = self.manifest.flows_on(context.backend.name)
        self.sinks = sorted({sink for flow in self.flows for sink in flow.sinks})
        self.base = f"{self.settings.name_prefix}{self.manifest.project}-{self.manifest.branch}"
        self.sensitive = self._sensitive_values()

    # -- checks ----------------------------------------------------------------------

    def _problems(self) -> list[Problem]:
        problems: list[Problem] = []
        seen_schedules: set[int] = set()
        for flow in self.flows:
            schedule = flow.schedule
            if schedule is not None and id(schedule) not in seen_schedules:
                seen_schedules.add(id(schedule))
                problems += self._schedule_problems(flow, schedule)
            variables: dict[str, str] = {}
            for name, parameter in flow.parameters.items():
                other = variables.setdefault(name.upper(), name)
                if other != name:
                    problems.append(
                        Problem(
                            parameter.loc,
                            f"flows.{flow.name}.parameters.{name}",
                            f"parameters {other!r} and {name!r} both become FLOWPLAN_PARAM_{name.upper()}",
                            "rename one of them",
                        )
                    )
            for sink in flow.sinks:
                credentials = self.manifest.sinks[sink].credentials
                if credentials is not None and credentials.arn is None and credentials.secret is not None:
                    problems.append(
                        Problem(
                            flow.loc,
                            f"flows.{flow.name}.sinks",
                            f"sink {sink!r} keeps its credentials in the Kubernetes Secret {credentials.secret!r}, "
                            f"which AWS Batch jobs of Step Functions backend {self.backend.name!r} cannot read",
                            "give the sink credentials: {arn: arn:aws:secretsmanager:...} (AWS Secrets Manager), "
                            "or run this flow on an argo backend",
                        )
                    )
        needs_role = [f.name for f in self.flows if f.schedule is not None or f.triggers]
        if needs_role and not self.settings.events_role_arn:
            problems.append(
                Problem(
                    self.backend.loc,
                    f"backends.{self.backend.name}.stepfunctions",
                    f"flows {', '.join(repr(n) for n in needs_role)} have schedules or triggers, and EventBridge "
                    "needs an IAM role to start their executions",
                    "set events_role_arn: a role EventBridge Scheduler and EventBridge may assume, allowed "
                    "states:StartExecution on the flows' state machines for their live alias "
                    "(examples/stepfunctions/iam/events-role.json)",
                )
            )
        used_events = sorted({t.event for flow in self.flows for t in flow.triggers if t.event is not None})
        for event in used_events:
            _, found = event_pattern(self.manifest.events[event], f"events.{event}")
            problems += found
        return problems

    def _schedule_problems(self, flow: Flow, schedule: Schedule) -> list[Problem]:
        where = f"schedules.{schedule.name}" if schedule.name else f"flows.{flow.name}.schedule"
        problems = []
        if schedule.concurrency != "allow":
            problems.append(
                Problem(
                    schedule.loc,
                    f"{where}.concurrency",
                    f"concurrency: {schedule.concurrency} cannot be enforced on Step Functions: EventBridge "
                    "Scheduler starts a new execution at every fire time and can neither skip one while a run is "
                    "still going nor stop the old run",
                    "remove the key (allow is the only value this backend accepts); to keep runs from overlapping, "
                    "let the flow's first step check for a running execution, or run it on an argo backend",
                )
            )
        try:
            to_aws_cron(schedule.cron)
        except AwsCronError as exc:
            problems.append(Problem(schedule.loc, f"{where}.cron", exc.message, exc.hint))
        except CronError as exc:  # pragma: no cover - the loader validated the cron
            problems.append(Problem(schedule.loc, f"{where}.cron", exc.message, exc.hint))
        return problems

    def _sensitive_values(self) -> frozenset[str]:
        values = set(self.manifest.sensitive_values)
        for flow in self.flows:
            for step in flow.steps.values():
                values.update(env.value for env in step.env.values() if env.sensitive and env.value)
        return frozenset(values)

    # -- names -----------------------------------------------------------------------

    def _machine_name(self, flow: Flow) -> Name:
        if self.settings.naming == "metaflow":
            return fit(
                f"{self.settings.name_prefix}{self.manifest.project}.{self.manifest.branch}.{flow.name}", "StateMachine"
            )
        return fit(f"{self.base}-{flow.name}", "StateMachine")

    def _group_name(self) -> Name:
        return fit(self.base, "ScheduleGroup")

    def _rule_rest(self, flow: Flow, key: str) -> str:
        kind, _, other = key.partition(":")
        return f"{flow.name}-after-{other}" if kind == "after" else f"{flow.name}-on-{other}"

    def _flow_names(self, flow: Flow, jobs: Mapping[str, Name]) -> _FlowNames:
        return _FlowNames(
            machine=self._machine_name(flow),
            schedule=fit(f"{self.base}-{flow.name}", "Schedule") if flow.schedule is not None else None,
            jobs=jobs,
            rules={t.key: rule_name(self.base, self._rule_rest(flow, t.key)) for t in flow.triggers},
        )

    def _claims(self, names: Mapping[str, _FlowNames]) -> Iterator[Claim]:
        for flow in self.flows:
            owner, path = f"flow {flow.name!r}", f"flows.{flow.name}"
            flow_names = names[flow.name]
            yield Claim("StateMachine", flow_names.machine, owner, flow.loc, path)
            if flow_names.schedule is not None:
                yield Claim("Schedule", flow_names.schedule, owner, flow.loc, path)
            for index, trigger in enumerate(flow.triggers):
                yield Claim(
                    "Rule",
                    flow_names.rules[trigger.key],
                    f"trigger {trigger.key} of flow {flow.name!r}",
                    trigger.loc,
                    f"{path}.triggers[{index}]",
                )
            for step, job in flow_names.jobs.items():
                yield Claim(
                    "JobDefinition",
                    job,
                    f"step {step!r} of flow {flow.name!r}",
                    flow.steps[step].loc,
                    f"{path}.steps.{step}",
                )
            for step, states in state_names(flow, self._event_parameters(flow)).items():
                for state in states:
                    where = flow.steps[step].loc if step else flow.loc
                    owner_text = f"step {step!r}" if step else "flowplan's own states"
                    yield Claim(
                        f"State in {flow.name}",
                        Name(state, state),
                        owner_text,
                        where,
                        f"{path}.steps.{step}" if step else path,
                    )

    # -- the run -----------------------------------------------------------------------

    def run(self) -> list[Resource]:
        problems = self._problems()
        if problems:
            raise ManifestError(problems)
        jobs = {
            flow.name: {name: self._job_definition(flow, step) for name, step in flow.steps.items()}
            for flow in self.flows
        }
        names = {
            flow.name: self._flow_names(flow, {step: draft.name for step, draft in jobs[flow.name].items()})
            for flow in self.flows
        }
        check_unique(self._claims(names))
        drafts: list[_Draft] = [self._parameter(sink) for sink in self.sinks]
        if any(flow.schedule is not None for flow in self.flows):
            drafts.append(_Draft("ScheduleGroup", self._group_name(), {"Name": self._group_name().physical}))
        for flow in self.flows:
            flow_jobs = jobs[flow.name]
            for draft in flow_jobs.values():
                draft.depends_on = tuple(sorted(self._parameter_address(s) for s in flow.sinks))
            drafts += flow_jobs.values()
            drafts += self._flow_drafts(flow, names[flow.name], names)
        return sorted((self._finish(d) for d in drafts), key=lambda r: r.address)

    def _address(self, kind: str, name: str) -> Address:
        return Address(self.backend.name, kind, self.settings.region, name)

    def _parameter_address(self, sink: str) -> Address:
        path = parameter_path(self.settings.name_prefix, self.manifest.project, self.manifest.branch, sink)
        return self._address("Parameter", parameter_address_name(path))

    # -- shared resources ------------------------------------------------------------

    def _parameter(self, sink: str) -> _Draft:
        spec = self.manifest.sinks[sink]
        path = parameter_path(self.settings.name_prefix, self.manifest.project, self.manifest.branch, sink)
        value = {"type": spec.type, **{k: spec.settings[k] for k in sorted(spec.settings)}}
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        if len(text.encode()) > MAX_PARAMETER_BYTES:
            raise ManifestError(
                Problem(spec.loc, f"sinks.{sink}", f"its settings take {len(text)} bytes as JSON; SSM allows 4096")
            )
        name = Name(parameter_address_name(path), parameter_address_name(path))
        return _Draft("Parameter", name, {"Name": path, "Type": "String", "Value": value})

    # -- per flow --------------------------------------------------------------------

    def _flow_drafts(self, flow: Flow, names: _FlowNames, all_names: Mapping[str, _FlowNames]) -> list[_Draft]:
        machine = self._state_machine(flow, names)
        machine_address = self._address("StateMachine", names.machine.physical)
        drafts = [machine]
        if names.schedule is not None:
            drafts.append(self._schedule(flow, names, machine_address))
        for trigger in flow.triggers:
            if trigger.after is not None:
                upstream = all_names[trigger.after].machine.physical
                drafts.append(self._after_rule(flow, names, trigger.key, upstream, machine_address))
            elif trigger.event is not None:
                drafts.append(self._event_rule(flow, names, trigger.key, trigger.event, machine_address))
        return drafts

    def _state_machine(self, flow: Flow, names: _FlowNames) -> _Draft:
        inputs = AslInputs(
            project=self.manifest.project,
            branch=self.manifest.branch,
            job_queue=self.settings.job_queue or "",
            job_definitions={step: job.physical for step, job in names.jobs.items()},
            event_parameters=self._event_parameters(flow),
        )
        body = {
            "name": names.machine.physical,
            "type": "STANDARD",
            "roleArn": self.settings.execution_role_arn or "",
            "definition": definition(flow, inputs),
            "alias": ALIAS,
        }
        depends = tuple(sorted(self._address("JobDefinition", job.physical) for job in names.jobs.values()))
        notes = [
            f"step {step.name!r}: timeout {step.timeout}s is a {MIN_ATTEMPT_SECONDS}s Batch attempt timeout "
            f"(Batch's minimum); the state still times out after {step.timeout}s"
            for step in flow.steps.values()
            if step.timeout is not None and step.timeout < MIN_ATTEMPT_SECONDS
        ]
        return _Draft(
            "StateMachine", names.machine, body, flow=flow, depends_on=depends, notes=notes, replace_paths=("/type",)
        )

    def _event_parameters(self, flow: Flow) -> frozenset[str]:
        """The parameters of ``flow`` an event trigger maps from its event (they fall back to defaults)."""
        return frozenset(
            name
            for trigger in flow.triggers
            if trigger.event is not None
            for name in self.manifest.events[trigger.event].parameters
        )

    def _job_definition(self, flow: Flow, step: Step) -> _Draft:
        notes: list[str] = []
        container: dict[str, Any] = {"image": step.image}
        container["command"] = ["sh", "-c", step.command[0]] if step.shell else list(step.command)
        env = {name: value.value for name, value in step.env.items()}
        if flow.sinks:
            env["FLOWPLAN_SINKS"] = ",".join(flow.sinks)
            for sink in flow.sinks:
                env[f"FLOWPLAN_SINK_{sink_env_name(sink)}_PARAMETER"] = parameter_path(
                    self.settings.name_prefix, self.manifest.project, self.manifest.branch, sink
                )
        if env:
            container["environment"] = [{"name": k, "value": env[k]} for k in sorted(env)]
        container["resourceRequirements"] = self._requirements(step, notes)
        secrets = []
        for sink in flow.sinks:
            credentials = self.manifest.sinks[sink].credentials
            if credentials is not None and credentials.arn:
                secrets.append(
                    {"name": f"FLOWPLAN_SINK_{sink_env_name(sink)}_CREDENTIALS", "valueFrom": credentials.arn}
                )
        if secrets:
            container["secrets"] = sorted(secrets, key=lambda s: s["name"])
            # Batch injects secrets with the job's execution role (ECS pulls them before the container starts).
            container["executionRoleArn"] = (
                self.settings.job_execution_role_arn or self.settings.execution_role_arn or ""
            )
            notes.append(
                "sink secrets are read with the execution role at job start: it must trust ecs-tasks.amazonaws.com "
                "and may call secretsmanager:GetSecretValue on them (examples/stepfunctions/README.md)"
            )
        content = {"type": "container", "platformCapabilities": ["EC2"], "containerProperties": container}
        logical = f"{self.base}-{flow.name}-{step.name}"
        suffix = digest({"logical": logical, "content": content})[:10]
        name = Name(f"{cut(logical, LIMITS['JobDefinition'] - 11)}-{suffix}", f"{logical}-{suffix}")
        body = {"jobDefinitionName": name.physical, **content}
        # Not protected: a job definition is an immutable revision that every change of its step supersedes
        # (its name is content-addressed); the flow's state machine carries the protection.
        return _Draft("JobDefinition", name, body, flow=flow, notes=notes, protect=False)

    def _requirements(self, step: Step, notes: list[str]) -> list[dict[str, str]]:
        """Batch VCPU and MEMORY (and GPU), rounded up to what Batch on EC2 accepts; the plan says so."""
        res = step.resources
        vcpus = DEFAULT_VCPUS if res.cpu_millis is None else max(1, math.ceil(res.cpu_millis / 1000))
        if res.memory_bytes is None:
            mib = DEFAULT_MEMORY_MIB
        else:
            mib = max(MIN_MEMORY_MIB, math.ceil(res.memory_bytes / _MIB))
        said = []
        if res.cpu_millis is None:
            said.append(f"no cpu given: {vcpus} vCPU")
        elif vcpus * 1000 != res.cpu_millis:
            said.append(f"cpu {res.cpu} is {vcpus} vCPU (Batch on EC2 counts whole vCPUs)")
        if res.memory_bytes is None:
            said.append(f"no memory given: {mib} MiB")
        elif mib * _MIB != res.memory_bytes:
            said.append(f"memory {res.memory} is {mib} MiB (Batch counts whole MiB, at least 4)")
        if said:
            notes.append(f"step {step.name!r}: " + "; ".join(said))
        result = [{"type": "MEMORY", "value": str(mib)}, {"type": "VCPU", "value": str(vcpus)}]
        if res.gpu > 0:
            result.insert(0, {"type": "GPU", "value": str(res.gpu)})
        return result

    def _input(self, flow: Flow) -> dict[str, str]:
        return {name: p.default_text for name, p in flow.parameters.items()}

    def _schedule(self, flow: Flow, names: _FlowNames, machine_address: Address) -> _Draft:
        schedule = flow.schedule
        assert schedule is not None and names.schedule is not None
        expression = to_aws_cron(schedule.cron)
        suspended = schedule.suspend or not self.manifest.schedules_enabled()
        notes = [f"cron {schedule.cron!r} in {schedule.timezone} is {expression} on EventBridge Scheduler"]
        if not schedule.suspend and suspended:
            notes.append(
                f"disabled: branch {self.manifest.branch!r} is not prod; pass --enable-schedules to let it fire"
            )
        retry = dict(DEFAULT_RETRY_POLICY)
        if schedule.starting_deadline is not None:
            age = min(max(schedule.starting_deadline, 60), 86400)
            retry["MaximumEventAgeInSeconds"] = age
            if age != schedule.starting_deadline:
                notes.append(
                    f"starting_deadline {schedule.starting_deadline}s is {age}s: Scheduler keeps trying to start a "
                    "run for 60 s to 24 h"
                )
        body: dict[str, Any] = {
            "Name": names.schedule.physical,
            "GroupName": self._group_name().physical,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "State": "DISABLED" if suspended else "ENABLED",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": alias_arn(self.settings, names.machine.physical),
                "RoleArn": self.settings.events_role_arn or "",
                "Input": self._input(flow),
                "RetryPolicy": retry,
            },
        }
        if schedule.description:
            body["Description"] = schedule.description[:512]
        group = self._address("ScheduleGroup", self._group_name().physical)
        return _Draft(
            "Schedule",
            names.schedule,
            body,
            flow=flow,
            depends_on=tuple(sorted((group, machine_address))),
            notes=notes,
            replace_paths=("/GroupName",),
        )

    def _rule(
        self,
        flow: Flow,
        name: Name,
        bus: str,
        pattern: dict[str, Any],
        description: str,
        target_extra: dict[str, Any],
        machine_address: Address,
    ) -> _Draft:
        target = {
            "Id": TARGET_ID,
            "Arn": alias_arn(self.settings, machine_address.name),
            "RoleArn": self.settings.events_role_arn or "",
            **target_extra,
        }
        body = {
            "Name": name.physical,
            "EventBusName": bus,
            "EventPattern": pattern,
            "State": "ENABLED",
            "Description": description[:512],
            "Targets": [target],
        }
        return _Draft("Rule", name, body, flow=flow, depends_on=(machine_address,), replace_paths=("/EventBusName",))

    def _after_rule(self, flow: Flow, names: _FlowNames, key: str, upstream: str, machine_address: Address) -> _Draft:
        upstream_flow = key.partition(":")[2]
        return self._rule(
            flow,
            names.rules[key],
            "default",  # Step Functions reports execution status changes on the default bus only
            after_pattern(machine_arn(self.settings, upstream)),
            f"flowplan: start {flow.name} when a run of {upstream_flow} succeeds",
            {"Input": self._input(flow)},
            machine_address,
        )

    def _event_rule(self, flow: Flow, names: _FlowNames, key: str, event: str, machine_address: Address) -> _Draft:
        spec = self.manifest.events[event]
        pattern, _ = event_pattern(spec, f"events.{event}")
        extra: dict[str, Any] = (
            {"InputTransformer": input_transformer(spec.parameters.items())}
            if spec.parameters
            else {"Input": self._input(flow)}
        )
        return self._rule(
            flow,
            names.rules[key],
            self.settings.event_bus,
            pattern,
            f"flowplan: start {flow.name} on event {event} ({spec.source} {spec.type})",
            extra,
            machine_address,
        )

    # -- markers, hash, sensitive values --------------------------------------------------

    def _tags(self, draft: _Draft) -> dict[str, str]:
        """The flow's tags, then flowplan's markers (which always win), then provenance."""
        tags: dict[str, str] = {}
        if draft.flow is not None:
            tags.update(draft.flow.tags)
        tags.update({MANAGED_BY_KEY: MANAGED_BY, PROJECT_KEY: self.manifest.project, BRANCH_KEY: self.manifest.branch})
        if draft.flow is not None:
            tags[FLOW_KEY] = draft.flow.name
            if draft.protected:
                tags[PROTECT_KEY] = "true"
        if draft.name.shortened:
            tags[LOGICAL_NAME_KEY] = draft.name.logical
        tags.update(self.provenance.markers())
        return tags

    def _finish(self, draft: _Draft) -> Resource:
        body = dict(draft.body)
        notes = list(draft.notes)
        if draft.name.shortened:
            notes.append(f"name shortened from {draft.name.logical!r} ({len(draft.name.logical)} characters)")
        volatile = volatile_paths(draft.kind)
        tags_field = TAGS_FIELD.get(draft.kind)
        if tags_field is not None:
            tags = self._tags(draft)
            body[tags_field] = dict(sorted(tags.items()))
            tags[SPEC_HASH_KEY] = spec_hash(body, volatile)
            body[tags_field] = dict(sorted(tags.items()))
        return Resource(
            address=self._address(draft.kind, draft.name.physical),
            body=body,
            depends_on=draft.depends_on,
            flow=draft.flow.name if draft.flow is not None else None,
            volatile_paths=volatile,
            replace_paths=draft.replace_paths,
            sensitive_paths=tuple(pointers_to_values(body, self.sensitive)),
            notes=tuple(notes),
            protect=draft.protected,
            fires=draft.kind in ("Schedule", "Rule"),
            toggle=Toggle("/State", "ENABLED", "DISABLED") if draft.kind in ("Schedule", "Rule") else None,
        )
