"""Recognising objects another tool deployed, to say so when flowplan takes one over.

Only Metaflow's shapes are known; this knowledge belongs with the backends and is kept apart here
so it can move there.
"""

from __future__ import annotations

from planner.resources import LiveResource


def deployed_by(live: LiveResource) -> str | None:
    """'deployed by Metaflow (flow TrainFlow)' when the object carries Metaflow's markers."""
    annotations = live.body.get("metadata", {}).get("annotations", {}) if isinstance(live.body, dict) else {}
    tags = live.body.get("tags", {}) if isinstance(live.body, dict) else {}
    for source in (annotations, tags):
        if isinstance(source, dict):
            name = source.get("metaflow/flow_name") or source.get("metaflow.org/flow_name")
            if name:
                return f"deployed by Metaflow (flow {name})"
    # Metaflow's CronWorkflows carry no annotations, but its ArgoClient writes a fixed shape
    spec = live.body.get("spec", {}) if isinstance(live.body, dict) else {}
    if (
        isinstance(spec, dict)
        and spec.get("failedJobsHistoryLimit") == 10000
        and spec.get("startingDeadlineSeconds") == 3540
    ):
        template = spec.get("workflowSpec", {}).get("workflowTemplateRef", {}).get("name", "?")
        return f"deployed by Metaflow (the schedule of {template})"
    return None
