"""Opening backends and compilers by type, importing each SDK only when it is used.

``flowplan --help`` must start fast and a files-only user must never need a
cloud SDK to import, so every backend module is imported lazily here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.contract import Backend, Compiler, Scope
from planner.errors import BackendError
from planner.manifest import Backend as BackendSpec
from planner.resources import Provenance


@dataclass(frozen=True)
class OpenOptions:
    """How to reach backends beyond what the manifest says (CLI flags, tests)."""

    manifest_dir: Path
    scope: Scope
    provenance: Provenance
    extra: dict[str, Any] = field(default_factory=dict)


def compiler_for(renders: str) -> Compiler:
    if renders == "argo":
        from backends.argo.compile import ArgoCompiler

        return ArgoCompiler()
    if renders == "stepfunctions":
        from backends.stepfunctions.compile import StepFunctionsCompiler

        return StepFunctionsCompiler()
    raise BackendError(f"no compiler renders {renders!r}")


def open_backend(spec: BackendSpec, options: OpenOptions) -> Backend:
    backend = _open(spec, options)
    if "metaflow" in spec.settings:  # Metaflow flows: compiled by Metaflow, code packages uploaded at apply
        from backends.metaflow.backend import wrap

        return wrap(backend, spec, options.manifest_dir)
    return backend


def _open(spec: BackendSpec, options: OpenOptions) -> Backend:
    scope = Scope(spec.name, options.scope.project, options.scope.branch)
    provenance = options.provenance.markers()
    if spec.type == "files":
        from backends.files import FilesBackend

        return FilesBackend(spec, options.manifest_dir, scope, provenance)
    if spec.type == "argo":
        from backends.argo.backend import ArgoBackend

        return ArgoBackend(spec, scope, options.extra)  # type: ignore[no-any-return]
    if spec.type == "stepfunctions":
        from backends.stepfunctions.backend import StepFunctionsBackend

        return StepFunctionsBackend(spec, scope, options.extra)  # type: ignore[no-any-return]
    raise BackendError(f"unknown backend type {spec.type!r}")
