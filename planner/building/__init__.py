"""Manifest + compiler + reader + inventory → a frozen :class:`~planner.plan.Plan` (reads only).

The modules, in the order planning uses them:

- :mod:`~planner.building.reading`: compile every backend, read every backend (reads overlap the compile);
- :mod:`~planner.building.reconcile`: pending inventory intents resolved against what is live;
- :mod:`~planner.building.pairing`: desired ↔ live across addresses (moves, ``import --from``, adoption);
- :mod:`~planner.building.classify`: each object's change and its cause, built by
  :func:`~planner.building.change.resource_change`;
- :mod:`~planner.building.guards`: ``--target``, ``protect``, the destroy threshold, move warnings;
- :mod:`~planner.building.build`: the orchestration into the plan and its apply order.
"""

from planner.building.build import build_plan
from planner.building.views import DEFAULT_DESTROY_THRESHOLD, BackendView, PlanOptions, PlanResult, RenamedScope

__all__ = [
    "DEFAULT_DESTROY_THRESHOLD",
    "BackendView",
    "PlanOptions",
    "PlanResult",
    "RenamedScope",
    "build_plan",
]
