"""Metaflow flows on a backend that renders Argo (``argo``, or ``files`` with Argo manifests).

Per Metaflow flow:

- ``WorkflowTemplate`` — exactly what Metaflow's ``argo-workflows create``
  builds (normalized, :mod:`backends.metaflow.normalize`), under Metaflow's
  name (``project.branch.flowname`` sanitized, from ``@project`` and
  ``--production``/``--branch``; ``<project>-<branch>-<flow>`` for a flow
  without ``@project``), with flowplan's ownership markers added;
- ``CronWorkflow`` — built by flowplan's Argo compiler from the effective
  schedule (suspended on non-production branches unless schedules are
  enabled), named like the template and with the history limits and starting
  deadline Metaflow gives its own (the schedule's ``starting_deadline`` wins);
- ``Sensor`` — for the flow's ``@trigger``/``@trigger_on_finish``: the Sensor
  Metaflow compiles (it maps Metaflow event payloads to parameters and sets
  the fields ``current.trigger`` reads), markers added; for manifest
  ``triggers:`` (which win over the decorators): built by flowplan's Argo
  compiler, submitting Metaflow's template. Named as Metaflow names its
  Sensors (the template's name with ``.`` as ``-``);
- ``CodePackage`` — the package, uploaded at apply before the template.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from backends.argo.compile import VOLATILE_PATHS
from backends.argo.names import label_value
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
from planner.contract import CompileContext, Compiler
from planner.errors import ManifestError, Problem
from planner.manifest import Flow
from planner.resources import (
    BRANCH_KEY,
    FLOW_KEY,
    LOGICAL_NAME_KEY,
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

__all__ = ["compile_argo", "sensor_name"]


def sensor_name(workflow_name: str) -> str:
    """Metaflow's Sensor name: Argo Events refuses dots."""
    return workflow_name.replace(".", "-")


def compile_argo(
    context: CompileContext, base: Compiler, compiled: Mapping[str, CompiledFlow], settings: MetaflowSettings
) -> list[Resource]:
    manifest = context.manifest
    backend = context.backend
    assert backend.argo is not None
    argo = backend.argo
    flows = {name: manifest.flows[name] for name in compiled}
    problems: list[Problem] = []
    stand_ins: dict[str, Flow] = {}
    for name, flow in flows.items():
        problems += _checks(flow, compiled[name], flows, manifest.events)
        schedule = flow.schedule
        if schedule is None:
            schedule, problem = decorator_schedule(flow, compiled[name])
            if problem:
                problems.append(problem)
        parameters = {p: str(spec.get("value")) for p, spec in dict(compiled[name].parameters or {}).items()}
        stand_ins[name] = stand_in(
            flow, settings.image, schedule=schedule, triggers=flow.triggers, parameters=parameters
        )
    for other in manifest.flows_on(backend.name):
        for trigger in other.triggers:
            if trigger.after in flows:
                problems.append(
                    Problem(
                        trigger.loc,
                        f"flows.{other.name}.triggers",
                        f"after: {trigger.after} needs flowplan's exit handler in {trigger.after}'s workflow, and a "
                        "Metaflow flow's workflow is Metaflow's own",
                        f"on Argo, make {other.name} a Metaflow flow with @trigger_on_finish(flow="
                        f"'{compiled[trigger.after].flow_name}'), which listens to the event Metaflow's runs emit",
                    )
                )
    if problems:
        raise ManifestError(problems)

    inner = base.compile(dataclasses.replace(context, manifest=with_flows(manifest, stand_ins)))
    stand_in_templates = {r.flow: r.address for r in inner if r.flow in flows and r.address.kind == "WorkflowTemplate"}
    sensitive = frozenset(manifest.sensitive_values)
    result: list[Resource] = []
    for resource in inner:
        if resource.flow not in flows:
            result.append(resource)
            continue
        item = compiled[resource.flow]
        kind = resource.address.kind
        if kind == "WorkflowTemplate":
            continue
        template = _template_address(backend.name, item)
        if kind == "CronWorkflow":
            cron = _retarget(resource, item.workflow_name, stand_in_templates[resource.flow], template)
            result.append(_metaflow_cron(cron))
        elif kind == "Sensor":
            result.append(
                _retarget(resource, sensor_name(item.workflow_name), stand_in_templates[resource.flow], template)
            )
        else:
            result.append(resource)
    for name, flow in flows.items():
        item = compiled[name]
        result.append(package_resource(backend.name, flow, item))
        result.append(
            _metaflow_object(context, flow, item, "WorkflowTemplate", sensitive, (package_address(backend.name, item),))
        )
        if item.sensor and not flow.triggers:
            sensor = _metaflow_object(
                context,
                flow,
                item,
                "Sensor",
                sensitive,
                (_template_address(backend.name, item),),
                namespace=argo.sensor_namespace,
            )
            result.append(sensor)
    return sorted(result, key=lambda r: r.address)


def _checks(flow: Flow, item: CompiledFlow, flows: Mapping[str, Flow], events: Mapping[str, Any]) -> list[Problem]:
    problems = sink_problems({flow.name: flow}, "argo")
    parameters = {p.lower() for p in dict(item.parameters or {})}
    for index, trigger in enumerate(flow.triggers):
        if trigger.event is None:
            continue
        for parameter in events[trigger.event].parameters:
            if parameter.lower() not in parameters:
                problems.append(
                    Problem(
                        trigger.loc,
                        f"flows.{flow.name}.triggers[{index}]",
                        f"event {trigger.event!r} maps a value to parameter {parameter!r}, "
                        f"which {item.flow_name} lacks",
                        "declare it as a Parameter of the FlowSpec",
                    )
                )
    return problems


def _template_address(backend: str, item: CompiledFlow) -> Address:
    namespace = str(item.template["metadata"]["namespace"]) if item.template else ""
    return Address(backend, "WorkflowTemplate", namespace, item.workflow_name)


def _rehash(body: dict[str, Any]) -> None:
    annotations = body["metadata"].setdefault("annotations", {})
    annotations.pop(SPEC_HASH_KEY, None)
    annotations[SPEC_HASH_KEY] = spec_hash(body, VOLATILE_PATHS)
    body["metadata"]["annotations"] = dict(sorted(annotations.items()))


def _retarget(resource: Resource, name: str, old_template: Address, template: Address) -> Resource:
    """A CronWorkflow or Sensor of a stand-in, renamed and pointed at Metaflow's template."""
    body = _replace_template_refs(resource.body, old_template.name, template.name)
    body["metadata"]["name"] = name
    body["metadata"].get("annotations", {}).pop(LOGICAL_NAME_KEY, None)
    if resource.address.kind == "Sensor":
        body = _set_generate_name(body, f"{template.name}-")
    _rehash(body)
    depends = tuple(sorted(template if d == old_template else d for d in resource.depends_on))
    notes = tuple(n for n in resource.notes if not n.startswith("name shortened"))
    return dataclasses.replace(
        resource,
        address=dataclasses.replace(resource.address, name=name),
        body=body,
        depends_on=depends,
        notes=notes,
    )


#: What Metaflow's own CronWorkflows set (``ArgoClient.schedule_workflow_template``): Argo keeps 3 succeeded and
#: 1 failed run by default, and a run that missed its time may still start within 59 minutes.
METAFLOW_CRON = {"failedJobsHistoryLimit": 10000, "successfulJobsHistoryLimit": 10000}
METAFLOW_STARTING_DEADLINE = 3540


def _metaflow_cron(resource: Resource) -> Resource:
    """A CronWorkflow with Metaflow's history limits, and its starting deadline unless the schedule sets one."""
    body = dict(resource.body)
    spec = {**body["spec"], **METAFLOW_CRON}
    spec.setdefault("startingDeadlineSeconds", METAFLOW_STARTING_DEADLINE)
    body["spec"] = dict(sorted(spec.items()))
    _rehash(body)
    return dataclasses.replace(resource, body=body)


def _replace_template_refs(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        out = {k: _replace_template_refs(v, old, new) for k, v in value.items()}
        ref = out.get("workflowTemplateRef")
        if isinstance(ref, dict) and ref.get("name") == old:
            out["workflowTemplateRef"] = {**ref, "name": new}
        return out
    if isinstance(value, list):
        return [_replace_template_refs(v, old, new) for v in value]
    return value


def _set_generate_name(value: Any, generate_name: str) -> Any:
    if isinstance(value, dict):
        out = {k: _set_generate_name(v, generate_name) for k, v in value.items()}
        if (
            out.get("kind") == "Workflow"
            and isinstance(out.get("metadata"), dict)
            and "generateName" in out["metadata"]
        ):
            out["metadata"] = {**out["metadata"], "generateName": generate_name}
        return out
    if isinstance(value, list):
        return [_set_generate_name(v, generate_name) for v in value]
    return value


def _labels(context: CompileContext, flow: Flow, own: Mapping[str, str]) -> dict[str, str]:
    """Metaflow's labels, the settings' labels, the flow's tags, then flowplan's markers (which always win)."""
    assert context.backend.argo is not None
    labels = {**own, **context.backend.argo.labels, **flow.tags}
    labels.update(
        {
            MANAGED_BY_KEY: MANAGED_BY,
            PROJECT_KEY: context.manifest.project,
            BRANCH_KEY: context.manifest.branch,
            FLOW_KEY: label_value(flow.name),
        }
    )
    if flow.protect:
        labels[PROTECT_KEY] = "true"
    return dict(sorted(labels.items()))


def _metaflow_object(
    context: CompileContext,
    flow: Flow,
    item: CompiledFlow,
    kind: str,
    sensitive: frozenset[str],
    depends_on: tuple[Address, ...],
    namespace: str | None = None,
) -> Resource:
    raw = item.template if kind == "WorkflowTemplate" else item.sensor
    assert raw is not None
    body = normalize(raw, item.workflow_name)
    meta = body.setdefault("metadata", {})
    meta["labels"] = _labels(context, flow, meta.get("labels") or {})
    annotations = {**(meta.get("annotations") or {}), **context.provenance.markers()}
    meta["annotations"] = dict(sorted(annotations.items()))
    if namespace is not None:
        meta["namespace"] = namespace
    ordered = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind"), "metadata": body.pop("metadata"), **body}
    _rehash(ordered)
    name = str(ordered["metadata"]["name"])
    notes: tuple[str, ...] = ()
    if kind == "WorkflowTemplate":
        notes = (f"compiled by Metaflow from {flow.metaflow.file if flow.metaflow else '?'} ({item.flow_name})",)
    else:
        notes = (f"Metaflow's Sensor for the @trigger/@trigger_on_finish of {item.flow_name}",)
    return Resource(
        address=Address(context.backend.name, kind, str(ordered["metadata"]["namespace"]), name),
        body=ordered,
        depends_on=tuple(sorted(depends_on)),
        flow=flow.name,
        volatile_paths=VOLATILE_PATHS,
        sensitive_paths=tuple(pointers_to_values(ordered, sensitive)),
        notes=notes,
        protect=flow.protect,
    )
