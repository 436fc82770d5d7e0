"""Metaflow flows on a backend that renders Step Functions (``stepfunctions``, or ``files`` rendering it).

Per Metaflow flow:

- ``StateMachine`` — the definition Metaflow's ``step-functions create``
  builds (normalized), under Metaflow's name (``project.branch.FlowName``
  from ``@project``; ``<prefix><project>-<branch>-<flow>`` without it), run
  by ``stepfunctions.execution_role_arn``, published behind the ``live`` alias
  like every flowplan machine;
- ``JobDefinition`` — each AWS Batch job definition Metaflow would register
  while compiling (named ``metaflow_<sha224 of its content>`` by Metaflow),
  registered by flowplan at apply instead; the state machine refers to them by
  ARN without a revision;
- ``Schedule`` — EventBridge Scheduler, from the effective schedule (the
  manifest's, else ``@schedule``, whose time zone Scheduler honours — Metaflow
  itself refuses a time zone on Step Functions);
- ``Rule`` — per effective trigger: ``@trigger_on_finish(flow=F)`` (or
  ``after:``) listens to Step Functions' "Execution Status Change" events of
  the upstream machine with status ``SUCCEEDED``; ``@trigger(event=E)`` (or
  ``event:``) listens to the manifest's event ``E`` (its source, type and
  filters say what ``E`` is on EventBridge). Metaflow refuses both decorators
  on Step Functions; flowplan makes them work;
- ``CodePackage`` — uploaded at apply before the state machine.

Executions started by a schedule or rule get Metaflow's input,
``{"Parameters": "<JSON of the parameters>"}``: ``{}`` (every parameter at
its default), or the values an event maps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from backends.metaflow.common import (
    decorator_schedule,
    package_address,
    package_resource,
    sink_problems,
    stand_in,
    with_flows,
)
from backends.metaflow.compile import CompiledFlow
from backends.metaflow.normalize import normalize
from backends.metaflow.settings import MetaflowSettings
from backends.stepfunctions.compile import ALIAS, TAGS_FIELD, alias_arn, machine_arn, volatile_paths
from backends.stepfunctions.normalize import job_content
from backends.stepfunctions.patterns import after_pattern
from planner.contract import CompileContext, Compiler
from planner.errors import ManifestError, Problem
from planner.manifest import Flow, StepFunctionsSettings, Trigger
from planner.resources import (
    BRANCH_KEY,
    FLOW_KEY,
    MANAGED_BY,
    MANAGED_BY_KEY,
    PROJECT_KEY,
    PROTECT_KEY,
    SPEC_HASH_KEY,
    Address,
    Resource,
    pointers_to_values,
    spec_hash,
)

__all__ = ["compile_stepfunctions", "execution_input"]

#: What a Metaflow state machine reads its parameters from (``step-functions trigger`` sends the same).
NO_PARAMETERS = {"Parameters": "{}"}


def execution_input(mapping: Mapping[str, str]) -> dict[str, Any]:
    """Target fields that start a Metaflow machine: ``Input``, or an ``InputTransformer`` for mapped values.

    Each mapped payload value is placed, as a JSON string, into the
    ``Parameters`` string (a string holding JSON, as Metaflow expects).
    """
    if not mapping:
        return {"Input": dict(NO_PARAMETERS)}
    pairs = sorted(mapping.items())
    inner = ",".join(f'\\"{name}\\":\\"<{name}>\\"' for name, _ in pairs)
    return {
        "InputTransformer": {
            "InputPathsMap": {name: f"$.detail.{path}" for name, path in pairs},
            "InputTemplate": '{"Parameters":"{' + inner + '}"}',
        }
    }


def compile_stepfunctions(
    context: CompileContext, base: Compiler, compiled: Mapping[str, CompiledFlow], settings: MetaflowSettings
) -> list[Resource]:
    manifest = context.manifest
    backend = context.backend
    sfn = backend.stepfunctions
    assert sfn is not None
    flows = {name: manifest.flows[name] for name in compiled}
    by_class: dict[str, list[str]] = {}
    for name, item in compiled.items():
        by_class.setdefault(item.flow_name, []).append(name)
    problems: list[Problem] = sink_problems(flows, "stepfunctions")
    stand_ins: dict[str, Flow] = {}
    mappings: dict[tuple[str, str], dict[str, str]] = {}
    for name, flow in flows.items():
        item = compiled[name]
        schedule = flow.schedule
        if schedule is None:
            schedule, problem = decorator_schedule(flow, item)
            if problem:
                problems.append(problem)
        if flow.triggers:
            triggers = list(flow.triggers)
            for trigger in triggers:
                if trigger.event is not None:
                    mappings[(name, trigger.key)] = dict(manifest.events[trigger.event].parameters)
        else:
            triggers, found = _decorator_triggers(flow, item, by_class, manifest.events, mappings)
            problems += found
        stand_ins[name] = stand_in(flow, settings.image, schedule=schedule, triggers=triggers, parameters={})
    if problems:
        raise ManifestError(problems)

    inner = base.compile(dataclasses.replace(context, manifest=with_flows(manifest, stand_ins)))
    stand_in_machines = {r.flow: r for r in inner if r.flow in flows and r.address.kind == "StateMachine"}
    arn_of = {
        machine_arn(sfn, stand_in_machines[name].address.name): machine_arn(sfn, item.workflow_name)
        for name, item in compiled.items()
    }
    address_of = {
        stand_in_machines[name].address: _machine_address(backend.name, sfn, item) for name, item in compiled.items()
    }
    sensitive = frozenset(manifest.sensitive_values)
    result: list[Resource] = []
    for resource in inner:
        kind = resource.address.kind
        if resource.flow in flows and kind in ("StateMachine", "JobDefinition"):
            continue
        if kind in ("Schedule", "Rule") and (resource.flow in flows or _mentions(resource.body, arn_of)):
            result.append(_retarget(resource, sfn, compiled.get(resource.flow or ""), arn_of, address_of, mappings))
        else:
            result.append(resource)
    users: dict[str, list[str]] = {}
    contents: dict[str, Mapping[str, Any]] = {}
    for name, item in compiled.items():
        for job in item.job_definitions:
            users.setdefault(str(job["jobDefinitionName"]), []).append(name)
            contents[str(job["jobDefinitionName"])] = job
    jobs = {
        job: _job_definition(context, flows[names[0]] if len(names) == 1 else None, contents[job])
        for job, names in users.items()
    }
    result += jobs.values()
    for name, flow in flows.items():
        item = compiled[name]
        result.append(package_resource(backend.name, flow, item))
        own = [jobs[str(job["jobDefinitionName"])].address for job in item.job_definitions]
        result.append(_state_machine(context, flow, sfn, item, own, sensitive))
    return sorted(result, key=lambda r: r.address)


def _decorator_triggers(
    flow: Flow,
    item: CompiledFlow,
    by_class: Mapping[str, list[str]],
    events: Mapping[str, Any],
    mappings: dict[tuple[str, str], dict[str, str]],
) -> tuple[list[Trigger], list[Problem]]:
    """``@trigger_on_finish`` / ``@trigger`` as manifest triggers (``after:`` / ``event:``)."""
    source = flow.metaflow
    assert source is not None
    triggers: list[Trigger] = []
    problems: list[Problem] = []
    where = f"flows.{flow.name}.metaflow"
    for trigger in item.triggers:
        if trigger.get("type") == "run":
            upstream = str(trigger.get("flow"))
            candidates = by_class.get(upstream, [])
            if len(candidates) != 1:
                problems.append(
                    Problem(
                        source.loc,
                        where,
                        f"@trigger_on_finish(flow={upstream!r}) of {item.flow_name}: "
                        + (
                            f"no Metaflow flow of this backend is {upstream}"
                            if not candidates
                            else f"flows {', '.join(candidates)} all are {upstream}"
                        ),
                        "on Step Functions flowplan listens to the upstream's state machine, so the upstream must be "
                        "a flow of the same backend in this manifest (or give the flow triggers: in the manifest)",
                    )
                )
                continue
            triggers.append(Trigger(after=candidates[0], loc=source.loc))
        else:
            event = str(trigger.get("name"))
            if event not in events:  # manifest event names are DNS labels: data_ready is data-ready
                event = event.replace("_", "-").replace(".", "-").lower()
            if event not in events:
                problems.append(
                    Problem(
                        source.loc,
                        where,
                        f"@trigger(event={trigger.get('name')!r}) of {item.flow_name}: the manifest declares no "
                        f"event {event!r}",
                        f"declare it under events: with the source and type it has on EventBridge, e.g. "
                        f"events: {{{event}: {{source: my.app, type: {event}}}}}",
                    )
                )
                continue
            made = Trigger(event=event, loc=source.loc)
            triggers.append(made)
            mapping = {str(k): str(v) for k, v in dict(trigger.get("parameters") or {}).items()}
            mappings[(flow.name, made.key)] = mapping or dict(events[event].parameters)
    return triggers, problems


def _machine_address(backend: str, sfn: StepFunctionsSettings, item: CompiledFlow) -> Address:
    return Address(backend, "StateMachine", sfn.region, item.workflow_name)


def _mentions(value: Any, strings: Mapping[str, str]) -> bool:
    if isinstance(value, str):
        return any(value == s or value.startswith(s + ":") for s in strings)
    if isinstance(value, dict):
        return any(_mentions(v, strings) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, strings) for v in value)
    return False


def _swap_arns(value: Any, arns: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in arns.items():
            if value == old:
                return new
            if value.startswith(old + ":"):
                return new + value[len(old) :]
        return value
    if isinstance(value, dict):
        return {k: _swap_arns(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap_arns(v, arns) for v in value]
    return value


def _rehash(kind: str, body: dict[str, Any]) -> None:
    field = TAGS_FIELD.get(kind)
    if field is None:
        return
    tags = dict(body.get(field) or {})
    tags.pop(SPEC_HASH_KEY, None)
    body[field] = dict(sorted(tags.items()))
    tags[SPEC_HASH_KEY] = spec_hash(body, volatile_paths(kind))
    body[field] = dict(sorted(tags.items()))


def _retarget(
    resource: Resource,
    sfn: StepFunctionsSettings,
    item: CompiledFlow | None,
    arns: Mapping[str, str],
    addresses: Mapping[Address, Address],
    mappings: Mapping[tuple[str, str], dict[str, str]],
) -> Resource:
    """A stand-in's schedule or rule (or a rule after a Metaflow upstream) aimed at Metaflow's machines."""
    body = _swap_arns(resource.body, arns)
    if resource.address.kind == "Rule" and isinstance(body.get("EventPattern"), dict):
        states = body["EventPattern"].get("detail", {}).get("stateMachineArn")
        if isinstance(states, list) and states and isinstance(states[0], str):
            body["EventPattern"] = after_pattern(states[0])
    if item is not None:
        key = _trigger_key(resource, item)
        fields = execution_input(mappings.get((item.flow, key), {}) if key else {})
        if resource.address.kind == "Schedule":
            target = {k: v for k, v in body["Target"].items() if k not in ("Input", "InputTransformer")}
            body["Target"] = {**target, **fields}
        else:
            targets = []
            for target in body.get("Targets", []):
                kept = {k: v for k, v in target.items() if k not in ("Input", "InputTransformer")}
                targets.append({**kept, **fields})
            body["Targets"] = targets
    _rehash(resource.address.kind, body)
    depends = tuple(sorted(addresses.get(d, d) for d in resource.depends_on))
    return dataclasses.replace(resource, body=body, depends_on=depends)


def _trigger_key(resource: Resource, item: CompiledFlow) -> str | None:
    """Which trigger a stand-in's rule is for, read back from its description (``… on event E …``)."""
    if resource.address.kind != "Rule":
        return None
    description = str(resource.body.get("Description", ""))
    marker = " on event "
    if marker in description:
        return "event:" + description.split(marker, 1)[1].split(" ", 1)[0]
    return None


def _tags(context: CompileContext, flow: Flow | None, *, protect: bool) -> dict[str, str]:
    tags = dict(flow.tags) if flow is not None else {}
    tags.update(
        {MANAGED_BY_KEY: MANAGED_BY, PROJECT_KEY: context.manifest.project, BRANCH_KEY: context.manifest.branch}
    )
    if flow is not None:
        tags[FLOW_KEY] = flow.name
        if protect and flow.protect:
            tags[PROTECT_KEY] = "true"
    tags.update(context.provenance.markers())
    return tags


def _finish(
    context: CompileContext,
    flow: Flow | None,
    kind: str,
    name: str,
    body: dict[str, Any],
    depends_on: tuple[Address, ...],
    sensitive: frozenset[str],
    notes: tuple[str, ...],
    *,
    protect: bool = True,
    replace_paths: tuple[str, ...] = (),
) -> Resource:
    assert context.backend.stepfunctions is not None
    body[TAGS_FIELD[kind]] = dict(sorted(_tags(context, flow, protect=protect).items()))
    _rehash(kind, body)
    return Resource(
        address=Address(context.backend.name, kind, context.backend.stepfunctions.region, name),
        body=body,
        depends_on=tuple(sorted(depends_on)),
        flow=flow.name if flow is not None else None,
        volatile_paths=volatile_paths(kind),
        replace_paths=replace_paths,
        sensitive_paths=tuple(pointers_to_values(body, sensitive)),
        notes=notes,
        protect=flow.protect if protect and flow is not None else False,
    )


def _job_definition(context: CompileContext, flow: Flow | None, job: Mapping[str, Any]) -> Resource:
    """One job definition; shared (no flow) when several flows' steps need the same one."""
    name = str(job["jobDefinitionName"])
    body = {"jobDefinitionName": name, **job_content(job)}
    return _finish(
        context,
        flow,
        "JobDefinition",
        name,
        body,
        (),
        frozenset(),
        ("an AWS Batch job definition Metaflow would register while compiling; registered at apply",),
        protect=False,
    )


def _state_machine(
    context: CompileContext,
    flow: Flow,
    sfn: StepFunctionsSettings,
    item: CompiledFlow,
    jobs: list[Address],
    sensitive: frozenset[str],
) -> Resource:
    assert item.definition is not None
    body = {
        "name": item.workflow_name,
        "type": "STANDARD",
        "roleArn": sfn.execution_role_arn or "",
        "definition": normalize(item.definition, item.workflow_name),
        "alias": ALIAS,
    }
    depends = (*jobs, package_address(context.backend.name, item))
    note = f"compiled by Metaflow from {flow.metaflow.file if flow.metaflow else '?'} ({item.flow_name})"
    return _finish(
        context,
        flow,
        "StateMachine",
        item.workflow_name,
        body,
        depends,
        sensitive,
        (note, f"started through {alias_arn(sfn, item.workflow_name)}"),
        replace_paths=("/type",),
    )


def metaflow_input(parameters: Mapping[str, Any]) -> str:
    """The execution input Metaflow's ``step-functions trigger`` sends for ``parameters``."""
    return json.dumps({"Parameters": json.dumps(dict(parameters))})
