"""Secrets known to this process, scrubbed from everything the CLI prints (kept import-light)."""

from __future__ import annotations

import sys

from planner.secrets import scrub as scrub_secrets

#: Filled as manifests load; every message the CLI prints is scrubbed of these.
SECRETS: set[str] = set()


def _known() -> set[str]:
    """The manifest's sensitive values, and the credentials backends loaded (if a backend module is loaded)."""
    base = sys.modules.get("planner.contract")
    return SECRETS | set(getattr(base, "CREDENTIALS", ()))


def scrub(text: str) -> str:
    """``text`` with every known secret masked, in every spelling a rendering may give it."""
    return scrub_secrets(text, _known())
