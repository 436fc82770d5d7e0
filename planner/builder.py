"""The old name of :mod:`planner.building`, kept until the CLI and apply import that package."""

from planner.building import BackendView, PlanOptions, PlanResult, build_plan

__all__ = ["BackendView", "PlanOptions", "PlanResult", "build_plan"]
