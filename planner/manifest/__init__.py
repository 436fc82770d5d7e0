"""The manifest language: load ``flows.yaml`` into a validated, typed :class:`Manifest`.

See docs/manifest.md for the language and :mod:`planner.manifest.loader` for
the order in which it is checked.
"""

from planner.manifest.build_backends import DEFAULT_BACKEND
from planner.manifest.loader import load_manifest
from planner.manifest.model import (
    ArgoSettings,
    Backend,
    EnvValue,
    Event,
    EventFilter,
    Flow,
    Foreach,
    IgnoreRule,
    Manifest,
    MetaflowSource,
    Moved,
    Parameter,
    Resources,
    Schedule,
    SecretRef,
    Sink,
    Step,
    StepFunctionsSettings,
    Trigger,
    Var,
    render_value,
)
from planner.manifest.naming import branch_problem
from planner.manifest.schema import json_schema

__all__ = [
    "DEFAULT_BACKEND",
    "ArgoSettings",
    "Backend",
    "EnvValue",
    "Event",
    "EventFilter",
    "Flow",
    "Foreach",
    "IgnoreRule",
    "Manifest",
    "MetaflowSource",
    "Moved",
    "Parameter",
    "Resources",
    "Schedule",
    "SecretRef",
    "Sink",
    "Step",
    "StepFunctionsSettings",
    "Trigger",
    "Var",
    "branch_problem",
    "json_schema",
    "load_manifest",
    "render_value",
]
