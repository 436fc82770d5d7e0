"""One flow as an Argo ``WorkflowTemplate`` spec: a DAG of container templates, one per step.

Template names: the DAG entrypoint is ``flow``, each step's container template
is ``step-<step>`` and the exit handler (only on flows something runs
``after:``) is ``flowplan-finished``. Step templates carry a prefix so no step
name can collide with the two fixed ones; DAG *tasks* keep the plain step
names, which is what the Argo UI shows.

Everything a step needs to know about its run arrives as ``FLOWPLAN_*``
environment variables, so step code never parses Argo's own variables.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.argo.names import k8s_name
from planner.manifest import ArgoSettings, Flow, Parameter, Resources, Sink, Step
from planner.resources import BRANCH_KEY, FLOW_KEY, PROJECT_KEY

__all__ = [
    "ENTRYPOINT",
    "EXIT_HANDLER",
    "STEP_PREFIX",
    "ExitNotice",
    "TemplateInputs",
    "run_labels",
    "sink_env_name",
    "step_template_name",
    "workflow_template_spec",
]

ENTRYPOINT = "flow"
EXIT_HANDLER = "flowplan-finished"
STEP_PREFIX = "step-"
#: Retries of the exit handler's POST: covers an EventSource pod restart (about a minute).
_EXIT_RETRIES = {"limit": "3", "retryPolicy": "Always", "backoff": {"duration": "10s", "factor": 2}}


@dataclass(frozen=True)
class ExitNotice:
    """Where an upstream flow reports that a run finished (see docs/argo.md, "after:")."""

    url: str
    project: str
    branch: str
    flow: str

    def body(self) -> str:
        """The JSON the exit handler posts; Argo fills in the two ``{{workflow.*}}`` variables."""
        payload = {
            "project": self.project,
            "branch": self.branch,
            "flow": self.flow,
            "workflow": "{{workflow.name}}",
            "status": "{{workflow.status}}",
        }
        return json.dumps(payload, separators=(",", ":"))


@dataclass(frozen=True)
class TemplateInputs:
    """What a flow's template needs from outside the flow."""

    project: str
    branch: str
    settings: ArgoSettings
    sinks: Mapping[str, Sink]
    sink_configmaps: Mapping[str, str]
    notice: ExitNotice | None = None


def run_labels(project: str, branch: str, flow_label: str) -> dict[str, str]:
    """Labels on every run (Workflow object) of a flow, so runs are found by flow."""
    return {BRANCH_KEY: branch, FLOW_KEY: flow_label, PROJECT_KEY: project}


def step_template_name(step: str) -> str:
    return STEP_PREFIX + k8s_name(step)


def sink_env_name(sink: str) -> str:
    """``feature-cache`` → ``FEATURE_CACHE``, the middle of every ``FLOWPLAN_SINK_*`` variable."""
    return sink.upper().replace("-", "_")


@functools.lru_cache(maxsize=16384)
def _env(name: str, value: str) -> dict[str, Any]:
    """One object per distinct entry, shared by every body that has it (bodies are never changed in
    place once built: see ``planner.resources.without``). At 10,000 flows the same few hundred
    entries stood for half a million dicts."""
    return {"name": name, "value": value}


def _parameter_env(parameter: Parameter) -> dict[str, Any]:
    return _env(f"FLOWPLAN_PARAM_{parameter.name.upper()}", f"{{{{workflow.parameters.{parameter.name}}}}}")


def _step_env(flow: Flow, step: Step, inputs: TemplateInputs) -> list[dict[str, Any]]:
    """FLOWPLAN_* first (so a step's own env can refer to them with ``$(NAME)``), then the step's, sorted."""
    env = [
        _env("FLOWPLAN_PROJECT", inputs.project),
        _env("FLOWPLAN_BRANCH", inputs.branch),
        _env("FLOWPLAN_FLOW", flow.name),
        _env("FLOWPLAN_STEP", step.name),
        _env("FLOWPLAN_RUN_ID", "{{workflow.name}}"),
    ]
    env += [_parameter_env(p) for p in flow.parameters.values()]
    if step.foreach is not None:
        env.append(_env("FLOWPLAN_FOREACH_ITEM", "{{inputs.parameters.item}}"))
    if flow.sinks:
        env.append(_env("FLOWPLAN_SINKS", ",".join(flow.sinks)))
    env += _credential_env(flow, inputs.sinks)
    env += [_env(name, step.env[name].value) for name in sorted(step.env)]
    return env


def _credential_env(flow: Flow, sinks: Mapping[str, Sink]) -> list[dict[str, Any]]:
    """Each sink's Kubernetes secret as ``FLOWPLAN_SINK_<NAME>_CREDENTIALS``; the value never enters a body."""
    result = []
    for name in flow.sinks:
        credentials = sinks[name].credentials
        if credentials is None or credentials.secret is None or credentials.key is None:
            continue
        result.append(
            {
                "name": f"FLOWPLAN_SINK_{sink_env_name(name)}_CREDENTIALS",
                "valueFrom": {"secretKeyRef": {"name": credentials.secret, "key": credentials.key}},
            }
        )
    return result


@functools.lru_cache(maxsize=4096)  # shared like _env's entries: a few sizes across thousands of steps
def _resources(resources: Resources) -> dict[str, Any]:
    """Requests for cpu and memory; limits for memory (the OOM line) and GPUs (extended resources need one)."""
    requests = {key: value for key, value in (("cpu", resources.cpu), ("memory", resources.memory)) if value}
    limits: dict[str, str] = {}
    if resources.memory:
        limits["memory"] = resources.memory
    if resources.gpu > 0:
        limits["nvidia.com/gpu"] = str(resources.gpu)
    result: dict[str, Any] = {}
    if requests:
        result["requests"] = requests
    if limits:
        result["limits"] = limits
    return result


@functools.lru_cache(maxsize=4096)
def _config_map_ref(name: str) -> dict[str, Any]:
    return {"configMapRef": {"name": name}}


@functools.lru_cache(maxsize=256)
def _retry_strategy(limit: int) -> dict[str, Any]:
    return {"limit": str(limit), "retryPolicy": "Always"}


def _container(flow: Flow, step: Step, inputs: TemplateInputs) -> dict[str, Any]:
    container: dict[str, Any] = {
        "image": step.image,
        "command": ["sh", "-c", step.command[0]] if step.shell else list(step.command),
        "env": _step_env(flow, step, inputs),
    }
    if flow.sinks:
        container["envFrom"] = [_config_map_ref(inputs.sink_configmaps[s]) for s in flow.sinks]
    resources = _resources(step.resources)
    if resources:
        container["resources"] = resources
    return container


def _step_template(flow: Flow, step: Step, inputs: TemplateInputs) -> dict[str, Any]:
    template: dict[str, Any] = {"name": step_template_name(step.name)}
    if step.foreach is not None:
        template["inputs"] = {"parameters": [{"name": "item"}]}
    template["container"] = _container(flow, step, inputs)
    if step.retries > 0:
        template["retryStrategy"] = _retry_strategy(step.retries)
    if step.timeout is not None:
        template["activeDeadlineSeconds"] = step.timeout
    return template


def _task(flow: Flow, step: Step, predecessors: Sequence[str]) -> dict[str, Any]:
    task: dict[str, Any] = {"name": k8s_name(step.name), "template": step_template_name(step.name)}
    if predecessors:
        task["dependencies"] = [k8s_name(p) for p in predecessors]
    foreach = step.foreach
    if foreach is not None:
        if foreach.parameter is not None:
            task["withParam"] = f"{{{{workflow.parameters.{foreach.parameter}}}}}"
        else:
            task["withItems"] = list(foreach.items or ())
        task["arguments"] = {"parameters": [{"name": "item", "value": "{{item}}"}]}
    return task


def _dag(flow: Flow) -> dict[str, Any]:
    predecessors = flow.predecessors()
    order = flow.topological_steps()
    return {"name": ENTRYPOINT, "dag": {"tasks": [_task(flow, flow.steps[s], predecessors[s]) for s in order]}}


def _exit_handler(notice: ExitNotice) -> dict[str, Any]:
    """An Argo ``http`` template: runs in the workflow's agent pod, no image to pull or maintain."""
    return {
        "name": EXIT_HANDLER,
        "http": {
            "url": notice.url,
            "method": "POST",
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "body": notice.body(),
            "timeoutSeconds": 20,
            "successCondition": "response.statusCode >= 200 && response.statusCode < 300",
        },
        "retryStrategy": _EXIT_RETRIES,
    }


def _parameter(parameter: Parameter) -> dict[str, Any]:
    result: dict[str, Any] = {"name": parameter.name, "value": parameter.default_text}
    if parameter.description:
        result["description"] = parameter.description
    return result


def workflow_template_spec(flow: Flow, flow_label: str, inputs: TemplateInputs) -> dict[str, Any]:
    """The ``spec`` of a flow's WorkflowTemplate."""
    settings = inputs.settings
    spec: dict[str, Any] = {"entrypoint": ENTRYPOINT}
    if flow.parameters:
        spec["arguments"] = {"parameters": [_parameter(p) for p in flow.parameters.values()]}
    if inputs.notice is not None:
        spec["onExit"] = EXIT_HANDLER
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    if settings.node_selector:
        spec["nodeSelector"] = dict(sorted(settings.node_selector.items()))
    spec["workflowMetadata"] = {"labels": run_labels(inputs.project, inputs.branch, flow_label)}
    templates = [_dag(flow)]
    templates += [_step_template(flow, flow.steps[name], inputs) for name in flow.topological_steps()]
    if inputs.notice is not None:
        templates.append(_exit_handler(inputs.notice))
    spec["templates"] = templates
    return spec
