"""Secrets known to this process, scrubbed from everything the CLI prints (kept import-light)."""

from __future__ import annotations

import sys

from planner.render.escape import escape_invisible
from planner.secrets import scrub as scrub_secrets

#: Filled as manifests load; every message the CLI prints is scrubbed of these.
SECRETS: set[str] = set()


def _known() -> set[str]:
    """The manifest's sensitive values, and the credentials backends loaded (if a backend module is loaded)."""
    base = sys.modules.get("planner.contract")
    return SECRETS | set(getattr(base, "CREDENTIALS", ()))


def scrub(text: str) -> str:
    """``text`` with every known secret masked, in every spelling a rendering may give it.

    Everything the CLI prints passes here (messages, tracebacks with ``--debug``), so invisible and
    bidirectional characters are shown as ``\\uXXXX`` escapes here too.
    """
    return escape_invisible(scrub_secrets(text, _known()))
