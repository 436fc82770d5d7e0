"""What a plan needs to know about the manifest to explain itself: flows, their steps and triggers.

A plan lists only what changes, and a change to a shared object (a sink's
ConfigMap, the flow-events EventSource, a shared EventBridge rule) carries
no flow of its own. To say "this affects flows A and B" and to draw the flows
that change, the builder records two small, JSON-ready things in the plan:

- :func:`flow_outline`: per flow, its backend, schedule, triggers, sinks and
  step graph, straight from the manifest (no bodies, no commands: a picture,
  not a copy);
- :func:`affected_flows`: per changed address, the flows whose resources
  depend on it, directly or through other resources. It is computed from every
  *desired* resource, so the flows whose own resources are unchanged (and so
  absent from the plan) are still found.

Both are plain data so the plan stays serializable and saved plans keep
working; older saved plans simply have neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from planner.manifest import Manifest
from planner.resources import Address, Resource


def flow_outline(manifest: Manifest, desired: Iterable[Resource]) -> dict[str, dict[str, Any]]:
    """Every flow of the manifest as ``{name: outline}``, sorted by name (see docs/plan-json.md, ``flows``)."""
    owned: dict[str, list[str]] = {}
    for resource in desired:
        if resource.flow is not None:
            owned.setdefault(resource.flow, []).append(str(resource.address))
    outline: dict[str, dict[str, Any]] = {}
    for name in sorted(manifest.flows):
        flow = manifest.flows[name]
        schedule = None
        if flow.schedule is not None:
            s = flow.schedule
            schedule = {
                "name": s.name,
                "cron": s.cron,
                "timezone": s.timezone,
                "suspended": s.suspend or not manifest.schedules_enabled(),
            }
        preds = flow.predecessors()
        outline[name] = {
            "backend": flow.backend,
            "schedule": schedule,
            "triggers": [{"event": t.event} if t.event else {"after": t.after} for t in flow.triggers],
            "sinks": list(flow.sinks),
            "steps": [
                {
                    "name": step,
                    "next": list(flow.steps[step].next),
                    "foreach": flow.steps[step].foreach is not None,
                    "start": not preds[step],
                }
                for step in flow.topological_steps()
            ],
            "resources": sorted(owned.get(name, [])),
        }
    return outline


def affected_flows(desired: Iterable[Resource], changed: Iterable[tuple[Address, str | None]]) -> dict[str, list[str]]:
    """For each changed ``(address, flow)``: the sorted flows it affects.

    A resource affects its own flow and every flow with a resource that
    depends on it, transitively (a sink ConfigMap → the WorkflowTemplates that
    mount it → their flows). A deleted resource is no longer desired; it
    affects only the flow it belonged to.
    """
    users: dict[Address, set[str]] = {}
    dependents: dict[Address, list[Resource]] = {}
    resources = list(desired)
    for resource in resources:
        for dep in resource.depends_on:
            dependents.setdefault(dep, []).append(resource)
    memo: dict[Address, set[str]] = {}

    def flows_of(address: Address, own: str | None, seen: frozenset[Address]) -> set[str]:
        if address in memo:
            return memo[address]
        found = {own} if own else set()
        for user in dependents.get(address, []):
            if user.address not in seen:
                found |= flows_of(user.address, user.flow, seen | {user.address})
        memo[address] = found
        return found

    by_address = {resource.address: resource for resource in resources}
    result: dict[str, list[str]] = {}
    for address, flow in changed:
        # only what changed is looked up: a no-change plan of 10,000 flows would otherwise walk every resource
        if address in by_address and address not in users:
            own = by_address[address].flow
            users[address] = flows_of(address, own, frozenset({address}))
        found = set(users.get(address, set()))
        if flow:
            found.add(flow)
        result[str(address)] = sorted(found)
    return result
