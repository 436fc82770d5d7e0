"""The ``type: stepfunctions`` backend, opened for one manifest: compiler, reader, writer, inventory, lock.

Settings come from the manifest's backend block (``profile``, ``endpoint_url``,
``verify_tls`` beside the ``stepfunctions:`` settings). The manifest is the pull
request's: its ``endpoint_url`` (where the signed requests and the operator's
credentials would go) and ``verify_tls: false`` are used only when the operator
sets ``FLOWPLAN_ALLOW_MANIFEST_CONNECTION=1``; otherwise the operator's AWS
configuration wins and the plan says the setting was ignored. ``extra`` (tests,
benchmarks) may override ``endpoint_url``, ``parallelism``, ``max_attempts``,
``connect_timeout``, ``read_timeout`` and ``readback_delay`` (also
``FLOWPLAN_AWS_READBACK_DELAY``, seconds, default 0.5). Nothing talks to
AWS until a reader, writer, inventory or lock is used, and the boto3 session
and clients are made once, on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from backends.stepfunctions.aws import ALLOW_MANIFEST_CONNECTION, Aws, AwsOptions, manifest_connection_allowed
from backends.stepfunctions.compile import StepFunctionsCompiler
from backends.stepfunctions.operate import StepFunctionsOperator
from backends.stepfunctions.reader import StepFunctionsReader
from backends.stepfunctions.state import DynamoInventory, DynamoLock, StateTable
from backends.stepfunctions.writer import StepFunctionsWriter
from planner.contract import Backend, Capabilities, Compiler, Inventory, Lock, Scope
from planner.errors import BackendError
from planner.manifest import Backend as BackendSpec
from planner.manifest import StepFunctionsSettings

__all__ = ["StepFunctionsBackend"]

DEFAULT_PARALLELISM = 8


class StepFunctionsBackend(Backend):
    """A :class:`~planner.contract.Backend` on AWS Step Functions, EventBridge, Batch, SSM and DynamoDB."""

    capabilities = Capabilities(operate=True, replace_in_place=True)

    def __init__(self, spec: BackendSpec, scope: Scope, extra: Mapping[str, Any] | None = None) -> None:
        if spec.stepfunctions is None:
            raise BackendError(f"backend {spec.name!r} has no stepfunctions: settings")
        self.spec = spec
        self.scope = scope
        self.settings: StepFunctionsSettings = spec.stepfunctions
        extra = dict(extra or {})
        manifest_endpoint = spec.settings.get("endpoint_url") or None
        manifest_verify = spec.settings.get("verify_tls", True) is not False
        self.ignored: tuple[str, ...] = ()
        if not manifest_connection_allowed():
            self.ignored = tuple(
                text
                for text, present in (
                    (
                        f"endpoint_url: {manifest_endpoint}",
                        manifest_endpoint is not None and "endpoint_url" not in extra,
                    ),
                    ("verify_tls: false", not manifest_verify),
                )
                if present
            )
            manifest_endpoint, manifest_verify = None, True
        endpoint = extra.get("endpoint_url", manifest_endpoint) or None
        self.parallelism = int(extra.get("parallelism", DEFAULT_PARALLELISM))
        # How long to wait before reading back after an ambiguous write (AWS reads can lag a write briefly).
        self.readback_delay = float(extra.get("readback_delay", os.environ.get("FLOWPLAN_AWS_READBACK_DELAY", 0.5)))
        self.options = AwsOptions(
            backend=spec.name,
            region=self.settings.region,
            profile=spec.settings.get("profile") or None,
            endpoint_url=str(endpoint) if endpoint else None,
            verify_tls=manifest_verify,
            parallelism=self.parallelism,
            connect_timeout=float(extra.get("connect_timeout", 5.0)),
            read_timeout=float(extra.get("read_timeout", 30.0)),
            max_attempts=int(extra["max_attempts"]) if extra.get("max_attempts") else None,
        )
        self.aws = Aws(self.options)
        self.table = StateTable(self.aws, self.settings.inventory_table)

    def compiler(self) -> Compiler:
        return StepFunctionsCompiler()

    def reader(self) -> StepFunctionsReader:
        return StepFunctionsReader(self.aws, self.settings, self.spec.name, self.parallelism)

    def writer(self, dry_run: bool = False) -> StepFunctionsWriter:
        return StepFunctionsWriter(
            self.aws, self.settings, self.scope, self.reader(), dry_run=dry_run, readback_delay=self.readback_delay
        )

    def inventory(self, scope: Scope) -> Inventory:
        return DynamoInventory(self.table, scope)

    def lock(self, scope: Scope) -> Lock:
        return DynamoLock(self.table, scope, f"{scope.project}/{scope.branch} on {self.describe()}")

    def operator(self) -> StepFunctionsOperator:
        """Executions, trigger plumbing, manual runs, branches, alias rollbacks (:mod:`.operate`)."""
        return StepFunctionsOperator(
            self.aws,
            self.settings,
            self.spec.name,
            table=self.table,
            reader=self.reader,
            where=self.describe(),
            parallelism=self.parallelism,
            readback_delay=self.readback_delay,
        )

    def describe(self) -> str:
        text = f"AWS account {self.settings.account_id}, {self.settings.region}"
        if self.options.endpoint_url:
            text += f" (endpoint {self.options.endpoint_url})"
        if not self.options.verify_tls:
            text += " [TLS NOT VERIFIED]"  # the plan's target line says so (the Argo backend's convention)
        return text

    def warnings(self) -> tuple[str, ...]:
        """What the plan should say about this backend's transport (shown once the planner asks for it)."""
        ignored: tuple[str, ...] = ()
        if self.ignored:
            ignored = (
                f"backend {self.spec.name!r}: ignored {', '.join(self.ignored)} from the manifest (the repository does "
                f"not choose where AWS credentials go); using the operator's AWS configuration. To use the manifest's "
                f"settings, the operator sets {ALLOW_MANIFEST_CONNECTION}=1",
            )
        if not self.options.verify_tls:
            return (
                *ignored,
                f"backend {self.spec.name!r}: verify_tls is false, so the endpoint's TLS certificate is not checked; "
                "use this only with a local emulator",
            )
        return ignored
