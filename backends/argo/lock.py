"""The apply lock: a ``coordination.k8s.io/v1`` Lease per project and branch.

``flowplan-lock-<project>.<branch>`` in the backend's namespace. The Lease's
own fields say who holds it in a way ``kubectl get lease`` shows
(``holderIdentity: alice@ci-runner-7 pid 4242``, ``leaseDurationSeconds``,
``acquireTime``, ``renewTime``, ``leaseTransitions``); the annotation
``flowplan.dev/lock`` holds the exact :class:`~planner.contract.LockInfo`, which is
how a run recognizes its own lease.

Who wins is decided by the API server, never by a read-then-write in
flowplan: taking a free lock is a create (two racing creates: one gets 409
AlreadyExists), taking over an expired one is an update carrying the
resourceVersion that was read (two racing takeovers: one gets 409 Conflict).
The loser reads the lease again and reports the winner. Renewals are updates
with the resourceVersion of the previous write, so a run that lost its lease
(expired and taken over) finds out at its next renewal. Release deletes the
lease with uid and resourceVersion preconditions; ``force-unlock`` deletes
whatever is there (uid precondition only).

Expiry compares ``renewTime + leaseDurationSeconds`` with this machine's clock;
clocks skewed by more than a lease duration can take a live lock over, so keep
the TTL (5 minutes by default, renewed every 100 s) well above the skew.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from backends.argo.client import LEASE, Failure, Kube
from planner.contract import LockInfo, Scope, lock_held
from planner.errors import FlowplanError, LockError
from planner.resources import BRANCH_KEY, MANAGED_BY, MANAGED_BY_KEY, PROJECT_KEY

__all__ = ["LOCK_ANNOTATION", "LeaseLock", "lock_name"]

LOCK_ANNOTATION = "flowplan.dev/lock"


def lock_name(scope: Scope) -> str:
    """``flowplan-lock-<project>.<branch>``: injective (projects and branches are DNS labels, no ``.``)."""
    return f"flowplan-lock-{scope.project}.{scope.branch}"


def _micro(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def holder_of(obj: Mapping[str, Any]) -> LockInfo | None:
    """Who holds a Lease (None when it is released); expiry from the Lease's own renewTime and duration."""
    spec = obj.get("spec") or {}
    identity = spec.get("holderIdentity")
    if not identity:
        return None
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    info: LockInfo
    try:
        info = LockInfo.from_json(json.loads(annotations[LOCK_ANNOTATION]))
    except (KeyError, ValueError, TypeError):
        info = LockInfo(str(identity), "?", 0)  # a lease some other tool holds under this name
    renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is not None and isinstance(duration, int):
        info = LockInfo(info.holder, info.host, info.pid, info.operation, info.acquired_at, renewed + duration)
    return info


def _same_holder(a: LockInfo | None, b: LockInfo) -> bool:
    return a is not None and (a.holder, a.host, a.pid, a.acquired_at) == (b.holder, b.host, b.pid, b.acquired_at)


class LeaseLock:
    """The :class:`~planner.contract.Lock` of an argo backend for one scope."""

    def __init__(self, kube: Kube, scope: Scope, namespace: str, where: Callable[[], str]) -> None:
        self.kube = kube
        self.scope = scope
        self.namespace = namespace
        self.name = lock_name(scope)
        self.where = where
        self._rv: str | None = None
        self._uid: str | None = None
        self._transitions = 0

    # -- bodies ------------------------------------------------------------------------

    def _body(self, info: LockInfo, *, rv: str | None, transitions: int, acquired: float) -> dict[str, Any]:
        now = time.time()
        duration = max(1, math.ceil(info.expires_at - now)) if info.expires_at else 300
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {MANAGED_BY_KEY: MANAGED_BY, PROJECT_KEY: self.scope.project, BRANCH_KEY: self.scope.branch},
            "annotations": {LOCK_ANNOTATION: json.dumps(info.to_json(), sort_keys=True)},
        }
        if rv is not None:
            meta["resourceVersion"] = rv
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": f"{info.holder}@{info.host} pid {info.pid}",
                "leaseDurationSeconds": duration,
                "acquireTime": _micro(acquired),
                "renewTime": _micro(now),
                "leaseTransitions": transitions,
            },
        }

    def _keep(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self._rv = str(meta.get("resourceVersion")) if meta.get("resourceVersion") else self._rv
        self._uid = str(meta.get("uid")) if meta.get("uid") else self._uid
        transitions = (obj.get("spec") or {}).get("leaseTransitions")
        if isinstance(transitions, int):
            self._transitions = transitions

    def _read(self) -> dict[str, Any] | None:
        return self.kube.get(LEASE, self.namespace, self.name)

    def _write(self, verb: str, body: dict[str, Any], info: LockInfo) -> dict[str, Any] | None:
        """A create or update; None when the server said 409 (someone else won). Ambiguous → read back."""
        for attempt in range(1, self.kube.retry.attempts + 1):
            result = self.kube.attempt(
                lambda: self.kube.call(
                    verb,  # type: ignore[arg-type]
                    LEASE,
                    self.namespace,
                    None if verb == "create" else self.name,
                    body=body,
                )
            )
            if not isinstance(result, Failure):
                return result
            if result.status == 409:
                return None
            if result.kind == "fatal":
                raise self.kube.error(result, verb=verb, kind=LEASE, namespace=self.namespace, name=self.name)
            if result.kind == "ambiguous":
                existing = self._read()
                if existing is not None and _same_holder(holder_of(existing), info):
                    spec = existing.get("spec") or {}
                    if spec.get("renewTime") == body["spec"]["renewTime"] or verb == "create":
                        return existing  # our write landed
                if verb == "create" and existing is not None:
                    return None
                if verb == "update" and (
                    existing is None
                    or str(existing["metadata"].get("resourceVersion")) != body["metadata"].get("resourceVersion")
                ):
                    return None
            if attempt == self.kube.retry.attempts:
                raise self.kube.error(
                    result, verb=verb, kind=LEASE, namespace=self.namespace, name=self.name, attempts=attempt
                )
            self.kube.backoff(attempt, result)
        return None

    # -- the Lock protocol -------------------------------------------------------------

    def current(self) -> LockInfo | None:
        existing = self._read()
        return holder_of(existing) if existing is not None else None

    def acquire(self, info: LockInfo) -> None:
        for _ in range(4):
            existing = self._read()
            if existing is None:
                body = self._body(info, rv=None, transitions=0, acquired=info.acquired_at or time.time())
                try:
                    created = self._write("create", body, info)
                except (FlowplanError, ValueError) as exc:
                    raise self._unreadable_create(info, exc) from None
                if created is not None:
                    self._keep(created)
                    return
                continue  # someone created it first: read it and report them (or take it if it expired)
            holder = holder_of(existing)
            if holder is not None and not holder.expired and not _same_holder(holder, info):
                raise lock_held(holder, self.where())
            transitions = (existing.get("spec") or {}).get("leaseTransitions") or 0
            if holder is not None and not _same_holder(holder, info):
                transitions += 1
            body = self._body(
                info,
                rv=str(existing["metadata"]["resourceVersion"]),
                transitions=int(transitions),
                acquired=info.acquired_at or time.time(),
            )
            taken = self._write("update", body, info)
            if taken is not None:
                self._keep(taken)
                return
        holder = self.current()
        if holder is not None:
            raise lock_held(holder, self.where())
        raise LockError(f"could not take the apply lock {self.namespace}/{self.name}", hint="try again")

    def _unreadable_create(self, info: LockInfo, exc: FlowplanError | ValueError) -> FlowplanError:
        """The error to raise after a create whose answer could not be used (garbled body, a failure).

        The create may have made the Lease all the same. It is read back: one holding this run's
        identity is released (the apply stops on the error; nothing is left held until the TTL),
        one held by someone else is reported as theirs.
        """
        try:
            existing = self._read()
        except FlowplanError:
            existing = None
        holder = holder_of(existing) if existing is not None else None
        if existing is not None and _same_holder(holder, info):
            self._keep(existing)
            self.release(info)
        elif holder is not None:
            return lock_held(holder, self.where())
        if isinstance(exc, FlowplanError):
            return exc
        return LockError(
            f"the apply lock {self.namespace}/{self.name} could not be taken: the API server's answer to "
            f"creating it was not readable ({type(exc).__name__}: {str(exc)[:200]})",
            hint="check the API server (or the proxy in front of it) at "
            f"{self.where()}; a Lease this run made was released, so apply again",
        )

    def renew(self, info: LockInfo) -> None:
        for _ in range(3):
            if self._rv is None:
                existing = self._read()
                if existing is None or not _same_holder(holder_of(existing), info):
                    raise self._lost(existing)
                self._keep(existing)
            body = self._body(info, rv=self._rv, transitions=self._transitions, acquired=info.acquired_at)
            renewed = self._write("update", body, info)
            if renewed is not None:
                self._keep(renewed)
                return
            self._rv = None  # 409: read again; still ours (an earlier renewal landed) → renew on top of it
        raise self._lost(self._read())

    def _lost(self, existing: Mapping[str, Any] | None) -> LockError:
        holder = holder_of(existing) if existing is not None else None
        who = holder.describe() if holder is not None else "nobody (it was removed)"
        return LockError(
            f"the apply lock {self.namespace}/{self.name} was lost: it is now held by {who}",
            hint="someone forced the lock or it expired; check what the other run changed, then plan and apply again",
        )

    def release(self, info: LockInfo) -> None:
        existing: Mapping[str, Any] | None = None
        if self._rv is None:
            existing = self._read()
            if existing is None or not _same_holder(holder_of(existing), info):
                return
            self._keep(existing)
        for _ in range(3):
            preconditions = {"resourceVersion": self._rv}
            if self._uid:
                preconditions["uid"] = self._uid
            result = self.kube.attempt(
                lambda p=preconditions: self.kube.call(  # type: ignore[misc]
                    "delete", LEASE, self.namespace, self.name, body={"preconditions": p}
                )
            )
            if not isinstance(result, Failure) or result.status == 404:
                self._rv = None
                return
            existing = self._read()
            if existing is None or not _same_holder(holder_of(existing), info):
                self._rv = None
                return  # gone, or someone else's now: nothing of ours to release
            self._keep(existing)
            if result.kind == "fatal" and result.status != 409:
                raise self.kube.error(result, verb="delete", kind=LEASE, namespace=self.namespace, name=self.name)

    def force_unlock(self) -> LockInfo | None:
        existing = self._read()
        if existing is None:
            return None
        holder = holder_of(existing)
        uid = (existing.get("metadata") or {}).get("uid")
        options = {"preconditions": {"uid": uid}} if uid else {}
        result = self.kube.attempt(lambda: self.kube.call("delete", LEASE, self.namespace, self.name, body=options))
        if isinstance(result, Failure) and result.status != 404:
            raise self.kube.error(result, verb="delete", kind=LEASE, namespace=self.namespace, name=self.name)
        self._rv = None
        return holder
