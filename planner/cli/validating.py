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
from planner.building.reading import compile_all
from planner.manifest import Manifest
from planner.resources import Provenance

__all__ = ["check_backends"]


def check_backends(manifest: Manifest, provenance: Provenance) -> None:
    """Compile every backend offline; raise what ``plan`` would raise before reading anything live.

    Problems of every backend are gathered into one :class:`ManifestError`, in the order ``plan``
    gives them; two resources at one address are a :class:`PlanError`, as in ``plan``.
    """
    compilers = {name: (spec, composed_compiler(spec, offline=True)) for name, spec in manifest.backends.items()}
    compile_all(manifest, provenance, compilers)
