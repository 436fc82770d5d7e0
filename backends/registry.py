"""The composition of backends: opening them and composing their compilers, importing each SDK only when used.

``flowplan --help`` must start fast and a files-only user must never need a
cloud SDK to import, so every backend module is imported lazily here.

A backend's compiler is composed here and nowhere else: the compiler its
``renders`` names, wrapped in the files backend's sensitive-value guard for
``type: files`` and in the Metaflow compiler for a backend with a
``metaflow:`` block. ``plan`` gets it through the opened backend;
``validate`` gets it from :func:`composed_compiler` without opening anything
(no SDK client, no network), so both run the same checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.contract import Backend, Compiler, Scope
from planner.errors import BackendError
from planner.manifest import Backend as BackendSpec
from planner.resources import Address, Provenance

if TYPE_CHECKING:
    from backends.metaflow.compile import MetaflowWorkspace

__all__ = ["OpenOptions", "compiler_for", "composed_compiler", "open_backend"]


@dataclass(frozen=True)
class OpenOptions:
    """How to reach backends beyond what the manifest says (CLI flags, tests)."""

    manifest_dir: Path
    scope: Scope
    provenance: Provenance
    extra: dict[str, Any] = field(default_factory=dict)


def compiler_for(renders: str) -> Compiler:
    """The orchestrator's own compiler: what ``renders: argo`` or ``renders: stepfunctions`` names."""
    if renders == "argo":
        from backends.argo.compile import ArgoCompiler

        return ArgoCompiler()
    if renders == "stepfunctions":
        from backends.stepfunctions.compile import StepFunctionsCompiler

        return StepFunctionsCompiler()
    raise BackendError(f"no compiler renders {renders!r}")


def _type_compiler(spec: BackendSpec) -> Compiler:
    """The compiler of the backend's type, before any Metaflow wrapping."""
    if spec.type == "files":
        from backends.files import SensitiveGuard

        return SensitiveGuard(compiler_for(spec.renders))
    if spec.type in ("argo", "stepfunctions"):
        return compiler_for(spec.type)
    raise BackendError(f"unknown backend type {spec.type!r}")


def composed_compiler(
    spec: BackendSpec,
    *,
    offline: bool = False,
    on_packages: Callable[[set[Address]], None] | None = None,
    workspace: MetaflowWorkspace | None = None,
) -> Compiler:
    """The backend's whole compiler, without opening the backend.

    ``offline`` leaves out what needs more than the manifest (Metaflow's own compile reads code and asks
    AWS): what ``validate`` runs. ``on_packages`` hears which Metaflow code packages a compile wants;
    ``workspace`` keeps Metaflow's compiles (the opened backend's).
    """
    base = _type_compiler(spec)
    if "metaflow" not in spec.settings:
        return base
    from backends.metaflow.backend import MetaflowCompiler

    return MetaflowCompiler(base, on_packages, offline=offline, workspace=workspace)


def open_backend(spec: BackendSpec, options: OpenOptions) -> Backend:
    backend = _open(spec, options)
    if "metaflow" in spec.settings:  # Metaflow flows: compiled by Metaflow, code packages uploaded at apply
        from backends.metaflow.backend import MetaflowBackend

        def compiler(hook: Callable[[set[Address]], None], workspace: MetaflowWorkspace) -> Compiler:
            return composed_compiler(spec, on_packages=hook, workspace=workspace)

        return MetaflowBackend(backend, spec, options.manifest_dir, compiler)
    return backend


def _open(spec: BackendSpec, options: OpenOptions) -> Backend:
    scope = Scope(spec.name, options.scope.project, options.scope.branch)
    provenance = options.provenance.markers()
    if spec.type == "files":
        from backends.files import FilesBackend

        return FilesBackend(spec, options.manifest_dir, scope, provenance, _type_compiler(spec))
    if spec.type == "argo":
        from backends.argo.backend import ArgoBackend

        return ArgoBackend(spec, scope, options.extra)  # type: ignore[no-any-return]
    if spec.type == "stepfunctions":
        from backends.stepfunctions.backend import StepFunctionsBackend

        return StepFunctionsBackend(spec, scope, options.extra)  # type: ignore[no-any-return]
    raise BackendError(f"unknown backend type {spec.type!r}")
