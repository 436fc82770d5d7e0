"""Manifest + compilers + readers + inventories → a frozen :class:`~planner.plan.Plan`.

Planning only reads: it is given readers and inventories, never a writer or a lock. Per backend
it walks three groups: objects at desired addresses that are not ours (conflicts, or adoptions),
desired resources (compared with what is live at their address, or taking over a paired object),
and owned objects nothing desires (deletes, or untracked when the inventory does not know them).
Then ``--target`` narrows the changes, the guards run, and the changes are ordered into waves.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from planner import __version__
from planner.building import classify
from planner.building.guards import apply_targets, check_guards, move_warnings
from planner.building.pairing import Pairing, pair
from planner.building.reading import read_all
from planner.building.views import BackendView, PlanOptions, PlanResult
from planner.contract import Backend, Compiler
from planner.graph import ApplyOrder, kind_ranks
from planner.manifest import IgnoreRule, Manifest
from planner.outline import affected_flows, flow_outline
from planner.plan import Action, Conflict, Plan, PlanInputs, ResourceChange
from planner.resources import Address, Provenance, Resource, digest

_DEFAULTS = PlanOptions()


def build_plan(
    manifest: Manifest,
    backends: Mapping[str, Backend],
    provenance: Provenance,
    options: PlanOptions = _DEFAULTS,
    compiled: Mapping[str, list[Resource]] | None = None,
) -> PlanResult:
    """Plan every backend of the manifest; raises ManifestError/PlanError/BackendError.

    ``compiled`` (a previous result's ``compiled``, same manifest) skips compiling again: apply plans
    a second time under the lock to see the live state anew, not the manifest.
    """
    names = sorted(backends)
    desired_all, views = read_all(manifest, backends, provenance, options, compiled)
    total = BackendPlan()
    for name in names:
        total.warnings.extend(views[name].backend.warnings())  # e.g. TLS verification off
        total.add(plan_backend(manifest, views[name], options))
    changes = apply_targets(total.changes, options.targets, manifest)
    if options.mode != "refresh-only":
        check_guards(changes, views, options)
    all_desired = {a: r for v in views.values() for a, r in v.desired.items()}
    # Kind ranks only order deletes; without any, a plan needs no graph library at all.
    deleting = any(c.action is Action.DELETE for c in changes)
    order = ApplyOrder(changes, kind_ranks(all_desired.values()) if deleting else {})
    plan = Plan(
        changes=tuple(sorted(changes, key=lambda c: c.address.sort_key())),
        waves=order.waves(),
        inputs=PlanInputs(
            project=manifest.project,
            branch=manifest.branch,
            manifest_digest=manifest.digest,
            vars_digest=manifest.vars_digest,
            backends=tuple(names),
            flowplan_version=__version__,
            targets=options.targets,
            mode=options.mode,
            enable_schedules=manifest.enable_schedules,
            adopt=options.adopt,
        ),
        live_fingerprint=digest(sorted(total.fingerprint)),
        created_at=_now(),
        conflicts=tuple(sorted(total.conflicts, key=lambda c: c.address.sort_key())),
        warnings=tuple(total.warnings),
        unchanged=total.unchanged,
        ignored_differences=total.ignored,
        untracked=tuple(sorted(total.untracked, key=Address.sort_key)),
        backend_targets={name: backends[name].describe() for name in names},
        sensitive_values=manifest.sensitive_values,
        flows=flow_outline(manifest, all_desired.values()),
        affected_flows=affected_flows(all_desired.values(), ((c.address, c.flow) for c in changes)),
    )
    return PlanResult(plan, views, order, all_desired, desired_all)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class BackendPlan:
    """What planning one backend found, before targets and guards."""

    changes: list[ResourceChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    untracked: list[Address] = field(default_factory=list)
    unchanged: int = 0
    ignored: int = 0
    #: (address, hash of the live body) for everything live that was looked at.
    fingerprint: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: BackendPlan) -> None:
        self.changes.extend(other.changes)
        self.conflicts.extend(other.conflicts)
        self.warnings.extend(other.warnings)
        self.untracked.extend(other.untracked)
        self.unchanged += other.unchanged
        self.ignored += other.ignored
        self.fingerprint.extend(other.fingerprint)


def plan_backend(manifest: Manifest, view: BackendView, options: PlanOptions) -> BackendPlan:
    """One backend's changes, conflicts, untracked objects and warnings."""
    out = BackendPlan()
    desired = {} if options.mode == "destroy" else view.desired
    pairs = pair(manifest, view, options, desired)
    _foreign(view, desired, pairs, out)
    _desired(manifest, view, desired, pairs, out)
    _leftovers(view, desired, pairs, options, out)
    if out.untracked:
        out.warnings.append(
            f"{len(out.untracked)} object(s) on backend {view.scope.backend!r} carry this project's markers but are "
            "not in flowplan's inventory, so they are left alone (run `flowplan import` to take them over, or "
            "delete them by hand)"
        )
    out.warnings.extend(move_warnings(manifest, [c for c in out.changes if c.action is Action.MOVE]))
    out.changes = with_schedules(out.changes, view.backend.compiler())
    return out


def with_schedules(changes: list[ResourceChange], compiler: Compiler) -> list[ResourceChange]:
    """The changes with the schedules of their two bodies, as the backend's compiler reads them.

    Only the backend knows where its objects keep a schedule; the plan records what it says so the
    renderers explain schedules (words, fire times, runs per day) without reading orchestrator bodies.
    """
    out = []
    for change in changes:
        kind = change.address.kind
        before = compiler.schedule_facts(kind, change.before) if change.before is not None else None
        after = compiler.schedule_facts(kind, change.after) if change.after is not None else None
        out.append(
            change
            if before is None and after is None
            else replace(change, schedule_before=before, schedule_after=after)
        )
    return out


def _foreign(view: BackendView, desired: Mapping[Address, Resource], pairs: Pairing, out: BackendPlan) -> None:
    """Objects that are not ours: conflicts where a desired name is taken, unless they are adopted."""
    for address, other in sorted(view.live.others.items(), key=lambda kv: kv[0].sort_key()):
        out.fingerprint.append((str(address), digest(other.body)))
        if address in desired and address not in pairs.adoptable:
            out.conflicts.append(classify.conflict(address, other))


def _desired(
    manifest: Manifest, view: BackendView, desired: Mapping[Address, Resource], pairs: Pairing, out: BackendPlan
) -> None:
    """Each desired resource: adopted, left alone behind a conflict, moved, or compared."""
    here = (view.scope.project, view.scope.branch)
    for address, resource in desired.items():
        found = view.live.owned.get(address)
        if address in pairs.adoptable:
            out.changes.append(classify.adopt(resource, pairs.adoptable[address], _rules(manifest, view, resource)))
            continue
        if address in view.live.others and found is None:
            continue
        if found is not None and address not in view.reconciled and address not in pairs.moves:
            # Marked as ours but absent from the inventory: flowplan only changes what it tracks.
            out.conflicts.append(classify.untracked_conflict(address))
            continue
        if found is None and address in pairs.moves:
            imported = address in pairs.imported
            out.changes.append(classify.move(resource, pairs.moves[address], imported=imported, scope=here))
            continue
        compared = classify.compare(resource, found, view.reconciled.get(address), _rules(manifest, view, resource))
        if compared.live_hash is not None:
            out.fingerprint.append((str(address), compared.live_hash))
        out.ignored += compared.ignored
        if compared.change is None:
            out.unchanged += 1
        else:
            out.changes.append(compared.change)


def _leftovers(
    view: BackendView, desired: Mapping[Address, Resource], pairs: Pairing, options: PlanOptions, out: BackendPlan
) -> None:
    """Owned objects nothing desires: deleted when tracked, reported as untracked otherwise."""
    destroy = options.mode == "destroy"
    moved_to = pairs.moved_to()
    for address, live in sorted(view.live.owned.items(), key=lambda kv: kv[0].sort_key()):
        if address in desired:
            continue
        out.fingerprint.append((str(address), digest(live.body)))
        target = moved_to.get(address)
        if target is not None and target not in view.live.owned:
            continue  # deleted as part of its move
        if view.reconciled.get(address) is None and not destroy:
            out.untracked.append(address)
            continue
        out.changes.append(classify.delete(live, destroy=destroy, moved_to=target))


def _rules(manifest: Manifest, view: BackendView, resource: Resource) -> list[IgnoreRule]:
    """``ignore_changes`` for a resource: the backend's, then its flow's."""
    rules = list(view.backend.spec.ignore_changes)
    if resource.flow is not None and resource.flow in manifest.flows:
        rules.extend(manifest.flows[resource.flow].ignore_changes)
    return rules
