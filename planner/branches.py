"""``flowplan branches``: every branch deployment of a project, how old it is, and which to prune.

Branch deployments (Metaflow's ``@project`` branches: ``--branch pr-42``) run beside production
and are forgotten once their pull request merges. Each backend's operator lists them from its
inventories and from the project's markers (:class:`~planner.contract.BranchInfo`); this module turns
that into one JSON-ready view and picks the stale ones. Pure: the clock is a parameter.

A branch is pruned only when it is not production (``prod`` is never pruned this way), its last
apply is older than the threshold, and that age is known (a branch with marked objects but no
inventory has no recorded apply: it is reported, never guessed at).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from planner.contract import BranchInfo
from planner.errors import FlowplanError

__all__ = [
    "PRODUCTION",
    "age_text",
    "branches_view",
    "parse_age",
    "prune_candidates",
    "render_branches_markdown",
    "render_branches_text",
]

PRODUCTION = "prod"
_AGE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> datetime.timedelta:
    """``14d``, ``36h``, ``2w``, ``90m`` → a timedelta; anything else is an error naming the forms."""
    match = _AGE.match(text)
    if not match or int(match.group(1)) == 0:
        raise FlowplanError(
            f"--older-than {text!r} is not an age",
            hint="write a number and a unit: 90m, 36h, 14d or 2w",
        )
    return datetime.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def age_text(seconds: float | None) -> str:
    """``3d 4h``, ``5h 12m``, ``8m`` — how long ago something happened."""
    if seconds is None:
        return "unknown"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def _when(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def branches_view(
    infos: Mapping[str, Sequence[BranchInfo]],
    *,
    project: str,
    now: datetime.datetime,
    notes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON-ready list: per backend, production first, then branches by name.

    ``notes`` holds a message per backend that could not list its branches.
    """
    backends: dict[str, list[dict[str, Any]]] = {}
    for backend in sorted(infos):
        rows = []
        ordered = sorted(infos[backend], key=lambda b: (b.branch != PRODUCTION, b.branch))
        for info in ordered:
            last = info.last
            when = _when(last.time) if last else None
            rows.append(
                {
                    "branch": info.branch,
                    "production": info.branch == PRODUCTION,
                    "objects": info.tracked,
                    "marked_objects": info.marked,
                    "has_inventory": info.has_inventory,
                    "last_apply": last.time if last else None,
                    "revision": last.number if last else None,
                    "who": last.who if last else None,
                    "git_commit": last.git_commit if last else None,
                    "manifest_digest": last.manifest_digest if last else None,
                    "age_seconds": (now - when).total_seconds() if when else None,
                }
            )
        backends[backend] = rows
    return {
        "project": project,
        "generated_at": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backends": backends,
        "notes": dict(notes or {}),
    }


def prune_candidates(view: Mapping[str, Any], older_than: datetime.timedelta) -> list[tuple[str, str]]:
    """``[(backend, branch)]`` whose last apply is older than ``older_than``; never production."""
    found = []
    limit = older_than.total_seconds()
    for backend, rows in view["backends"].items():
        for row in rows:
            if row["production"] or row["age_seconds"] is None:
                continue
            if row["age_seconds"] > limit:
                found.append((backend, str(row["branch"])))
    return found


def _row_text(row: Mapping[str, Any]) -> str:
    label = f"{row['branch']}{' (production)' if row['production'] else ''}"
    if row["last_apply"] is None:
        detail = "no recorded apply"
        if row["marked_objects"]:
            detail += f"; {row['marked_objects']} object(s) carry its markers but no inventory lists them"
        return f"  {label:<28} {detail}"
    commit = (row["git_commit"] or "-")[:12]
    return (
        f"  {label:<28} {row['objects']:>3} object(s)  last apply {row['last_apply']} "
        f"({age_text(row['age_seconds'])} ago, revision {row['revision']}, by {row['who']}, commit {commit})"
    )


def render_branches_text(view: Mapping[str, Any]) -> str:
    out = [f"Branch deployments of project {view['project']}", ""]
    for backend, rows in view["backends"].items():
        out.append(f"backend {backend}: {len(rows)} deployment(s)")
        if backend in view["notes"]:
            out.append(f"  ({view['notes'][backend]})")
        out.extend(_row_text(row) for row in rows)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render_branches_markdown(view: Mapping[str, Any]) -> str:
    out = [f"### Branch deployments of `{view['project']}`", ""]
    out.append("| backend | branch | objects | last apply | age | by | commit |")
    out.append("|---|---|---|---|---|---|---|")
    for backend, rows in view["backends"].items():
        for row in rows:
            branch = f"`{row['branch']}`" + (" (production)" if row["production"] else "")
            out.append(
                f"| {backend} | {branch} | {row['objects']} | {row['last_apply'] or '-'} | "
                f"{age_text(row['age_seconds'])} | {row['who'] or '-'} | `{(row['git_commit'] or '-')[:12]}` |"
            )
    for backend, note in view["notes"].items():
        out.append("")
        out.append(f"- {backend}: {note}")
    return "\n".join(out).rstrip("\n") + "\n"
