"""A flow's ``steps:`` → :class:`~planner.manifest.model.Step`, with the rules of the graph ``next:`` draws.

A flow is built only when every step is and the graph holds (one start, no
cycle, every step reachable); otherwise the problems are reported and the flow
is left out, so no later check trips over a half-built one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.manifest import model as m
from planner.manifest.build_schedules import duration
from planner.manifest.context import Context, as_dict, as_list, as_str, did_you_mean, scalar_text
from planner.manifest.naming import physical
from planner.manifest.stepgraph import find_graph_problems
from planner.manifest.units import UnitError, cpu_millis, memory_bytes
from planner.manifest.yamlsource import PathT

_NO_RESOURCES = m.Resources()


def build_steps(
    ctx: Context, raw: dict[str, Any], path: PathT, flow_image: str | None, parameters: Mapping[str, m.Parameter]
) -> dict[str, m.Step] | None:
    """The steps, or None when one could not be built or the graph breaks a rule (all reported)."""
    steps: dict[str, m.Step] = {}
    edges: dict[str, list[str]] = {}
    ok = True  # every step could be built
    edges_ok = True  # every next: names another step, so the graph rules can be checked
    for name, spec in raw.items():
        spec = as_dict(spec)
        spath: PathT = (*path, name)
        nxt, targets_ok = _next(ctx, spec.get("next"), spath, raw)
        edges_ok = edges_ok and targets_ok
        edges[name] = [t for t in nxt if t in raw and t != name]
        step = _step(ctx, name, spec, spath, flow_image, parameters, nxt)
        if step is None:
            ok = False
        else:
            steps[name] = step
    if edges_ok:
        ok = _check_graph(ctx, edges, path) and ok
    ok = _check_physical_names(ctx, raw, path) and ok
    return steps if ok and edges_ok and steps else None


def _next(ctx: Context, nxt_raw: Any, spath: PathT, steps: Mapping[str, Any]) -> tuple[list[str], bool]:
    """(the steps ``next:`` names, whether each is another existing step)."""
    nxt = [nxt_raw] if isinstance(nxt_raw, str) else [n for n in as_list(nxt_raw) if isinstance(n, str)]
    name = spath[-1]
    ok = True
    for i, target in enumerate(nxt):
        where: PathT = (*spath, "next") if isinstance(nxt_raw, str) else (*spath, "next", i)
        if target not in steps:
            ctx.error(
                where,
                f"unknown step {target!r}",
                did_you_mean(target, steps) or "steps: " + ", ".join(steps),
            )
            ok = False
        elif target == name:
            ctx.error(where, f"step {name!r} leads to itself")
            ok = False
    if len(set(nxt)) != len(nxt):
        ctx.error((*spath, "next"), "lists the same step twice")
    return nxt, ok


def _step(
    ctx: Context,
    name: str,
    spec: dict[str, Any],
    spath: PathT,
    flow_image: str | None,
    parameters: Mapping[str, m.Parameter],
    nxt: list[str],
) -> m.Step | None:
    image = as_str(spec.get("image")) or flow_image
    built = True
    if image is None:
        ctx.error(spath, "no image: set image on the step or on the flow", key=True)
        built = False
    command = spec.get("command")
    if isinstance(command, str):
        cmd: tuple[str, ...] = (command,)
    elif isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        cmd = tuple(command)
    else:
        return None  # the structural check reported it
    raw_resources = spec.get("resources")
    resources = _resources(ctx, raw_resources, (*spath, "resources")) if raw_resources else _NO_RESOURCES
    env = _env(ctx, as_dict(spec.get("env")), (*spath, "env"))
    foreach = _foreach(ctx, spec.get("foreach"), (*spath, "foreach"), parameters)
    retries = spec.get("retries", 0)
    step = m.Step(
        name=name,
        command=cmd,
        image=image or "",
        resources=resources,
        retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
        timeout=duration(ctx, spec.get("timeout"), (*spath, "timeout")),
        env=env,
        next=tuple(nxt),
        foreach=foreach,
        shell=isinstance(command, str),
        description=as_str(spec.get("description")),
        loc=ctx.loc(spath),
    )
    return step if built else None


def _env(ctx: Context, raw: dict[str, Any], path: PathT) -> dict[str, m.EnvValue]:
    env = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            env[key] = m.EnvValue(scalar_text(value.get("value")), value.get("sensitive") is True)
        elif isinstance(value, str | int | float | bool):
            env[key] = m.EnvValue(scalar_text(value))
        if key.startswith("FLOWPLAN_"):
            ctx.error(
                (*path, key),
                "FLOWPLAN_* variables are set by flowplan",
                "parameters arrive as FLOWPLAN_PARAM_<NAME> by themselves; rename this variable",
                key=True,
            )
    return env


def _check_graph(ctx: Context, edges: Mapping[str, list[str]], path: PathT) -> bool:
    """Whether the steps form a graph a flow can run (one start, no cycle, all reachable); problems reported."""
    ok = True
    for problem in find_graph_problems(edges):
        if problem.step is None:
            ctx.error(path, problem.message)
        elif problem.at_next:
            ctx.error((*path, problem.step, "next"), problem.message)
        else:
            ctx.error((*path, problem.step), problem.message, key=True)
        ok = False
    return ok


def _check_physical_names(ctx: Context, steps: Mapping[str, Any], path: PathT) -> bool:
    names: dict[str, str] = {}
    ok = True
    for name in steps:
        seen = names.get(physical(name))
        if seen is not None:
            ctx.error(
                (*path, name),
                f"steps {seen!r} and {name!r} get the same name once made Kubernetes-safe",
                "rename one of them",
                key=True,
            )
            ok = False
        names[physical(name)] = name
    return ok


def _resources(ctx: Context, raw: Any, path: PathT) -> m.Resources:
    spec = as_dict(raw)
    cpu = spec.get("cpu")
    memory = spec.get("memory")
    millis = mem = None
    if isinstance(cpu, str | int | float) and not isinstance(cpu, bool):
        try:
            millis = cpu_millis(cpu)
        except UnitError as exc:
            ctx.error((*path, "cpu"), str(exc))
    if isinstance(memory, str):
        try:
            mem = memory_bytes(memory)
        except UnitError as exc:
            ctx.error((*path, "memory"), str(exc))
    gpu = spec.get("gpu", 0)
    return m.Resources(
        cpu=str(cpu) if cpu is not None and millis is not None else None,
        memory=memory if mem is not None else None,
        gpu=gpu if isinstance(gpu, int) and not isinstance(gpu, bool) else 0,
        cpu_millis=millis,
        memory_bytes=mem,
    )


def _foreach(ctx: Context, raw: Any, path: PathT, parameters: Mapping[str, m.Parameter]) -> m.Foreach | None:
    """A step's fan-out: over a literal list, or over a list parameter's value at run time."""
    if isinstance(raw, list):
        if not raw:
            ctx.error(path, "foreach over an empty list never runs the step")
            return None
        if not all(isinstance(v, str | int | float | bool) for v in raw):
            ctx.error(path, "foreach items are strings, numbers or booleans")
            return None
        return m.Foreach(items=tuple(raw))
    if isinstance(raw, dict) and isinstance(raw.get("parameter"), str):
        name = raw["parameter"]
        param = parameters.get(name)
        if param is None:
            ctx.error(
                (*path, "parameter"),
                f"unknown parameter {name!r}",
                did_you_mean(name, parameters) or "declare it under the flow's parameters",
            )
            return None
        if param.type != "list":
            ctx.error((*path, "parameter"), f"parameter {name!r} is a {param.type}; foreach needs a list")
            return None
        return m.Foreach(parameter=name)
    return None
