"""``flowplan validate``: the manifest's own checks, then every backend's compiler, as ``plan`` runs them.

``plan`` compiles each backend before it reads anything live, and a compiler
refuses what its orchestrator cannot take (a sensitive value bound for a git
directory, a Scheduler target without ``events_role_arn``, sinks on a
Metaflow flow). Running the same composed compilers here — built by the
registry without opening a backend, so no SDK client and no network — means a
manifest that validates never fails ``plan`` on a static check, and both
commands word a problem the same way.
"""

from __future__ import annotations

from backends.registry import composed_compiler
from planner import heap
from planner.contract import CompileContext
from planner.errors import ManifestError, PlanError, Problem
from planner.manifest import Manifest
from planner.resources import Address, Provenance

__all__ = ["check_backends"]


def check_backends(manifest: Manifest, provenance: Provenance) -> None:
    """Compile every backend offline; raise what ``plan`` would raise before reading anything live.

    Problems of every backend are gathered into one :class:`ManifestError`, in the order ``plan``
    gives them; two resources at one address are a :class:`PlanError`, as in ``plan``.
    """
    problems: list[Problem] = []
    for name in sorted(manifest.backends):
        spec = manifest.backends[name]
        try:
            with heap.paused():  # allocation-heavy, as in plan: ~30,000 bodies at 10,000 flows
                resources = composed_compiler(spec, offline=True).compile(CompileContext(manifest, spec, provenance))
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        seen: set[Address] = set()
        for resource in resources:
            if resource.address in seen:
                raise PlanError(f"two resources compile to the same address {resource.address}")
            seen.add(resource.address)
    if problems:
        raise ManifestError(problems)
