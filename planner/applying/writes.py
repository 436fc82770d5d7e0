"""One planned change as the backend writer's calls."""

from __future__ import annotations

from planner.contract import Writer
from planner.plan import Action, ResourceChange
from planner.resources import LiveResource, Resource


def desired_resource(change: ResourceChange) -> Resource:
    assert change.after is not None
    return Resource(
        address=change.address,
        body=change.after,
        depends_on=change.depends_on,
        flow=change.flow,
        volatile_paths=change.volatile_paths,
        sensitive_paths=change.sensitive_paths,
        protect=change.protect,
    )


def live_resource(change: ResourceChange) -> LiveResource:
    assert change.before is not None
    return LiveResource(
        address=change.address,
        body=change.before,
        version=change.live_version or "",
        meta=dict(change.live_meta),
        protected=change.protect,
    )


def old_live_resource(change: ResourceChange) -> LiveResource:
    """The object a move leaves behind, at its old address."""
    assert change.before is not None and change.moved_from is not None
    return LiveResource(
        address=change.moved_from,
        body=change.before,
        version=change.live_version or "",
        meta=dict(change.live_meta),
        protected=change.protect,
    )


def write(writer: Writer, change: ResourceChange) -> bool:
    """Make ``change``; True when it is a move whose old object must be deleted later (see the waves)."""
    if change.action is Action.CREATE:
        writer.create(desired_resource(change))
    elif change.action in (Action.UPDATE, Action.ADOPT):
        writer.update(desired_resource(change), live_resource(change))
    elif change.action is Action.REPLACE:
        writer.replace(desired_resource(change), live_resource(change))
    elif change.action is Action.DELETE:
        writer.delete(live_resource(change))
    elif change.action is Action.MOVE:
        if change.fires:
            # never two live schedules or triggers: the old one goes first, the new one right after
            writer.delete(old_live_resource(change))
            writer.create(desired_resource(change))
        else:
            writer.create(desired_resource(change))
            return True
    return False
