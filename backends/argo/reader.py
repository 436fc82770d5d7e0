"""Reading what is deployed: one paginated LIST per kind and namespace, never a GET per resource.

For every (kind, namespace) that holds a desired resource or an address the
inventory remembers, the reader lists with a label selector on flowplan's
markers for this project and branch (``managed-by=flowplan, project, branch``):
that finds everything owned, orphans included, in one call per 500 objects.

Desired names the owned lists did not return may be taken by someone else.
Those are looked up per (kind, namespace) with **at most two** LISTs narrowed
by ``fieldSelector=metadata.name=NAME`` (one per missing name), or — when more
than :data:`FIELD_SELECTOR_MAX` names are missing, as on a first apply — with
**one** unfiltered paged LIST of that kind in that namespace. Either way the
cost is bounded per kind, not per resource, and a no-change plan makes none of
these calls. What is found there lands in ``LiveState.others``: a conflict the
planner reports and never touches.

What a listed object becomes (its normalized body, owner, field managers, what an update
must preserve) is :mod:`backends.argo.listing`'s; a large deployment is listed by a second
process (:mod:`backends.argo.list_scan`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from backends.argo import list_scan
from backends.argo.client import KINDS, RESOURCE_KINDS, Kube
from backends.argo.listing import CONTROLLER_ANNOTATIONS, INVENTORY_KEY, normalize, owner_selector, parallel, to_live
from planner.contract import LiveState, Reader, Scope
from planner.errors import BackendError
from planner.manifest import ArgoSettings
from planner.resources import Address, LiveResource, Resource

__all__ = [
    "CONTROLLER_ANNOTATIONS",
    "FIELD_SELECTOR_MAX",
    "INVENTORY_KEY",
    "ArgoReader",
    "normalize",
    "owner_selector",
    "to_live",
]

#: Up to this many missing desired names of one kind and namespace are looked up by fieldSelector, one LIST each.
FIELD_SELECTOR_MAX = 2


def _inventory_pairs(scope: Scope, known: set[Address]) -> set[tuple[str, str]]:
    """The (kind, namespace) pairs of the inventory's addresses on this backend."""
    return {(a.kind, a.namespace) for a in known if a.backend == scope.backend and a.kind in RESOURCE_KINDS}


def _in_kind_order(pairs: set[tuple[str, str]]) -> list[tuple[str, str]]:
    order = {k: i for i, k in enumerate(RESOURCE_KINDS)}
    return sorted(pairs, key=lambda p: (order.get(p[0], 99), p[1]))


class ArgoReader(Reader):
    """The :class:`~planner.contract.Reader` of an argo backend."""

    def __init__(
        self,
        kube: Kube,
        settings: ArgoSettings,
        remembered: Callable[[Scope], set[Address] | None] = lambda scope: None,
        *,
        child_from: int | None = None,
        child_command: Sequence[str] = list_scan.COMMAND,
    ) -> None:
        """``child_from``: inventories this large or larger are listed by a second process (default
        :data:`backends.argo.list_scan.IN_CHILD_FROM`); ``child_command`` starts that process."""
        self.kube = kube
        self.settings = settings
        self.remembered = remembered
        self.child_from = child_from
        self.child_command = tuple(child_command)
        #: Owned listings made by :meth:`prefetch`, per scope and (kind, namespace), and their call counts.
        self._early: dict[Scope, tuple[list_scan.Listings, Counter[str]]] = {}
        #: Listings :meth:`prefetch` handed to a second process (large deployments), per scope.
        self._children: dict[Scope, list_scan.ChildListing] = {}
        #: :meth:`prefetch` runs beside the compile, on another thread than :meth:`close`.
        self._children_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Stop every child listing not read back yet (a plan that ended before :meth:`read`)."""
        with self._children_lock:
            self._closed = True
            children = list(self._children.values())
            self._children.clear()
        for child in children:
            child.stop()

    def __enter__(self) -> ArgoReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def targets(self, scope: Scope, desired: Sequence[Resource]) -> list[tuple[str, str]]:
        """(kind, namespace) pairs to list: those of desired resources and of the inventory's addresses.

        Without a loaded inventory (a reader used on its own) every kind is
        listed in the configured namespaces, so no orphan is missed.
        """
        pairs = {(r.address.kind, r.address.namespace) for r in desired}
        known = self.remembered(scope)
        if known is None:
            for kind in RESOURCE_KINDS:
                namespace = self.settings.sensor_namespace if kind in ("Sensor", "EventSource") else None
                pairs.add((kind, namespace or self.settings.namespace))
        else:
            pairs |= _inventory_pairs(scope, known)
        return _in_kind_order(pairs)

    def _owned(self, scope: Scope, pair: tuple[str, str]) -> list[LiveResource]:
        """One kind's owned objects, converted as soon as listed: the decoded JSON (managedFields,
        status) is three times the normalized bodies, and 30,000 of them would all be held at once."""
        kind_name, namespace = pair
        kind = KINDS[kind_name]
        return self.kube.list_as(
            kind,
            namespace,
            lambda obj: to_live(scope.backend, kind, obj),
            label_selector=owner_selector(scope, kind_name),
        )

    def prefetch(self, scope: Scope) -> None:
        """List what the loaded inventory says ``scope`` owns, while the planner compiles.

        The listings are the server's share of a plan (seconds at 10,000 flows) and do
        not depend on the desired resources, only on the (kind, namespace) pairs to list:
        those the inventory names are listed now; :meth:`read` lists any other pair the
        desired resources add, so no call is made twice or in vain. Without an inventory
        (a first plan) nothing is listed early.

        A large deployment (:attr:`child_from` addresses or more) is listed by a second process
        instead, on the other core; :meth:`read` reads its answer, :meth:`close` stops it if
        :meth:`read` never comes.
        """
        known = self.remembered(scope)
        if not known:
            return
        pairs = _in_kind_order(_inventory_pairs(scope, known))
        child_from = self.child_from if self.child_from is not None else list_scan.IN_CHILD_FROM
        if len(known) >= child_from:
            # a large deployment: listed, decoded and hashed on the other core (backends/argo/list_scan.py)
            child = list_scan.ChildListing(self.kube, scope, pairs, self.child_command)
            with self._children_lock:
                if not self._closed:
                    self._children[scope] = child
                    return
            child.stop()  # closed while it started: nobody will read it
            return
        before = Counter(self.kube.counts)
        listed = parallel(lambda pair: self._owned(scope, pair), pairs)
        counts = Counter(self.kube.counts)
        counts.subtract(before)
        self._early[scope] = (dict(zip(pairs, listed, strict=True)), counts)

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        before = Counter(self.kube.counts)
        state = LiveState()
        pairs = self.targets(scope, desired)
        for kind_name, _ in pairs:
            if kind_name not in KINDS:
                raise BackendError(f"the argo backend cannot read objects of kind {kind_name!r}")
        early, early_counts = self._early.pop(scope, ({}, Counter()))
        with self._children_lock:
            child = self._children.pop(scope, None)
        if child is not None:
            # None: the child failed somehow; everything is listed here, where errors are reported as usual
            early, early_counts = child.finish(desired) or ({}, Counter())
        rest = [pair for pair in pairs if pair not in early]
        listed = dict(zip(rest, parallel(lambda pair: self._owned(scope, pair), rest), strict=True))
        listed.update(early)

        for pair in pairs:
            for live in listed[pair]:
                if live.owned_by(scope.project, scope.branch):
                    state.owned[live.address] = live

        wanted: dict[tuple[str, str], list[str]] = {}
        for resource in desired:
            if resource.address not in state.owned:
                wanted.setdefault((resource.address.kind, resource.address.namespace), []).append(resource.address.name)
        lookups: list[tuple[str, str, str | None]] = []
        for (kind_name, namespace), names in sorted(wanted.items()):
            if len(names) <= FIELD_SELECTOR_MAX:
                lookups.extend((kind_name, namespace, name) for name in sorted(names))
            else:
                lookups.append((kind_name, namespace, None))

        def others(lookup: tuple[str, str, str | None]) -> list[dict[str, Any]]:
            kind_name, namespace, name = lookup
            selector = f"metadata.name={name}" if name is not None else None
            return self.kube.list(KINDS[kind_name], namespace, field_selector=selector)

        desired_addresses = {r.address for r in desired}
        for (kind_name, _, _), items in zip(lookups, parallel(others, lookups), strict=True):
            kind = KINDS[kind_name]
            for obj in items:
                live = to_live(scope.backend, kind, obj)
                if live.address not in desired_addresses:
                    continue
                if live.owned_by(scope.project, scope.branch):
                    state.owned[live.address] = live  # labelled while we listed: ours after all
                else:
                    state.others[live.address] = live
        after = Counter(self.kube.counts)
        after.subtract(before)
        after.update(early_counts)
        state.calls = {k: v for k, v in sorted(after.items()) if v > 0}
        return state
