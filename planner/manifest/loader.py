"""``flows.yaml`` → :class:`~planner.manifest.model.Manifest`, reporting every problem at once.

The order matters: parse (:mod:`~planner.manifest.yamlsource`: positions,
duplicate keys, alias bombs) → check the structure against the JSON Schema
(:mod:`~planner.manifest.structure`) → resolve vars and render templates
(:mod:`~planner.manifest.variables`) → build the model (the ``build_*``
modules, each checking the meaning of what it builds) → check across flows
(:mod:`~planner.manifest.checks`). Problems from all stages are collected and
raised together as one :class:`~planner.errors.ManifestError`, so a person
fixes a manifest in one round trip, not five.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from planner import heap
from planner.errors import Location, ManifestError, Problem
from planner.manifest import model as m
from planner.manifest.build_backends import build_backends
from planner.manifest.build_events import build_event
from planner.manifest.build_flows import Known, build_flow
from planner.manifest.build_moved import build_moved
from planner.manifest.build_schedules import build_schedule
from planner.manifest.build_sinks import build_sink
from planner.manifest.checks import check_flow_names, check_triggers
from planner.manifest.context import Context, as_dict, as_str, display_path
from planner.manifest.naming import branch_problem, check_project
from planner.manifest.structure import kind_of, structure_problems
from planner.manifest.templating import may_render
from planner.manifest.variables import render_all, resolve_vars, sensitive_env_values, vars_digest
from planner.manifest.yamlsource import Source, parse_yaml, read_limited

__all__ = ["load_manifest"]


def load_manifest(
    path: str | os.PathLike[str],
    *,
    cli_vars: Mapping[str, str] | None = None,
    var_files: Sequence[str | os.PathLike[str]] = (),
    branch: str = "prod",
    enable_schedules: bool = False,
    raw: bytes | None = None,
) -> m.Manifest:
    """Load, validate and render a manifest for one branch.

    Raises :class:`~planner.errors.ManifestError` listing every problem found
    (and nothing else: any other exception escaping is a bug).
    """
    with heap.paused():
        display = display_path(path)
        if raw is None:
            raw = _read(path, display)
        source = parse_yaml(raw, display)
        try:
            return _load_source(source, raw, display, cli_vars or {}, var_files, branch, enable_schedules)
        finally:
            # The node tree (about 4 million objects at 10,000 flows) is only needed for positions while
            # loading; the stages' closures keep it in a reference cycle, so without this it waits for a
            # full collection instead of being freed by reference counting here.
            source.release()


def _read(path: str | os.PathLike[str], display: str) -> bytes:
    try:
        return read_limited(path)
    except FileNotFoundError:
        raise ManifestError(
            Problem(Location(display), "", "no such file"),
            hint="run flowplan where flows.yaml is, or pass --file PATH",
        ) from None
    except IsADirectoryError:
        raise ManifestError(Problem(Location(display), "", "this is a directory, not a manifest file")) from None
    except OSError as exc:
        raise ManifestError(Problem(Location(display), "", f"cannot read it: {exc.strerror}")) from None


def _load_source(
    source: Source,
    raw: bytes,
    display: str,
    cli_vars: Mapping[str, str],
    var_files: Sequence[str | os.PathLike[str]],
    branch: str,
    enable_schedules: bool,
) -> m.Manifest:
    ctx = Context(source)
    data = source.data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{kind_of(data)}, not a mapping"
        ctx.error(
            (),
            f"the manifest is {what}",
            "a manifest is a mapping with at least version: 1, project: NAME and flows:; see docs/manifest.md",
        )
        raise ManifestError(ctx.problems)
    structure_problems(ctx, data)
    problem = branch_problem(branch)
    if problem:
        ctx.problems.append(Problem(Location("--branch"), "", problem))
    variables, sensitive_vars, var_models = resolve_vars(ctx, data, cli_vars, var_files)
    rendered, sensitive_values = render_all(ctx, data, variables, sensitive_vars, templated=may_render(raw))
    sensitive_values |= sensitive_env_values(rendered)
    manifest = _build(
        ctx,
        rendered,
        branch,
        enable_schedules,
        path=display,
        digest=hashlib.sha256(raw).hexdigest(),
        vars_digest=vars_digest(variables),
        vars=var_models,
        sensitive_values=frozenset(sensitive_values),
    )
    if ctx.problems:
        raise ManifestError(_redacted(_unique(ctx.problems), sensitive_values))
    return manifest


def _build(ctx: Context, data: dict[str, Any], branch: str, enable_schedules: bool, **extra: Any) -> m.Manifest:
    """The model of the rendered manifest, in the order the stages report: declarations, then flows, then
    the checks across flows. With problems reported, the model may lack what failed; it is not returned."""
    project = check_project(ctx, data.get("project"))
    backends = build_backends(ctx, data.get("backends"))
    declared_schedules = as_dict(data.get("schedules"))
    schedules = {
        name: s
        for name, spec in declared_schedules.items()
        if (s := build_schedule(ctx, as_dict(spec), ("schedules", name), name)) is not None
    }
    events = {name: build_event(ctx, name, as_dict(spec)) for name, spec in as_dict(data.get("events")).items()}
    sinks = {
        name: build_sink(ctx, name, as_dict(spec), project, branch) for name, spec in as_dict(data.get("sinks")).items()
    }
    declared_flows = as_dict(data.get("flows"))
    known = Known(backends, schedules, events, sinks, as_dict(data.get("backends")), declared_schedules, declared_flows)
    flows: dict[str, m.Flow] = {}
    for name, spec in declared_flows.items():
        flow = build_flow(ctx, name, as_dict(spec), known)
        if flow is not None:
            flows[name] = flow
    check_flow_names(ctx, declared_flows)
    check_triggers(ctx, flows, declared_flows)
    return m.Manifest(
        project=project,
        branch=branch,
        backends=backends,
        flows=flows,
        schedules=schedules,
        events=events,
        sinks=sinks,
        moved=build_moved(ctx, data.get("moved"), data.get("project"), declared_flows),
        enable_schedules=enable_schedules,
        description=as_str(data.get("description")),
        **extra,
    )


def _redacted(problems: list[Problem], secrets: Iterable[str]) -> list[Problem]:
    """Problems with every sensitive value replaced by ``(sensitive)`` (a message may quote the bad value)."""
    ordered = sorted((s for s in secrets if s), key=len, reverse=True)
    if not ordered:
        return problems

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in ordered:
            text = text.replace(secret, "(sensitive)")
        return text

    return [
        dataclasses.replace(p, path=clean(p.path) or "", message=clean(p.message) or "", hint=clean(p.hint))
        for p in problems
    ]


def _unique(problems: list[Problem]) -> list[Problem]:
    """Problems without repeats: two stages may find the same fault at the same place."""
    seen: set[tuple[Location, str, str]] = set()
    result = []
    for p in problems:
        key = (p.location, p.path, p.message)
        if key not in seen:
            seen.add(key)
            result.append(p)
    return result
