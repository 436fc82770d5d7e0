"""The step graph rules, as Metaflow has them.

A flow has one start and one end, and every fan-out joins again at a single
join step: the graph is two-terminal series-parallel. That is what lets one
flow compile to an Argo DAG *and* to nested Step Functions ``Parallel``
states, so it is checked here, once, with the steps named in every message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx


def graph_problems(steps: Mapping[str, Sequence[str]]) -> list[str]:
    """Everything wrong with a step graph given as ``{step: next steps}``; ``[]`` when valid.

    Dangling ``next`` references are reported by the caller (it knows their
    positions); they are ignored here.
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(steps)
    for name, targets in steps.items():
        for target in targets:
            if target in steps:
                graph.add_edge(name, target)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        return [f"the steps form a cycle: {path}"]
    problems: list[str] = []
    starts = [n for n in steps if graph.in_degree(n) == 0]
    ends = [n for n in steps if graph.out_degree(n) == 0]
    if len(starts) > 1:
        problems.append(f"a flow has one start step, but nothing leads to {_names(starts)}; connect them with next")
    if len(ends) > 1:
        problems.append(f"a flow has one end step, but {_names(ends)} have no next; join them into one step")
    if problems:
        return problems
    for node in steps:
        successors = list(graph.successors(node))
        for target in successors:
            via = [s for s in successors if s != target and nx.has_path(graph, s, target)]
            if via:
                problems.append(
                    f"step {node!r} leads to {target!r} both directly and through {via[0]!r}; "
                    "give every branch of a fan-out at least one step of its own"
                )
    if problems:
        return problems
    remainder = _irreducible(graph, starts[0], ends[0])
    if remainder:
        problems.append(
            "every fan-out must join again at a single join step (series-parallel, as in Metaflow); "
            f"the branches through {_names(remainder)} cross or join elsewhere"
        )
    return problems


def _names(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _irreducible(graph: nx.DiGraph, source: str, sink: str) -> list[str]:
    """Apply series and parallel reductions; return the steps left over (empty = series-parallel).

    Series: a step with one way in and one way out is replaced by an edge.
    Parallel: two edges between the same steps become one (adjacency is a set).
    """
    if source == sink:
        return []
    outs: dict[str, set[str]] = {n: set(graph.successors(n)) for n in graph}
    ins: dict[str, set[str]] = {n: set(graph.predecessors(n)) for n in graph}
    changed = True
    while changed:
        changed = False
        for node in list(outs):
            if node in (source, sink) or len(ins[node]) != 1 or len(outs[node]) != 1:
                continue
            (pred,) = ins.pop(node)
            (succ,) = outs.pop(node)
            outs[pred].discard(node)
            ins[succ].discard(node)
            outs[pred].add(succ)
            ins[succ].add(pred)
            changed = True
    if set(outs) == {source, sink} and outs[source] == {sink}:
        return []
    return sorted(n for n in outs if n not in (source, sink)) or [source, sink]
