"""The one way a :class:`~planner.plan.ResourceChange` is made from the two sides it compares."""

from __future__ import annotations

from typing import Any

from planner.plan import Action, Cause, FieldDiff, ResourceChange
from planner.resources import Address, LiveResource, Resource


def resource_change(
    action: Action,
    cause: Cause,
    desired: Resource | None,
    live: LiveResource | None,
    *,
    after: dict[str, Any] | None = None,
    field_diffs: tuple[FieldDiff, ...] = (),
    reason: str | None = None,
    drifted: bool = False,
    ignored_paths: tuple[str, ...] = (),
    protect: bool | None = None,
    moved_from: Address | None = None,
    moved_scope: str | None = None,
) -> ResourceChange:
    """A change from the desired resource (None for a delete) and the live object (None for a create).

    What the desired side declares (address, flow, dependencies, pointers, notes, toggle) comes from
    it, what the live side holds (body, version, metadata, field managers) from the live object.
    ``after`` defaults to the desired body; ``protect`` to the desired resource's flag, or the live
    object's protection marker for a delete.
    """
    if desired is not None:
        address, declared_protect = desired.address, desired.protect
    elif live is not None:
        address, declared_protect = live.address, live.protected
    else:
        raise ValueError("a change needs a desired resource, a live object, or both")
    return ResourceChange(
        address=address,
        action=action,
        cause=cause,
        before=live.body if live is not None else None,
        after=after if after is not None or desired is None else desired.body,
        field_diffs=field_diffs,
        reason=reason,
        drifted=drifted,
        flow=desired.flow if desired is not None else _live_flow(live),
        depends_on=desired.depends_on if desired is not None else (),
        live_version=live.version if live is not None else None,
        live_meta=dict(live.meta) if live is not None else {},
        sensitive_paths=desired.sensitive_paths if desired is not None else (),
        volatile_paths=desired.volatile_paths if desired is not None else (),
        ignored_paths=ignored_paths,
        notes=desired.notes if desired is not None else (),
        protect=declared_protect if protect is None else protect,
        managers=_managers(live) if live is not None else (),
        moved_from=moved_from,
        moved_scope=moved_scope,
        fires=desired.fires if desired is not None else False,
        toggle=_toggle(desired),
    )


def _live_flow(live: LiveResource | None) -> str | None:
    return live.owner.flow if live is not None and live.owner is not None else None


def _toggle(desired: Resource | None) -> tuple[str, Any, Any] | None:
    toggle = desired.toggle if desired is not None else None
    return (toggle.pointer, toggle.on, toggle.off) if toggle is not None else None


def _managers(live: LiveResource) -> tuple[dict[str, str], ...]:
    return tuple(
        {k: v for k, v in (("manager", m.manager), ("operation", m.operation), ("time", m.time)) if v}
        for m in live.managers
    )
