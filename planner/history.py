"""What was applied, by whom, from which commit: the inventory's revisions as a report.

Every apply appends a :class:`~planner.contract.Revision` to the inventory of each backend it changed
(see :mod:`planner.applying.revision`). This module turns them into one JSON-ready view — the same dict feeds the
text, Markdown and JSON renderings, so the three never disagree — and reads back the bodies the last
ten revisions keep, which :mod:`planner.rollback` plans a return to. Pure: no I/O.

Revisions are numbered per backend (an apply that changes one backend does not add a revision to
another), so the view groups them by backend.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from planner.contract import InventoryState, Revision
from planner.errors import PlanError
from planner.resources import FLOW_KEY

__all__ = [
    "decode_bodies",
    "find_revision",
    "flow_of_body",
    "history_view",
    "render_history_markdown",
    "render_history_text",
]

#: Changes listed per revision in text and Markdown (JSON always has all of them).
SHOWN_CHANGES = 12
_SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "adopt": "<=", "move": "->"}


def decode_bodies(revision: Revision) -> dict[str, dict[str, Any]]:
    """``{address: body}`` the revision recorded (sensitive values as ``(sensitive sha256:…)``).

    Raises :class:`PlanError` when the revision kept no bodies: only the last ten do, so an older
    one can be shown in history but not returned to.
    """
    if revision.bodies is None:
        raise PlanError(
            f"revision {revision.number} kept no bodies: flowplan keeps the applied objects of the last 10 "
            "revisions only",
            hint="roll back to a newer revision (see `flowplan history`), or check out the commit "
            f"{(revision.git_commit or '?')[:12]} and apply its manifest",
        )
    try:
        data = json.loads(zlib.decompress(base64.b64decode(revision.bodies)))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise PlanError(f"the bodies recorded with revision {revision.number} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise PlanError(f"the bodies recorded with revision {revision.number} are not a mapping")
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}


def find_revision(state: InventoryState, number: int, backend: str) -> Revision:
    """The revision ``number`` of one backend's inventory, or a PlanError listing the ones there are."""
    for revision in state.revisions:
        if revision.number == number:
            return revision
    known = [r.number for r in state.revisions]
    listing = f"{known[0]}-{known[-1]}" if len(known) > 1 else (str(known[0]) if known else "none")
    raise PlanError(
        f"backend {backend!r} has no revision {number} (revisions kept: {listing})",
        hint="`flowplan history` lists them",
    )


def flow_of_body(body: Mapping[str, Any]) -> str | None:
    """The flow an applied body belongs to, from its markers (labels on Kubernetes, tags on AWS)."""
    metadata = body.get("metadata")
    sources: list[Any] = []
    if isinstance(metadata, dict):
        sources.append(metadata.get("labels"))
    sources.extend(body.get(key) for key in ("tags", "Tags"))
    for source in sources:
        if isinstance(source, dict) and isinstance(source.get(FLOW_KEY), str):
            return str(source[FLOW_KEY])
    return None


def _flows_by_address(states: Mapping[str, InventoryState], extra: Mapping[str, str]) -> dict[str, str]:
    """Address → flow from every source at hand: the caller's (the manifest), the inventory, old bodies."""
    flows: dict[str, str] = {}
    for state in states.values():
        for revision in state.revisions:
            if revision.bodies is None:
                continue
            try:
                bodies = decode_bodies(revision)
            except PlanError:
                continue
            for address, body in bodies.items():
                flow = flow_of_body(body)
                if flow:
                    flows[address] = flow
        for key, entry in state.entries.items():
            if entry.flow:
                flows[str(key)] = entry.flow
    flows.update(extra)
    return flows


def _same_as(revisions: Sequence[Revision], index: int) -> int | None:
    """The earlier revision whose manifest this one returns to (a rollback, or a revert), if any."""
    current = revisions[index]
    if index == 0 or revisions[index - 1].manifest_digest == current.manifest_digest:
        return None
    for earlier in reversed(revisions[: index - 1]):
        if earlier.manifest_digest == current.manifest_digest:
            return earlier.number
    return None


def history_view(
    states: Mapping[str, InventoryState],
    *,
    project: str,
    branch: str,
    flow: str | None = None,
    flows_by_address: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON-ready history: per backend, newest revision first.

    With ``flow``, only revisions that changed one of the flow's objects are listed, with only those
    changes (an address's flow comes from ``flows_by_address``, the inventory and the recorded bodies).
    """
    owners = _flows_by_address(states, flows_by_address or {}) if flow else {}
    backends: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(states):
        revisions = list(states[name].revisions)
        rows: list[dict[str, Any]] = []
        for index, revision in enumerate(revisions):
            changes = [dict(c) for c in revision.changes]
            if flow is not None:
                changes = [c for c in changes if owners.get(str(c.get("address"))) == flow]
                if not changes:
                    continue
            rows.append(
                {
                    "number": revision.number,
                    "time": revision.time,
                    "who": revision.who,
                    "git_commit": revision.git_commit,
                    "manifest_digest": revision.manifest_digest,
                    "flowplan_version": revision.flowplan_version,
                    "summary": dict(revision.summary),
                    "changes": changes,
                    "bodies_kept": revision.bodies is not None,
                    "same_manifest_as": _same_as(revisions, index),
                }
            )
        backends[name] = list(reversed(rows))
    return {"project": project, "branch": branch, "flow": flow, "backends": backends}


def _summary_text(summary: Mapping[str, int]) -> str:
    words = {
        "create": "created",
        "update": "updated",
        "replace": "replaced",
        "delete": "deleted",
        "adopt": "adopted",
        "move": "moved",
    }
    parts = [f"{count} {words.get(action, action)}" for action, count in summary.items() if count]
    return ", ".join(parts) or "no changes"


def _short(text: str | None, length: int) -> str:
    return (text or "-")[:length]


def _change_lines(changes: Iterable[Mapping[str, Any]], indent: str) -> list[str]:
    listed = list(changes)
    lines = [f"{indent}{_SYMBOLS.get(str(c.get('action')), '?')} {c.get('address')}" for c in listed[:SHOWN_CHANGES]]
    if len(listed) > SHOWN_CHANGES:
        lines.append(f"{indent}… and {len(listed) - SHOWN_CHANGES} more (--format json lists all)")
    return lines


def render_history_text(view: Mapping[str, Any]) -> str:
    """History for a terminal: one block per revision, newest first."""
    head = f"History of project {view['project']}, branch {view['branch']}"
    if view.get("flow"):
        head += f", flow {view['flow']}"
    out = [head, ""]
    for backend, rows in view["backends"].items():
        out.append(f"backend {backend}: {len(rows)} revision(s)" + ("" if rows else " (nothing applied yet)"))
        for row in rows:
            out.append(
                f"  #{row['number']}  {row['time']}  by {row['who']}  commit {_short(row['git_commit'], 12)}  "
                f"manifest {_short(row['manifest_digest'], 12)}  flowplan {row['flowplan_version']}"
            )
            line = f"      {_summary_text(row['summary'])}"
            if row["same_manifest_as"] is not None:
                line += f"; the manifest of revision {row['same_manifest_as']} again (a rollback or a revert)"
            if not row["bodies_kept"]:
                line += "; bodies not kept (cannot roll back to it)"
            out.append(line)
            out.extend(_change_lines(row["changes"], "        "))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render_history_markdown(view: Mapping[str, Any]) -> str:
    """History as Markdown: one table per backend, newest first."""
    head = f"### History of `{view['project']}` / `{view['branch']}`"
    if view.get("flow"):
        head += f", flow `{view['flow']}`"
    out = [head, ""]
    for backend, rows in view["backends"].items():
        out.append(f"**{backend}**: {len(rows)} revision(s)")
        out.append("")
        if not rows:
            continue
        out.append("| # | time | who | commit | manifest | flowplan | changes |")
        out.append("|---|---|---|---|---|---|---|")
        for row in rows:
            changes = _summary_text(row["summary"])
            if row["same_manifest_as"] is not None:
                changes += f" (manifest of #{row['same_manifest_as']})"
            out.append(
                f"| {row['number']} | {row['time']} | {row['who']} | `{_short(row['git_commit'], 12)}` | "
                f"`{_short(row['manifest_digest'], 12)}` | {row['flowplan_version']} | {changes} |"
            )
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
