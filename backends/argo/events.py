"""Triggered flows as Argo Events objects: a ``Sensor`` per flow, and the flow-events ``EventSource``.

A Sensor has one dependency per manifest trigger and one trigger per
dependency, each with ``conditions: <its dependency>``: without conditions a
Sensor waits for *all* its dependencies before firing, which would turn "run on
event A or after flow B" into "run after both".

Each trigger submits a Workflow that references the flow's WorkflowTemplate
(``argoWorkflow``, ``operation: submit``), with the run labels, and with the
event's mapped parameters overwritten from the payload. A payload that lacks a
mapped field fails the trigger (Argo Events logs it) instead of running with the
default: a run on the wrong input is worse than no run.

``after: FLOW`` listens on a flowplan-managed webhook EventSource per project and
branch (:class:`FlowEvents`), to which every upstream flow's exit handler posts
``{"project", "branch", "flow", "workflow", "status"}``; the dependency accepts
only its upstream's ``Succeeded``. docs/argo.md explains the choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.argo.filters import data_filter, envelope_filters, go_quote_meta, payload_key
from backends.argo.names import k8s_name
from backends.argo.workflow import run_labels
from planner.manifest import ArgoSettings, Event, Flow, Trigger

__all__ = [
    "API_VERSION",
    "FlowEvents",
    "SensorInputs",
    "dependency_name",
    "flow_events_spec",
    "sensor_spec",
]

API_VERSION = "argoproj.io/v1alpha1"


@dataclass(frozen=True)
class FlowEvents:
    """The webhook EventSource that upstream flows report finished runs to."""

    name: str
    namespace: str
    port: int = 12000
    endpoint: str = "/finished"
    event: str = "finished"

    @property
    def service(self) -> str:
        """The Service Argo Events creates for an EventSource with ``spec.service``."""
        return f"{self.name}-eventsource-svc"

    @property
    def url(self) -> str:
        return f"http://{self.service}.{self.namespace}.svc:{self.port}{self.endpoint}"


def flow_events_spec(events: FlowEvents, event_bus: str) -> dict[str, Any]:
    """The ``spec`` of the flow-events EventSource: one webhook, one ClusterIP service in front of it."""
    return {
        "eventBusName": event_bus,
        "service": {"ports": [{"port": events.port, "targetPort": events.port}]},
        "webhook": {events.event: {"port": str(events.port), "endpoint": events.endpoint, "method": "POST"}},
    }


@dataclass(frozen=True)
class SensorInputs:
    """What a flow's Sensor needs from outside the flow."""

    project: str
    branch: str
    settings: ArgoSettings
    events: Mapping[str, Event]
    template: str
    generate_name: str
    flow_label: str
    flow_events: FlowEvents | None


def dependency_name(trigger: Trigger) -> str:
    """``event-<event>`` or ``after-<flow>``; unique per Sensor because the loader refuses duplicate triggers."""
    if trigger.event is not None:
        return f"event-{trigger.event}"
    return f"after-{k8s_name(trigger.after or '')}"


def _exactly(path: str, value: str) -> dict[str, Any]:
    return {"path": path, "type": "string", "value": [f"^{go_quote_meta(value)}$"]}


def _event_dependency(trigger: Trigger, inputs: SensorInputs) -> dict[str, Any]:
    event = inputs.events[trigger.event or ""]
    filters = envelope_filters(event.source, event.type) + [data_filter(f) for f in event.filters]
    return {
        "name": dependency_name(trigger),
        "eventSourceName": inputs.settings.event_source,
        "eventName": inputs.settings.event_name,
        "filters": {"data": filters},
    }


def _after_dependency(trigger: Trigger, inputs: SensorInputs) -> dict[str, Any]:
    events = inputs.flow_events
    assert events is not None, "an after: trigger needs the flow-events EventSource"
    return {
        "name": dependency_name(trigger),
        "eventSourceName": events.name,
        "eventName": events.event,
        "filters": {
            "data": [
                _exactly("body.project", inputs.project),
                _exactly("body.branch", inputs.branch),
                _exactly("body.flow", trigger.after or ""),
                _exactly("body.status", "Succeeded"),
            ]
        },
    }


def _mapped(trigger: Trigger, inputs: SensorInputs) -> list[tuple[str, str]]:
    """(flow parameter, payload path) pairs this trigger fills from its event, in manifest order."""
    if trigger.event is None:
        return []
    return list(inputs.events[trigger.event].parameters.items())


def _workflow(flow: Flow, mapped: list[tuple[str, str]], inputs: SensorInputs) -> dict[str, Any]:
    """The Workflow a trigger submits; mapped parameters start at their defaults and are overwritten."""
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": inputs.template}}
    if mapped:
        spec["arguments"] = {"parameters": [{"name": p, "value": flow.parameters[p].default_text} for p, _ in mapped]}
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "generateName": inputs.generate_name,
            "namespace": inputs.settings.namespace,
            "labels": run_labels(inputs.project, inputs.branch, inputs.flow_label),
        },
        "spec": spec,
    }


def _trigger(flow: Flow, trigger: Trigger, inputs: SensorInputs) -> dict[str, Any]:
    name = dependency_name(trigger)
    mapped = _mapped(trigger, inputs)
    submit: dict[str, Any] = {"operation": "submit", "source": {"resource": _workflow(flow, mapped, inputs)}}
    if mapped:
        submit["parameters"] = [
            {
                "src": {"dependencyName": name, "dataKey": payload_key(path)},
                "dest": f"spec.arguments.parameters.{index}.value",
            }
            for index, (_, path) in enumerate(mapped)
        ]
    return {"template": {"name": name, "conditions": name, "argoWorkflow": submit}}


def sensor_spec(flow: Flow, inputs: SensorInputs) -> dict[str, Any]:
    """The ``spec`` of a triggered flow's Sensor."""
    dependencies = [
        _event_dependency(t, inputs) if t.event is not None else _after_dependency(t, inputs) for t in flow.triggers
    ]
    return {
        "eventBusName": inputs.settings.event_bus,
        "dependencies": dependencies,
        "triggers": [_trigger(flow, t, inputs) for t in flow.triggers],
    }
