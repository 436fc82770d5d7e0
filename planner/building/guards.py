"""What keeps a plan from doing more than asked, or more than is safe.

``--target`` narrows the changes (keeping what they depend on); ``protect: true`` objects are never
deleted or replaced on a production branch; a plan that deletes more than the threshold, or
everything a backend holds, is refused without ``--allow-destroy``; a moved schedule about to fire
gets a warning.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from planner import schedule as cronlib
from planner.building.views import BackendView, PlanOptions
from planner.errors import PlanError
from planner.manifest import Manifest
from planner.plan import Action, ResourceChange
from planner.resources import Address

#: A moved schedule firing within this many minutes of planning gets a warning.
MOVE_WARNING_MINUTES = 30


def apply_targets(changes: list[ResourceChange], targets: Sequence[str], manifest: Manifest) -> list[ResourceChange]:
    """Keep changes matching ``--target`` (an address or a flow name) and what they depend on."""
    if not targets:
        return changes
    by_address = {c.address: c for c in changes}
    wanted: set[Address] = set()
    for target in targets:
        matched = [
            c.address for c in changes if str(c.address) == target or c.flow == target or c.address.name == target
        ]
        if not matched and target not in manifest.flows:
            try:
                Address.parse(target)
            except ValueError:
                raise PlanError(
                    f"--target {target!r} is neither a flow of the manifest nor a resource address",
                    hint="flows: " + ", ".join(sorted(manifest.flows)),
                ) from None
        wanted.update(matched)
    queue = list(wanted)
    while queue:
        current = by_address[queue.pop()]
        for dep in current.depends_on:
            if dep in by_address and dep not in wanted:
                wanted.add(dep)
                queue.append(dep)
    return [c for c in changes if c.address in wanted]


def check_guards(changes: Sequence[ResourceChange], views: Mapping[str, BackendView], options: PlanOptions) -> None:
    """Raise :class:`PlanError` when the plan would remove protected objects or delete too much."""
    _check_protected(changes, views)
    if options.mode == "destroy" or options.allow_destroy:
        return
    deletes = [c for c in changes if c.action is Action.DELETE]
    if len(deletes) > options.destroy_threshold:
        raise PlanError(
            f"the plan would delete {len(deletes)} objects, more than the safety threshold of "
            f"{options.destroy_threshold}",
            hint="check that the right manifest, branch and var file were given; if the deletes are intended, "
            "pass --allow-destroy",
        )
    for name, view in views.items():
        owned = len(view.live.owned)
        gone = [c for c in deletes if c.address.backend == name]
        if owned and len(gone) == owned:
            raise PlanError(
                f"the plan would delete everything backend {name!r} holds for this project and branch "
                f"({owned} objects)",
                hint="if that is intended, pass --allow-destroy (or use `flowplan destroy`)",
            )


def _check_protected(changes: Sequence[ResourceChange], views: Mapping[str, BackendView]) -> None:
    """protect: guards production; a branch deployment (a pull request's preview) must always be removable."""
    production = {name for name, view in views.items() if view.scope.branch == "prod"}
    blocked = [
        c
        for c in changes
        if c.protect and c.action in (Action.DELETE, Action.REPLACE) and c.address.backend in production
    ]
    if blocked:
        listing = "\n".join(f"  {c.action.symbol} {c.address} ({c.reason or c.action.value})" for c in blocked)
        raise PlanError(
            f"the plan would delete or replace {len(blocked)} protected object(s):\n{listing}",
            hint="these belong to flows with protect: true. To remove such a flow, first set protect: false and "
            "apply, then remove it.",
        )


def move_warnings(manifest: Manifest, moves: Sequence[ResourceChange]) -> list[str]:
    """A moved schedule is briefly absent while apply swaps it: warn when it is about to fire."""
    warnings = []
    now = datetime.datetime.now(datetime.UTC)
    for change in moves:
        if not change.fires or change.flow is None or change.flow not in manifest.flows:
            continue
        flow_schedule = manifest.flows[change.flow].schedule
        if flow_schedule is None or change.address.kind not in ("CronWorkflow", "Schedule"):
            continue
        try:
            (fire,) = cronlib.next_fire_times(flow_schedule.cron, flow_schedule.timezone, 1, after=now)
        except Exception:
            continue
        minutes = (fire - now).total_seconds() / 60
        if minutes <= MOVE_WARNING_MINUTES:
            warnings.append(
                f"{change.address} moves from {change.moved_from}: the old schedule is removed a moment before "
                f"the new one exists, and it fires next at {fire.isoformat()} (in {minutes:.0f} min); apply after "
                "that time to be sure no run is missed"
            )
    return warnings
