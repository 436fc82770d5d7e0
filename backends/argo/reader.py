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

Normalization (:func:`normalize`) makes a live object compare equal to the
body the compiler produced, so a fresh apply followed by a plan is empty:

- ``metadata`` keeps ``name``, ``namespace``, ``labels`` and ``annotations``
  (empty maps dropped, as the server drops them); uid, resourceVersion,
  generation, creationTimestamp, managedFields, selfLink, deletion fields,
  generateName, finalizers and ownerReferences go;
- ``status`` goes (controllers own it);
- annotations the Argo controllers write (:data:`CONTROLLER_ANNOTATIONS`) go;
- ``apiVersion``/``kind`` are filled in (built-in kinds' list items lack them).

What was dropped but must survive an update (status of a CronWorkflow — its
CRD has no status subresource, so a PUT without it would erase the
controller's ``lastScheduledTime`` —, finalizers, ownerReferences, controller
annotations) is kept in ``LiveResource.meta["preserve"]`` and put back by the
writer. uid and resourceVersion are in ``meta``; resourceVersion is also the
``version`` (the concurrency token of every write). ``managedFields`` become
``LiveResource.managers`` (manager, operation, time), and
``meta["field_owners"]`` names the fields each manager other than flowplan
owns (JSON pointers), so a drift report can say who changed what.
"""

from __future__ import annotations

import concurrent.futures
import copy
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from backends.argo import list_scan
from backends.argo.client import (
    FIELD_MANAGER,
    KINDS,
    RESOURCE_KINDS,
    Kind,
    Kube,
    MissingKindsError,
    missing_kinds_error,
)
from planner.contract import LiveState, Reader, Scope
from planner.errors import BackendError
from planner.manifest import ArgoSettings
from planner.resources import (
    BRANCH_KEY,
    FLOW_KEY,
    MANAGED_BY,
    MANAGED_BY_KEY,
    PROJECT_KEY,
    PROTECT_KEY,
    SPEC_HASH_KEY,
    Address,
    FieldManager,
    LiveResource,
    Owner,
    Resource,
    join_pointer,
)

__all__ = [
    "CONTROLLER_ANNOTATIONS",
    "FIELD_SELECTOR_MAX",
    "INVENTORY_KEY",
    "ArgoReader",
    "normalize",
    "owner_selector",
    "to_live",
]

#: Marks flowplan's own bookkeeping ConfigMaps (the inventory) so they are never mistaken for a resource.
INVENTORY_KEY = "flowplan.dev/inventory"
#: Up to this many missing desired names of one kind and namespace are looked up by fieldSelector, one LIST each.
FIELD_SELECTOR_MAX = 2
#: Annotations the Argo controllers maintain on objects flowplan writes: not drift, kept on update.
CONTROLLER_ANNOTATIONS = frozenset({"cronworkflows.argoproj.io/last-used-schedule"})
#: Metadata kept in the compared body.
_KEPT_META = ("name", "namespace", "labels", "annotations")
#: Metadata not compared but carried over by updates.
_PRESERVED_META = ("finalizers", "ownerReferences")
#: Parallel LISTs per read (kinds × namespaces is small; this only bounds a pathological manifest).
_READ_WORKERS = 8

T = TypeVar("T")
R = TypeVar("R")


def owner_selector(scope: Scope, kind: str | None = None) -> str:
    """The label selector for what ``scope`` owns (ConfigMaps exclude the inventory's)."""
    selector = f"{MANAGED_BY_KEY}={MANAGED_BY},{PROJECT_KEY}={scope.project},{BRANCH_KEY}={scope.branch}"
    if kind == "ConfigMap":
        selector += f",!{INVENTORY_KEY}"
    return selector


# --------------------------------------------------------------------------- normalization


def normalize(kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable body of a live (or about-to-be-sent) object; see the module docstring.

    One pass, no deep copy: the result shares ``spec`` (and every other kept
    field) with ``obj``, which is a freshly decoded answer nobody changes
    afterwards; only ``labels`` and ``annotations`` are copied, because
    controller annotations are removed from them (a plan of 10,000 flows spent
    more time deep-copying listed objects than decoding them; issue 12).
    """
    meta_in = obj.get("metadata") or {}
    meta: dict[str, Any] = {}
    for key in _KEPT_META:
        value = meta_in.get(key)
        if value is None or (isinstance(value, dict) and not value):
            continue
        meta[key] = dict(value) if isinstance(value, dict) else value
    annotations = meta.get("annotations")
    if annotations:
        for key in CONTROLLER_ANNOTATIONS & set(annotations):
            del annotations[key]
        if not annotations:
            del meta["annotations"]
    body: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion") or kind.api_version,
        "kind": obj.get("kind") or kind.kind,
    }
    body["metadata"] = meta
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        body[key] = value
    return body


def preserved(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What an update must carry over from the live object (see the module docstring)."""
    meta = obj.get("metadata") or {}
    keep: dict[str, Any] = {}
    for key in _PRESERVED_META:
        if meta.get(key):
            keep[key] = copy.deepcopy(meta[key])
    controller = {k: v for k, v in (meta.get("annotations") or {}).items() if k in CONTROLLER_ANNOTATIONS}
    if controller:
        keep["annotations"] = controller
    if obj.get("status") is not None:
        keep["status"] = copy.deepcopy(obj["status"])
    return keep


def _owner(labels: Mapping[str, str]) -> Owner | None:
    if labels.get(MANAGED_BY_KEY) != MANAGED_BY or PROJECT_KEY not in labels or BRANCH_KEY not in labels:
        return None
    return Owner(labels[PROJECT_KEY], labels[BRANCH_KEY], labels.get(FLOW_KEY))


def _field_pointers(node: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[str]:
    """Leaf JSON pointers of a managedFields ``fieldsV1`` tree (``f:spec`` → ``/spec``)."""
    leaves = False
    for key, child in node.items():
        if key.startswith("f:"):
            path = (*prefix, key[2:])
            if isinstance(child, dict) and any(k.startswith(("f:", "k:", "v:")) for k in child):
                yield from _field_pointers(child, path)
            else:
                yield join_pointer(path)
        elif key.startswith(("k:", "v:")):
            leaves = True
    if leaves and prefix:
        yield join_pointer(prefix)


def _managers(meta: Mapping[str, Any]) -> tuple[tuple[FieldManager, ...], dict[str, list[str]]]:
    managers: list[FieldManager] = []
    owners: dict[str, list[str]] = {}
    for entry in meta.get("managedFields") or []:
        if not isinstance(entry, dict):
            continue
        manager = str(entry.get("manager") or "?")
        managers.append(FieldManager(manager, str(entry.get("operation") or ""), entry.get("time")))
        if manager != FIELD_MANAGER and isinstance(entry.get("fieldsV1"), dict):
            pointers = sorted(set(_field_pointers(entry["fieldsV1"])))
            if pointers:
                owners.setdefault(manager, [])
                owners[manager] = sorted(set(owners[manager]) | set(pointers))
    return tuple(managers), owners


def to_live(backend: str, kind: Kind, obj: Mapping[str, Any]) -> LiveResource:
    """A listed (or read back) object as the planner sees it."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    managers, owners = _managers(meta)
    extra: dict[str, Any] = {
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if meta.get("generation") is not None:
        extra["generation"] = meta.get("generation")
    if meta.get("creationTimestamp"):
        extra["creationTimestamp"] = meta.get("creationTimestamp")
    keep = preserved(obj)
    if keep:
        extra["preserve"] = keep
    if owners:
        extra["field_owners"] = owners
    if meta.get("deletionTimestamp"):
        extra["deletionTimestamp"] = meta["deletionTimestamp"]
    return LiveResource(
        address=Address(backend, kind.kind, str(meta.get("namespace", "")), str(meta.get("name", ""))),
        body=normalize(kind, obj),
        version=str(meta.get("resourceVersion", "")),
        owner=_owner(labels),
        spec_hash=annotations.get(SPEC_HASH_KEY),
        managers=managers,
        meta=extra,
        protected=labels.get(PROTECT_KEY) == "true",
    )


# --------------------------------------------------------------------------- the reader


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = _READ_WORKERS) -> list[R]:
    """``[fn(x) for x in items]`` on a few threads; every error is raised after all calls finished.

    Missing CRDs are gathered into one error naming all of them, so a person
    installs Argo Workflows *and* Argo Events after one run, not two.
    """
    if len(items) <= 1:
        return [fn(x) for x in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="flowplan-list") as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for future in concurrent.futures.as_completed(futures):
            error = future.exception()
            if error is not None:
                errors.append(error)
            else:
                results[futures[future]] = future.result()
    if errors:
        missing = [e for e in errors if isinstance(e, MissingKindsError)]
        if missing:
            kinds = sorted({k for e in missing for k in e.kinds}, key=lambda k: k.kind)
            raise missing_kinds_error(kinds, missing[0].where)
        raise errors[0]
    return results


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
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.remembered = remembered
        #: Owned listings made by :meth:`prefetch`, per scope and (kind, namespace), and their call counts.
        self._early: dict[Scope, tuple[dict[tuple[str, str], list[LiveResource]], Counter[str]]] = {}
        #: Listings :meth:`prefetch` handed to a second process (large deployments), per scope.
        self._children: dict[Scope, list_scan.ChildListing] = {}

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

        A large deployment (:data:`backends.argo.list_scan.IN_CHILD_FROM` addresses) is listed by
        a second process instead, on the other core, and so is one whose listing the CLI started
        before loading the manifest (:mod:`planner.cli.speculate`), which is adopted here.
        """
        known = self.remembered(scope)
        adopted = list_scan.adopt(self.kube, scope)
        if adopted is not None:
            # started by the CLI before the manifest was loaded; :meth:`read` lists any pair it lacks
            self._children[scope] = adopted
            return
        if not known:
            return
        pairs = _in_kind_order(_inventory_pairs(scope, known))
        if len(known) >= list_scan.IN_CHILD_FROM and list_scan.ChildListing.usable(self.kube):
            # a large deployment: listed, decoded and hashed on the other core (backends/argo/list_scan.py)
            self._children[scope] = list_scan.ChildListing(self.kube, scope, pairs)
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
