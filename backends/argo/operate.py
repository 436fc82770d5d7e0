"""Operating what the argo backend deployed: runs, trigger plumbing, manual runs, branch deployments.

Runs are the ``Workflow`` objects the controller creates from a flow's CronWorkflow or Sensor, and
the ones ``flowplan run`` submits. Every one carries the run labels the WorkflowTemplate's
``spec.workflowMetadata.labels`` (and a manual run's own metadata) set — ``flowplan.dev/project``,
``branch``, ``flow`` — so one LIST per namespace with a project-and-branch selector finds the runs
of every flow at once; they are grouped by the flow label and sorted by start time here.

Trigger plumbing is read from what the planner's reader already listed (the status a CronWorkflow,
Sensor or EventSource carries is kept in ``LiveResource.meta["preserve"]``), so checking it costs
no call, except one GET per EventSource a Sensor listens to that flowplan does not manage (the
event source of ``events:``). Argo Events reports health as ``status.conditions`` (``Deployed``,
``DependenciesProvided``, ``TriggersProvided`` on a Sensor; ``SourcesProvided``, ``Deployed`` on an
EventSource): all ``True`` is healthy, any other value is broken, none at all is unknown (the
controller has not looked at it — is it running?).

``flowplan run`` creates a ``Workflow`` with ``generateName`` and a ``workflowTemplateRef``, the
run labels and the parameters given, in one request that is never retried (a retry after a lost
answer could start the flow twice; the error says how to check).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backends.argo.client import (
    CONFIG_MAP,
    EVENT_SOURCE,
    KINDS,
    RESOURCE_KINDS,
    WORKFLOW_TEMPLATE,
    Kind,
    Kube,
    classify,
)
from backends.argo.inventory import ConfigMapInventory
from backends.argo.listing import INVENTORY_KEY, parallel
from backends.argo.names import label_value
from backends.argo.workflow import run_labels
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
from planner.manifest import ArgoSettings
from planner.resources import BRANCH_KEY, FLOW_KEY, MANAGED_BY, MANAGED_BY_KEY, PROJECT_KEY, Address

__all__ = ["STARTED_BY_KEY", "WORKFLOW", "ArgoOperator", "workflow_run"]

WORKFLOW = Kind(
    "Workflow", "argoproj.io", "v1alpha1", "workflows", WORKFLOW_TEMPLATE.product, WORKFLOW_TEMPLATE.install
)
#: Marks runs started with ``flowplan run`` (``manual``), so status can tell them from scheduled ones.
STARTED_BY_KEY = "flowplan.dev/started-by"
_PHASES: Mapping[str, RunOutcome] = {
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Error": "failed",
    "Running": "running",
    "Pending": "pending",
}
_ERROR_CONDITIONS = frozenset({"SubmissionError", "SpecError"})


def workflow_run(flow: str, obj: Mapping[str, Any]) -> Run:
    """A Workflow object as a :class:`~planner.contract.Run` (no status yet: pending, not picked up)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    phase = str(status.get("phase") or "")
    outcome: RunOutcome = _PHASES.get(phase, "unknown" if phase else "pending")
    detail = phase or "not picked up by the workflow controller yet"
    if status.get("message"):
        detail += f": {status['message']}"
    return Run(
        flow=flow,
        id=str(meta.get("name", "")),
        outcome=outcome,
        started=status.get("startedAt") or meta.get("creationTimestamp"),
        finished=status.get("finishedAt"),
        detail=detail,
    )


def _conditions(obj_status: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    conditions = (obj_status or {}).get("conditions") or []
    return [c for c in conditions if isinstance(c, dict)]


def _condition_text(condition: Mapping[str, Any]) -> str:
    text = f"{condition.get('type')}: {condition.get('reason') or condition.get('status')}"
    return text + (f" ({condition['message']})" if condition.get("message") else "")


def _events_health(flow: str, kind: str, name: str, status: Mapping[str, Any] | None) -> TriggerHealth:
    """Argo Events' verdict on a Sensor or EventSource, from its status conditions."""
    conditions = _conditions(status)
    if not conditions:
        return TriggerHealth(
            flow,
            kind,
            name,
            "unknown",
            None,
            "no status yet: the Argo Events controller has not reported on it (is it running?)",
        )
    failing = [c for c in conditions if str(c.get("status")) != "True"]
    if failing:
        detail = "; ".join(_condition_text(c) for c in failing)
        return TriggerHealth(flow, kind, name, "degraded", False, detail)
    return TriggerHealth(flow, kind, name, "deployed", True, ", ".join(str(c.get("type")) for c in conditions))


class ArgoOperator:
    """The :class:`~planner.contract.Operator` of an argo backend."""

    def __init__(self, kube: Kube, settings: ArgoSettings, name: str) -> None:
        """The cluster's client, the backend's ``argo:`` settings and its name in the manifest (for messages)."""
        self.kube = kube
        self.settings = settings
        self.name = name

    # -- runs --------------------------------------------------------------------------

    def _namespaces(self, flows: Iterable[FlowTarget]) -> list[str]:
        found = {r.address.namespace for f in flows for r in f.resources if r.address.kind == "WorkflowTemplate"}
        return sorted(found or {self.settings.namespace})

    def runs(self, scope: Scope, flows: Sequence[FlowTarget], limit: int) -> dict[str, list[Run]]:
        """One LIST of Workflows per namespace (project and branch selector), grouped by the flow label."""
        by_label = {label_value(f.name): f.name for f in flows}
        selector = f"{PROJECT_KEY}={scope.project},{BRANCH_KEY}={scope.branch}"
        namespaces = self._namespaces(flows)
        listed = parallel(lambda ns: self.kube.list(WORKFLOW, ns, label_selector=selector), namespaces)
        result: dict[str, list[Run]] = {f.name: [] for f in flows}
        for items in listed:
            for obj in items:
                labels = (obj.get("metadata") or {}).get("labels") or {}
                flow = by_label.get(str(labels.get(FLOW_KEY, "")))
                if flow is not None:
                    result[flow].append(workflow_run(flow, obj))
        for flow, runs in result.items():
            runs.sort(key=lambda r: (r.started or "", r.id), reverse=True)
            result[flow] = runs[:limit]
        return result

    # -- trigger plumbing --------------------------------------------------------------

    def trigger_health(
        self, scope: Scope, flows: Sequence[FlowTarget], live: LiveState
    ) -> dict[str, list[TriggerHealth]]:
        result: dict[str, list[TriggerHealth]] = {}
        foreign: dict[tuple[str, str], dict[str, Any] | None] = {}
        for flow in flows:
            found: list[TriggerHealth] = []
            for resource in sorted(flow.resources, key=lambda r: r.address.sort_key()):
                address = resource.address
                current = live.owned.get(address)
                if address.kind == "CronWorkflow":
                    found.append(self._cron_health(flow.name, address, current))
                elif address.kind == "Sensor":
                    if current is None:
                        found.append(TriggerHealth(flow.name, "sensor", address.name, "missing", False, "not deployed"))
                        continue
                    status = (current.meta.get("preserve") or {}).get("status")
                    found.append(_events_health(flow.name, "sensor", address.name, status))
                    found.extend(self._sources(flow.name, address.namespace, current.body, live, foreign))
            result[flow.name] = found
        return result

    def _cron_health(self, flow: str, address: Address, current: Any) -> TriggerHealth:
        if current is None:
            return TriggerHealth(flow, "schedule", address.name, "missing", False, "the CronWorkflow is not deployed")
        suspended = bool((current.body.get("spec") or {}).get("suspend"))
        status = (current.meta.get("preserve") or {}).get("status") or {}
        errors = [
            c for c in _conditions(status) if c.get("type") in _ERROR_CONDITIONS and str(c.get("status")) == "True"
        ]
        state = "suspended" if suspended else "enabled"
        if errors:
            detail = "; ".join(f"{c.get('type')}: {c.get('message', '')}".rstrip(": ") for c in errors)
            return TriggerHealth(flow, "schedule", address.name, state, False, detail)
        last = status.get("lastScheduledTime")
        detail = f"last fired {last}" if last else "has not fired yet"
        return TriggerHealth(flow, "schedule", address.name, state, True, detail)

    def _sources(
        self,
        flow: str,
        namespace: str,
        sensor: Mapping[str, Any],
        live: LiveState,
        foreign: dict[tuple[str, str], dict[str, Any] | None],
    ) -> list[TriggerHealth]:
        """The EventSources a Sensor listens to: flowplan's own from ``live``, others with one GET each."""
        names = sorted(
            {
                str(d.get("eventSourceName"))
                for d in (sensor.get("spec") or {}).get("dependencies") or []
                if isinstance(d, dict) and d.get("eventSourceName")
            }
        )
        found = []
        for name in names:
            address = Address(self.name, "EventSource", namespace, name)
            ours = live.owned.get(address)
            if ours is not None:
                status = (ours.meta.get("preserve") or {}).get("status")
            else:
                key = (namespace, name)
                if key not in foreign:
                    foreign[key] = self.kube.get(EVENT_SOURCE, namespace, name)
                obj = foreign[key]
                if obj is None:
                    found.append(
                        TriggerHealth(
                            flow,
                            "event-source",
                            name,
                            "missing",
                            False,
                            f"the Sensor waits for events from EventSource {namespace}/{name}, which does not exist",
                        )
                    )
                    continue
                status = obj.get("status")
            found.append(_events_health(flow, "event-source", name, status))
        return found

    # -- run now -----------------------------------------------------------------------

    def submit(self, scope: Scope, flow: FlowTarget, params: Mapping[str, str]) -> Submitted:
        template = next((r for r in flow.resources if r.address.kind == "WorkflowTemplate"), None)
        if template is None:
            raise BackendError(f"flow {flow.name} has no WorkflowTemplate on backend {self.name!r}")
        namespace, name = template.address.namespace, template.address.name
        if self.kube.get(KINDS["WorkflowTemplate"], namespace, name) is None:
            raise BackendError(
                f"flow {flow.name} is not deployed on branch {scope.branch}: WorkflowTemplate {namespace}/{name} "
                "does not exist",
                hint=f"apply first: flowplan apply --branch {scope.branch}",
            )
        declared = [
            str(p.get("name"))
            for p in ((template.body.get("spec") or {}).get("arguments") or {}).get("parameters") or []
            if isinstance(p, dict)
        ]
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise FlowplanError(
                f"flow {flow.name} has no parameter {', '.join(unknown)}",
                hint="its parameters: " + (", ".join(declared) or "none"),
            )
        labels = {**run_labels(scope.project, scope.branch, label_value(flow.name)), STARTED_BY_KEY: "manual"}
        spec: dict[str, Any] = {"workflowTemplateRef": {"name": name}}
        if params:
            spec["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in sorted(params.items())]}
        body = {
            "apiVersion": WORKFLOW.api_version,
            "kind": WORKFLOW.kind,
            "metadata": {"generateName": f"{name}-", "namespace": namespace, "labels": labels},
            "spec": spec,
        }
        try:
            created = self.kube.call("create", WORKFLOW, namespace, body=body)
        except Exception as exc:
            failure = classify(exc)
            error = self.kube.error(failure, verb="create", kind=WORKFLOW, namespace=namespace)
            if failure.kind != "fatal":
                error.hint = (
                    f"the answer was lost, so the run may have started: check with `argo -n {namespace} list "
                    f"-l {FLOW_KEY}={label_value(flow.name)}` before running it again"
                )
            raise error from None
        run_name = str((created.get("metadata") or {}).get("name", ""))
        return Submitted(
            flow=flow.name,
            id=run_name,
            where=f"namespace {namespace} on {self.kube.where()}",
            watch=(
                f"argo -n {namespace} watch {run_name}",
                f"kubectl -n {namespace} get workflow {run_name} -w",
                f"flowplan status {flow.name} --branch {scope.branch}",
            ),
        )

    def rollback_writer(self, scope: Scope, dry_run: bool = False) -> ContractRollbackWriter | None:
        return None  # a rollback is an ordinary apply of the recorded objects

    # -- branch deployments ------------------------------------------------------------

    def branches(self, project: str) -> list[BranchInfo]:
        """Inventories (one LIST of ConfigMaps) and marked objects (one LIST per kind and namespace)."""
        base = f"{MANAGED_BY_KEY}={MANAGED_BY},{PROJECT_KEY}={project}"
        inventories = self.kube.list(CONFIG_MAP, self.settings.namespace, label_selector=f"{base},{INVENTORY_KEY}=true")
        tracked = sorted(
            {
                str(labels[BRANCH_KEY])
                for labels in ((i.get("metadata") or {}).get("labels") or {} for i in inventories)
                if labels.get(BRANCH_KEY)
            }
        )
        pairs = sorted(
            {
                (kind, self.settings.sensor_namespace if kind in ("Sensor", "EventSource") else self.settings.namespace)
                for kind in RESOURCE_KINDS
            }
        )

        def marked(pair: tuple[str, str]) -> list[dict[str, Any]]:
            kind, namespace = pair
            selector = base + (f",!{INVENTORY_KEY}" if kind == "ConfigMap" else "")
            return self.kube.list(KINDS[kind], namespace, label_selector=selector)

        counts: dict[str, int] = {}
        for items in parallel(marked, pairs):
            for obj in items:
                branch = ((obj.get("metadata") or {}).get("labels") or {}).get(BRANCH_KEY)
                if branch:
                    counts[str(branch)] = counts.get(str(branch), 0) + 1
        states = parallel(
            lambda branch: ConfigMapInventory(
                self.kube, Scope(self.name, project, branch), self.settings.namespace
            ).load(),
            tracked,
        )
        loaded = dict(zip(tracked, states, strict=True))
        result = []
        for branch in sorted(set(tracked) | set(counts)):
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
