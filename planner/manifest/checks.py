"""Checks across flows, made once every flow is built: names that collide, and ``after:`` chains.

A single flow's problems are found while it is built; these need all of
them: two flow names that become one Kubernetes name, an ``after:`` that
crosses backends, and ``after:`` triggers that would start each other forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.manifest import model as m
from planner.manifest.context import Context
from planner.manifest.naming import physical
from planner.manifest.stepgraph import find_cycle
from planner.manifest.yamlsource import PathT


def check_flow_names(ctx: Context, declared: Mapping[str, Any]) -> None:
    """Two flows must not share a Kubernetes name: one would overwrite the other's resources."""
    seen: dict[str, str] = {}
    for name in declared:
        other = seen.get(physical(name))
        if other is not None:
            ctx.error(
                ("flows", name),
                f"flows {other!r} and {name!r} get the same name once made Kubernetes-safe (lowercase, '_' as '-')",
                "rename one of them",
                key=True,
            )
        seen[physical(name)] = name


def check_triggers(ctx: Context, flows: Mapping[str, m.Flow], declared: Mapping[str, Any]) -> None:
    """``after:`` triggers stay within one backend and form no cycle."""
    graph: dict[str, list[str]] = {}
    for flow in flows.values():
        for i, trigger in enumerate(flow.triggers):
            if trigger.after is None:
                continue
            where: PathT = ("flows", flow.name, "triggers", i, "after")
            upstream = flows.get(trigger.after)
            if trigger.after == flow.name:
                ctx.error(where, f"flow {flow.name!r} cannot run after itself")
            elif trigger.after not in declared:
                continue  # reported with the flow
            elif upstream is not None and upstream.backend != flow.backend:
                ctx.error(
                    where,
                    f"flow {trigger.after!r} runs on backend {upstream.backend!r}, this one on "
                    f"{flow.backend!r}; after: works within one backend",
                    "use an event trigger to cross backends",
                )
            else:
                graph.setdefault(trigger.after, []).append(flow.name)
    cycle = _find_cycle(graph)
    if cycle:
        first = cycle[0]
        idx = next(i for i, t in enumerate(flows[cycle[1]].triggers) if t.after == first)
        ctx.error(
            ("flows", cycle[1], "triggers", idx, "after"),
            "after: triggers form a cycle: " + " -> ".join([*cycle, cycle[0]]),
            "each flow would start the next forever",
        )


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """A cycle in ``{upstream: [downstream]}`` as a list of names, or ``[]`` (deterministic: sorted).

    The step graph's finder rather than networkx: importing networkx took
    about a second of every first load.
    """
    return find_cycle({src: sorted(graph[src]) for src in sorted(graph)})
