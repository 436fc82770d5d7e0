"""Which live object each desired resource takes over, besides the one at its own address.

Desired and live pair by address first (done where they are classified); what this module adds are
the pairs across addresses: objects of a renamed flow, project or branch (the manifest's
``moved:`` list), objects named by ``import ADDRESS --from NAME``, and objects at desired addresses
that ``--adopt`` or ``import`` asked to take over: unowned ones, and ones with this project's markers
that the inventory does not list (markers can be copied; only the inventory proves flowplan wrote it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from planner.building.views import BackendView, PlanOptions
from planner.contract import Scope
from planner.manifest import Manifest
from planner.resources import Address, LiveResource, Resource


@dataclass
class Pairing:
    """One backend's cross-address pairs.

    ``moves``: desired address → the live object it replaces (a move, or an import ``--from``,
    listed in ``imported``). ``adoptable``: desired address → the unowned object found there.
    """

    moves: dict[Address, LiveResource] = field(default_factory=dict)
    imported: set[Address] = field(default_factory=set)
    adoptable: dict[Address, LiveResource] = field(default_factory=dict)

    def moved_to(self) -> dict[Address, Address]:
        """Old address → the desired address its object moves to."""
        return {old.address: new for new, old in self.moves.items()}


def pair(manifest: Manifest, view: BackendView, options: PlanOptions, desired: Mapping[Address, Resource]) -> Pairing:
    """The pairs for ``desired`` (empty when destroying: nothing moves or is taken over then)."""
    destroy = options.mode == "destroy"
    result = Pairing(moves={} if destroy else _pair_moves(manifest, view))
    for wanted, source in import_sources(options):
        existing = view.live.others.get(source) or view.live.owned.get(source)
        if existing is not None and wanted in desired and wanted not in view.live.owned and not destroy:
            result.moves[wanted] = existing
            result.imported.add(wanted)
    result.adoptable = _adoptable(view, desired, options)
    return result


def import_sources(options: PlanOptions) -> list[tuple[Address, Address]]:
    """``import ADDRESS --from NAME``: the desired address and the existing object's address."""
    pairs = []
    for target_text, name in options.import_from:
        target = Address.parse(target_text)
        pairs.append((target, Address(target.backend, target.kind, target.namespace, name)))
    return pairs


def renamed_from(manifest: Manifest, backend: str) -> Scope | None:
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
    # This project's markers without an inventory entry: taken over only when asked, like an unmarked object.
    untracked = {a: lv for a, lv in view.live.owned.items() if a not in view.reconciled}
    for address, other in [*view.live.others.items(), *untracked.items()]:
        if address not in desired or (other.owner is not None and address not in untracked):
            continue
        if options.adopt or str(address) in wanted or address.name in wanted:
            result[address] = other
    return result
