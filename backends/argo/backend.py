"""The ``type: argo`` backend: Argo Workflows and Argo Events objects in a live Kubernetes cluster.

``ArgoBackend(spec, scope, extra)`` is what :func:`backends.registry.open_backend`
opens. It wires one :class:`~backends.argo.client.Connection` (kubeconfig or
in-cluster config, built on first use) into the reader, writer, inventory and
lock, which all share its ApiClient and connection pool.

Settings (``backends.NAME`` in flows.yaml): ``kubeconfig`` (default
``$KUBECONFIG``, then ``~/.kube/config``; a relative path is read from the
manifest's directory), ``context`` (default: the kubeconfig's current
context), ``in_cluster`` (the pod's service account; detected by itself when
no kubeconfig exists and a service-account token is mounted), ``verify_tls``
(default true; false warns on every run and shows in the plan's target line),
and the ``argo:`` block shared with the files backend (namespaces, event bus…).

``extra`` (tests, benchmarks; not settable from flows.yaml) may hold
``retry`` (a :class:`~backends.argo.client.RetryPolicy`), ``timeout``
(connect, read seconds), ``kubeconfig``/``context`` overrides,
``inventory_shard_bytes``, and for the reader's second process
(:mod:`backends.argo.list_scan`) ``list_child_from`` (inventory size) and
``list_child_command``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends.argo import list_scan
from backends.argo.client import DEFAULT_TIMEOUT, ClusterSettings, Connection, Kube
from backends.argo.inventory import ConfigMapInventory
from backends.argo.lock import LeaseLock
from backends.argo.operate import ArgoOperator
from backends.argo.reader import ArgoReader
from backends.argo.writer import ArgoWriter
from planner.contract import Backend, Capabilities, Compiler, Scope
from planner.errors import BackendError
from planner.manifest import ArgoSettings
from planner.manifest import Backend as BackendSpec
from planner.resources import Address

__all__ = ["ArgoBackend"]


class ArgoBackend(Backend):
    """A ``type: argo`` backend opened for one manifest (see the module docstring)."""

    capabilities = Capabilities(operate=True, replace_in_place=True)

    def __init__(self, spec: BackendSpec, scope: Scope, extra: Mapping[str, Any] | None = None) -> None:
        if spec.argo is None:
            raise BackendError(f"backend {spec.name!r} has no argo: settings block")
        extra = dict(extra or {})
        self.spec = spec
        self.scope = scope
        self.argo: ArgoSettings = spec.argo
        settings = dict(spec.settings)
        for key in ("kubeconfig", "context", "in_cluster", "verify_tls"):
            if key in extra:
                settings[key] = extra[key]
        base_dir = Path(spec.loc.file).parent if spec.loc.file and not spec.loc.file.startswith("<") else Path()
        self.connection = Connection(ClusterSettings.from_settings(spec.name, settings, base_dir))
        self.kube = Kube(
            self.connection,
            retry=extra.get("retry"),
            timeout=tuple(extra.get("timeout") or DEFAULT_TIMEOUT),  # type: ignore[arg-type]
        )
        self.shard_bytes: int | None = extra.get("inventory_shard_bytes")
        self.list_child_from: int | None = extra.get("list_child_from")
        self.list_child_command: tuple[str, ...] = tuple(extra.get("list_child_command") or list_scan.COMMAND)
        #: Readers handed out, so :meth:`close` stops a child listing one of them left running.
        self._readers: weakref.WeakSet[ArgoReader] = weakref.WeakSet()
        self._known: dict[Scope, set[Address]] = {}
        self._known_lock = threading.Lock()

    # -- the Backend protocol ------------------------------------------------------------

    def compiler(self) -> Compiler:
        from backends.argo.compile import ArgoCompiler

        return ArgoCompiler()

    def reader(self) -> ArgoReader:
        reader = ArgoReader(
            self.kube,
            self.argo,
            self._remembered,
            child_from=self.list_child_from,
            child_command=self.list_child_command,
        )
        self._readers.add(reader)
        return reader

    def writer(self, dry_run: bool = False) -> ArgoWriter:
        return ArgoWriter(self.kube, self.spec.name, dry_run=dry_run)

    def inventory(self, scope: Scope) -> ConfigMapInventory:
        return ConfigMapInventory(
            self.kube, scope, self.argo.namespace, on_load=self._remember, shard_bytes=self.shard_bytes
        )

    def lock(self, scope: Scope) -> LeaseLock:
        return LeaseLock(self.kube, scope, self.argo.namespace, self.describe)

    def describe(self) -> str:
        where = f"{self.connection.describe()}, namespace {self.argo.namespace}"
        if self.argo.sensor_namespace != self.argo.namespace:
            where += f" (sensors in {self.argo.sensor_namespace})"
        return where

    def warnings(self) -> tuple[str, ...]:
        """What the plan should say about this backend's transport."""
        ignored = self.connection.settings.warnings()
        if not self.connection.settings.verify_tls:
            return (
                *ignored,
                f"backend {self.spec.name!r}: verify_tls is false, so the API server's TLS certificate is not "
                "checked; anyone on the network path can read and change what flowplan sends",
            )
        return ignored

    def operator(self) -> ArgoOperator:
        """Runs, trigger plumbing, manual runs and branch listings (see :mod:`backends.argo.operate`)."""
        return ArgoOperator(self.kube, self.argo, self.spec.name)

    def close(self) -> None:
        """Stop what the readers still run, then drop the connection pool."""
        for reader in list(self._readers):
            reader.close()
        self.connection.close()

    # -- what the inventory told the reader ------------------------------------------------

    def _remember(self, scope: Scope, addresses: set[Address]) -> None:
        """The inventory's addresses, so the reader also lists kinds and namespaces only the inventory knows."""
        with self._known_lock:
            self._known[scope] = set(addresses)

    def _remembered(self, scope: Scope) -> set[Address] | None:
        with self._known_lock:
            known = self._known.get(scope)
            return set(known) if known is not None else None
