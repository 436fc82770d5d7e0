"""Listing a large Argo deployment in a second process, while the planner compiles.

A no-change plan of 10,000 flows lists 30,000 objects (80 MB of JSON). Decoding them,
normalising them and hashing them for the comparison took the planner about 3.5 s of CPU,
under the interpreter lock beside the compile: the listings overlapped the compile in time
but not in CPU. For an inventory of :data:`IN_CHILD_FROM` addresses or more the reader starts
``python -m backends.argo.list_scan`` instead, which makes the same paged LISTs with the same
client, retries and timeouts on the other core, and keeps each object's normalised body and
its comparison digest. When the planner has compiled, it sends the desired digests; the
child answers with every object's small facts (address, resourceVersion, owner markers,
field managers, what an update must preserve) and its body only where the body differs
from the desired resource. Where it is equal the reader hands the planner the desired
comparison body itself, as the files reader does for a file whose header proves its bytes:
the planner compares by hash first, so an equal body is never looked at again.

Protocol, one JSON document per line: the request on stdin (cluster settings, timeout,
retry policy, scope, the (kind, namespace) pairs to list); later, on stdin too,
``{"desired": {address: digest}}``; the answer on stdout,
``{"counts": {...}, "listed": [[kind, namespace, [record, ...]], ...]}`` (see
:func:`_record`). The child exits 1 on any error without a word: the parent then lists in
process, where every error is reported as it always is. The child only ever saves time; it
never decides anything the parent would not.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from backends.argo.client import DEFAULT_RETRY, KINDS, ClusterSettings, Connection, Kube, RetryPolicy
from planner.contract import Scope
from planner.resources import Address, FieldManager, LiveResource, Owner, Resource, digest, without

#: Smaller inventories are listed in process: starting the child costs about 0.6 s of CPU (the
#: kubernetes client's import, the kubeconfig), which only pays off when it hides seconds.
IN_CHILD_FROM = 2_000
#: The child's command line (tests put a failing one here to check the parent lists by itself then).
COMMAND: list[str] = [sys.executable, "-m", "backends.argo.list_scan"]


def _cluster(settings: ClusterSettings) -> dict[str, Any]:
    """The cluster settings as JSON (the child's request, and part of a listing's identity)."""
    return {**asdict(settings), "base_dir": str(settings.base_dir)}


def _volatile() -> tuple[str, ...]:
    from backends.argo.compile import VOLATILE_PATHS

    return VOLATILE_PATHS


#: Children not yet read back or abandoned: stopped when flowplan exits (a plan that failed before
#: reading its listing leaves no process behind, still calling the cluster).
_RUNNING: set[ChildListing] = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def _stop_running() -> None:
    with _RUNNING_LOCK:
        children = list(_RUNNING)
    for child in children:
        child.abandon()


class ChildListing:
    """A running child listing; :meth:`finish` is None when the parent must list itself."""

    def __init__(self, kube: Kube, scope: Scope, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        request = {
            "cluster": _cluster(kube.connection.settings),
            "timeout": list(kube.timeout),
            "retry": asdict(kube.retry),
            "scope": [scope.backend, scope.project, scope.branch],
            "pairs": [list(pair) for pair in self.pairs],
        }
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self.process = subprocess.Popen(
                COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            with _RUNNING_LOCK:
                _RUNNING.add(self)
            assert self.process.stdin is not None
            self.process.stdin.write(orjson.dumps(request) + b"\n")
            self.process.stdin.flush()
        except OSError:
            self.abandon()
            self.process = None

    @staticmethod
    def usable(kube: Kube) -> bool:
        """Whether a child would call the cluster exactly as ``kube`` does (tests swap in fake sleeps)."""
        return kube.sleep is time.sleep and type(kube.retry) is RetryPolicy

    def finish(
        self, desired: Sequence[Resource]
    ) -> tuple[dict[tuple[str, str], list[LiveResource]], Counter[str]] | None:
        """The owned objects per pair and the calls the child made; None if anything went wrong."""
        process = self.process
        if process is None:
            return None
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        volatile = _volatile()
        mine = {str(r.address): r for r in desired if r.volatile_paths == volatile}
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(orjson.dumps({"desired": {a: r.digest for a, r in mine.items()}}) + b"\n")
            process.stdin.close()
            out = process.stdout.read()  # the child has its listings ready, or is still listing
            process.stdout.close()
            process.wait()
        except OSError:
            return None
        if process.returncode != 0:
            return None
        try:
            answer = orjson.loads(out)
            listed: dict[tuple[str, str], list[LiveResource]] = {}
            for kind, namespace, records in answer["listed"]:
                listed[(kind, namespace)] = [_live(record, mine) for record in records]
            counts = Counter({str(k): int(v) for k, v in answer["counts"].items()})
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        if sorted(listed) != sorted(self.pairs):
            return None
        return listed, counts

    def abandon(self) -> None:
        """Stop a child whose answer is not wanted (the plan ended before reading it)."""
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --------------------------------------------------------------------------- started before the manifest is loaded

#: Listings started from the manifest's first lines (see :func:`speculate`), waiting for a reader to adopt them.
_SPECULATIVE: dict[tuple[Any, ...], ChildListing] = {}
_SPECULATIVE_LOCK = threading.Lock()


def _key(kube: Kube, scope: Scope) -> tuple[Any, ...]:
    """What must be equal for a listing to be the one a reader would make: cluster, client settings, scope."""
    return (orjson.dumps(_cluster(kube.connection.settings)), tuple(kube.timeout),
            orjson.dumps(asdict(kube.retry)), scope)  # fmt: skip


def speculate(kube: Kube, scope: Scope, pairs: Sequence[tuple[str, str]]) -> None:
    """Start listing ``pairs`` now, for the reader of ``scope`` that :func:`adopt` s it later.

    The CLI calls this for a large manifest before loading it (about 5 s at 10,000 flows), from
    its first lines alone: the listings of a cluster do not depend on the flows, and the server
    needs seconds for them. A listing nobody adopts is stopped by :func:`abandon_speculation`.
    """
    if not ChildListing.usable(kube):
        return
    with _SPECULATIVE_LOCK:
        _SPECULATIVE[_key(kube, scope)] = ChildListing(kube, scope, pairs)


def adopt(kube: Kube, scope: Scope) -> ChildListing | None:
    """The listing :func:`speculate` started for exactly this cluster, client and scope, if any."""
    with _SPECULATIVE_LOCK:
        return _SPECULATIVE.pop(_key(kube, scope), None)


def abandon_speculation() -> None:
    with _SPECULATIVE_LOCK:
        children = list(_SPECULATIVE.values())
        _SPECULATIVE.clear()
    for child in children:
        child.abandon()


def _record(live: LiveResource, body: bytes, body_digest: str) -> list[Any]:
    """``[backend, kind, namespace, name, version, owner, spec_hash, managers, meta, protected, digest, body]``;
    the body (JSON text) is replaced by None when the parent's desired digest equals ``digest``."""
    a = live.address
    owner = [live.owner.project, live.owner.branch, live.owner.flow] if live.owner is not None else None
    managers = [[m.manager, m.operation, m.time] for m in live.managers]
    return [
        a.backend, a.kind, a.namespace, a.name, live.version, owner, live.spec_hash, managers,
        dict(live.meta), live.protected, body_digest, body,
    ]  # fmt: skip


def _live(record: list[Any], desired: Mapping[str, Resource]) -> LiveResource:
    backend, kind, namespace, name, version, owner, spec_hash, managers, meta, protected, _digest, body = record
    address = Address(backend, kind, namespace, name)
    if body is None:
        # equal to the desired resource (same comparison digest): its comparison body stands in for
        # the live one, which the planner recognises by identity and never hashes again
        resolved = desired[str(address)].comparison_body
    else:
        resolved = orjson.loads(body)
    return LiveResource(
        address=address,
        body=resolved,
        version=version,
        owner=Owner(*owner) if owner is not None else None,
        spec_hash=spec_hash,
        managers=tuple(FieldManager(*m) for m in managers),
        meta=meta,
        protected=protected,
    )


# --------------------------------------------------------------------------- the child


def _list(request: Mapping[str, Any]) -> tuple[list[tuple[str, str, list[list[Any]]]], Counter[str]]:
    from backends.argo.reader import owner_selector, parallel, to_live

    cluster = dict(request["cluster"])
    cluster["base_dir"] = Path(cluster["base_dir"])
    kube = Kube(
        Connection(ClusterSettings(**cluster)),
        retry=RetryPolicy(**request["retry"]) if request.get("retry") else DEFAULT_RETRY,
        timeout=tuple(request["timeout"]),  # type: ignore[arg-type]
    )
    scope = Scope(*request["scope"])
    volatile = _volatile()

    def convert(kind_name: str) -> Any:
        kind = KINDS[kind_name]

        def one(obj: dict[str, Any]) -> list[Any]:
            live = to_live(scope.backend, kind, obj)
            return _record(live, orjson.dumps(live.body), digest(without(live.body, volatile)))

        return one

    def owned(pair: tuple[str, str]) -> tuple[str, str, list[list[Any]]]:
        kind_name, namespace = pair
        records = kube.list_as(
            KINDS[kind_name], namespace, convert(kind_name), label_selector=owner_selector(scope, kind_name)
        )
        return kind_name, namespace, records

    listed = parallel(owned, [(str(k), str(n)) for k, n in request["pairs"]])
    return listed, kube.counts


def main() -> int:
    import gc

    gc.disable()  # a short process building a few large lists
    try:
        request = orjson.loads(sys.stdin.buffer.readline())
        listed, counts = _list(request)
        desired: dict[str, str] = orjson.loads(sys.stdin.buffer.readline())["desired"]
        for _kind, _namespace, records in listed:
            for record in records:
                address = str(Address(*record[:4]))
                if desired.get(address) == record[10]:
                    record[11] = None
                else:
                    record[11] = record[11].decode()
        sys.stdout.buffer.write(orjson.dumps({"counts": dict(counts), "listed": listed}))
    except BaseException:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
