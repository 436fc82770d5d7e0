"""Recognising objects another tool deployed (Metaflow), from the markers and shapes that tool writes.

The Argo, Step Functions and files readers call :func:`made_by` on each body they read and keep the
answer in ``LiveResource.made_by``, so the plan can say "taking over an object deployed by Metaflow"
without the core knowing Metaflow's markers. It is a leaf module of ``backends`` rather than part of
``backends.metaflow`` because that package builds on the Argo and Step Functions compilers: the
readers importing it would make the backend packages import each other in a circle. Nothing here
imports Metaflow or any other package: it reads plain bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["made_by"]

#: Where Metaflow names the flow: Argo annotations (``metadata.annotations``) or AWS tags (``tags``).
_FLOW_KEYS = ("metaflow/flow_name", "metaflow.org/flow_name")


def made_by(body: Mapping[str, Any]) -> str | None:
    """``Metaflow (flow TrainFlow)`` when ``body`` carries Metaflow's markers, else None.

    Metaflow's CronWorkflows carry no annotations, but its ArgoClient writes a fixed shape
    (``failedJobsHistoryLimit: 10000``, ``startingDeadlineSeconds: 3540``): those are recognised by
    it and named by the WorkflowTemplate they start.
    """
    if not isinstance(body, Mapping):
        return None
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    for source in (annotations, body.get("tags")):
        if isinstance(source, Mapping):
            name = next((source[key] for key in _FLOW_KEYS if source.get(key)), None)
            if name:
                return f"Metaflow (flow {name})"
    spec = body.get("spec")
    if (
        isinstance(spec, Mapping)
        and spec.get("failedJobsHistoryLimit") == 10000
        and spec.get("startingDeadlineSeconds") == 3540
    ):
        workflow = spec.get("workflowSpec")
        reference = workflow.get("workflowTemplateRef") if isinstance(workflow, Mapping) else None
        template = reference.get("name", "?") if isinstance(reference, Mapping) else "?"
        return f"Metaflow (the schedule of {template})"
    return None
