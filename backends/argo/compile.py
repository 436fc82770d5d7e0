"""Manifest → desired Argo Workflows and Argo Events objects for one backend. Pure: no I/O, no SDK.

Per flow on the backend:

- ``WorkflowTemplate`` (``<project>-<branch>-<flow>``): the flow as a DAG;
- ``CronWorkflow`` when it has a schedule (suspended on non-production branches
  unless schedules are enabled);
- ``Sensor`` (in the sensor namespace) when it has triggers.

Shared by the flows of a project and branch:

- ``ConfigMap`` ``<project>-<branch>-sink-<sink>`` per sink a flow here uses;
- ``EventSource`` ``<project>-<branch>-flow-events`` when a flow runs ``after:``
  another (see :mod:`backends.argo.events`).

Bodies are what the Kubernetes API returns once server-filled fields are
stripped (no ``None``, no empty containers), so a plan right after an apply is
empty. Every object carries the ownership markers, its spec hash and the
provenance; provenance and the hash are *volatile* (excluded from hashing and
diffing), so a new git commit alone changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from backends.argo.cron import argo_cron
from backends.argo.cron import schedule_facts as cron_facts
from backends.argo.events import API_VERSION, FlowEvents, SensorInputs, flow_events_spec, sensor_spec
from backends.argo.filters import filter_problem
from backends.argo.names import (
    LIMITS,
    Claim,
    Name,
    check_unique,
    fit,
    k8s_name,
    label_value,
    metaflow_name,
    relative_path,
)
from backends.argo.workflow import ExitNotice, TemplateInputs, run_labels, sink_env_name, workflow_template_spec
from planner.contract import CompileContext, Compiler, ScheduleFacts
from planner.errors import Location, ManifestError, Problem
from planner.manifest import ArgoSettings, Flow, Manifest, Sink, render_value
from planner.manifest import Backend as BackendSpec
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
)

__all__ = ["DESCRIPTION_KEY", "VOLATILE_PATHS", "ArgoCompiler", "relative_path"]

#: Argo's UI shows this annotation on a WorkflowTemplate.
DESCRIPTION_KEY = "workflows.argoproj.io/description"

#: The spec-hash and provenance annotations: never hashed, never diffed.
VOLATILE_PATHS: tuple[str, ...] = tuple(
    join_pointer(["metadata", "annotations", key]) for key in (SPEC_HASH_KEY, *PROVENANCE_KEYS)
)

#: ``step-`` plus the step name must fit Argo's 128-character template names.
MAX_STEP_NAME = 123

#: Sink settings that become ``FLOWPLAN_SINK_<NAME>_<KEY>`` in the sink's ConfigMap.
_SINK_KEYS = ("uri", "table", "key_prefix", "ttl", "platform", "endpoint")


class ArgoCompiler(Compiler):
    """The :class:`~planner.contract.Compiler` for backends that render Argo (``argo`` and ``files``)."""

    def schedule_facts(self, kind: str, body: Mapping[str, Any] | None) -> ScheduleFacts | None:
        return cron_facts(body) if kind == "CronWorkflow" else None

    def compile(self, context: CompileContext) -> list[Resource]:
        """Desired resources for ``context.backend``, sorted by address.

        Raises ManifestError for what Argo cannot run (AWS-only sink credentials,
        an event filter with no data-filter equivalent, names that collide).
        """
        return _Compilation(context).run()


@dataclass
class _Draft:
    """A body without its metadata, and what the Resource around it needs."""

    kind: str
    namespace: str
    name: Name
    content: dict[str, Any]
    flow: Flow | None = None
    depends_on: tuple[Address, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    api_version: str = API_VERSION


@dataclass(frozen=True)
class _FlowNames:
    template: Name
    cron: Name | None
    sensor: Name | None


def _argo_settings(backend: BackendSpec) -> ArgoSettings:
    if backend.argo is None or backend.renders != "argo":
        raise ManifestError(
            Problem(backend.loc, f"backends.{backend.name}", f"backend {backend.name!r} does not render Argo objects")
        )
    return backend.argo


class _Compilation:
    """One compile: names first (so collisions fail before anything is built), then objects, then markers."""

    def __init__(self, context: CompileContext) -> None:
        self.manifest: Manifest = context.manifest
        self.backend = context.backend
        self.settings = _argo_settings(context.backend)
        self.provenance: Provenance = context.provenance
        self.flows = self.manifest.flows_on(context.backend.name)
        self.sinks = sorted({sink for flow in self.flows for sink in flow.sinks})
        self.upstreams = {t.after for flow in self.flows for t in flow.triggers if t.after is not None}
        self.sensitive = self._sensitive_values()

    # -- names ---------------------------------------------------------------------

    def _base(self, *parts: str) -> str:
        return k8s_name(self.manifest.project, self.manifest.branch, *parts)

    def _flow_names(self, flow: Flow) -> _FlowNames:
        if self.settings.naming == "metaflow":
            # Metaflow's own names: the template and CronWorkflow share one, the Sensor swaps dots for dashes
            name = metaflow_name(self.manifest.project, self.manifest.branch, flow.name)
            sensor = Name(name.physical.replace(".", "-"), name.logical)
            return _FlowNames(
                template=name,
                cron=name if flow.schedule is not None else None,
                sensor=sensor if flow.triggers else None,
            )
        base = self._base(flow.name)
        return _FlowNames(
            template=fit(base, LIMITS["WorkflowTemplate"]),
            cron=fit(base, LIMITS["CronWorkflow"]) if flow.schedule is not None else None,
            sensor=fit(base, LIMITS["Sensor"]) if flow.triggers else None,
        )

    def _sink_name(self, sink: str) -> Name:
        return fit(self._base("sink", sink), LIMITS["ConfigMap"])

    def _events_name(self) -> Name:
        return fit(self._base("flow-events"), LIMITS["EventSource"])

    def _events_address(self) -> Address:
        return self._address("EventSource", self.settings.sensor_namespace, self._events_name())

    def _flow_events(self) -> FlowEvents | None:
        """The flow-events EventSource, when some flow here runs ``after:`` another."""
        if not self.upstreams:
            return None
        return FlowEvents(self._events_name().physical, self.settings.sensor_namespace)

    def _claims(self, names: dict[str, _FlowNames]) -> Iterator[Claim]:
        settings = self.settings
        for flow in self.flows:
            owner, path = f"flow {flow.name!r}", f"flows.{flow.name}"
            flow_names = names[flow.name]
            yield Claim("WorkflowTemplate", settings.namespace, flow_names.template, owner, flow.loc, path)
            if flow_names.cron is not None:
                yield Claim("CronWorkflow", settings.namespace, flow_names.cron, owner, flow.loc, path)
            if flow_names.sensor is not None:
                yield Claim("Sensor", settings.sensor_namespace, flow_names.sensor, owner, flow.loc, path)
        for sink in self.sinks:
            spec = self.manifest.sinks[sink]
            yield Claim(
                "ConfigMap", settings.namespace, self._sink_name(sink), f"sink {sink!r}", spec.loc, f"sinks.{sink}"
            )

    # -- checks --------------------------------------------------------------------

    def _problems(self) -> list[Problem]:
        """What this backend cannot run, found before anything is built (all of it, in one error)."""
        problems: list[Problem] = []
        for flow in self.flows:
            problems += self._credential_problems(flow)
            problems += _step_name_problems(flow)
            problems += _parameter_env_problems(flow)
            problems += _argo_expression_problems(flow, f"flows.{flow.name}", flow.loc)
        used_events = sorted({t.event for flow in self.flows for t in flow.triggers if t.event is not None})
        for event in used_events:
            spec = self.manifest.events[event]
            problems += _argo_expression_problems(spec, f"events.{event}", spec.loc)
        for sink in self.sinks:
            problems += _argo_expression_problems(
                self.manifest.sinks[sink], f"sinks.{sink}", self.manifest.sinks[sink].loc
            )
        for event in used_events:
            for index, flt in enumerate(self.manifest.events[event].filters):
                reason = filter_problem(flt)
                if reason:
                    problems.append(Problem(flt.loc, f"events.{event}.filters[{index}]", reason))
        return problems

    def _credential_problems(self, flow: Flow) -> list[Problem]:
        """A pod reads Kubernetes secrets; a sink whose only credentials are an AWS ARN is unusable here."""
        problems = []
        for sink in flow.sinks:
            credentials = self.manifest.sinks[sink].credentials
            if credentials is not None and credentials.secret is None and credentials.arn:
                problems.append(
                    Problem(
                        flow.loc,
                        f"flows.{flow.name}.sinks",
                        f"sink {sink!r} keeps its credentials in AWS Secrets Manager, which pods on "
                        f"Argo backend {self.backend.name!r} cannot read",
                        "give the sink credentials: {secret: NAME, key: KEY} (a Kubernetes Secret), "
                        "or run this flow on a stepfunctions backend",
                    )
                )
        return problems

    def _sensitive_values(self) -> frozenset[str]:
        values = set(self.manifest.sensitive_values)
        for flow in self.flows:
            for step in flow.steps.values():
                values.update(env.value for env in step.env.values() if env.sensitive and env.value)
        return frozenset(values)

    # -- the run -------------------------------------------------------------------

    def run(self) -> list[Resource]:
        problems = self._problems()
        if problems:
            raise ManifestError(problems)
        names = {flow.name: self._flow_names(flow) for flow in self.flows}
        check_unique(self._claims(names))
        events = self._flow_events()
        drafts: list[_Draft] = [self._sink_configmap(sink) for sink in self.sinks]
        if events is not None:
            drafts.append(self._flow_events_source(events))
        for flow in self.flows:
            drafts += self._flow_drafts(flow, names[flow.name], events)
        resources = [self._finish(d) for d in drafts]
        # Address order (the dataclass's field order), with each key built once rather than per comparison
        resources.sort(key=lambda r: (r.address.backend, r.address.kind, r.address.namespace, r.address.name))
        return resources

    def _address(self, kind: str, namespace: str, name: Name) -> Address:
        return Address(self.backend.name, kind, namespace, name.physical)

    def _flow_drafts(self, flow: Flow, names: _FlowNames, events: FlowEvents | None) -> list[_Draft]:
        template = self._workflow_template(flow, names.template, events)
        drafts = [template]
        template_address = self._address(template.kind, template.namespace, template.name)
        if names.cron is not None:
            drafts.append(self._cron_workflow(flow, names.cron, names.template, template_address))
        if names.sensor is not None:
            drafts.append(self._sensor(flow, names.sensor, names.template, template_address, events))
        return drafts

    # -- shared objects ------------------------------------------------------------

    def _sink_configmap(self, sink: str) -> _Draft:
        spec: Sink = self.manifest.sinks[sink]
        prefix = f"FLOWPLAN_SINK_{sink_env_name(sink)}_"
        data: dict[str, str] = {f"{prefix}TYPE": spec.type}
        for key in _SINK_KEYS:
            if key in spec.settings:
                data[f"{prefix}{key.upper()}"] = render_value(spec.settings[key])
        return _Draft(
            "ConfigMap",
            self.settings.namespace,
            self._sink_name(sink),
            {"data": dict(sorted(data.items()))},
            api_version="v1",
        )

    def _flow_events_source(self, events: FlowEvents) -> _Draft:
        return _Draft(
            "EventSource",
            events.namespace,
            self._events_name(),
            {"spec": flow_events_spec(events, self.settings.event_bus)},
            notes=(f"runs of {', '.join(sorted(self.upstreams))} report here when they finish (after: triggers)",),
        )

    # -- per flow ------------------------------------------------------------------

    def _workflow_template(self, flow: Flow, name: Name, events: FlowEvents | None) -> _Draft:
        notice = None
        depends = [self._address("ConfigMap", self.settings.namespace, self._sink_name(s)) for s in flow.sinks]
        if events is not None and flow.name in self.upstreams:
            notice = ExitNotice(events.url, self.manifest.project, self.manifest.branch, flow.name)
            depends.append(self._events_address())
        inputs = TemplateInputs(
            project=self.manifest.project,
            branch=self.manifest.branch,
            settings=self.settings,
            sinks=self.manifest.sinks,
            sink_configmaps={s: self._sink_name(s).physical for s in flow.sinks},
            notice=notice,
        )
        annotations = {DESCRIPTION_KEY: flow.description} if flow.description else {}
        return _Draft(
            "WorkflowTemplate",
            self.settings.namespace,
            name,
            {"spec": workflow_template_spec(flow, label_value(flow.name), inputs)},
            flow=flow,
            depends_on=tuple(sorted(set(depends))),
            annotations=annotations,
        )

    def _cron_workflow(self, flow: Flow, name: Name, template: Name, template_address: Address) -> _Draft:
        schedule = flow.schedule
        assert schedule is not None
        expression = argo_cron(schedule.cron)
        spec: dict[str, Any] = {}
        if self.settings.schedule_field == "schedules":
            spec["schedules"] = [expression]
        else:
            spec["schedule"] = expression
        spec["timezone"] = schedule.timezone
        spec["concurrencyPolicy"] = schedule.concurrency.capitalize()
        if schedule.starting_deadline is not None:
            spec["startingDeadlineSeconds"] = schedule.starting_deadline
        spec["suspend"] = schedule.suspend or not self.manifest.schedules_enabled()
        labels = run_labels(self.manifest.project, self.manifest.branch, label_value(flow.name))
        spec["workflowMetadata"] = {"labels": labels}
        spec["workflowSpec"] = {"workflowTemplateRef": {"name": template.physical}}
        return _Draft(
            "CronWorkflow",
            self.settings.namespace,
            name,
            {"spec": spec},
            flow=flow,
            depends_on=(template_address,),
            notes=self._cron_notes(schedule.cron, expression, schedule.suspend),
        )

    def _cron_notes(self, written: str, expression: str, suspended: bool) -> tuple[str, ...]:
        notes = []
        if expression != written.strip():
            notes.append(f"schedule {written!r} is written {expression!r}: Argo's cron parser has no day-of-week 7")
        if not suspended and not self.manifest.schedules_enabled():
            notes.append(
                f"suspended: branch {self.manifest.branch!r} is not prod; pass --enable-schedules to let it fire"
            )
        return tuple(notes)

    def _sensor(
        self, flow: Flow, name: Name, template: Name, template_address: Address, events: FlowEvents | None
    ) -> _Draft:
        inputs = SensorInputs(
            project=self.manifest.project,
            branch=self.manifest.branch,
            settings=self.settings,
            events=self.manifest.events,
            template=template.physical,
            generate_name=f"{name.physical}-",
            flow_label=label_value(flow.name),
            flow_events=events,
        )
        depends = [template_address]
        if events is not None and any(t.after is not None for t in flow.triggers):
            depends.append(self._events_address())
        return _Draft(
            "Sensor",
            self.settings.sensor_namespace,
            name,
            {"spec": sensor_spec(flow, inputs)},
            flow=flow,
            depends_on=tuple(sorted(depends)),
        )

    # -- markers, hash, sensitive values ------------------------------------------------

    def _labels(self, flow: Flow | None) -> dict[str, str]:
        """Settings labels, then the flow's tags, then flowplan's markers (which always win).

        ``flowplan.dev/protect: "true"`` is a label, not an annotation, so protected
        objects can be listed with a selector.
        """
        labels = dict(self.settings.labels)
        if flow is not None:
            labels.update(flow.tags)
        labels.update(
            {MANAGED_BY_KEY: MANAGED_BY, PROJECT_KEY: self.manifest.project, BRANCH_KEY: self.manifest.branch}
        )
        if flow is not None:
            labels[FLOW_KEY] = label_value(flow.name)
            if flow.protect:
                labels[PROTECT_KEY] = "true"
        return dict(sorted(labels.items()))

    def _finish(self, draft: _Draft) -> Resource:
        annotations = dict(draft.annotations)
        notes = list(draft.notes)
        if draft.name.shortened:
            annotations[LOGICAL_NAME_KEY] = draft.name.logical
            notes.append(f"name shortened from {draft.name.logical!r} ({len(draft.name.logical)} characters)")
        # The comparison body is the body without its volatile markers (provenance and spec hash):
        # built first, and hashed once, its digest is the resource's digest and its first 16 hex
        # digits the spec-hash marker. Equal to without(body, VOLATILE_PATHS), key order included
        # (tests/bench/test_fast_paths.py), without copying the body to remove them.
        form_metadata: dict[str, Any] = {
            "name": draft.name.physical,
            "namespace": draft.namespace,
            "labels": self._labels(draft.flow),
        }
        if annotations:
            form_metadata["annotations"] = dict(sorted(annotations.items()))
        form: dict[str, Any] = {"apiVersion": draft.api_version, "kind": draft.kind, "metadata": form_metadata}
        form.update(draft.content)
        full = digest(form)
        annotations.update(self.provenance.markers())
        annotations[SPEC_HASH_KEY] = full[:16]
        metadata = {**form_metadata, "annotations": dict(sorted(annotations.items()))}
        body: dict[str, Any] = {"apiVersion": draft.api_version, "kind": draft.kind, "metadata": metadata}
        body.update(draft.content)
        resource = Resource(
            address=self._address(draft.kind, draft.namespace, draft.name),
            body=body,
            depends_on=draft.depends_on,
            flow=draft.flow.name if draft.flow is not None else None,
            volatile_paths=VOLATILE_PATHS,
            sensitive_paths=tuple(pointers_to_values(body, self.sensitive)),
            notes=tuple(notes),
            protect=draft.flow.protect if draft.flow is not None else False,
            fires=draft.kind in ("CronWorkflow", "Sensor"),
            toggle=Toggle("/spec/suspend", False, True) if draft.kind == "CronWorkflow" else None,
            known=(body, form, full),
        )
        return resource


def _step_name_problems(flow: Flow) -> list[Problem]:
    """Argo template names are at most 128 characters, and step templates are ``step-<step>``."""
    return [
        Problem(
            step.loc, f"flows.{flow.name}.steps.{name}", f"step names are at most {MAX_STEP_NAME} characters on Argo"
        )
        for name, step in flow.steps.items()
        if len(name) > MAX_STEP_NAME
    ]


def _parameter_env_problems(flow: Flow) -> list[Problem]:
    """Two parameters that differ only in case would share one ``FLOWPLAN_PARAM_*`` variable."""
    seen: dict[str, str] = {}
    problems = []
    for name, parameter in flow.parameters.items():
        other = seen.setdefault(name.upper(), name)
        if other != name:
            problems.append(
                Problem(
                    parameter.loc,
                    f"flows.{flow.name}.parameters.{name}",
                    f"parameters {other!r} and {name!r} would both be FLOWPLAN_PARAM_{name.upper()}",
                    "rename one of them",
                )
            )
    return problems


def _argo_expression_problems(value: Any, path: str, loc: Location) -> list[Problem]:
    """Every manifest string under ``value`` that holds ``{{``: Argo would evaluate it.

    Argo substitutes ``{{...}}`` (and evaluates ``{{=expr}}``) in almost every string of a Workflow,
    WorkflowTemplate, CronWorkflow or Sensor, and has no way to escape a literal ``{{`` (argo-workflows
    issue 8253: "You cannot escape `{{`"). After templating, such text in the manifest came from a
    value (a var, ``{{ '{{' }}``, ``{% raw %}``): a var set by a pull request must not reach
    ``{{workflow.uid}}``, a parameter or an expression, so it is refused. The expressions flowplan
    writes itself (``{{workflow.parameters.X}}``, ``{{inputs.parameters.item}}``) are added by the
    compiler after this check.
    """
    if not _may_hold_expression(value):
        return []
    return _expression_walk(value, path, loc)


def _may_hold_expression(value: Any) -> bool:
    """False only when no string under ``value`` holds ``{{``: one serialisation instead of a walk per node.

    The walk over every manifest value was the largest part of a large compile; JSON escapes no
    brace, so a ``{{`` anywhere shows in the serialised bytes (which also cover the fields the walk
    skips: a false alarm there only costs the walk).
    """
    try:
        return b"{{" in orjson.dumps(value, default=str)
    except (TypeError, orjson.JSONEncodeError):
        return True


def _expression_walk(value: Any, path: str, loc: Location) -> list[Problem]:
    problems: list[Problem] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        loc = getattr(value, "loc", loc)
        for item in dataclasses.fields(value):
            if item.name not in ("loc", "name", "backend", "source"):
                child = getattr(value, item.name)
                problems += _expression_walk(child, f"{path}.{item.name}", loc)
    elif isinstance(value, Mapping):
        for key, child in value.items():
            if isinstance(key, str) and "{{" in key:
                problems.append(_expression_problem(f"{path}.{key}", loc))
            problems += _expression_walk(child, f"{path}.{key}", loc)
    elif isinstance(value, tuple | list):
        for index, child in enumerate(value):
            problems += _expression_walk(child, f"{path}[{index}]", loc)
    elif isinstance(value, str) and "{{" in value:
        problems.append(_expression_problem(path, loc))
    return problems


def _expression_problem(path: str, loc: Location) -> Problem:
    return Problem(
        loc,
        path,
        "holds `{{`, which Argo would evaluate as a template expression (it has no way to escape it)",
        "remove the `{{` from this value (a var, `{{ '{{' }}` or `{% raw %}` made it); to pass run-time data, use "
        "flow parameters (FLOWPLAN_PARAM_*) or FLOWPLAN_RUN_ID",
    )
