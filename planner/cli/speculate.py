"""Starting a large Argo deployment's listings before its manifest is loaded.

The listings of a cluster depend on where it is and whose objects to list (the backend's
settings, the project and the branch), not on the flows. Loading a manifest of 10,000 flows
takes about 5 s; listing their 30,000 objects takes the API server about as long. Started
only once the manifest is loaded, the listings were the last thing a plan waited for.

So for a large manifest the CLI first loads a copy cut down to its first lines: everything
but the flows, and the first flow (so it is a valid manifest), with the real loader, vars
and branch. Each argo backend found there gets its listings started in a second process
(:func:`backends.argo.list_scan.speculate`). The reader of the real plan adopts a listing
only when its cluster settings, client settings and scope are exactly its own; anything
else (a cut the loader refuses, a backend that differs) starts nothing or is stopped unused,
and the plan lists as it always does. Nothing here can change what a plan says.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from planner.cli.session import ManifestOptions

#: Smaller manifests load in well under a second: nothing to gain from starting early.
SPECULATE_FROM = 256 * 1024


def first_lines(text: str) -> str | None:
    """The manifest with only its first flow under ``flows:``; None when its layout is not the usual one."""
    from planner.manifest.yamlsplit import flow_start

    found = flow_start(text, 0.0)  # the second flow: where the cut begins
    if found is None:
        return None  # one flow only: the manifest is its own cut
    second, body_end = found
    return text[:second] + text[body_end:]


@contextlib.contextmanager
def speculative_listings(options: ManifestOptions) -> Iterator[None]:
    """Within the block, readers may adopt listings started here; unadopted ones stop at its end."""
    from backends.argo import list_scan

    with contextlib.suppress(Exception):  # a head start only: the plan itself reports every problem
        _start(options)
    try:
        yield
    finally:
        list_scan.abandon_speculation()


def _start(options: ManifestOptions) -> None:
    if os.path.getsize(options.file) < SPECULATE_FROM:
        return
    from planner.manifest.yamlsource import read_limited

    cut = first_lines(read_limited(options.file).decode("utf-8-sig"))
    if cut is None:
        return
    from backends.argo import list_scan
    from backends.argo.backend import ArgoBackend
    from backends.base import Scope
    from planner.cli.session import load_options

    manifest = load_options(options, raw=cut.encode())
    for spec in manifest.backends.values():
        if spec.type != "argo":
            continue
        scope = Scope(spec.name, manifest.project, manifest.branch)
        backend = ArgoBackend(spec, scope)
        list_scan.speculate(backend.kube, scope, backend.reader().targets(scope, []))
