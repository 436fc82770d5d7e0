"""Pieces both orchestrators share: stand-in flows, decorator schedules, code-package resources, markers.

flowplan builds the schedule and trigger objects of a Metaflow flow with the
backend's own compiler (so they get the same checks, names, markers and
suspension rules as any other flow): it compiles a *stand-in* manifest in
which each Metaflow flow is a one-step inline flow carrying the flow's
effective schedule, triggers and parameters, keeps the schedule and trigger
objects that come out, points them at Metaflow's workflow, and drops the
stand-in's own workflow. The effective schedule is the manifest's
``schedule:`` if given, else the flow's ``@schedule``; the effective triggers
are the manifest's ``triggers:`` if given, else the flow's ``@trigger`` /
``@trigger_on_finish`` (see :mod:`backends.metaflow.argo` and
:mod:`backends.metaflow.stepfunctions` for how each orchestrator runs them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from backends.metaflow.compile import CompiledFlow
from planner import schedule as cronlib
from planner.errors import FlowplanError, Problem
from planner.manifest import Flow, Manifest, Parameter, Schedule, Step
from planner.resources import Address, Resource

__all__ = [
    "CODE_PACKAGE",
    "decorator_schedule",
    "package_address",
    "package_resource",
    "sink_problems",
    "stand_in",
    "standard_cron",
]

CODE_PACKAGE = "CodePackage"
STAND_IN_STEP = "start"


def standard_cron(expression: str) -> str:
    """A ``@schedule`` cron as standard 5-field cron.

    Metaflow writes ``daily``/``hourly``/``weekly`` in AWS's 6-field form
    (``0 0 * * ? *``) and passes ``cron=`` through: 6 fields are read as AWS
    cron (year dropped, ``?`` as ``*``, day-of-week 1–7 from Sunday shifted to
    0–6), 5 fields as standard cron (``?`` as ``*``).
    """
    fields = expression.split()
    if len(fields) == 6:
        fields = fields[:5]
        fields[4] = _shift_days(fields[4])
    return " ".join("*" if f == "?" else f for f in fields)


def _shift_days(field: str) -> str:
    out = []
    for item in field.split(","):
        step = ""
        if "/" in item:
            item, step = item.split("/", 1)
            step = "/" + step
        bounds = [str(int(b) - 1) if b.isdigit() else b for b in item.split("-")]
        out.append("-".join(bounds) + step)
    return ",".join(out)


def decorator_schedule(flow: Flow, compiled: CompiledFlow) -> tuple[Schedule | None, Problem | None]:
    """The flow's ``@schedule`` as a manifest schedule (UTC when it names no time zone)."""
    if not compiled.schedule:
        return None, None
    source = flow.metaflow
    assert source is not None
    cron = standard_cron(compiled.schedule)
    timezone = compiled.timezone or "UTC"
    try:
        cronlib.parse_cron(cron)
        cronlib.validate_timezone(timezone)
    except FlowplanError as exc:
        return None, Problem(
            source.loc,
            f"flows.{flow.name}.metaflow",
            f"the @schedule of {compiled.flow_name} ({compiled.schedule!r}, time zone {timezone}) is not a schedule "
            f"flowplan can deploy: {exc.message}",
            "give the flow a schedule: in the manifest (it wins over the decorator)",
        )
    return Schedule(name=None, cron=cron, timezone=timezone, loc=source.loc), None


def stand_in(
    flow: Flow,
    image: str,
    *,
    schedule: Schedule | None,
    triggers: Sequence[Any],
    parameters: Mapping[str, str],
) -> Flow:
    """A one-step inline flow with the Metaflow flow's effective schedule, triggers and parameters."""
    step = Step(name=STAND_IN_STEP, command=("true",), image=image, loc=flow.loc)
    return dataclasses.replace(
        flow,
        steps={STAND_IN_STEP: step},
        image=image,
        parameters={
            name: Parameter(name=name, default=value, type="string", loc=flow.loc) for name, value in parameters.items()
        },
        schedule=schedule,
        triggers=tuple(triggers),
        source="inline",
        metaflow=None,
    )


def sink_problems(flows: Mapping[str, Flow], target: str) -> list[Problem]:
    """Sinks on Metaflow flows: Metaflow builds the steps, so nothing would hand them the sink settings.

    Known from the manifest alone, so ``flowplan validate`` reports it without running Metaflow.
    """
    hint = (
        "read the sink's settings in the flow itself (a Metaflow Config, or the environment of @environment)"
        if target == "argo"
        else None
    )
    return [
        Problem(flow.loc, f"flows.{name}.sinks", "a Metaflow flow's steps do not read flowplan's sink settings", hint)
        for name, flow in flows.items()
        if flow.sinks
    ]


def with_flows(manifest: Manifest, flows: Mapping[str, Flow]) -> Manifest:
    return dataclasses.replace(manifest, flows={**manifest.flows, **flows})


def package_address(backend: str, compiled: CompiledFlow) -> Address:
    package = compiled.package
    return Address(backend, CODE_PACKAGE, package.bucket, package.key)


def package_resource(backend: str, flow: Flow, compiled: CompiledFlow) -> Resource:
    """The code package as a planned resource: created (uploaded) at apply, never updated or deleted."""
    package = compiled.package
    body = {"url": package.url, "sha": package.sha, "size": package.size, "flow": compiled.flow_name}
    kib = package.size / 1024
    return Resource(
        address=package_address(backend, compiled),
        body=body,
        flow=flow.name,
        notes=(
            f"code package of {compiled.flow_name} ({kib:.0f} KiB), content-addressed: uploaded once, never "
            "deleted (earlier runs and `resume` read their own package)",
        ),
        protect=flow.protect,
    )


def replace_strings(value: Any, old: str, new: str) -> Any:
    """A copy with every string equal to ``old`` replaced by ``new``."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, dict):
        return {k: replace_strings(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_strings(v, old, new) for v in value]
    return value
