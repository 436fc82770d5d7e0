"""What each desired or live object needs, as a :class:`~planner.plan.ResourceChange`.

The three-way view decides: the desired body, the hash flowplan last applied (the inventory) and
the live body. A difference the manifest made is ``manifest``, one made outside flowplan
``drift``, both at once ``manifest+drift``; a changed pointer that cannot change in place makes
the update a replace; differences under ``ignore_changes`` pointers are counted, not planned.
Takeovers (adopt, move, import ``--from``) and deletes (orphan, destroy, the old side of a move)
are decided here too; which objects pair across addresses is :mod:`planner.building.pairing`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from planner.building.change import resource_change
from planner.contract import InventoryEntry
from planner.diff import comparison_form, field_diffs, ignored_pointers, keep_live_values
from planner.manifest import IgnoreRule
from planner.plan import Action, Cause, Conflict, ResourceChange
from planner.resources import Address, LiveResource, Resource, digest, get_pointer, set_pointer, spec_hash


@dataclass(frozen=True)
class Compared:
    """A desired resource against the live object at its address.

    ``change`` is None when they are the same; ``live_hash`` is what the plan's live fingerprint
    takes (None when nothing is live); ``ignored`` counts differences under ignored pointers.
    """

    change: ResourceChange | None
    live_hash: str | None = None
    ignored: int = 0


def compare(
    resource: Resource, live: LiveResource | None, entry: InventoryEntry | None, rules: Sequence[IgnoreRule]
) -> Compared:
    """Create, update, replace or nothing, with the cause (``entry``: what flowplan last applied here)."""
    if live is None:
        deleted_outside = entry is not None
        cause = Cause.DELETED_OUTSIDE if deleted_outside else Cause.MANIFEST
        return Compared(resource_change(Action.CREATE, cause, resource, None, drifted=deleted_outside))
    ignores = ignored_pointers(resource.address, rules)
    excluded = (*resource.volatile_paths, *ignores)
    # Hash first, each side once: the desired digest was computed when the resource was compiled, and a
    # reader that found exactly this resource's rendering (files) hands back its comparison body itself.
    if ignores:
        after = comparison_form(resource.body, excluded)
        desired_hash = digest(after)
    else:
        after = resource.comparison_body
        desired_hash = resource.digest
    if not ignores and live.body is resource.comparison_body:
        before, live_hash = after, desired_hash
    else:
        before = comparison_form(live.body, excluded)
        live_hash = digest(before)
    ignored = _count_ignored(resource.body, live.body, resource.volatile_paths, ignores) if ignores else 0
    if desired_hash == live_hash:
        return Compared(None, live_hash, ignored)
    diffs = field_diffs(before, after, resource.sensitive_paths)
    applied = entry.spec_hash if entry else None
    drifted = applied is not None and spec_hash(live.body, resource.volatile_paths) != applied
    manifest_changed = applied is None or resource.spec_hash != applied
    if drifted and manifest_changed:
        cause = Cause.BOTH
    elif drifted:
        cause = Cause.DRIFT
    else:
        cause = Cause.MANIFEST
    replace_paths = [d.path for d in diffs if _under_any(d.path, resource.replace_paths)]
    change = resource_change(
        Action.REPLACE if replace_paths else Action.UPDATE,
        cause,
        resource,
        live,
        after=keep_live_values(resource.body, live.body, ignores),
        field_diffs=diffs,
        reason=f"{replace_paths[0]} cannot change in place" if replace_paths else None,
        drifted=drifted,
        ignored_paths=ignores,
    )
    return Compared(change, live_hash, ignored)


def adopt(resource: Resource, live: LiveResource, rules: Sequence[IgnoreRule]) -> ResourceChange:
    """Take over an unowned object at the desired address (``--adopt``, ``import``)."""
    ignores = ignored_pointers(resource.address, rules)
    excluded = (*resource.volatile_paths, *ignores)
    origin = deployed_by(live)
    return resource_change(
        Action.ADOPT,
        Cause.ADOPT,
        resource,
        live,
        after=keep_live_values(resource.body, live.body, ignores),
        field_diffs=field_diffs(
            comparison_form(live.body, excluded), comparison_form(resource.body, excluded), resource.sensitive_paths
        ),
        reason=f"taking over an object {origin}" if origin else "taking over an existing object",
        ignored_paths=ignores,
    )


def move(resource: Resource, old: LiveResource, *, imported: bool, scope: tuple[str, str]) -> ResourceChange:
    """Take over the object ``old`` under the desired address (a ``moved:`` rename, or ``import --from``).

    ``scope`` is this plan's (project, branch): an object from another one says where it came from.
    """
    after = _carry_toggle(resource, old)
    origin = deployed_by(old)
    reason = f"moved from {old.address}"
    if imported:
        reason = f"taking over {old.address.name}" + (f", {origin}" if origin else "") + ", under the manifest's name"
    owner = old.owner
    from_elsewhere = owner is not None and owner.branch and (owner.project, owner.branch) != scope
    return resource_change(
        Action.MOVE,
        Cause.ADOPT if imported else Cause.MOVED,
        resource,
        old,
        after=after,
        field_diffs=field_diffs(
            comparison_form(old.body, resource.volatile_paths),
            comparison_form(after, resource.volatile_paths),
            resource.sensitive_paths,
        ),
        reason=reason,
        protect=resource.protect or old.protected,
        moved_from=old.address,
        moved_scope=f"{owner.project}/{owner.branch}" if owner is not None and from_elsewhere else None,
    )


def delete(live: LiveResource, *, destroy: bool, moved_to: Address | None) -> ResourceChange:
    """Delete an owned, tracked object nothing desires: destroy, the old side of a move, or an orphan."""
    if destroy:
        cause, reason = Cause.DESTROY, "destroy requested"
    elif moved_to is not None:
        cause, reason = Cause.MOVED, f"moved to {moved_to}, which exists already"
    else:
        cause, reason = Cause.ORPHAN, "no longer declared in the manifest"
    return resource_change(Action.DELETE, cause, None, live, reason=reason)


def conflict(address: Address, other: LiveResource) -> Conflict:
    """A desired name taken by an object flowplan does not own here."""
    owner = _owner_text(other)
    taken = f"the name is taken by an object that is {owner}" if other.owner is None else f"the name belongs to {owner}"
    return Conflict(
        address, owner, taken + "; flowplan will not touch it (adopt it with `flowplan import`, or rename the flow)"
    )


def untracked_conflict(address: Address) -> Conflict:
    """A desired address holding an object with this project's markers that the inventory does not list.

    Markers can be copied by anyone who can write a label or a file header; only the inventory says
    flowplan put the object there, so it is taken over only when asked.
    """
    return Conflict(
        address,
        "marked for this project but not in flowplan's inventory",
        "the object carries this project's markers but flowplan's inventory does not list it; flowplan will not "
        "touch it (adopt it with `flowplan import` or `plan --adopt`, or delete it by hand)",
    )


def _owner_text(live: LiveResource) -> str:
    if live.owner is None:
        return "not managed by flowplan"
    return f"flowplan project {live.owner.project!r}, branch {live.owner.branch!r}"


def _carry_toggle(resource: Resource, old: LiveResource) -> dict[str, object]:
    """The new object's body, switched off if the old one was (an operator's pause survives the move)."""
    body = dict(resource.body)
    toggle = resource.toggle
    if toggle is not None and get_pointer(old.body, toggle.pointer, None) == toggle.off:
        body = copy.deepcopy(body)
        set_pointer(body, toggle.pointer, toggle.off)
    return body


def _count_ignored(
    desired: Mapping[str, object], live: Mapping[str, object], volatile: Sequence[str], ignores: Sequence[str]
) -> int:
    a = comparison_form(desired, volatile)
    b = comparison_form(live, volatile)
    if digest(a) == digest(b):
        return 0
    return len([d for d in field_diffs(b, a) if _under_any(d.path, ignores)])


def _under_any(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + "/") or p.startswith(path + "/") for p in prefixes)


def deployed_by(live: LiveResource) -> str | None:
    """``deployed by Metaflow (flow TrainFlow)`` when the backend recognised the tool that made the object."""
    return f"deployed by {live.made_by}" if live.made_by else None
