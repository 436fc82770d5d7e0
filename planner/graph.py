"""Apply order: creates and updates in dependency order, deletes in reverse, in waves.

A wave is a set of changes with no dependency among them, so a writer may
run them in parallel. Deletes come after every create and update (an object
is only pruned once nothing new refers to it) and go dependents-first, using
the kind order the compiler's dependencies imply (a Sensor before the
WorkflowTemplate it submits). Ties break by kind, then name, so the same
input gives the same order byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from planner.plan import Action, ResourceChange
from planner.resources import Address, Resource

if TYPE_CHECKING:
    import networkx


def _nx() -> Any:
    """networkx, imported when a graph is first needed: it takes ~0.17 s, and a plan without
    changes (the CI drift check, most plans of a large deployment) never needs one."""
    import networkx

    return networkx


def kind_ranks(resources: Iterable[Resource]) -> dict[tuple[str, str], int]:
    """Rank of each (backend, kind) in the dependency order of kinds: a dependency ranks lower."""
    nx = _nx()
    graph = nx.DiGraph()
    for res in resources:
        node = (res.address.backend, res.address.kind)
        graph.add_node(node)
        for dep in res.depends_on:
            other = (dep.backend, dep.kind)
            if other != node:
                graph.add_edge(other, node)
    if not nx.is_directed_acyclic_graph(graph):
        return {n: 0 for n in graph}
    ranks: dict[tuple[str, str], int] = {}
    for node in nx.lexicographical_topological_sort(graph):
        preds = list(graph.predecessors(node))
        ranks[node] = 1 + max((ranks[p] for p in preds), default=-1)
    return ranks


class ApplyOrder:
    """The dependency graph of a plan's changes, its waves, and who depends on whom.

    Writes (create, update, replace, adopt) follow ``depends_on``. Deletes form
    their own waves after every write, dependents first by kind rank; a failed
    write on a backend holds back that backend's deletes (pruning what a
    half-applied manifest may still use is how outages start).
    """

    def __init__(self, changes: Sequence[ResourceChange], ranks: Mapping[tuple[str, str], int]) -> None:
        self.ranks = dict(ranks)
        by_address = {c.address: c for c in changes}
        self.writes = [c for c in changes if c.action is not Action.DELETE]
        self.deletes = [c for c in changes if c.action is Action.DELETE]
        #: The writes' dependency graph; None when there are no writes (no import of networkx).
        self.graph: networkx.DiGraph | None = None
        if self.writes:
            graph = _nx().DiGraph()
            for change in self.writes:
                graph.add_node(change.address)
                for dep in change.depends_on:
                    other = by_address.get(dep)
                    if other is not None and other.action is not Action.DELETE:
                        graph.add_edge(dep, change.address)
            self.graph = graph
        self.delete_levels: list[list[Address]] = []
        by_rank: dict[int, list[Address]] = {}
        for change in self.deletes:
            rank = ranks.get((change.address.backend, change.address.kind), 0)
            by_rank.setdefault(-rank, []).append(change.address)
        for key in sorted(by_rank):
            self.delete_levels.append(sorted(by_rank[key], key=Address.sort_key))
        self._backend_deletes: dict[str, set[Address]] = {}
        for change in self.deletes:
            self._backend_deletes.setdefault(change.address.backend, set()).add(change.address)
        self._delete_rank = {a: i for i, level in enumerate(self.delete_levels) for a in level}

    def waves(self) -> tuple[tuple[Address, ...], ...]:
        """Writes by longest distance from a root, then delete levels; each wave sorted by kind, then name."""
        depth: dict[Address, int] = {}
        if self.graph is not None:
            for node in _nx().lexicographical_topological_sort(self.graph, key=str):
                depth[node] = 1 + max((depth[p] for p in self.graph.predecessors(node)), default=-1)
        grouped: dict[int, list[Address]] = {}
        for node, d in depth.items():
            grouped.setdefault(d, []).append(node)
        result = [tuple(sorted(grouped[d], key=Address.sort_key)) for d in sorted(grouped)]
        result.extend(tuple(level) for level in self.delete_levels)
        return tuple(result)

    def dependents(self, address: Address) -> set[Address]:
        """Everything that must not run when ``address`` failed or was skipped."""
        if address in self._delete_rank:
            rank = self._delete_rank[address]
            backend = address.backend
            return {a for a in self._backend_deletes.get(backend, set()) if self._delete_rank[a] > rank}
        graph = self.graph
        result = set(_nx().descendants(graph, address)) if graph is not None and address in graph else set()
        result |= self._backend_deletes.get(address.backend, set())
        return result

    def edges(self) -> list[tuple[Address, Address]]:
        graph = self.graph
        edges = list(graph.edges) if graph is not None else []
        writes = [c.address for c in self.writes]
        sinks = [a for a in writes if graph is not None and graph.out_degree(a) == 0]
        if self.delete_levels:
            for a in sinks:
                for b in self.delete_levels[0]:
                    if a.backend == b.backend:
                        edges.append((a, b))
            for earlier, later in zip(self.delete_levels, self.delete_levels[1:], strict=False):
                for a in earlier:
                    for b in later:
                        if a.backend == b.backend:
                            edges.append((a, b))
        return edges

    def nodes(self) -> list[Address]:
        return [c.address for c in self.writes] + [c.address for c in self.deletes]


def to_dot(order: ApplyOrder, actions: Mapping[Address, Action]) -> str:
    """DOT text of the apply order, stable for the same input."""
    lines = ["digraph flowplan {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    colours = {
        Action.CREATE: "darkgreen",
        Action.UPDATE: "goldenrod",
        Action.REPLACE: "darkorange",
        Action.DELETE: "red",
        Action.ADOPT: "blue",
    }
    for node in sorted(order.nodes(), key=Address.sort_key):
        action = actions.get(node, Action.NOOP)
        label = f"{action.symbol} {node}" if action is not Action.NOOP else str(node)
        colour = colours.get(action, "gray40")
        lines.append(f'  "{node}" [label="{label}", color={colour}];')
    for a, b in sorted(order.edges(), key=lambda e: (e[0].sort_key(), e[1].sort_key())):
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
