"""Listing a large Argo deployment in a second process, while the planner compiles.

A no-change plan of 10,000 flows lists 30,000 objects (80 MB of JSON). Decoding them,
normalising them and hashing them for the comparison took the planner about 3.5 s of CPU,
under the interpreter lock beside the compile: the listings overlapped the compile in time
but not in CPU. For an inventory of :data:`IN_CHILD_FROM` addresses or more the reader starts
a :class:`ChildListing` instead (``python -m backends.argo.list_scan``), which makes the same
paged LISTs with the same client, retries and timeouts on the other core, and keeps each
object's normalised body and its comparison digest. When the planner has compiled, it sends
the desired digests; the child answers with every object's small facts (address,
resourceVersion, owner markers, field managers, what an update must preserve) and its body
only where the body differs from the desired resource. Where it is equal the reader hands the
planner the desired comparison body itself, as the files reader does for a file whose header
proves its bytes: the planner compares by hash first, so an equal body is never looked at again.

Protocol (:class:`planner.child.Child`, one JSON object per line): a :class:`ListRequest` on
stdin; later, on stdin too, a :class:`DesiredDigests`; the answer on stdout, a
:class:`ListAnswer`. The child exits 1 on any error without a word, and as soon as its stdin
closes before the digests came (its owner stopped or died): the parent then lists in process,
where every error is reported as it always is. The child only ever saves time; it never
decides anything the parent would not.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict

import orjson

from backends.argo.client import DEFAULT_RETRY, KINDS, ClusterSettings, Connection, Kube, RetryPolicy
from backends.argo.compile import VOLATILE_PATHS
from backends.argo.listing import owner_selector, parallel, to_live
from backends.origin import made_by
from planner.child import Child
from planner.contract import Scope
from planner.resources import Address, FieldManager, LiveResource, Owner, Resource, digest, without

__all__ = ["COMMAND", "IN_CHILD_FROM", "ChildListing"]

#: Smaller inventories are listed in process: starting the child costs about 0.6 s of CPU (the
#: kubernetes client's import, the kubeconfig), which only pays off when it hides seconds.
IN_CHILD_FROM = 2_000
#: How the reader starts the child (the reader takes another command as a constructor argument).
COMMAND: tuple[str, ...] = (sys.executable, "-m", "backends.argo.list_scan")


class Pair(TypedDict):
    kind: str
    namespace: str


class ListRequest(TypedDict):
    """What to list, and how to reach the cluster exactly as the parent's client does."""

    cluster: dict[str, Any]
    timeout: list[float]
    retry: dict[str, Any]
    scope: dict[str, str]
    pairs: list[Pair]


class DesiredDigests(TypedDict):
    """The comparison digest of every desired resource, by address: equal bodies are not sent back."""

    desired: dict[str, str]


class OwnerRecord(TypedDict):
    project: str
    branch: str
    flow: str | None


class ManagerRecord(TypedDict):
    manager: str
    operation: str
    time: str | None


class Record(TypedDict):
    """One listed object; ``body`` (JSON text) is None when its ``digest`` equals the desired one."""

    backend: str
    kind: str
    namespace: str
    name: str
    version: str
    owner: OwnerRecord | None
    spec_hash: str | None
    managers: list[ManagerRecord]
    meta: dict[str, Any]
    protected: bool
    digest: str
    body: str | None


class Listed(TypedDict):
    kind: str
    namespace: str
    objects: list[Record]


class ListAnswer(TypedDict):
    """Every listed (kind, namespace) and the API calls the child made."""

    counts: dict[str, int]
    listed: list[Listed]


Listings = dict[tuple[str, str], list[LiveResource]]


class ChildListing:
    """A running child listing of ``pairs``; :meth:`finish` is None when the parent must list itself.

    Its owner (the reader) stops it: :meth:`finish` reads its answer and leaves no process,
    :meth:`stop` (or leaving a ``with`` block) kills one whose answer is not wanted.
    """

    def __init__(
        self, kube: Kube, scope: Scope, pairs: Sequence[tuple[str, str]], command: Sequence[str] = COMMAND
    ) -> None:
        self.pairs = list(pairs)
        request: ListRequest = {
            "cluster": {**asdict(kube.connection.settings), "base_dir": str(kube.connection.settings.base_dir)},
            "timeout": list(kube.timeout),
            "retry": asdict(kube.retry),
            "scope": {"backend": scope.backend, "project": scope.project, "branch": scope.branch},
            "pairs": [{"kind": kind, "namespace": namespace} for kind, namespace in self.pairs],
        }
        self.child = Child(command, orjson.dumps(request) + b"\n", more=True)

    def finish(self, desired: Sequence[Resource]) -> tuple[Listings, Counter[str]] | None:
        """The owned objects per pair and the calls the child made; None if anything went wrong."""
        mine = {str(r.address): r for r in desired if r.volatile_paths == VOLATILE_PATHS}
        message: DesiredDigests = {"desired": {a: r.digest for a, r in mine.items()}}
        try:
            self.child.send(orjson.dumps(message) + b"\n")
            out = self.child.answer()
        finally:
            self.child.stop()
        if out is None:
            return None
        try:
            answer: ListAnswer = orjson.loads(out)
            listed: Listings = {}
            for entry in answer["listed"]:
                listed[(entry["kind"], entry["namespace"])] = [_live(record, mine) for record in entry["objects"]]
            counts = Counter({str(k): int(v) for k, v in answer["counts"].items()})
        except (ValueError, KeyError, TypeError):
            return None
        if sorted(listed) != sorted(self.pairs):
            return None
        return listed, counts

    def stop(self) -> None:
        """Kill the child if it still runs (the plan ended before reading its answer)."""
        self.child.stop()

    def __enter__(self) -> ChildListing:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def _record(live: LiveResource, body_digest: str) -> Record:
    """``live`` as the child sends it, without its body (decided once the desired digests are known)."""
    a = live.address
    owner: OwnerRecord | None = None
    if live.owner is not None:
        owner = {"project": live.owner.project, "branch": live.owner.branch, "flow": live.owner.flow}
    return {
        "backend": a.backend,
        "kind": a.kind,
        "namespace": a.namespace,
        "name": a.name,
        "version": live.version,
        "owner": owner,
        "spec_hash": live.spec_hash,
        "managers": [{"manager": m.manager, "operation": m.operation, "time": m.time} for m in live.managers],
        "meta": dict(live.meta),
        "protected": live.protected,
        "digest": body_digest,
        "body": None,
    }


def _live(record: Record, desired: Mapping[str, Resource]) -> LiveResource:
    address = Address(record["backend"], record["kind"], record["namespace"], record["name"])
    body = record["body"]
    if body is None:
        # equal to the desired resource (same comparison digest): its comparison body stands in for
        # the live one, which the planner recognises by identity and never hashes again
        resolved = desired[str(address)].comparison_body
    else:
        resolved = orjson.loads(body)
    owner = record["owner"]
    return LiveResource(
        address=address,
        body=resolved,
        version=record["version"],
        owner=Owner(owner["project"], owner["branch"], owner["flow"]) if owner is not None else None,
        spec_hash=record["spec_hash"],
        managers=tuple(FieldManager(m["manager"], m["operation"], m["time"]) for m in record["managers"]),
        meta=record["meta"],
        protected=record["protected"],
        made_by=made_by(resolved),
    )


# --------------------------------------------------------------------------- the child


#: One listed pair in the child before the digests came: each record with its body's JSON.
_Pending = tuple[Pair, list[tuple[Record, bytes]]]


def _list(request: ListRequest) -> tuple[list[_Pending], Counter[str]]:
    """Every requested pair's owned objects, listed with the parent's client settings."""
    cluster = dict(request["cluster"])
    cluster["base_dir"] = Path(cluster["base_dir"])
    cluster["ignored"] = tuple(cluster.get("ignored") or ())
    kube = Kube(
        Connection(ClusterSettings(**cluster)),
        retry=RetryPolicy(**request["retry"]) if request.get("retry") else DEFAULT_RETRY,
        timeout=(float(request["timeout"][0]), float(request["timeout"][1])),
    )
    scope = Scope(**request["scope"])

    def owned(pair: Pair) -> _Pending:
        kind = KINDS[pair["kind"]]

        def one(obj: dict[str, Any]) -> tuple[Record, bytes]:
            live = to_live(scope.backend, kind, obj)
            return _record(live, digest(without(live.body, VOLATILE_PATHS))), orjson.dumps(live.body)

        selector = owner_selector(scope, pair["kind"])
        return pair, kube.list_as(kind, pair["namespace"], one, label_selector=selector)

    return parallel(owned, request["pairs"]), kube.counts


def _answer(pending: list[_Pending], counts: Counter[str], desired: Mapping[str, str]) -> ListAnswer:
    """The answer: a body only where it differs from the desired resource's."""
    listed: list[Listed] = []
    for pair, objects in pending:
        records = []
        for record, body in objects:
            address = str(Address(record["backend"], record["kind"], record["namespace"], record["name"]))
            if desired.get(address) != record["digest"]:
                record["body"] = body.decode()
            records.append(record)
        listed.append({"kind": pair["kind"], "namespace": pair["namespace"], "objects": records})
    return {"counts": dict(counts), "listed": listed}


def _await_digests(arrived: list[DesiredDigests]) -> threading.Thread:
    """Read the digests as they come; a stdin closed first means the owner is gone: exit at once."""

    def read() -> None:
        line = sys.stdin.buffer.readline()
        if not line:
            os._exit(1)  # no one will read the answer: stop calling the cluster now
        try:
            arrived.append(orjson.loads(line))
        except ValueError:
            os._exit(1)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def main() -> int:
    import gc

    gc.disable()  # a short process building a few large lists
    try:
        request: ListRequest = orjson.loads(sys.stdin.buffer.readline())
        arrived: list[DesiredDigests] = []
        reading = _await_digests(arrived)
        pending, counts = _list(request)
        reading.join()
        sys.stdout.buffer.write(orjson.dumps(_answer(pending, counts, arrived[0]["desired"])))
    except BaseException:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
