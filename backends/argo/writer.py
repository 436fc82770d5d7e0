"""Writing Argo objects: create, update with the planned resourceVersion, delete with preconditions.

Every write is tried by itself; what happens after a failure depends on
whether the server can have applied it (see :class:`~backends.argo.client.Failure`):

========================  ===============================================================
failure                   what the writer does
========================  ===============================================================
429, connection refused   wait (backoff with jitter, Retry-After honoured) and try again
timeout, reset, 5xx       **read back** (GET): the object as sent → success; untouched
                          (absent for a create, same resourceVersion for an update, same
                          uid and resourceVersion for a delete) → try again; anything
                          else → :class:`~planner.errors.ConflictError`
409 on update/delete      someone changed it since the plan: ConflictError (the applier
                          skips its dependents); after an ambiguous try, read back first
409 AlreadyExists         on a retried create whose first try was ambiguous: read back,
                          equal → success; otherwise ConflictError naming the owner
404 on update             deleted since the plan: ConflictError
404 on delete             already gone: success
other 4xx                 BackendError quoting the server's Status message, at once
========================  ===============================================================

Attempts are bounded (:class:`~backends.argo.client.RetryPolicy`); a failure
that outlives them is a :class:`~planner.errors.TransientError` for that
resource only.

Bodies: a create sends the compiler's body, markers included (labels and
annotations are part of it), in the one request. An update sends the desired
body with ``metadata.resourceVersion`` (and uid) read when the plan was made
and what the reader preserved (status, finalizers, ownerReferences,
controller annotations), so a PUT never erases what controllers own. With
``dry_run`` every request carries ``dryRun=All``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

from backends.argo.client import Failure, Kind, Kube, kind_of
from backends.argo.reader import normalize, to_live
from planner.contract import Writer
from planner.errors import BackendError, ConflictError
from planner.resources import Address, LiveResource, Resource

__all__ = ["ArgoWriter", "update_body"]

#: How long a replace waits for a deleted object with finalizers to disappear before creating it again.
REPLACE_WAIT_SECONDS = 60.0


def update_body(resource: Resource, live: LiveResource) -> dict[str, Any]:
    """The PUT body: desired, with the planned resourceVersion and uid, plus what the live object must keep."""
    body = copy.deepcopy(resource.body)
    meta = body.setdefault("metadata", {})
    meta["resourceVersion"] = live.version
    uid = live.meta.get("uid")
    if uid:
        meta["uid"] = uid
    keep: Mapping[str, Any] = live.meta.get("preserve") or {}
    for key in ("finalizers", "ownerReferences"):
        if key in keep:
            meta[key] = copy.deepcopy(keep[key])
    if keep.get("annotations"):
        meta["annotations"] = {**keep["annotations"], **(meta.get("annotations") or {})}
    if "status" in keep:
        body["status"] = copy.deepcopy(keep["status"])
    return body


def _owner_text(obj: Mapping[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    project, branch = labels.get("flowplan.dev/project"), labels.get("flowplan.dev/branch")
    if labels.get("app.kubernetes.io/managed-by") == "flowplan" and project:
        return f"flowplan project {project!r}, branch {branch!r}"
    return "not managed by flowplan"


class ArgoWriter(Writer):
    """The :class:`~planner.contract.Writer` of an argo backend; safe to call from many threads at once."""

    def __init__(self, kube: Kube, backend: str, *, dry_run: bool = False) -> None:
        self.kube = kube
        self.backend = backend
        self.dry_run = dry_run

    # -- helpers -------------------------------------------------------------------------

    def _same(self, kind: Kind, obj: Mapping[str, Any] | None, sent: Mapping[str, Any]) -> bool:
        return obj is not None and normalize(kind, obj) == normalize(kind, sent)

    def _fail(self, failure: Failure, verb: str, address: Address, attempts: int) -> BackendError:
        kind = kind_of(address.kind)
        return self.kube.error(
            failure, verb=verb, kind=kind, namespace=address.namespace, name=address.name, attempts=attempts
        )

    def _read_back(self, address: Address) -> dict[str, Any] | None:
        return self.kube.get(kind_of(address.kind), address.namespace, address.name)

    def _live(self, address: Address, obj: Mapping[str, Any]) -> LiveResource:
        return to_live(self.backend, kind_of(address.kind), obj)

    # -- create ------------------------------------------------------------------------

    def create(self, resource: Resource) -> LiveResource | None:
        address = resource.address
        kind = kind_of(address.kind)
        # The client serializes a copy of its own; only metadata is changed here, so only it is copied.
        body = dict(resource.body)
        body["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if k != "resourceVersion"}
        ambiguous = False
        for attempt in range(1, self.kube.retry.attempts + 1):
            result = self.kube.attempt(
                lambda: self.kube.call("create", kind, address.namespace, body=body, dry_run=self.dry_run)
            )
            if not isinstance(result, Failure):
                return self._live(address, result) if result else None
            failure = result
            if failure.status == 409:
                existing = self._read_back(address)
                if ambiguous and self._same(kind, existing, body):
                    return self._live(address, existing or {})
                owner = _owner_text(existing) if existing else "someone"
                raise ConflictError(
                    f"{address}: an object with this name appeared since the plan ({owner}); it was not touched",
                    hint="run flowplan plan to see it; adopt it with `flowplan import`, or rename the flow",
                )
            if failure.kind == "fatal":
                raise self._fail(failure, "create", address, attempt)
            if failure.kind == "ambiguous":
                existing = self._read_back(address)
                if existing is not None:
                    if self._same(kind, existing, body):
                        return self._live(address, existing)
                    raise ConflictError(
                        f"{address}: the create's answer was lost ({failure.describe()}) and the object found "
                        f"instead differs from what was sent ({_owner_text(existing)})",
                        hint="run flowplan plan to see the current state, then apply",
                    )
                ambiguous = True
            if attempt < self.kube.retry.attempts:
                self.kube.backoff(attempt, failure)
            else:
                raise self._fail(failure, "create", address, attempt)
        raise AssertionError("unreachable")

    # -- update ------------------------------------------------------------------------

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        address = resource.address
        kind = kind_of(address.kind)
        if not live.version:
            raise BackendError(f"{address}: no resourceVersion was recorded for the update", hint="plan again")
        body = update_body(resource, live)
        ambiguous = False
        for attempt in range(1, self.kube.retry.attempts + 1):
            result = self.kube.attempt(
                lambda: self.kube.call("update", kind, address.namespace, address.name, body=body, dry_run=self.dry_run)
            )
            if not isinstance(result, Failure):
                return self._live(address, result) if result else None
            failure = result
            if failure.status == 409 or (failure.status == 404 and not failure.missing_type):
                existing = self._read_back(address) if ambiguous or failure.status == 409 else None
                if ambiguous and self._same(kind, existing, body):
                    return self._live(address, existing or {})
                what = "deleted" if failure.status == 404 or (failure.status == 409 and existing is None) else "changed"
                who = self._who(existing)
                raise ConflictError(
                    f"{address}: {what} since the plan{who}; flowplan did not overwrite it",
                    hint="run flowplan plan to see the current state, then apply",
                )
            if failure.kind == "fatal":
                raise self._fail(failure, "update", address, attempt)
            if failure.kind == "ambiguous":
                existing = self._read_back(address)
                if existing is None:
                    raise ConflictError(
                        f"{address}: deleted since the plan (found missing after {failure.describe()})",
                        hint="run flowplan plan to see the current state, then apply",
                    )
                if self._same(kind, existing, body):
                    return self._live(address, existing)
                if str((existing.get("metadata") or {}).get("resourceVersion")) != live.version:
                    raise ConflictError(
                        f"{address}: changed since the plan{self._who(existing)} (the update's answer was lost: "
                        f"{failure.describe()})",
                        hint="run flowplan plan to see the current state, then apply",
                    )
                ambiguous = True
            if attempt < self.kube.retry.attempts:
                self.kube.backoff(attempt, failure)
            else:
                raise self._fail(failure, "update", address, attempt)
        raise AssertionError("unreachable")

    def _who(self, obj: Mapping[str, Any] | None) -> str:
        """`` by kubectl-edit at 2026-…`` — the last writer other than flowplan, when the object says."""
        if not obj:
            return ""
        entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, dict)]
        others = [e for e in entries if e.get("manager") != "flowplan"]
        if not others:
            return ""
        last = max(others, key=lambda e: str(e.get("time") or ""))
        when = f" at {last['time']}" if last.get("time") else ""
        return f" (last written by {last.get('manager')}{when})"

    # -- delete ------------------------------------------------------------------------

    def delete(self, live: LiveResource) -> None:
        self._delete(live)

    def _delete(self, live: LiveResource) -> dict[str, Any] | None:
        """Delete with uid and resourceVersion preconditions; returns the server's answer (None if gone)."""
        address = live.address
        kind = kind_of(address.kind)
        preconditions: dict[str, str] = {}
        if live.meta.get("uid"):
            preconditions["uid"] = str(live.meta["uid"])
        if live.version:
            preconditions["resourceVersion"] = live.version
        options: dict[str, Any] = {"propagationPolicy": "Background"}
        if preconditions:
            options["preconditions"] = preconditions
        for attempt in range(1, self.kube.retry.attempts + 1):
            result = self.kube.attempt(
                lambda: self.kube.call(
                    "delete", kind, address.namespace, address.name, body=options, dry_run=self.dry_run
                )
            )
            if not isinstance(result, Failure):
                return result
            failure = result
            if failure.status == 404 and not failure.missing_type:
                return None
            if failure.status == 409:
                existing = self._read_back(address)
                if existing is None:
                    return None
                raise ConflictError(
                    f"{address}: changed since the plan{self._who(existing)}; flowplan did not delete it",
                    hint="run flowplan plan to see the current state, then apply",
                )
            if failure.kind == "fatal":
                raise self._fail(failure, "delete", address, attempt)
            if failure.kind == "ambiguous":
                existing = self._read_back(address)
                meta = (existing or {}).get("metadata") or {}
                if existing is None or (preconditions.get("uid") and meta.get("uid") != preconditions["uid"]):
                    return None  # ours is gone (someone may have made a new one: the next plan sees it)
                if meta.get("deletionTimestamp"):
                    return existing  # deletion accepted, finalizers pending
                if str(meta.get("resourceVersion")) != live.version:
                    raise ConflictError(
                        f"{address}: changed since the plan{self._who(existing)}; flowplan did not delete it",
                        hint="run flowplan plan to see the current state, then apply",
                    )
            if attempt < self.kube.retry.attempts:
                self.kube.backoff(attempt, failure)
            else:
                raise self._fail(failure, "delete", address, attempt)
        raise AssertionError("unreachable")

    # -- replace -----------------------------------------------------------------------

    def replace(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        """Delete (with preconditions), wait until it is gone, create. A dry run validates both halves.

        A dry-run delete leaves the object in place, so the create half of a dry
        run is sent as a dry-run update of the live object instead: the server
        still validates the new body.
        """
        if self.dry_run:
            self._delete(live)
            return self.update(resource, live)
        answer = self._delete(live)
        if answer is not None and ((answer.get("metadata") or {}).get("deletionTimestamp")):
            self._wait_gone(live)
        return self.create(resource)

    def _wait_gone(self, live: LiveResource) -> None:
        deadline = time.monotonic() + REPLACE_WAIT_SECONDS
        delay = 0.2
        while time.monotonic() < deadline:
            existing = self._read_back(live.address)
            if existing is None or (existing.get("metadata") or {}).get("uid") != live.meta.get("uid"):
                return
            self.kube.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise BackendError(
            f"{live.address}: deleted for a replace, but still there after {REPLACE_WAIT_SECONDS:.0f}s "
            "(finalizers pending)",
            hint="check the object's finalizers (`kubectl get -o yaml`); apply again once it is gone",
        )
