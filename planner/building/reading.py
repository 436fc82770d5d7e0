"""Compile every backend's desired resources and read every backend, reads overlapping the compile.

On a live backend the listings are I/O and the compile is CPU: each backend's inventory and the
reader's read-ahead hooks (:class:`planner.contract.Reader` ``prefetch``) run on a
background thread while the manifest compiles; their errors surface when the backend is read,
after the compile's own. Backends are then read in parallel, each into a :class:`BackendView`.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from planner import heap
from planner.building.pairing import import_sources, renamed_from
from planner.building.reconcile import reconcile
from planner.building.views import BackendView, PlanOptions, RenamedScope
from planner.contract import Backend, CompileContext, Compiler, InventoryState, Reader, Scope
from planner.errors import ManifestError, PlanError
from planner.manifest import Backend as BackendSpec
from planner.manifest import Manifest
from planner.resources import Address, Provenance, Resource

T = TypeVar("T")


def read_all(
    manifest: Manifest,
    backends: Mapping[str, Backend],
    provenance: Provenance,
    options: PlanOptions,
    compiled: Mapping[str, list[Resource]] | None,
) -> tuple[dict[str, list[Resource]], dict[str, BackendView]]:
    """Each backend's compiled resources (sorted by address) and its view, by backend name."""
    names = sorted(backends)
    scopes = {name: Scope(name, manifest.project, manifest.branch) for name in names}
    readers = {name: backends[name].reader() for name in names}
    try:
        return _read_all(manifest, backends, provenance, options, compiled, scopes, readers)
    finally:
        for reader in readers.values():
            reader.close()  # stops what a read-ahead started and nobody read (a plan that failed first)


def _read_all(
    manifest: Manifest,
    backends: Mapping[str, Backend],
    provenance: Provenance,
    options: PlanOptions,
    compiled: Mapping[str, list[Resource]] | None,
    scopes: Mapping[str, Scope],
    readers: Mapping[str, Reader],
) -> tuple[dict[str, list[Resource]], dict[str, BackendView]]:
    names = sorted(backends)
    early = {name: _in_background(_prefetch, backends[name], readers[name], scopes[name]) for name in names}
    compiled = compiled or {}  # under the apply's lock: the manifest shown, compiled once already
    fresh = {n: (backends[n].spec, backends[n].compiler()) for n in names if n not in compiled}
    desired_all = {**compile_all(manifest, provenance, fresh), **{n: compiled[n] for n in names if n in compiled}}

    def read(name: str) -> BackendView:
        backend, scope = backends[name], scopes[name]
        inventory = early[name].result()
        extra = [Resource(source, {}) for target, source in import_sources(options) if target.backend == name]
        live = readers[name].read(scope, desired_all[name] + extra)
        desired = {r.address: r for r in desired_all[name]}
        renamed = None
        old_scope = renamed_from(manifest, name)
        if old_scope is not None and options.mode != "destroy":
            renamed = RenamedScope(old_scope, backend.inventory(old_scope).load(), backend.reader().read(old_scope, []))
        return BackendView(backend, scope, desired, live, inventory, reconcile(inventory, live, desired), renamed)

    workers = max(1, min(options.parallelism, len(names)))
    if workers == 1:
        return desired_all, {name: read(name) for name in names}
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flowplan-read") as pool:
        return desired_all, dict(zip(names, pool.map(read, names), strict=True))


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


def _prefetch(backend: Backend, reader: Reader, scope: Scope) -> InventoryState:
    """The scope's inventory, and the reader's early reads where it makes them.

    ``prefetch(scope)`` reads what the loaded inventory names (argo: the listings) while the
    compile runs; ``read`` then uses what it found and reads the rest.
    """
    inventory = backend.inventory(scope).load()
    reader.prefetch(scope)
    return inventory


def compile_all(
    manifest: Manifest, provenance: Provenance, compilers: Mapping[str, tuple[BackendSpec, Compiler]]
) -> dict[str, list[Resource]]:
    """Each backend's desired resources, sorted by address; every backend's manifest problems at once.

    ``compilers``: backend name → its spec and composed compiler. ``plan`` and ``validate`` both call
    this, so a static problem is found, gathered and worded the same way by both.
    """
    desired_all: dict[str, list[Resource]] = {}
    problems = []
    for name in sorted(compilers):
        spec, compiler = compilers[name]
        try:
            with heap.paused():  # pure and allocation-heavy: ~30,000 bodies at 10,000 flows
                resources = compiler.compile(CompileContext(manifest, spec, provenance))
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
