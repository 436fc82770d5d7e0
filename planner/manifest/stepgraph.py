"""The step graph rules, as Metaflow has them.

A flow has one start and one end, and every fan-out joins again at a single
join step: the graph is two-terminal series-parallel. That is what lets one
flow compile to an Argo DAG *and* to nested Step Functions ``Parallel``
states, so it is checked here, once, with the steps named in every message.

Plain Python rather than networkx: flows have a handful of steps, and a
manifest has thousands of flows, so the per-graph overhead of building a
networkx graph was most of the loader's time on large manifests.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GraphProblem:
    """One thing wrong with a step graph, and the step a message should point at."""

    message: str
    step: str | None = None
    #: Point at the step's ``next:`` (an edge is wrong) rather than at its name.
    at_next: bool = False


def graph_problems(steps: Mapping[str, Sequence[str]]) -> list[str]:
    """The messages of :func:`find_graph_problems`."""
    return [p.message for p in find_graph_problems(steps)]


def find_graph_problems(steps: Mapping[str, Sequence[str]]) -> list[GraphProblem]:
    """Everything wrong with a step graph given as ``{step: next steps}``; ``[]`` when valid.

    Dangling ``next`` references are reported by the caller (it knows their
    positions); they are ignored here. Checks run in order and stop at the
    first kind that fails, because later ones assume the earlier hold
    (reductions need one start and one end; ends need no cycle).

    Memoised by the graph itself (step order included): the answer depends on nothing else, and
    flows made from one template share their graph (10,000 flows, a handful of graphs).
    """
    return list(_graph_problems(tuple((name, tuple(targets)) for name, targets in steps.items())))


@functools.lru_cache(maxsize=1024)
def _graph_problems(graph: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[GraphProblem, ...]:
    return tuple(_find_graph_problems(dict(graph)))


def _find_graph_problems(steps: Mapping[str, Sequence[str]]) -> list[GraphProblem]:
    if not steps:
        return []  # "at least one step" is the schema's rule, reported there
    succ: dict[str, list[str]] = {}
    for name, targets in steps.items():
        seen: list[str] = []
        for target in targets:
            if target in steps and target not in seen:
                seen.append(target)
        succ[name] = seen
    cycle = find_cycle(succ)
    if cycle:
        text = " -> ".join([*cycle, cycle[0]])
        return [GraphProblem(f"the steps form a cycle: {text}; a flow runs each step once", cycle[-1], True)]
    problems: list[GraphProblem] = []
    reached = {t for nexts in succ.values() for t in nexts}
    starts = [n for n in succ if n not in reached]
    ends = [n for n in succ if not succ[n]]
    if len(starts) > 1:
        problems.append(
            GraphProblem(
                f"a flow has one start step, but nothing leads to {_names(starts)}; "
                "connect them with next, or start them from one step",
                starts[1],
            )
        )
    if len(ends) > 1:
        problems.append(
            GraphProblem(
                f"a flow has one end step, but {_names(ends)} have no next; join them into one step",
                ends[1],
            )
        )
    if problems:
        return problems
    reach = _reachability(succ)
    for node, nexts in succ.items():
        for target in nexts:
            via = [s for s in nexts if s != target and target in reach[s]]
            if via:
                problems.append(
                    GraphProblem(
                        f"step {node!r} leads to {target!r} both directly and through {via[0]!r}; "
                        "give every branch of a fan-out at least one step of its own",
                        node,
                        True,
                    )
                )
    if problems:
        return problems
    remainder = _irreducible(succ, starts[0], ends[0])
    if remainder:
        problems.append(
            GraphProblem(
                "every fan-out must join again at a single join step (series-parallel, as in Metaflow); "
                f"the branches through {_names(remainder)} cross or join elsewhere",
                remainder[0],
            )
        )
    return problems


def find_cycle(succ: Mapping[str, Sequence[str]]) -> list[str]:
    """The first cycle met by a depth-first search in mapping order, as its nodes; ``[]`` if none.

    Deterministic: the same graph always yields the same cycle, starting at
    the step the search entered it by, so messages do not flicker between runs.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in succ:
        if root in state:
            continue
        path: list[str] = [root]
        iters = [iter(succ.get(root, ()))]
        state[root] = 1
        while iters:
            child = next(iters[-1], None)
            if child is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            mark = state.get(child)
            if mark == 1:
                return path[path.index(child) :]
            if mark is None:
                state[child] = 1
                path.append(child)
                iters.append(iter(succ.get(child, ())))
    return []


def _reachability(succ: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For an acyclic graph, every step's set of strictly later steps."""
    reach: dict[str, set[str]] = {}
    for node in succ:
        _reach_from(node, succ, reach)
    return reach


def _reach_from(node: str, succ: Mapping[str, Sequence[str]], reach: dict[str, set[str]]) -> set[str]:
    # A module-level function, not a recursive closure: that would be a reference cycle, and the
    # loader's data would wait for the garbage collector instead of being freed when done.
    found = reach.get(node)
    if found is None:
        found = set()
        for nxt in succ[node]:
            found.add(nxt)
            found |= _reach_from(nxt, succ, reach)
        reach[node] = found
    return found


def _names(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _irreducible(succ: Mapping[str, Sequence[str]], source: str, sink: str) -> list[str]:
    """Apply series and parallel reductions; return the steps left over (empty = series-parallel).

    Series: a step with one way in and one way out is replaced by an edge.
    Parallel: two edges between the same steps become one (adjacency is a set).
    A two-terminal DAG is series-parallel exactly when these reductions
    leave the single edge source → sink.
    """
    if source == sink:
        return []
    outs: dict[str, set[str]] = {n: set(nexts) for n, nexts in succ.items()}
    ins: dict[str, set[str]] = {n: set() for n in succ}
    for n, nexts in succ.items():
        for t in nexts:
            ins[t].add(n)
    changed = True
    while changed:
        changed = False
        for node in list(outs):
            if node in (source, sink) or len(ins[node]) != 1 or len(outs[node]) != 1:
                continue
            (pred,) = ins.pop(node)
            (nxt,) = outs.pop(node)
            outs[pred].discard(node)
            ins[nxt].discard(node)
            outs[pred].add(nxt)
            ins[nxt].add(pred)
            changed = True
    if set(outs) == {source, sink} and outs[source] == {sink}:
        return []
    return [n for n in succ if n in outs and n not in (source, sink)] or [source, sink]
