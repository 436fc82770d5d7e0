"""Argo Workflows + Argo Events backend.

``compile`` (with ``workflow``, ``events``, ``filters``, ``cron`` and ``names``)
turns a manifest into desired objects and is pure; the live modules that talk
to Kubernetes sit beside it. This package stays import-light: nothing is
imported until used, so ``import backends.argo`` never loads the kubernetes
client (the files backend and the compiler tests need none of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.argo.compile import ArgoCompiler
    from backends.argo.names import relative_path

__all__ = ["ArgoCompiler", "relative_path"]

_LAZY = {"ArgoCompiler": "backends.argo.compile", "relative_path": "backends.argo.names"}


def __getattr__(name: str) -> Any:
    """Load ``ArgoCompiler`` and ``relative_path`` on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
