"""``flows:`` → :class:`~planner.manifest.model.Flow`: its backend, parameters, steps or FlowSpec, and references.

A flow refers by name to a backend, a schedule, events, sinks and other flows.
A name that is declared but failed to build was reported at its declaration,
so a reference to it is not reported again: that is why :class:`Known` carries
the declared names beside the built models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from planner.manifest import model as m
from planner.manifest.build_backends import ignore_rules
from planner.manifest.build_schedules import build_schedule
from planner.manifest.build_steps import build_steps
from planner.manifest.context import Context, as_dict, as_list, as_str, did_you_mean, scalar_text
from planner.manifest.naming import check_labels
from planner.manifest.yamlsource import PathT


@dataclass(frozen=True)
class Known:
    """What a flow may refer to: the models built from the manifest, and every name declared in it."""

    backends: Mapping[str, m.Backend]
    schedules: Mapping[str, m.Schedule]
    events: Mapping[str, m.Event]
    sinks: Mapping[str, m.Sink]
    declared_backends: Mapping[str, Any]
    declared_schedules: Mapping[str, Any]
    declared_flows: Mapping[str, Any]


def build_flow(ctx: Context, name: str, spec: dict[str, Any], known: Known) -> m.Flow | None:
    """The flow, or None when it cannot be built (its problems are reported)."""
    path: PathT = ("flows", name)
    backend = _flow_backend(ctx, spec, path, known)
    parameters = _parameters(ctx, as_dict(spec.get("parameters")), (*path, "parameters"))
    image = as_str(spec.get("image"))
    metaflow = _metaflow(ctx, spec, path, backend, known.backends)
    steps = {} if metaflow else build_steps(ctx, as_dict(spec.get("steps")), (*path, "steps"), image, parameters)
    schedule = _schedule(ctx, spec.get("schedule"), (*path, "schedule"), known)
    triggers = _triggers(ctx, spec, path, parameters, known)
    flow_sinks = _sinks(ctx, as_list(spec.get("sinks")), (*path, "sinks"), known.sinks)
    tags = {str(k): v for k, v in as_dict(spec.get("tags")).items() if isinstance(v, str)}
    check_labels(ctx, tags, (*path, "tags"))
    if backend is None or steps is None:
        return None
    return m.Flow(
        name=name,
        backend=backend,
        image=image,
        steps=steps,
        parameters=parameters,
        schedule=schedule,
        triggers=triggers,
        sinks=flow_sinks,
        tags=tags,
        protect=spec.get("protect") is True,
        ignore_changes=ignore_rules(ctx, spec.get("ignore_changes"), (*path, "ignore_changes")),
        description=as_str(spec.get("description")),
        source="metaflow" if metaflow else "inline",
        metaflow=metaflow,
        loc=ctx.loc(path),
    )


def _flow_backend(ctx: Context, spec: dict[str, Any], path: PathT, known: Known) -> str | None:
    """The backend the flow deploys to: the one it names, or the only one declared."""
    name = spec.get("backend")
    backends = known.backends
    if isinstance(name, str):
        if name not in backends:
            if name not in known.declared_backends:
                ctx.error(
                    (*path, "backend"),
                    f"unknown backend {name!r}",
                    did_you_mean(name, known.declared_backends) or "declare it under backends:",
                )
            return None
        return name
    if name is not None:
        return None
    if len(backends) == 1:
        return next(iter(backends))
    if backends:
        ctx.error(
            path,
            "no backend: given, and the manifest declares several backends",
            "add backend: with one of " + ", ".join(sorted(backends)),
            key=True,
        )
    return None


def _metaflow(
    ctx: Context, spec: dict[str, Any], path: PathT, backend: str | None, backends: Mapping[str, m.Backend]
) -> m.MetaflowSource | None:
    """``flows.NAME.metaflow``: a FlowSpec file instead of steps (the file is read at compile)."""
    raw = spec.get("metaflow")
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        return None
    for key in ("steps", "parameters", "image"):
        if key in spec:
            ctx.error(
                (*path, key),
                f"a Metaflow flow has no {key}: they come from its FlowSpec"
                + (" and the backend's metaflow: settings" if key == "image" else ""),
                "remove the key"
                if key != "image"
                else "set metaflow.env: {METAFLOW_KUBERNETES_CONTAINER_IMAGE: IMAGE}",
                key=True,
            )
    if backend is not None and backend in backends and "metaflow" not in backends[backend].settings:
        ctx.error(
            (*path, "metaflow"),
            f"backend {backend!r} has no metaflow: settings block",
            "add metaflow: {datastore_root: s3://BUCKET/PREFIX, image: IMAGE} to the backend (docs/metaflow.md)",
            key=True,
        )
    return m.MetaflowSource(
        file=raw["file"],
        flow_class=as_str(raw.get("flow_class")),
        package_suffixes=tuple(x for x in as_list(raw.get("package_suffixes")) if isinstance(x, str)),
        env={str(k): scalar_text(v) for k, v in as_dict(raw.get("env")).items()},
        loc=ctx.loc((*path, "metaflow")),
    )


_KINDS = {str: "string", bool: "bool", int: "int", float: "float", list: "list"}


def _parameters(ctx: Context, raw: dict[str, Any], path: PathT) -> dict[str, m.Parameter]:
    """The flow's parameters, each typed by its declaration or else by its default."""
    env_names: dict[str, str] = {}
    for name in raw:
        env = f"FLOWPLAN_PARAM_{str(name).upper()}"
        if env in env_names:
            ctx.error(
                (*path, name),
                f"parameters {env_names[env]!r} and {name!r} both reach steps as ${env}",
                "rename one of them",
                key=True,
            )
        env_names[env] = str(name)
    result = {}
    for name, spec in raw.items():
        if isinstance(spec, dict):
            if "default" not in spec:
                continue  # the schema reported it
            default = spec["default"]
            declared = spec.get("type")
        else:
            default, declared = spec, None
        inferred = _KINDS.get(type(default))
        if inferred is None:
            ctx.error((*path, name), "a parameter's default is a string, number, boolean or list")
            continue
        if declared not in (None, "string", "int", "float", "bool", "list"):
            declared = None  # the schema reported the unknown type
        kind = declared or inferred
        if declared is not None and not _fits(default, kind):
            ctx.error((*path, name, "default"), f"default {default!r} is not of type {kind}")
            continue
        if kind == "list" and not all(isinstance(v, str | int | float | bool) for v in default):
            ctx.error((*path, name, "default"), "a list parameter holds strings, numbers or booleans")
        result[name] = m.Parameter(
            name,
            default,
            kind,  # type: ignore[arg-type]
            as_str(as_dict(spec).get("description")),
            ctx.loc((*path, name)),
        )
    return result


_FITS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
}


def _fits(value: Any, kind: str) -> bool:
    return _FITS[kind](value)


def _schedule(ctx: Context, raw: Any, path: PathT, known: Known) -> m.Schedule | None:
    """A named schedule the flow refers to, or its own inline one."""
    if isinstance(raw, str):
        schedule = known.schedules.get(raw)
        if schedule is None and raw not in known.declared_schedules:
            ctx.error(
                path,
                f"unknown schedule {raw!r}",
                did_you_mean(raw, known.declared_schedules) or "declare it under schedules:",
            )
        return schedule
    if isinstance(raw, dict):
        return build_schedule(ctx, raw, path, None)
    return None


def _triggers(
    ctx: Context, spec: dict[str, Any], path: PathT, parameters: Mapping[str, m.Parameter], known: Known
) -> tuple[m.Trigger, ...]:
    """``event:`` and ``after:`` triggers, each naming something declared, none listed twice."""
    triggers = []
    for i, item in enumerate(as_list(spec.get("triggers"))):
        item = as_dict(item)
        tpath: PathT = (*path, "triggers", i)
        if isinstance(item.get("event"), str):
            event = item["event"]
            if event not in known.events:
                ctx.error(
                    (*tpath, "event"),
                    f"unknown event {event!r}",
                    did_you_mean(event, known.events) or "declare it under events:",
                )
            else:
                for param in known.events[event].parameters:
                    if param not in parameters and "metaflow" not in spec:  # a FlowSpec's: checked at compile
                        ctx.error(
                            (*tpath, "event"),
                            f"event {event!r} maps a value to parameter {param!r}, which this flow lacks",
                            f"declare {param!r} under parameters",
                        )
            triggers.append(m.Trigger(event=event, loc=ctx.loc(tpath)))
        elif isinstance(item.get("after"), str):
            flows = known.declared_flows
            if item["after"] not in flows:
                ctx.error(
                    (*tpath, "after"),
                    f"unknown flow {item['after']!r}",
                    did_you_mean(item["after"], flows) or "flows: " + ", ".join(flows),
                )
            triggers.append(m.Trigger(after=item["after"], loc=ctx.loc(tpath)))
    keys = [t.key for t in triggers]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            ctx.error((*path, "triggers", i), f"trigger {key} is listed twice")
    return tuple(triggers)


def _sinks(ctx: Context, raw: list[Any], path: PathT, sinks: Mapping[str, m.Sink]) -> tuple[str, ...]:
    flow_sinks = []
    for i, sink in enumerate(raw):
        if not isinstance(sink, str):
            continue
        if sink not in sinks:
            ctx.error((*path, i), f"unknown sink {sink!r}", did_you_mean(sink, sinks) or "declare it under sinks:")
        flow_sinks.append(sink)
    return tuple(flow_sinks)
