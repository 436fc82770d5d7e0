"""What a listed Argo or Kubernetes object is to the planner, and listing many kinds at once.

Both the reader and the child process that lists a large deployment
(:mod:`backends.argo.list_scan`) convert objects here, so the two give the same answer.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from backends.argo.client import FIELD_MANAGER, Kind, MissingKindsError, missing_kinds_error
from backends.origin import made_by
from planner.contract import Scope
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
    join_pointer,
)

__all__ = ["CONTROLLER_ANNOTATIONS", "INVENTORY_KEY", "normalize", "owner_selector", "parallel", "preserved", "to_live"]

#: Marks flowplan's own bookkeeping ConfigMaps (the inventory) so they are never mistaken for a resource.
INVENTORY_KEY = "flowplan.dev/inventory"
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
    more time deep-copying listed objects than decoding them).
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
    body = normalize(kind, obj)
    return LiveResource(
        address=Address(backend, kind.kind, str(meta.get("namespace", "")), str(meta.get("name", ""))),
        body=body,
        version=str(meta.get("resourceVersion", "")),
        owner=_owner(labels),
        spec_hash=annotations.get(SPEC_HASH_KEY),
        managers=managers,
        meta=extra,
        protected=labels.get(PROTECT_KEY) == "true",
        made_by=made_by(body),
    )


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
