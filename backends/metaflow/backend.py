"""A backend with Metaflow flows: the opened backend, plus compiling FlowSpecs and handling code packages.

:func:`backends.registry.open_backend` wraps a backend whose manifest entry has
a ``metaflow:`` block in :class:`MetaflowBackend`, and composes its compiler. Everything is the wrapped
backend's, except:

- the compiler (:class:`MetaflowCompiler`) compiles the Metaflow flows with
  Metaflow itself and the rest with the wrapped compiler;
- the reader also looks for each desired code package (one ``HeadObject`` per
  package — a read; planning never writes);
- the writer uploads a package on ``create`` with Metaflow's own datastore code
  (:mod:`backends.metaflow._driver`, ``upload``) and passes every other kind
  on;
- the inventory records the packages the current code wants and forgets the
  others (the objects stay: they are content-addressed and immutable, earlier
  runs and ``resume`` need their own, so flowplan neither updates nor deletes
  them);
- it owns a :class:`~backends.metaflow.compile.MetaflowWorkspace` (the compile
  cache and the packages on disk), shared by its compiler and package store and
  removed by :meth:`MetaflowBackend.close`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from backends.metaflow.common import CODE_PACKAGE, sink_problems, stand_in, with_flows
from backends.metaflow.compile import MetaflowWorkspace, compile_flows
from backends.metaflow.package import PackageStore
from backends.metaflow.settings import MetaflowSettings, settings_for
from planner.contract import (
    Backend,
    CompileContext,
    Compiler,
    Inventory,
    InventoryState,
    LiveState,
    Lock,
    Operator,
    Reader,
    ScheduleFacts,
    Scope,
    Writer,
)
from planner.errors import ManifestError, Problem
from planner.manifest import Backend as BackendSpec
from planner.manifest import Flow
from planner.resources import Address, LiveResource, Owner, Resource

__all__ = ["MetaflowBackend", "MetaflowCompiler"]


class MetaflowCompiler(Compiler):
    """Metaflow flows compiled by Metaflow (see the module docstring), the others by ``base``.

    ``on_packages`` hears the addresses of the packages each compile wants (the inventory keeps only those).
    ``offline`` (``flowplan validate``) runs only the checks the manifest alone decides: Metaflow's compile
    reads the flow's code and asks AWS (Batch queues, credentials), so it belongs to ``plan``. The other flows
    compile as in ``plan``, beside one-step stand-ins of the Metaflow flows with their manifest schedule.
    ``workspace`` keeps the compiles (the opened backend's); without one, each compile has a workspace of its
    own, removed when it returns (nothing can upload a package without an opened backend).
    """

    def __init__(
        self,
        base: Compiler,
        on_packages: Callable[[set[Address]], None] | None = None,
        *,
        offline: bool = False,
        workspace: MetaflowWorkspace | None = None,
    ) -> None:
        self.base = base
        self.on_packages = on_packages
        self.offline = offline
        self.workspace = workspace

    def compile(self, context: CompileContext) -> list[Resource]:
        resources = self._compile(context)
        if self.on_packages is not None:
            self.on_packages({r.address for r in resources if r.address.kind == CODE_PACKAGE})
        return resources

    def schedule_facts(self, kind: str, body: Mapping[str, Any] | None) -> ScheduleFacts | None:
        """Metaflow's schedules are the base orchestrator's objects (a CronWorkflow, a rule)."""
        return self.base.schedule_facts(kind, body)

    def _compile(self, context: CompileContext) -> list[Resource]:
        flows = [f for f in context.manifest.flows_on(context.backend.name) if f.metaflow is not None]
        if not flows:
            return self.base.compile(context)
        settings = settings_for(context.backend, Path(context.manifest.path).resolve().parent)
        static = sink_problems({f.name: f for f in flows}, settings.target)
        if self.offline:
            if static:
                raise ManifestError(static)
            stand_ins = {
                f.name: stand_in(f, settings.image, schedule=f.schedule, triggers=(), parameters={}) for f in flows
            }
            return self.base.compile(dataclasses.replace(context, manifest=with_flows(context.manifest, stand_ins)))
        if self.workspace is not None:
            return self._compiled(context, flows, settings, static, self.workspace)
        with MetaflowWorkspace() as workspace:
            return self._compiled(context, flows, settings, static, workspace)

    def _compiled(
        self,
        context: CompileContext,
        flows: list[Flow],
        settings: MetaflowSettings,
        static: list[Problem],
        workspace: MetaflowWorkspace,
    ) -> list[Resource]:
        prefix = context.backend.stepfunctions.name_prefix if context.backend.stepfunctions else ""
        try:
            compiled = compile_flows(context.manifest, flows, settings, workspace, name_prefix=prefix)
        except ManifestError as exc:  # what validate reported belongs to plan's answer too
            raise ManifestError(exc.problems + [p for p in static if p not in exc.problems], hint=exc.hint) from None
        if settings.target == "argo":
            from backends.metaflow.argo import compile_argo

            return compile_argo(context, self.base, compiled, settings)
        from backends.metaflow.stepfunctions import compile_stepfunctions

        return compile_stepfunctions(context, self.base, compiled, settings)


class _Reader(Reader):
    def __init__(self, inner: Reader, store: PackageStore) -> None:
        self.inner = inner
        self.store = store

    def close(self) -> None:
        self.inner.close()

    def prefetch(self, scope: Scope) -> None:
        self.inner.prefetch(scope)

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        packages = [r for r in desired if r.address.kind == CODE_PACKAGE]
        live = self.inner.read(scope, [r for r in desired if r.address.kind != CODE_PACKAGE])
        calls = dict(live.calls)
        for resource in packages:
            version = self.store.head(resource.body["url"])
            calls["s3:HeadObject"] = calls.get("s3:HeadObject", 0) + 1
            if version is not None:
                live.owned[resource.address] = LiveResource(
                    resource.address,
                    dict(resource.body),
                    version,
                    owner=Owner(scope.project, scope.branch, resource.flow),
                )
        live.calls = calls
        return live


class _Writer(Writer):
    def __init__(self, inner: Writer, store: PackageStore, dry_run: bool) -> None:
        self.inner = inner
        self.store = store
        self.dry_run = dry_run

    def create(self, resource: Resource) -> LiveResource | None:
        if resource.address.kind != CODE_PACKAGE:
            return self.inner.create(resource)
        if self.dry_run:
            return None
        version = self.store.upload(str(resource.body["url"]), str(resource.body["sha"]))
        return LiveResource(resource.address, dict(resource.body), version)

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        if resource.address.kind != CODE_PACKAGE:
            return self.inner.update(resource, live)
        return live  # content-addressed: an existing package is already what is wanted

    def delete(self, live: LiveResource) -> None:
        if live.address.kind != CODE_PACKAGE:
            self.inner.delete(live)

    def replace(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        if resource.address.kind != CODE_PACKAGE:
            return self.inner.replace(resource, live)
        return live


class _Inventory:
    """The wrapped inventory, holding packages only while they are wanted (the last compile's)."""

    def __init__(self, inner: Inventory, wanted: Callable[[], set[Address] | None]) -> None:
        self.inner = inner
        self.wanted = wanted

    def _strip(self, state: InventoryState) -> InventoryState:
        wanted = self.wanted()
        if wanted is None:
            return state
        return state.with_entries({a: e for a, e in state.entries.items() if a.kind != CODE_PACKAGE or a in wanted})

    def load(self) -> InventoryState:
        return self._strip(self.inner.load())

    def save(self, state: InventoryState) -> InventoryState:
        return self.inner.save(self._strip(state))


class MetaflowBackend(Backend):
    """See the module docstring: the wrapped backend, with Metaflow's flows and code packages added."""

    def __init__(
        self,
        inner: Backend,
        spec: BackendSpec,
        manifest_dir: Path,
        compiler: Callable[[Callable[[set[Address]], None], MetaflowWorkspace], Compiler],
        workspace: MetaflowWorkspace | None = None,
    ) -> None:
        """``compiler`` composes the compiler (:func:`backends.registry.composed_compiler`) around the hook
        that tells this backend's inventory which code packages the last compile wanted, and this backend's
        workspace (a new one unless ``workspace`` is given; :meth:`close` removes it either way)."""
        self.inner = inner
        self._compiler = compiler
        self.spec = spec
        self.capabilities = inner.capabilities
        self.settings = settings_for(spec, manifest_dir)
        self.workspace = workspace if workspace is not None else MetaflowWorkspace()
        self.store = PackageStore(self.settings, self.workspace)
        self.packages: set[Address] | None = None

    def _wanted(self, addresses: set[Address]) -> None:
        self.packages = addresses

    def compiler(self) -> Compiler:
        return self._compiler(self._wanted, self.workspace)

    def close(self) -> None:
        """Remove the workspace (compiled flows, packages on disk), then close the wrapped backend."""
        try:
            self.workspace.close()
        finally:
            self.inner.close()

    def reader(self) -> Reader:
        return _Reader(self.inner.reader(), self.store)

    def writer(self, dry_run: bool = False) -> Writer:
        return _Writer(self.inner.writer(dry_run), self.store, dry_run)

    def inventory(self, scope: Scope) -> Inventory:
        return _Inventory(self.inner.inventory(scope), lambda: self.packages)

    def lock(self, scope: Scope) -> Lock:
        return self.inner.lock(scope)

    def describe(self) -> str:
        return f"{self.inner.describe()}; Metaflow code packages in {self.settings.datastore_root}"

    def warnings(self) -> Sequence[str]:
        return self.inner.warnings()

    def leftovers(self) -> Sequence[str]:
        return self.inner.leftovers()

    def clean_leftovers(self) -> Sequence[str]:
        return self.inner.clean_leftovers()

    def operator(self) -> Operator:
        return self.inner.operator()
