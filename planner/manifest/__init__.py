"""The manifest language: load ``flows.yaml`` into a validated, typed :class:`Manifest`.

See docs/manifest.md for the language. The modules, in the order a load uses them
(:mod:`~planner.manifest.loader` runs the stages and holds that order):

* ``yamlsource`` — YAML to plain data, with positions; duplicate keys, tags and alias bombs refused;
* ``structure`` (with ``schema``) — the shape, against the JSON Schema;
* ``variables`` (with ``templating``) — vars from defaults, var files and ``--var``; templates rendered;
* ``build_backends``, ``backend_settings``, ``build_schedules``, ``build_events``, ``build_sinks``,
  ``build_flows``, ``build_steps`` (with ``stepgraph``, ``units``), ``build_moved`` — the model
  (``model``), each checking the meaning of what it builds;
* ``checks`` — what needs every flow built: colliding names, ``after:`` across backends and in cycles;
* ``context`` and ``naming`` — the problem collector and the naming rules the stages share.
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
