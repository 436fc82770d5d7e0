"""Manifest + compiler + reader + inventory → a frozen :class:`~planner.plan.Plan`.

The builder only reads: it is given readers and inventories, never a writer
or a lock. Per backend it compiles the desired resources, loads the
inventory, lists what is live, reconciles pending inventory intents in
memory, pairs desired and live by address, compares hashes (deepdiff only
where they differ), classifies each difference with the three-way view
(desired, last applied, live), applies the guards, and orders the changes.
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from planner import __version__, heap
from planner.contract import (
    Backend,
    CompileContext,
    InventoryEntry,
    InventoryState,
    LiveState,
    Reader,
    Scope,
)
from planner.diff import comparison_form, field_diffs, ignored_pointers, keep_live_values
from planner.errors import ManifestError, PlanError
from planner.graph import ApplyOrder, kind_ranks
from planner.manifest import IgnoreRule, Manifest
from planner.outline import affected_flows, flow_outline
from planner.plan import Action, Cause, Conflict, Plan, PlanInputs, ResourceChange
from planner.resources import (
    Address,
    LiveResource,
    Provenance,
    Resource,
    digest,
    get_pointer,
    set_pointer,
    spec_hash,
)

DEFAULT_DESTROY_THRESHOLD = 10
#: A moved schedule firing within this many minutes of planning gets a warning.
MOVE_WARNING_MINUTES = 30


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    mode: str = "normal"  # normal | destroy | refresh-only
    allow_destroy: bool = False
    destroy_threshold: int = DEFAULT_DESTROY_THRESHOLD
    adopt: bool = False
    imports: tuple[str, ...] = ()
    import_from: tuple[tuple[str, str], ...] = ()  # (desired address, name of the existing object)
    parallelism: int = 4


@dataclass
class BackendView:
    """What one backend looked like while planning (kept for apply's inventory bookkeeping)."""

    backend: Backend
    scope: Scope
    desired: dict[Address, Resource]
    live: LiveState
    inventory: InventoryState
    reconciled: dict[Address, InventoryEntry]
    renamed: RenamedScope | None = None


@dataclass
class RenamedScope:
    """The project or branch this one was renamed from (``moved: [{kind: project|branch, ...}]``)."""

    scope: Scope
    inventory: InventoryState
    live: LiveState


@dataclass
class PlanResult:
    plan: Plan
    views: dict[str, BackendView] = field(default_factory=dict)
    order: ApplyOrder | None = None
    desired: dict[Address, Resource] = field(default_factory=dict)
    #: Each backend's compiled resources, for planning again from the same manifest (apply, under the lock).
    compiled: dict[str, list[Resource]] = field(default_factory=dict)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_plan(
    manifest: Manifest,
    backends: Mapping[str, Backend],
    provenance: Provenance,
    options: PlanOptions = PlanOptions(),
    compiled: Mapping[str, list[Resource]] | None = None,
) -> PlanResult:
    """Plan every backend of the manifest; raises ManifestError/PlanError/BackendError.

    ``compiled`` (a previous result's ``compiled``, same manifest) skips compiling again: apply plans
    a second time under the lock to see the live state anew, not the manifest.
    """
    names = sorted(backends)
    scopes = {name: Scope(name, manifest.project, manifest.branch) for name in names}
    readers = {name: backends[name].reader() for name in names}
    # The inventory and what it names are read while compiling: on a live backend the listings
    # are I/O, the compile is CPU (issue 12). Errors surface in read(), after the compile's own.
    early = {
        # Under the apply's lock the compile is skipped, so there is nothing to overlap: no second process.
        name: _in_background(
            _prefetch, backends[name], readers[name], scopes[name], compiled is None or name not in compiled
        )
        for name in names
    }
    desired_all = _compile_all(manifest, backends, provenance, compiled, names)

    def read(name: str) -> BackendView:
        backend = backends[name]
        scope = scopes[name]
        inventory = early[name].result()
        extra = [Resource(source, {}) for target, source in _import_sources(options) if target.backend == name]
        live = readers[name].read(scope, desired_all[name] + extra)
        desired = {r.address: r for r in desired_all[name]}
        renamed = None
        old_scope = _renamed_from(manifest, name)
        if old_scope is not None and options.mode != "destroy":
            renamed = RenamedScope(old_scope, backend.inventory(old_scope).load(), backend.reader().read(old_scope, []))
        reconciled = _reconcile(inventory, live, desired)
        return BackendView(backend, scope, desired, live, inventory, reconciled, renamed)

    views: dict[str, BackendView] = {}
    workers = max(1, min(options.parallelism, len(names)))
    if workers == 1:
        for name in names:
            views[name] = read(name)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flowplan-read") as pool:
            for name, view in zip(names, pool.map(read, names), strict=True):
                views[name] = view

    changes: list[ResourceChange] = []
    conflicts: list[Conflict] = []
    warnings: list[str] = []
    untracked: list[Address] = []
    unchanged = 0
    ignored = 0
    fingerprint_parts: list[tuple[str, str]] = []
    for name in names:
        view = views[name]
        result = _plan_backend(manifest, view, options)
        changes.extend(result.changes)
        conflicts.extend(result.conflicts)
        warnings.extend(view.backend.warnings())  # e.g. TLS verification off
        warnings.extend(result.warnings)
        untracked.extend(result.untracked)
        unchanged += result.unchanged
        ignored += result.ignored
        fingerprint_parts.extend(result.fingerprint)

    changes = _apply_targets(changes, options.targets, manifest)
    if options.mode != "refresh-only":
        _guards(changes, views, options)
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
        live_fingerprint=digest(sorted(fingerprint_parts)),
        created_at=_now(),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.address.sort_key())),
        warnings=tuple(warnings),
        unchanged=unchanged,
        ignored_differences=ignored,
        untracked=tuple(sorted(untracked, key=Address.sort_key)),
        backend_targets={name: backends[name].describe() for name in names},
        sensitive_values=manifest.sensitive_values,
        flows=flow_outline(manifest, all_desired.values()),
        affected_flows=affected_flows(all_desired.values(), ((c.address, c.flow) for c in changes)),
    )
    return PlanResult(plan, views, order, all_desired, desired_all)


T = TypeVar("T")


def _in_background(fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """``fn(*args)`` on a daemon thread: a manifest error is reported at once, not after a slow
    cluster's timeouts (a pool's threads would be waited for at exit). Only reads run here."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever asks for the result
                future.set_exception(exc)

    threading.Thread(target=run, name="flowplan-prefetch", daemon=True).start()
    return future


def _prefetch(backend: Backend, reader: Reader, scope: Scope, begin_early: bool = True) -> InventoryState:
    """The scope's inventory, and the reader's early reads where it makes them.

    The reader's read-ahead hooks (:class:`planner.contract.Reader`): ``begin(scope)`` starts reading
    that needs nothing at all and returns at once; ``prefetch(scope)`` reads what the loaded
    inventory names (argo: the listings). ``read`` then uses what they found and reads the rest.
    """
    if begin_early:
        reader.begin(scope)
    inventory = backend.inventory(scope).load()
    reader.prefetch(scope)
    return inventory


def _compile_all(
    manifest: Manifest,
    backends: Mapping[str, Backend],
    provenance: Provenance,
    compiled: Mapping[str, list[Resource]] | None,
    names: Sequence[str],
) -> dict[str, list[Resource]]:
    """Each backend's desired resources, sorted by address; every backend's manifest problems at once."""
    desired_all: dict[str, list[Resource]] = {}
    problems = []
    for name in names:
        backend = backends[name]
        if compiled is not None and name in compiled:
            desired_all[name] = compiled[name]
            continue
        try:
            with heap.paused():  # pure and allocation-heavy: ~30,000 bodies at 10,000 flows
                resources = backend.compiler().compile(CompileContext(manifest, backend.spec, provenance))
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        desired_all[name] = sorted(resources, key=lambda r: r.address.sort_key())
        seen: set[Address] = set()
        for res in resources:
            if res.address in seen:
                raise PlanError(f"two resources compile to the same address {res.address}")
            seen.add(res.address)
    if problems:
        raise ManifestError(problems)
    return desired_all


# --------------------------------------------------------------------------- inventory reconciliation


def _reconcile(
    inventory: InventoryState, live: LiveState, desired: Mapping[Address, Resource]
) -> dict[Address, InventoryEntry]:
    """Resolve intents a crashed or failed apply left behind, in memory (the next apply persists them).

    A pending create or update whose object exists live is adopted with the
    hash found live; one whose object is missing is dropped. A pending delete
    whose object is gone is dropped; one whose object still exists stays.
    """
    result: dict[Address, InventoryEntry] = {}
    for address, entry in inventory.entries.items():
        found = live.owned.get(address)
        if entry.state == "applied":
            result[address] = entry
            continue
        if found is None:
            continue
        volatile = desired[address].volatile_paths if address in desired else ()
        result[address] = InventoryEntry(spec_hash(found.body, volatile), "applied", entry.flow)
    return result


# --------------------------------------------------------------------------- per backend


@dataclass
class _BackendPlan:
    changes: list[ResourceChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    untracked: list[Address] = field(default_factory=list)
    unchanged: int = 0
    ignored: int = 0
    fingerprint: list[tuple[str, str]] = field(default_factory=list)


def _rules(manifest: Manifest, view: BackendView, flow: str | None) -> list[IgnoreRule]:
    rules = list(view.backend.spec.ignore_changes)
    if flow is not None and flow in manifest.flows:
        rules.extend(manifest.flows[flow].ignore_changes)
    return rules


def _plan_backend(manifest: Manifest, view: BackendView, options: PlanOptions) -> _BackendPlan:
    out = _BackendPlan()
    destroy = options.mode == "destroy"
    desired = {} if destroy else view.desired
    moves = {} if destroy else _pair_moves(manifest, view)
    adopted_from: set[Address] = set()
    for wanted, source in _import_sources(options):
        existing = view.live.others.get(source) or view.live.owned.get(source)
        if existing is not None and wanted in desired and wanted not in view.live.owned and not destroy:
            moves[wanted] = existing
            adopted_from.add(wanted)
    moved_old = {old.address: new for new, old in moves.items()}
    adoptable = _adoptable(view, desired, options)
    for address, other in sorted(view.live.others.items(), key=lambda kv: kv[0].sort_key()):
        out.fingerprint.append((str(address), digest(other.body)))
        if address in desired and address not in adoptable:
            out.conflicts.append(Conflict(address, _owner_text(other), _conflict_detail(other)))
    for address, resource in desired.items():
        found = view.live.owned.get(address)
        if address in adoptable:
            out.changes.append(_adopt(manifest, view, resource, adoptable[address]))
            continue
        if address in view.live.others and found is None:
            continue
        if found is None and address in moves:
            here = (view.scope.project, view.scope.branch)
            out.changes.append(_move(resource, moves[address], adopted=address in adopted_from, scope=here))
            continue
        change = _compare(manifest, view, resource, found, out)
        if change is None:
            out.unchanged += 1
        else:
            out.changes.append(change)
    for address, live in sorted(view.live.owned.items(), key=lambda kv: kv[0].sort_key()):
        if address in desired:
            continue
        out.fingerprint.append((str(address), digest(live.body)))
        target = moved_old.get(address)
        if target is not None and target not in view.live.owned:
            continue  # deleted as part of its move
        entry = view.reconciled.get(address)
        if entry is None and not destroy:
            out.untracked.append(address)
            continue
        flow = live.owner.flow if live.owner else None
        if destroy:
            cause, reason = Cause.DESTROY, "destroy requested"
        elif target is not None:
            cause, reason = Cause.MOVED, f"moved to {target}, which exists already"
        else:
            cause, reason = Cause.ORPHAN, "no longer declared in the manifest"
        out.changes.append(
            ResourceChange(
                address=address,
                action=Action.DELETE,
                cause=cause,
                before=live.body,
                after=None,
                reason=reason,
                flow=flow,
                live_version=live.version,
                live_meta=dict(live.meta),
                protect=live.protected,
                managers=_managers(live),
            )
        )
    if out.untracked:
        out.warnings.append(
            f"{len(out.untracked)} object(s) on backend {view.scope.backend!r} carry this project's markers but are "
            "not in flowplan's inventory, so they are left alone (run `flowplan import` to take them over, or "
            "delete them by hand)"
        )
    out.warnings.extend(_move_warnings(manifest, [c for c in out.changes if c.action is Action.MOVE]))
    return out


# --------------------------------------------------------------------------- moves and adoption


def _physical(flow: str) -> str:
    return flow.lower().replace("_", "-")


def _pair_moves(manifest: Manifest, view: BackendView) -> dict[Address, LiveResource]:
    """Desired address → the live object it replaces, for every ``moved:`` entry (flows renamed).

    Objects pair by kind; several of one kind (rules per trigger, job definitions
    per step) pair by name with the old flow's part replaced by the new one.
    Only objects in the inventory move: what flowplan does not track, it does not touch.
    """
    pairs: dict[Address, LiveResource] = {}
    if view.renamed is not None:
        pairs.update(_pair_renamed_scope(view))
    for moved in manifest.moved:
        if moved.kind != "flow":
            continue
        olds = [
            live
            for live in view.live.owned.values()
            if live.owner is not None and live.owner.flow == moved.source and live.address in view.reconciled
        ]
        news = [r for r in view.desired.values() if r.flow == moved.target and r.address not in view.live.owned]
        by_kind: dict[str, list[LiveResource]] = {}
        for live in olds:
            by_kind.setdefault(live.address.kind, []).append(live)
        for kind in sorted(by_kind):
            candidates = sorted(by_kind[kind], key=lambda lv: lv.address.name)
            targets = sorted((r for r in news if r.address.kind == kind), key=lambda r: r.address.name)
            old_part, new_part = _physical(moved.source), _physical(moved.target)
            for resource in list(targets):
                guess = resource.address.name.replace(new_part, old_part)
                match = next((c for c in candidates if c.address.name == guess), None)
                if match is not None:
                    pairs[resource.address] = match
                    candidates.remove(match)
                    targets.remove(resource)
            for resource, live in zip(targets, candidates, strict=False):
                pairs[resource.address] = live
    return pairs


def _renamed_from(manifest: Manifest, backend: str) -> Scope | None:
    """The scope this project and branch were renamed from, if a project or branch move applies."""
    project, branch = manifest.project, manifest.branch
    for moved in manifest.moved:
        if moved.kind == "project" and moved.target == manifest.project:
            project = moved.source
        elif moved.kind == "branch" and moved.target == manifest.branch:
            branch = moved.source
    if (project, branch) == (manifest.project, manifest.branch):
        return None
    return Scope(backend, project, branch)


def _pair_renamed_scope(view: BackendView) -> dict[Address, LiveResource]:
    """Pair the old project's (or branch's) tracked objects with the desired ones by kind, flow and name."""
    assert view.renamed is not None
    old, new = view.renamed.scope, view.scope
    olds = [
        live
        for live in view.renamed.live.owned.values()
        if live.address in view.renamed.inventory.entries and live.address not in view.desired
    ]
    old_part, new_part = f"{old.project}-{old.branch}", f"{new.project}-{new.branch}"
    pairs: dict[Address, LiveResource] = {}
    free = [r for r in view.desired.values() if r.address not in view.live.owned]
    for live in sorted(olds, key=lambda lv: lv.address.sort_key()):
        flow = live.owner.flow if live.owner else None
        same = [r for r in free if r.address.kind == live.address.kind and r.flow == flow]
        guess = live.address.name.replace(old_part, new_part)
        match = next((r for r in same if r.address.name == guess), same[0] if len(same) == 1 else None)
        if match is not None and match.address not in pairs:
            pairs[match.address] = live
            free.remove(match)
    return pairs


def _carry_toggle(resource: Resource, old: LiveResource) -> dict[str, object]:
    """The new object's body, switched off if the old one was (an operator's pause survives the move)."""
    body = dict(resource.body)
    toggle = resource.toggle
    paused = toggle is not None and get_pointer(old.body, toggle.pointer, None) == toggle.off
    if toggle is not None and paused:
        body = copy.deepcopy(body)
        set_pointer(body, toggle.pointer, toggle.off)
    return body


def _import_sources(options: PlanOptions) -> list[tuple[Address, Address]]:
    """``import ADDRESS --from NAME``: the desired address and the existing object's address."""
    pairs = []
    for target_text, name in options.import_from:
        target = Address.parse(target_text)
        pairs.append((target, Address(target.backend, target.kind, target.namespace, name)))
    return pairs


def _move(
    resource: Resource, old: LiveResource, *, adopted: bool = False, scope: tuple[str, str] = ("", "")
) -> ResourceChange:
    after = _carry_toggle(resource, old)
    origin = deployed_by(old)
    reason = f"moved from {old.address}"
    if adopted:
        reason = f"taking over {old.address.name}" + (f", {origin}" if origin else "") + ", under the manifest's name"
    return ResourceChange(
        address=resource.address,
        action=Action.MOVE,
        cause=Cause.ADOPT if adopted else Cause.MOVED,
        before=old.body,
        after=after,
        field_diffs=field_diffs(
            comparison_form(old.body, resource.volatile_paths),
            comparison_form(after, resource.volatile_paths),
            resource.sensitive_paths,
        ),
        reason=reason,
        flow=resource.flow,
        depends_on=resource.depends_on,
        live_version=old.version,
        live_meta=dict(old.meta),
        sensitive_paths=resource.sensitive_paths,
        volatile_paths=resource.volatile_paths,
        notes=resource.notes,
        protect=resource.protect or old.protected,
        managers=_managers(old),
        moved_from=old.address,
        moved_scope=(
            f"{old.owner.project}/{old.owner.branch}"
            if old.owner is not None and old.owner.branch and (old.owner.project, old.owner.branch) != scope
            else None
        ),
        fires=resource.fires,
        toggle=(resource.toggle.pointer, resource.toggle.on, resource.toggle.off) if resource.toggle else None,
    )


def _adoptable(
    view: BackendView, desired: Mapping[Address, Resource], options: PlanOptions
) -> dict[Address, LiveResource]:
    """Unowned objects at desired addresses that ``--adopt`` or ``import`` asked to take over.

    Objects of another flowplan project or branch are never adopted: they are
    someone else's, and taking them would make two deployments fight.
    """
    if not options.adopt and not options.imports:
        return {}
    wanted = set(options.imports)
    result = {}
    for address, other in view.live.others.items():
        if address not in desired or other.owner is not None:
            continue
        if options.adopt or str(address) in wanted or address.name in wanted:
            result[address] = other
    return result


def _adopt(manifest: Manifest, view: BackendView, resource: Resource, live: LiveResource) -> ResourceChange:
    ignores = ignored_pointers(resource.address, _rules(manifest, view, resource.flow))
    excluded = (*resource.volatile_paths, *ignores)
    origin = deployed_by(live)
    return ResourceChange(
        address=resource.address,
        action=Action.ADOPT,
        cause=Cause.ADOPT,
        before=live.body,
        after=keep_live_values(resource.body, live.body, ignores),
        field_diffs=field_diffs(
            comparison_form(live.body, excluded), comparison_form(resource.body, excluded), resource.sensitive_paths
        ),
        reason=f"taking over an object {origin}" if origin else "taking over an existing object",
        flow=resource.flow,
        depends_on=resource.depends_on,
        live_version=live.version,
        live_meta=dict(live.meta),
        sensitive_paths=resource.sensitive_paths,
        volatile_paths=resource.volatile_paths,
        ignored_paths=ignores,
        notes=resource.notes,
        protect=resource.protect,
        managers=_managers(live),
        fires=resource.fires,
    )


def deployed_by(live: LiveResource) -> str | None:
    """'deployed by Metaflow (flow TrainFlow)' when the object carries Metaflow's markers."""
    annotations = live.body.get("metadata", {}).get("annotations", {}) if isinstance(live.body, dict) else {}
    tags = live.body.get("tags", {}) if isinstance(live.body, dict) else {}
    for source in (annotations, tags):
        if isinstance(source, dict):
            name = source.get("metaflow/flow_name") or source.get("metaflow.org/flow_name")
            if name:
                return f"deployed by Metaflow (flow {name})"
    # Metaflow's CronWorkflows carry no annotations, but its ArgoClient writes a fixed shape
    spec = live.body.get("spec", {}) if isinstance(live.body, dict) else {}
    if (
        isinstance(spec, dict)
        and spec.get("failedJobsHistoryLimit") == 10000
        and spec.get("startingDeadlineSeconds") == 3540
    ):
        template = spec.get("workflowSpec", {}).get("workflowTemplateRef", {}).get("name", "?")
        return f"deployed by Metaflow (the schedule of {template})"
    return None


def _move_warnings(manifest: Manifest, moves: Sequence[ResourceChange]) -> list[str]:
    """A moved schedule is briefly absent while apply swaps it: warn when it is about to fire."""
    from planner import schedule as cronlib

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


def _compare(
    manifest: Manifest, view: BackendView, resource: Resource, live: LiveResource | None, out: _BackendPlan
) -> ResourceChange | None:
    address = resource.address
    entry = view.reconciled.get(address)
    base = dict(
        address=address,
        flow=resource.flow,
        depends_on=resource.depends_on,
        sensitive_paths=resource.sensitive_paths,
        volatile_paths=resource.volatile_paths,
        notes=resource.notes,
        protect=resource.protect,
        fires=resource.fires,
        toggle=(resource.toggle.pointer, resource.toggle.on, resource.toggle.off) if resource.toggle else None,
    )
    if live is None:
        deleted_outside = entry is not None
        return ResourceChange(
            action=Action.CREATE,
            cause=Cause.DELETED_OUTSIDE if deleted_outside else Cause.MANIFEST,
            before=None,
            after=resource.body,
            field_diffs=(),
            reason=None,
            drifted=deleted_outside,
            **base,  # type: ignore[arg-type]
        )
    ignores = ignored_pointers(address, _rules(manifest, view, resource.flow))
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
    out.fingerprint.append((str(address), live_hash))
    if ignores:
        out.ignored += _count_ignored(resource.body, live.body, resource.volatile_paths, ignores)
    if desired_hash == live_hash:
        return None
    diffs = field_diffs(before, after, resource.sensitive_paths)
    applied = entry.spec_hash if entry else None
    live_full = spec_hash(live.body, resource.volatile_paths)
    desired_full = resource.spec_hash
    drifted = applied is not None and live_full != applied
    manifest_changed = applied is None or desired_full != applied
    if drifted and manifest_changed:
        cause = Cause.BOTH
    elif drifted:
        cause = Cause.DRIFT
    else:
        cause = Cause.MANIFEST
    replace_paths = [d.path for d in diffs if _under_any(d.path, resource.replace_paths)]
    action = Action.REPLACE if replace_paths else Action.UPDATE
    reason = f"{replace_paths[0]} cannot change in place" if replace_paths else None
    return ResourceChange(
        action=action,
        cause=cause,
        before=live.body,
        after=keep_live_values(resource.body, live.body, ignores),
        field_diffs=diffs,
        reason=reason,
        drifted=drifted,
        live_version=live.version,
        live_meta=dict(live.meta),
        ignored_paths=ignores,
        managers=_managers(live),
        **base,  # type: ignore[arg-type]
    )


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


def _managers(live: LiveResource) -> tuple[dict[str, str], ...]:
    return tuple(
        {k: v for k, v in (("manager", m.manager), ("operation", m.operation), ("time", m.time)) if v}
        for m in live.managers
    )


def _owner_text(live: LiveResource) -> str:
    if live.owner is None:
        return "not managed by flowplan"
    return f"flowplan project {live.owner.project!r}, branch {live.owner.branch!r}"


def _conflict_detail(live: LiveResource) -> str:
    owner = _owner_text(live)
    return (
        f"the name is taken by an object that is {owner}" if live.owner is None else f"the name belongs to {owner}"
    ) + "; flowplan will not touch it (adopt it with `flowplan import`, or rename the flow)"


# --------------------------------------------------------------------------- targets and guards


def _apply_targets(changes: list[ResourceChange], targets: Sequence[str], manifest: Manifest) -> list[ResourceChange]:
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


def _guards(changes: Sequence[ResourceChange], views: Mapping[str, BackendView], options: PlanOptions) -> None:
    # protect: guards production; a branch deployment (a pull request's preview) must always be removable
    production = {name for name, view in views.items() if view.scope.branch == "prod"}
    blocked = [
        c
        for c in changes
        if c.protect and c.action in (Action.DELETE, Action.REPLACE) and c.address.backend in production
    ]
    if blocked:
        listing = "\n".join(f"  {c.action.symbol} {c.address} ({c.reason or c.action.value})" for c in blocked)
        raise PlanError(
            f"the plan would {'delete or replace'} {len(blocked)} protected object(s):\n{listing}",
            hint="these belong to flows with protect: true. To remove such a flow, first set protect: false and "
            "apply, then remove it.",
        )
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
