"""Secrets known to this process, scrubbed from everything the CLI prints (kept import-light)."""

from __future__ import annotations

import sys

#: Filled as manifests load; every message the CLI prints is scrubbed of these.
SECRETS: set[str] = set()


def _known() -> set[str]:
    """The manifest's sensitive values, and the credentials backends loaded (if a backend module is loaded)."""
    base = sys.modules.get("planner.contract")
    return SECRETS | set(getattr(base, "CREDENTIALS", ()))


def scrub(text: str) -> str:
    for secret in sorted(_known(), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "(sensitive)")
    return text
