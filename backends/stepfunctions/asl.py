"""A flow as an Amazon States Language definition: one AWS Batch task per step. Pure.

The manifest validated every step graph as two-terminal series-parallel (a
fan-out's branches each end at one join step), which is exactly what nests as
``Parallel`` states: walking from the start, a step with one successor chains
to it; a step with several becomes a ``Parallel`` state whose branches run from
each successor up to the join (the step's immediate post-dominator), and the
chain goes on at the join.

Data flow (JSONPath mode):

- ``flowplan: defaults`` and ``flowplan: parameters`` (``Pass``) merge the
  parameter defaults with the execution input (``States.JsonMerge``: the input
  wins) into ``$.parameters``; parameters travel as text, as on Argo (lists as
  JSON text);
- between the two, per parameter an event trigger maps, ``flowplan: event
  gave <p>?`` (``Choice``) and ``flowplan: default <p>`` (``Pass``): an
  EventBridge input transformer cannot leave a key out of its template, and a
  variable whose path is missing from the event is not created, so its quoted
  placeholder reaches the input as ``""`` (or, read strictly, as the literal
  ``<p>``); either means "absent" and the input takes the declared default
  (docs/manifest.md promises it);
- ``flowplan: foreach items`` (``Pass``) puts each ``foreach`` step's items at
  ``$.foreach.<step>``: a literal list as written, a list parameter parsed
  with ``States.StringToJson``;
- a step is a ``Task`` on ``arn:aws:states:::batch:submitJob.sync`` whose
  container gets ``FLOWPLAN_PROJECT/BRANCH/FLOW/STEP/RUN_ID``,
  ``FLOWPLAN_ATTEMPT`` (``$$.State.RetryCount``: 0 on the first attempt),
  ``FLOWPLAN_PARAM_*`` and, inside a ``Map``, ``FLOWPLAN_FOREACH_ITEM``
  (``States.Format('{}', …)`` so numbers and booleans reach Batch as text);
- every task first retries Batch's transient errors (the service's 5xx and
  throttling, as Step Functions names them: ``Batch.<error code>``) up to
  :data:`PLATFORM_RETRY_ATTEMPTS` times with exponential backoff and full
  jitter, whatever the step's ``retries:`` (which become a second retrier on
  ``States.ALL``): a platform hiccup is not the step failing. A step timeout is
  both the state's ``TimeoutSeconds`` and Batch's ``AttemptDurationSeconds``
  (at least Batch's 60 s), so Batch stops the job instead of leaving it running
  after Step Functions gave up;
- every task, ``Map`` and ``Parallel`` has ``ResultPath: null``: a job's result
  never replaces the state, so each step sees the parameters.

Names the manifest cannot produce mark flowplan's own states (step names hold
no ``:`` or space), so they never collide with a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from backends.stepfunctions.names import fit, job_name
from planner.manifest import Flow, Step, render_value

__all__ = [
    "BATCH_SUBMIT_SYNC",
    "BATCH_TRANSIENT_ERRORS",
    "DEFAULTS_STATE",
    "FOREACH_STATE",
    "PARAMETERS_STATE",
    "PLATFORM_RETRY_ATTEMPTS",
    "AslInputs",
    "definition",
    "foreach_key",
    "state_names",
]

BATCH_SUBMIT_SYNC = "arn:aws:states:::batch:submitJob.sync"
DEFAULTS_STATE = "flowplan: defaults"
PARAMETERS_STATE = "flowplan: parameters"
FOREACH_STATE = "flowplan: foreach items"
RETRY_INTERVAL_SECONDS = 10
RETRY_BACKOFF_RATE = 2
#: The errors Step Functions reports when Batch's SubmitJob / DescribeJobs calls fail on Batch's side
#: (``Batch.AWSBatchException`` is how the integration reports Batch SDK failures; ServerException is
#: Batch's 5xx; TooManyRequestsException its throttling, HTTP 429).
BATCH_TRANSIENT_ERRORS = ("Batch.AWSBatchException", "Batch.ServerException", "Batch.TooManyRequestsException")
#: Metaflow retries the same errors 10 times with jitter on every task; so does flowplan.
PLATFORM_RETRY_ATTEMPTS = 10
PLATFORM_RETRY_INTERVAL_SECONDS = 2
PLATFORM_RETRY_MAX_DELAY_SECONDS = 60
#: Batch refuses an attempt timeout under 60 seconds.
MIN_ATTEMPT_SECONDS = 60


@dataclass(frozen=True)
class AslInputs:
    """What a definition needs from outside the flow."""

    project: str
    branch: str
    job_queue: str
    job_definitions: Mapping[str, str]
    #: Parameters an event trigger of the flow maps from the event (they may arrive empty: see above).
    event_parameters: frozenset[str] = frozenset()


def foreach_key(step: str) -> str:
    """``train-gbdt`` → ``train_gbdt``: a JSONPath-safe key (the manifest keeps these unique per flow)."""
    return step.lower().replace("-", "_")


def task_state(step: str) -> str:
    return fit(step, "State").physical


def map_state(step: str) -> str:
    return fit(f"{step}: foreach", "State").physical


def parallel_state(step: str) -> str:
    return fit(f"{step}: fan-out", "State").physical


def event_check_state(parameter: str) -> str:
    return fit(f"flowplan: event gave {parameter}?", "State").physical


def event_default_state(parameter: str) -> str:
    return fit(f"flowplan: default {parameter}", "State").physical


def _mapped(flow: Flow, event_parameters: frozenset[str]) -> list[str]:
    return [name for name in flow.parameters if name in event_parameters]


def state_names(flow: Flow, event_parameters: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Every state name the definition of ``flow`` uses, by the step it comes from ('' for flowplan's own)."""
    names: dict[str, list[str]] = {"": []}
    if flow.parameters:
        names[""] += [DEFAULTS_STATE, PARAMETERS_STATE]
        for name in _mapped(flow, event_parameters):
            names[""] += [event_check_state(name), event_default_state(name)]
    if any(step.foreach is not None for step in flow.steps.values()):
        names[""].append(FOREACH_STATE)
    for name, step in flow.steps.items():
        own = [task_state(name)]
        if step.foreach is not None:
            own.append(map_state(name))
        if len(step.next) > 1:
            own.append(parallel_state(name))
        names[name] = own
    return names


def definition(flow: Flow, inputs: AslInputs) -> dict[str, Any]:
    """The state machine definition of ``flow`` as a JSON-ready dict (sent as canonical JSON)."""
    return _Builder(flow, inputs).build()


class _Builder:
    def __init__(self, flow: Flow, inputs: AslInputs) -> None:
        self.flow = flow
        self.inputs = inputs
        self.join = _joins(flow)

    def build(self) -> dict[str, Any]:
        preamble: list[tuple[str, dict[str, Any]]] = []
        if self.flow.parameters:
            defaults = {name: p.default_text for name, p in self.flow.parameters.items()}
            preamble.append((DEFAULTS_STATE, {"Type": "Pass", "Parameters": {"defaults": defaults, "input.$": "$"}}))
            preamble += self._event_defaults()
            preamble.append(
                (
                    PARAMETERS_STATE,
                    {
                        "Type": "Pass",
                        "Parameters": {"parameters.$": "States.JsonMerge($.defaults, $.input, false)"},
                    },
                )
            )
        foreach = self._foreach_items()
        if foreach:
            parameters: dict[str, Any] = {}
            if self.flow.parameters:
                parameters["parameters.$"] = "$.parameters"
            parameters["foreach"] = foreach
            preamble.append((FOREACH_STATE, {"Type": "Pass", "Parameters": parameters}))
        chain = preamble + self._chain(self.flow.start, None)
        result: dict[str, Any] = {}
        if self.flow.description:
            result["Comment"] = self.flow.description
        result.update(_link(chain))
        return result

    def _event_defaults(self) -> list[tuple[str, dict[str, Any]]]:
        """Per event-mapped parameter: a ``Choice`` on an empty (absent) value and a ``Pass`` writing the default.

        Each ``Choice`` goes on to the next parameter's check (the last to ``flowplan: parameters``) when the
        value is there; :func:`_link` chains each ``Pass`` to the state after it.
        """
        mapped = _mapped(self.flow, self.inputs.event_parameters)
        states: list[tuple[str, dict[str, Any]]] = []
        for index, name in enumerate(mapped):
            after = event_check_state(mapped[index + 1]) if index + 1 < len(mapped) else PARAMETERS_STATE
            path = f"$.input.{name}"
            absent = {
                "And": [
                    {"Variable": path, "IsPresent": True},
                    {"Or": [{"Variable": path, "StringEquals": ""}, {"Variable": path, "StringEquals": f"<{name}>"}]},
                ],
                "Next": event_default_state(name),
            }
            states.append((event_check_state(name), {"Type": "Choice", "Choices": [absent], "Default": after}))
            default = self.flow.parameters[name].default_text
            states.append((event_default_state(name), {"Type": "Pass", "Result": default, "ResultPath": path}))
        return states

    def _foreach_items(self) -> dict[str, Any]:
        items: dict[str, Any] = {}
        for name in self.flow.topological_steps():
            foreach = self.flow.steps[name].foreach
            if foreach is None:
                continue
            key = foreach_key(name)
            if foreach.parameter is not None:
                items[f"{key}.$"] = f"States.StringToJson($.parameters.{foreach.parameter})"
            else:
                items[key] = [render_value(v) for v in foreach.items or ()]
        return items

    def _chain(self, node: str | None, stop: str | None) -> list[tuple[str, dict[str, Any]]]:
        """The states from ``node`` up to (not including) ``stop``, in order, not yet linked."""
        chain: list[tuple[str, dict[str, Any]]] = []
        while node is not None and node != stop:
            step = self.flow.steps[node]
            chain.append(self._step_state(step))
            if not step.next:
                node = None
            elif len(step.next) == 1:
                node = step.next[0]
            else:
                join = self.join[node]
                branches = [_link(self._chain(first, join)) for first in step.next]
                chain.append((parallel_state(node), {"Type": "Parallel", "Branches": branches, "ResultPath": None}))
                node = join
        return chain

    def _step_state(self, step: Step) -> tuple[str, dict[str, Any]]:
        task = self._task(step)
        if step.foreach is None:
            return task_state(step.name), task
        selector: dict[str, Any] = {}
        if self.flow.parameters:
            selector["parameters.$"] = "$.parameters"
        selector["item.$"] = "$$.Map.Item.Value"
        task["End"] = True
        return map_state(step.name), {
            "Type": "Map",
            "ItemsPath": f"$.foreach.{foreach_key(step.name)}",
            "ItemSelector": selector,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": task_state(step.name),
                "States": {task_state(step.name): task},
            },
            "ResultPath": None,
        }

    def _task(self, step: Step) -> dict[str, Any]:
        env: list[dict[str, str]] = [
            {"Name": "FLOWPLAN_PROJECT", "Value": self.inputs.project},
            {"Name": "FLOWPLAN_BRANCH", "Value": self.inputs.branch},
            {"Name": "FLOWPLAN_FLOW", "Value": self.flow.name},
            {"Name": "FLOWPLAN_STEP", "Value": step.name},
            {"Name": "FLOWPLAN_RUN_ID", "Value.$": "$$.Execution.Name"},
            {"Name": "FLOWPLAN_ATTEMPT", "Value.$": "States.Format('{}', $$.State.RetryCount)"},
        ]
        for name in self.flow.parameters:
            env.append(
                {"Name": f"FLOWPLAN_PARAM_{name.upper()}", "Value.$": f"States.Format('{{}}', $.parameters.{name})"}
            )
        if step.foreach is not None:
            env.append({"Name": "FLOWPLAN_FOREACH_ITEM", "Value.$": "States.Format('{}', $.item)"})
        parameters: dict[str, Any] = {
            "JobName": job_name(f"{self.flow.name}-{step.name}"),
            "JobQueue": self.inputs.job_queue,
            "JobDefinition": self.inputs.job_definitions[step.name],
            "ContainerOverrides": {"Environment": env},
        }
        if step.timeout is not None:
            parameters["Timeout"] = {"AttemptDurationSeconds": max(step.timeout, MIN_ATTEMPT_SECONDS)}
        task: dict[str, Any] = {"Type": "Task", "Resource": BATCH_SUBMIT_SYNC, "Parameters": parameters}
        task["ResultPath"] = None
        if step.timeout is not None:
            task["TimeoutSeconds"] = step.timeout
        retry: list[dict[str, Any]] = [
            {
                "ErrorEquals": list(BATCH_TRANSIENT_ERRORS),
                "IntervalSeconds": PLATFORM_RETRY_INTERVAL_SECONDS,
                "MaxAttempts": PLATFORM_RETRY_ATTEMPTS,
                "BackoffRate": RETRY_BACKOFF_RATE,
                "MaxDelaySeconds": PLATFORM_RETRY_MAX_DELAY_SECONDS,
                "JitterStrategy": "FULL",
            }
        ]
        if step.retries > 0:
            retry.append(
                {
                    "ErrorEquals": ["States.ALL"],
                    "IntervalSeconds": RETRY_INTERVAL_SECONDS,
                    "MaxAttempts": step.retries,
                    "BackoffRate": RETRY_BACKOFF_RATE,
                }
            )
        task["Retry"] = retry
        return task


def _link(chain: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``{"StartAt", "States"}`` with each state's ``Next`` set to the one after it; the last ends.

    A ``Choice`` state names its own successors (``Choices`` and ``Default``) and takes neither.
    """
    states: dict[str, Any] = {}
    for index, (name, state) in enumerate(chain):
        if state["Type"] == "Choice":
            pass
        elif index + 1 < len(chain):
            state["Next"] = chain[index + 1][0]
        else:
            state["End"] = True
        states[name] = state
    return {"StartAt": chain[0][0], "States": states}


def _joins(flow: Flow) -> dict[str, str]:
    """For each fan-out step, the step its branches join at (its immediate post-dominator)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(flow.steps)
    for name, step in flow.steps.items():
        for target in step.next:
            graph.add_edge(target, name)  # reversed: post-dominators are dominators of the reverse graph
    dominators = nx.immediate_dominators(graph, flow.end)
    return {name: dominators[name] for name, step in flow.steps.items() if len(step.next) > 1}
