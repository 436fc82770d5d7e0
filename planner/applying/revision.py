"""The revision an apply records: who, when, from which commit and manifest, what changed, and the bodies.

Revisions feed ``flowplan history`` and ``flowplan rollback``. The last
:data:`REVISIONS_WITH_BODIES` keep the applied bodies (sensitive values as
hashes, so a rollback can check a value it is given against them); older ones
keep only their summary, and at most :data:`MAX_REVISIONS` are kept.
"""

from __future__ import annotations

import base64
import datetime
import getpass
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from planner.applying.inventory import InventoryBook
from planner.building import PlanResult
from planner.contract import InventoryState, Revision
from planner.plan import Action, ResourceChange
from planner.resources import Address, Provenance, Resource, canonical_json, get_pointer, set_pointer

REVISIONS_WITH_BODIES = 10
MAX_REVISIONS = 100


def who() -> str:
    """The person or CI identity applying, as history shows it."""
    for key in ("FLOWPLAN_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        return getpass.getuser()
    except Exception:
        return f"uid-{os.getuid()}"


def hashed_sensitive(change: ResourceChange) -> dict[str, Any] | None:
    """``change.after`` with each sensitive value replaced by ``(sensitive sha256:<16 hex>)``."""
    if change.after is None:
        return None
    if not change.sensitive_paths:
        return change.after  # nothing to mask: no copy (a revision of 10,000 flows would copy 30,000 bodies)
    body = json.loads(json.dumps(change.after))
    for pointer in change.sensitive_paths:
        try:
            value = get_pointer(body, pointer)
        except KeyError:
            continue
        digest_text = hashlib.sha256(str(value).encode()).hexdigest()
        set_pointer(body, pointer, f"(sensitive sha256:{digest_text[:16]})")
    return body


def as_change(resource: Resource) -> ResourceChange:
    """A desired resource in the shape :func:`hashed_sensitive` reads."""
    return ResourceChange(
        address=resource.address,
        action=Action.NOOP,
        after=resource.body,
        sensitive_paths=resource.sensitive_paths,
    )


def pack(bodies: Mapping[str, Any]) -> str:
    """``canonical_json(bodies)``, zlib-compressed and base64-encoded, without holding the whole JSON text.

    The same bytes as compressing the text at once; one body's JSON at a time is in memory (the
    revision of a 10,000-flow apply would be a 100 MB string, at the peak of the apply).
    """
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(b"{")]
    for i, key in enumerate(sorted(bodies)):
        text = ("," if i else "") + json.dumps(key, ensure_ascii=False) + ":" + canonical_json(bodies[key])
        chunks.append(compressor.compress(text.encode()))
    chunks.append(compressor.compress(b"}"))
    chunks.append(compressor.flush())
    return base64.b64encode(b"".join(chunks)).decode()


def new_revision(
    result: PlanResult, name: str, number: int, changes: list[ResourceChange], provenance: Provenance
) -> Revision:
    """The revision recording ``changes`` on backend ``name``; a destroy keeps no bodies."""
    summary: dict[str, int] = {}
    for c in changes:
        summary[c.action.value] = summary.get(c.action.value, 0) + 1
    view = result.views[name]
    destroy = result.plan.inputs.mode == "destroy"
    bodies = {str(a): hashed_sensitive(as_change(r)) for a, r in view.desired.items() if not destroy}
    return Revision(
        number=number,
        time=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        who=who(),
        git_commit=provenance.git_commit,
        manifest_digest=provenance.manifest_digest,
        flowplan_version=provenance.flowplan_version,
        summary=summary,
        changes=[{"address": str(c.address), "action": c.action.value} for c in changes],
        bodies=pack(bodies),
    )


def with_revision(state: InventoryState, revision: Revision) -> InventoryState:
    """``state`` with ``revision`` appended, trimmed to the revisions (and bodies) kept."""
    revisions = [*state.revisions, revision]
    trimmed = [
        r if i >= len(revisions) - REVISIONS_WITH_BODIES else replace(r, bodies=None)
        for i, r in enumerate(revisions[-MAX_REVISIONS:])
    ]
    return replace(state, revisions=trimmed)


def record_revision(
    result: PlanResult, book: InventoryBook, provenance: Provenance, succeeded: Iterable[Address]
) -> int | None:
    """Record a revision on each backend where something succeeded; returns the last number recorded."""
    done = set(succeeded)
    number: int | None = None
    for name in book.names:
        changes = [c for c in result.plan.changes if c.address.backend == name and c.address in done]
        if not changes:
            continue
        state = book.states[name]
        number = (state.revisions[-1].number if state.revisions else 0) + 1
        book.store(name, with_revision(state, new_revision(result, name, number, changes, provenance)))
    return number
