"""The typed manifest: what ``flows.yaml`` means after validation and templating.

Frozen dataclasses, so compilers (pure functions) can share one Manifest
freely. Every part keeps its :class:`~planner.errors.Location` so errors found
later (a name that collides once shortened, an expression a backend cannot
represent) still point at a file:line:column.

The model is independent of where a flow came from: inline steps today, a
Metaflow FlowSpec later (``Flow.source``), so compilers see one shape.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from planner.errors import Location

BackendType = Literal["files", "argo", "stepfunctions"]
Concurrency = Literal["allow", "forbid", "replace"]

_NOWHERE = Location("<manifest>")


@dataclass(frozen=True)
class Var:
    name: str
    value: Any
    sensitive: bool = False
    description: str | None = None
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class ArgoSettings:
    """Settings every Argo rendering needs, whether written to files or a cluster."""

    namespace: str
    sensor_namespace: str
    service_account: str | None = None
    event_bus: str = "default"
    event_source: str = "flowplan-events"
    event_name: str = "flowplan"
    schedule_field: Literal["schedules", "schedule"] = "schedules"
    image_pull_secrets: tuple[str, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    naming: Literal["flowplan", "metaflow"] = "flowplan"


@dataclass(frozen=True)
class StepFunctionsSettings:
    region: str
    account_id: str
    execution_role_arn: str | None = None
    events_role_arn: str | None = None
    job_execution_role_arn: str | None = None
    job_queue: str | None = None
    name_prefix: str = ""
    event_bus: str = "default"
    inventory_table: str = "flowplan-state"
    naming: Literal["flowplan", "metaflow"] = "flowplan"


@dataclass(frozen=True)
class IgnoreRule:
    """A difference flowplan neither reports nor overwrites (``KIND:/json/pointer``)."""

    kind: str
    pointer: str
    loc: Location = _NOWHERE

    def __str__(self) -> str:
        return f"{self.kind}:{self.pointer}"


@dataclass(frozen=True)
class Backend:
    name: str
    type: BackendType
    settings: Mapping[str, Any]
    argo: ArgoSettings | None = None
    stepfunctions: StepFunctionsSettings | None = None
    ignore_changes: tuple[IgnoreRule, ...] = ()
    loc: Location = _NOWHERE

    @property
    def renders(self) -> Literal["argo", "stepfunctions"]:
        """Which compiler this backend's resources come from."""
        if self.type == "files":
            return "stepfunctions" if self.settings.get("render") == "stepfunctions" else "argo"
        return "argo" if self.type == "argo" else "stepfunctions"


@dataclass(frozen=True)
class Schedule:
    """A resolved schedule; ``cron`` is always standard 5-field cron (``every`` expanded)."""

    name: str | None
    cron: str
    timezone: str = "UTC"
    concurrency: Concurrency = "allow"
    suspend: bool = False
    starting_deadline: int | None = None
    every: str | None = None
    description: str | None = None
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class EventFilter:
    path: str
    op: str
    value: Any
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class Event:
    name: str
    source: str
    type: str
    filters: tuple[EventFilter, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives; flowplan only ever handles the reference."""

    secret: str | None = None
    key: str | None = None
    arn: str | None = None


@dataclass(frozen=True)
class Sink:
    """A result destination; ``settings`` are non-secret and branch-scoped already."""

    name: str
    type: Literal["warehouse", "cache", "model"]
    settings: Mapping[str, Any]
    credentials: SecretRef | None = None
    description: str | None = None
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class Resources:
    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0
    cpu_millis: int | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class EnvValue:
    value: str
    sensitive: bool = False


@dataclass(frozen=True)
class Foreach:
    """Run a step once per item: a literal list, or a list-valued parameter known when a run starts."""

    items: tuple[Any, ...] | None = None
    parameter: str | None = None


@dataclass(frozen=True)
class Step:
    name: str
    command: tuple[str, ...]
    image: str
    resources: Resources = Resources()
    retries: int = 0
    timeout: int | None = None
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    next: tuple[str, ...] = ()
    foreach: Foreach | None = None
    shell: bool = False
    description: str | None = None
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    type: Literal["string", "int", "float", "bool", "list"]
    description: str | None = None
    loc: Location = _NOWHERE

    @property
    def default_text(self) -> str:
        """The default as the string a step's environment receives (lists as JSON)."""
        return render_value(self.default)


@dataclass(frozen=True)
class Trigger:
    event: str | None = None
    after: str | None = None
    loc: Location = _NOWHERE

    @property
    def key(self) -> str:
        return f"event:{self.event}" if self.event else f"after:{self.after}"


@dataclass(frozen=True)
class MetaflowSource:
    """A flow whose steps are a Metaflow FlowSpec file (``flows.NAME.metaflow``; docs/metaflow.md).

    ``file`` is as written (relative to the manifest's directory); ``flow_class``
    is checked against the class the file starts; ``env`` is added to the
    compile's environment (over the backend's ``metaflow:`` settings).
    """

    file: str
    flow_class: str | None = None
    package_suffixes: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    loc: Location = _NOWHERE


@dataclass(frozen=True)
class Flow:
    name: str
    backend: str
    image: str | None
    steps: Mapping[str, Step]
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    schedule: Schedule | None = None
    triggers: tuple[Trigger, ...] = ()
    sinks: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False
    ignore_changes: tuple[IgnoreRule, ...] = ()
    description: str | None = None
    source: Literal["inline", "metaflow"] = "inline"
    metaflow: MetaflowSource | None = None
    loc: Location = _NOWHERE

    @property
    def start(self) -> str:
        """The one step nothing leads to (validated to exist)."""
        targets = {n for step in self.steps.values() for n in step.next}
        return next(name for name in self.steps if name not in targets)

    @property
    def end(self) -> str:
        return next(name for name, step in self.steps.items() if not step.next)

    def predecessors(self) -> dict[str, list[str]]:
        return {name: list(preds) for name, preds in self._predecessors.items()}

    def topological_steps(self) -> list[str]:
        """Steps in dependency order, ties by manifest order (deterministic output)."""
        return list(self._topological)

    # Computed once per flow: compilers ask for both several times per flow.
    @functools.cached_property
    def _predecessors(self) -> dict[str, tuple[str, ...]]:
        preds: dict[str, list[str]] = {name: [] for name in self.steps}
        for name, step in self.steps.items():
            for nxt in step.next:
                preds[nxt].append(name)
        return {name: tuple(p) for name, p in preds.items()}

    @functools.cached_property
    def _topological(self) -> tuple[str, ...]:
        order = list(self.steps)
        position = {name: i for i, name in enumerate(order)}
        preds = {name: len(p) for name, p in self.predecessors().items()}
        ready = sorted((n for n, c in preds.items() if c == 0), key=position.__getitem__)
        result: list[str] = []
        while ready:
            current = ready.pop(0)
            result.append(current)
            for nxt in self.steps[current].next:
                preds[nxt] -= 1
                if preds[nxt] == 0:
                    ready.append(nxt)
                    ready.sort(key=position.__getitem__)
        return tuple(result)


@dataclass(frozen=True)
class Moved:
    """A rename: of a flow (the default), or of the whole project or branch.

    ``kind: project`` / ``kind: branch`` entries only apply when ``target`` is the
    project (or the ``--branch``) being planned; others are kept for the record.
    """

    source: str
    target: str
    loc: Location = _NOWHERE
    kind: Literal["flow", "project", "branch"] = "flow"


@dataclass(frozen=True)
class Manifest:
    """A validated manifest for one branch, with every template rendered."""

    path: str
    project: str
    branch: str
    backends: Mapping[str, Backend]
    flows: Mapping[str, Flow]
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    events: Mapping[str, Event] = field(default_factory=dict)
    sinks: Mapping[str, Sink] = field(default_factory=dict)
    vars: Mapping[str, Var] = field(default_factory=dict)
    moved: tuple[Moved, ...] = ()
    enable_schedules: bool = False
    digest: str = ""
    vars_digest: str = ""
    sensitive_values: frozenset[str] = frozenset()
    description: str | None = None

    @property
    def is_production(self) -> bool:
        return self.branch == "prod"

    def schedules_enabled(self) -> bool:
        """Non-production branches deploy schedules suspended unless asked (Metaflow's @project rule)."""
        return self.is_production or self.enable_schedules

    def flows_on(self, backend: str) -> list[Flow]:
        return [flow for flow in self.flows.values() if flow.backend == backend]

    def downstream_of(self, flow: str) -> list[str]:
        """Flows with an ``after: flow`` trigger, sorted."""
        return sorted(f.name for f in self.flows.values() if any(t.after == flow for t in f.triggers))


def render_value(value: Any) -> str:
    """How a parameter value or foreach item is passed as text (JSON for lists and booleans)."""
    import json

    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
