"""Pictures of a plan: the flows that change (steps, triggers, shared objects) and the apply order.

One neutral :class:`Picture` is built from the plan's JSON view and written
as Mermaid (which GitHub and GitLab draw inside Markdown) or Graphviz DOT, so
the PR comment and ``flowplan graph`` show the same picture in either format.
Pure: a view in, text out; node ids are generated (``f0s1``), never taken
from names, so any flow or step name is safe, and the same plan gives the
same text byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.render.common import SYMBOLS
from planner.render.escape import escape_invisible

#: Flows drawn at most; more would make a picture nobody reads (and Mermaid refuses very large ones).
MAX_FLOWS = 25

#: Fill and stroke per action (GitHub's diff palette), for Mermaid and DOT alike.
COLOURS: Mapping[str, tuple[str, str]] = {
    "create": ("#dafbe1", "#1a7f37"),
    "update": ("#fff8c5", "#9a6700"),
    "replace": ("#fbefff", "#8250df"),
    "delete": ("#ffebe9", "#cf222e"),
    "move": ("#ddf4ff", "#0969da"),
    "adopt": ("#ddf4ff", "#0969da"),
    "affected": ("#f6f8fa", "#57606a"),
}

_FLOW_WORDS = {
    "create": "new",
    "delete": "removed",
    "update": "changed",
    "replace": "replaced",
    "move": "moved",
    "adopt": "adopted",
    "affected": "affected by a shared change",
}


@dataclass
class Node:
    id: str
    label: str
    shape: str = "box"  # box | round | stadium | hex | cylinder
    css: str | None = None


@dataclass
class Cluster:
    id: str
    label: str
    nodes: list[Node] = field(default_factory=list)
    css: str | None = None


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass
class Picture:
    """Clusters (flows), free nodes (triggers, shared objects), edges, and what was left out."""

    clusters: list[Cluster] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.clusters and not self.nodes


# --------------------------------------------------------------------------- building


def changed_flows(view: Mapping[str, Any]) -> dict[str, str]:
    """Flow → how it changes: ``create`` (new flow), ``delete`` (flow removed), ``update``, ``replace``, ...

    ``affected`` means none of the flow's own objects change, but a shared
    object it uses does. A flow still in the manifest is never "removed", even
    when its only change is a delete (a schedule taken off it).
    """
    outlines = view.get("flows", {})
    affected = view.get("affected_flows", {})
    own: dict[str, set[str]] = {}
    created: set[str] = set()
    touched: set[str] = set()
    for change in view["changes"]:
        if change.get("flow"):
            own.setdefault(change["flow"], set()).add(change["action"])
        if change["action"] == "create":
            created.add(change["address"])
        touched.update(affected.get(change["address"], []))
    result: dict[str, str] = {}
    for flow in sorted(set(own) | touched):
        actions = own.get(flow, set())
        outline = outlines.get(flow)
        if not actions:
            result[flow] = "affected"
        elif actions == {"delete"}:
            result[flow] = "delete" if outline is None else "update"
        elif actions == {"create"}:
            new = outline is not None and set(outline.get("resources", [])) <= created
            result[flow] = "create" if new else "update"
        elif len(actions) == 1:
            result[flow] = next(iter(actions))
        else:
            result[flow] = "update"
    return result


def flows_picture(view: Mapping[str, Any], *, all_flows: bool = False, max_flows: int = MAX_FLOWS) -> Picture:
    """The flows that change (or every flow), with steps, triggers, ``after:`` links and changed shared objects."""
    outlines: Mapping[str, Any] = view.get("flows", {})
    if not outlines:
        return Picture()  # a plan made before outlines existed (or without a manifest): nothing to draw
    status = changed_flows(view)
    if all_flows:
        for name in outlines:
            status.setdefault(name, "unchanged")
    names = sorted(status)
    picture = Picture()
    if len(names) > max_flows:
        picture.omitted = names[max_flows:]
        names = names[:max_flows]
    scheduled_changes = {c["flow"]: c["schedule"] for c in view["changes"] if c.get("schedule") and c.get("flow")}
    starts: dict[str, list[str]] = {}
    ends: dict[str, list[str]] = {}
    for index, name in enumerate(names):
        cluster_id = f"f{index}"
        state = status[name]
        outline = outlines.get(name)
        symbol = SYMBOLS.get(state, "")
        words = _FLOW_WORDS.get(state, "")
        label = f"{symbol} {name}".strip() + (f" ({words})" if words else "")
        cluster = Cluster(cluster_id, label, css=state if state in COLOURS else None)
        if outline is None or not outline.get("steps"):
            node = Node(f"{cluster_id}s0", "(removed)" if state == "delete" else "(no steps known)", "round")
            cluster.nodes.append(node)
            starts[name] = ends[name] = [node.id]
        else:
            ids = {step["name"]: f"{cluster_id}s{i}" for i, step in enumerate(outline["steps"])}
            for step in outline["steps"]:
                text = step["name"] + (" (foreach)" if step.get("foreach") else "")
                cluster.nodes.append(Node(ids[step["name"]], text))
                for nxt in step.get("next", []):
                    if nxt in ids:
                        picture.edges.append(Edge(ids[step["name"]], ids[nxt]))
            starts[name] = [ids[s["name"]] for s in outline["steps"] if s.get("start")] or [cluster.nodes[0].id]
            ends[name] = [ids[s["name"]] for s in outline["steps"] if not s.get("next")] or [cluster.nodes[-1].id]
        picture.clusters.append(cluster)
    _triggers(picture, names, outlines, starts, ends, scheduled_changes)
    _shared(picture, view, names, starts)
    return picture


def _triggers(
    picture: Picture,
    names: Sequence[str],
    outlines: Mapping[str, Any],
    starts: Mapping[str, list[str]],
    ends: Mapping[str, list[str]],
    scheduled_changes: Mapping[str, Mapping[str, Any]],
) -> None:
    """Schedules and events as nodes pointing at start steps; ``after:`` as links between flows."""
    schedule_ids: dict[str, str] = {}
    event_ids: dict[str, str] = {}
    outside: dict[str, str] = {}

    def outside_flow(flow: str) -> str:
        if flow not in outside:
            outside[flow] = f"x{len(outside)}"
            picture.nodes.append(Node(outside[flow], f"flow {flow}", "round"))
        return outside[flow]

    drawn = set(names)
    for name in names:
        outline = outlines.get(name)
        if outline is None:
            continue
        schedule = outline.get("schedule")
        change = scheduled_changes.get(name)
        if not schedule and change and change.get("before") and not change.get("after"):
            node_id = f"t{len(schedule_ids)}"
            schedule_ids[f"removed:{name}"] = node_id
            before = change["before"]
            text = f"⏰ schedule removed: {' '.join(before['expressions'])} {before['timezone']}"
            picture.nodes.append(Node(node_id, text, "stadium", "delete"))
            for start in starts[name]:
                picture.edges.append(Edge(node_id, start, dashed=True))
        if schedule:
            key = f"name:{schedule['name']}" if schedule.get("name") else f"flow:{name}"
            if key not in schedule_ids:
                schedule_ids[key] = f"t{len(schedule_ids)}"
                title = schedule.get("name") or "schedule"
                text = f"⏰ {title}: {_schedule_text(schedule, scheduled_changes.get(name))}"
                css = None
                if change is not None:
                    css = "create" if not change.get("before") else "update"
                picture.nodes.append(Node(schedule_ids[key], text, "stadium", css))
            for start in starts[name]:
                picture.edges.append(Edge(schedule_ids[key], start))
        for trigger in outline.get("triggers", []):
            if trigger.get("event"):
                event = trigger["event"]
                if event not in event_ids:
                    event_ids[event] = f"e{len(event_ids)}"
                    picture.nodes.append(Node(event_ids[event], f"⚡ event {event}", "hex"))
                for start in starts[name]:
                    picture.edges.append(Edge(event_ids[event], start))
            elif trigger.get("after"):
                upstream = trigger["after"]
                sources = ends[upstream] if upstream in drawn else [outside_flow(upstream)]
                for source in sources:
                    for start in starts[name]:
                        picture.edges.append(Edge(source, start, "after"))
    for name, outline in sorted(outlines.items()):
        if name in drawn:
            continue
        for trigger in outline.get("triggers", []):
            if trigger.get("after") in drawn:
                target = outside_flow(name)
                for end in ends[trigger["after"]]:
                    picture.edges.append(Edge(end, target, "after"))


def _schedule_text(schedule: Mapping[str, Any], change: Mapping[str, Any] | None) -> str:
    """``cron zone``, or ``old cron zone → new cron zone`` when the plan changes the schedule."""
    now = f"{schedule['cron']} {schedule['timezone']}" + (" (suspended)" if schedule.get("suspended") else "")
    before = (change or {}).get("before")
    if not before:
        return now
    crons = [c or e for c, e in zip(before.get("cron") or before["expressions"], before["expressions"], strict=False)]
    was = f"{' '.join(crons)} {before['timezone']}"
    was += " (suspended)" if before.get("suspended") else ""
    return now if was == now else f"{was} → {now}"


def _shared(picture: Picture, view: Mapping[str, Any], names: Sequence[str], starts: Mapping[str, list[str]]) -> None:
    """Changed objects that belong to no flow (a sink's ConfigMap, an event source), linked to the flows they feed."""
    affected = view.get("affected_flows", {})
    drawn = set(names)
    for index, change in enumerate(c for c in view["changes"] if not c.get("flow")):
        node_id = f"r{index}"
        symbol = SYMBOLS.get(change["action"], "?")
        picture.nodes.append(Node(node_id, f"{symbol} {change['kind']} {change['name']}", "cylinder", change["action"]))
        for flow in affected.get(change["address"], []):
            if flow in drawn:
                for start in starts[flow][:1]:
                    picture.edges.append(Edge(node_id, start, "used by", dashed=True))


def apply_order_picture(nodes: Iterable[str], edges: Iterable[tuple[str, str]], actions: Mapping[str, str]) -> Picture:
    """The apply order (addresses and their must-come-before edges) as a Picture."""
    picture = Picture()
    ids: dict[str, str] = {}
    for index, address in enumerate(nodes):
        ids[address] = f"n{index}"
        action = actions.get(address, "noop")
        label = f"{SYMBOLS.get(action, '?')} {address}".strip()
        picture.nodes.append(Node(ids[address], label, css=action if action in COLOURS else None))
    for source, target in edges:
        picture.edges.append(Edge(ids[source], ids[target]))
    return picture


# --------------------------------------------------------------------------- writing


def _mermaid_text(label: str) -> str:
    return escape_invisible(label).replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


_MERMAID_SHAPES = {
    "box": ('["', '"]'),
    "round": ('("', '")'),
    "stadium": ('(["', '"])'),
    "hex": ('{{"', '"}}'),
    "cylinder": ('[("', '")]'),
}


def to_mermaid(picture: Picture) -> str:
    """Mermaid ``flowchart`` text (no fences), stable for the same picture."""
    lines = ["flowchart LR"]

    def node_line(node: Node, indent: str) -> str:
        left, right = _MERMAID_SHAPES[node.shape]
        return f"{indent}{node.id}{left}{_mermaid_text(node.label)}{right}"

    for cluster in picture.clusters:
        lines.append(f'  subgraph {cluster.id}["{_mermaid_text(cluster.label)}"]')
        lines.append("    direction TB")
        lines.extend(node_line(n, "    ") for n in cluster.nodes)
        lines.append("  end")
    lines.extend(node_line(n, "  ") for n in picture.nodes)
    for edge in picture.edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
        lines.append(f"  {edge.source} {arrow}{label} {edge.target}")
    used = {n.css for n in picture.nodes if n.css} | {c.css for c in picture.clusters if c.css}
    for css in sorted(used):
        fill, stroke = COLOURS[css]
        lines.append(f"  classDef {css} fill:{fill},stroke:{stroke},color:#1f2328")
    for node in picture.nodes:
        if node.css:
            lines.append(f"  class {node.id} {node.css}")
    for cluster in picture.clusters:
        if cluster.css:
            fill, stroke = COLOURS[cluster.css]
            lines.append(f"  style {cluster.id} fill:{fill},stroke:{stroke},color:#1f2328")
    if picture.omitted:
        lines.append(f"  %% {len(picture.omitted)} more flow(s) not drawn: {', '.join(picture.omitted)}")
    return escape_invisible("\n".join(lines)) + "\n"


def _dot_text(label: str) -> str:
    """A DOT string's content; an invisible character is shown as its ``\\uXXXX`` escape (backslash kept)."""
    return escape_invisible(label).replace("\\", "\\\\").replace('"', '\\"')


_DOT_SHAPES = {"box": "box", "round": "ellipse", "stadium": "box", "hex": "hexagon", "cylinder": "cylinder"}


def to_dot(picture: Picture, name: str = "flowplan") -> str:
    """Graphviz DOT text of the same picture (clusters for flows), stable for the same picture."""
    lines = [f"digraph {name} {{", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']

    def node_line(node: Node, indent: str) -> str:
        attrs = [f'label="{_dot_text(node.label)}"', f"shape={_DOT_SHAPES[node.shape]}"]
        styles = ["rounded"] if node.shape == "stadium" else []
        if node.css:
            fill, stroke = COLOURS[node.css]
            styles.append("filled")
            attrs += [f'fillcolor="{fill}"', f'color="{stroke}"']
        if styles:
            attrs.append(f'style="{",".join(styles)}"')
        return f"{indent}{node.id} [{', '.join(attrs)}];"

    for cluster in picture.clusters:
        lines.append(f"  subgraph cluster_{cluster.id} {{")
        lines.append(f'    label="{_dot_text(cluster.label)}";')
        if cluster.css:
            fill, stroke = COLOURS[cluster.css]
            lines.append(f'    style=filled; fillcolor="{fill}"; color="{stroke}";')
        lines.extend(node_line(n, "    ") for n in cluster.nodes)
        lines.append("  }")
    lines.extend(node_line(n, "  ") for n in picture.nodes)
    for edge in picture.edges:
        attrs = []
        if edge.label:
            attrs.append(f'label="{_dot_text(edge.label)}"')
        if edge.dashed:
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {edge.source} -> {edge.target}{suffix};")
    if picture.omitted:
        lines.append(f"  // {len(picture.omitted)} more flow(s) not drawn: {', '.join(picture.omitted)}")
    lines.append("}")
    return escape_invisible("\n".join(lines)) + "\n"
