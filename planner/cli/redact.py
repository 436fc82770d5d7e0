"""Secrets known to this process, scrubbed from everything the CLI prints (kept import-light)."""

from __future__ import annotations

#: Filled as manifests load; every message the CLI prints is scrubbed of these.
SECRETS: set[str] = set()


def scrub(text: str) -> str:
    for secret in sorted(SECRETS, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "(sensitive)")
    return text
