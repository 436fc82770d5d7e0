"""AWS Step Functions backend: state machines, EventBridge Scheduler schedules and rules, Batch, SSM.

``compile`` (with ``asl``, ``patterns``, ``names`` and ``cron``) turns a
manifest into desired resources and is pure; ``reader``, ``writer`` and
``state`` talk to AWS through ``aws`` (boto3). The package stays
import-light: nothing is imported until used, so ``import
backends.stepfunctions`` never loads boto3 (the files backend and the
compiler tests need none of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.stepfunctions.backend import StepFunctionsBackend
    from backends.stepfunctions.compile import StepFunctionsCompiler

__all__ = ["StepFunctionsBackend", "StepFunctionsCompiler"]

_LAZY = {
    "StepFunctionsBackend": "backends.stepfunctions.backend",
    "StepFunctionsCompiler": "backends.stepfunctions.compile",
}


def __getattr__(name: str) -> Any:
    """Load the backend and the compiler on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
