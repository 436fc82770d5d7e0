"""Returning to a recorded revision: its applied bodies become the desired state of a normal plan.

A rollback is not a special write path. The revision's bodies (kept for the last ten applies) are
turned back into :class:`~planner.resources.Resource` objects and handed to
:func:`~planner.building.build_plan` through :class:`RollbackBackend`, a backend whose compiler
returns them. Everything else — reading live state, three-way classification, the guards
(protected flows, the delete threshold), ordering, the lock, planning again under the lock, the
inventory bookkeeping and the new revision — is the ordinary plan and apply, so a rollback is as
reviewable as any other change.

What the bodies do not record is filled in here:

- **Plan metadata** (volatile, replace and sensitive pointers, dependencies, the owning flow, the
  switch of a schedule) comes from compiling the *current* manifest where the address still
  exists, else from another resource of the same kind, else from the body itself: volatile
  pointers are wherever flowplan's provenance and spec-hash markers sit, dependencies are the
  other recorded objects a body names whose kind comes earlier in the apply order.
- **Sensitive values** were recorded as ``(sensitive sha256:<16 hex>)``. A value is put back only
  when the manifest (with the vars given now) or the deployed object holds a value with that
  hash; otherwise the rollback refuses and says which value it cannot restore.
- **Provenance markers** are restamped: flowplan's version of now, with the revision's manifest
  digest and commit, because that is the manifest the objects match again.

Pure apart from the optional ``live`` callback, which reads the deployed bodies only when a
sensitive value cannot be found in the manifest.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from planner.contract import (
    Backend,
    CompileContext,
    Compiler,
    Inventory,
    Lock,
    Operator,
    Reader,
    Revision,
    RollbackWriter,
    ScheduleFacts,
    Scope,
    Writer,
)
from planner.errors import PlanError
from planner.graph import kind_ranks
from planner.history import decode_bodies, flow_of_body
from planner.resources import (
    PROTECT_KEY,
    PROVENANCE_KEYS,
    SPEC_HASH_KEY,
    Address,
    Provenance,
    Resource,
    get_pointer,
    join_pointer,
    set_pointer,
    split_pointer,
)

__all__ = ["RollbackBackend", "placeholders", "restore_resources", "sensitive_digest"]

#: How :mod:`planner.applying.revision` records a sensitive value in a revision's bodies.
PLACEHOLDER = re.compile(r"^\(sensitive sha256:([0-9a-f]{16})\)$")
_MARKER_KEYS = frozenset({SPEC_HASH_KEY, *PROVENANCE_KEYS})
_NAME_CHARS = "A-Za-z0-9_.-"

#: Reads deployed bodies by address (only called when a sensitive value is not in the manifest).
LiveBodies = Callable[[Sequence[Address]], Mapping[Address, Mapping[str, Any]]]


def sensitive_digest(value: Any) -> str:
    """The 16 hex digits a revision keeps of a sensitive value (the same function the applier uses)."""
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def placeholders(body: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str, str]]:
    """``[(pointer, digest)]`` of every recorded sensitive value in ``body``, in document order."""
    found: list[tuple[str, str]] = []
    if isinstance(body, str):
        match = PLACEHOLDER.fullmatch(body)
        if match:
            found.append((join_pointer(path), match.group(1)))
    elif isinstance(body, dict):
        for key, value in body.items():
            found.extend(placeholders(value, (*path, key)))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            found.extend(placeholders(value, (*path, index)))
    return found


def _marker_pointers(body: Any, path: tuple[str | int, ...] = (), depth: int = 0) -> list[str]:
    """Pointers of flowplan's spec-hash and provenance markers, wherever the backend keeps them."""
    found: list[str] = []
    if depth > 3 or not isinstance(body, dict):
        return found
    for key, value in body.items():
        if key in _MARKER_KEYS and isinstance(value, str):
            found.append(join_pointer((*path, key)))
        elif isinstance(value, dict):
            found.extend(_marker_pointers(value, (*path, key), depth + 1))
    return found


def _strings(body: Any) -> list[str]:
    if isinstance(body, str):
        return [body]
    if isinstance(body, dict):
        return [s for value in body.values() for s in _strings(value)]
    if isinstance(body, list):
        return [s for value in body for s in _strings(value)]
    return []


def _names(body: Mapping[str, Any], name: str) -> bool:
    """True when some string of ``body`` names ``name`` as a whole word (``x-1`` does not name ``x``)."""
    pattern = re.compile(rf"(?<![{_NAME_CHARS}]){re.escape(name)}(?![{_NAME_CHARS}])")
    return any(pattern.search(text) for text in _strings(body))


def _marker(body: Mapping[str, Any], key: str) -> str | None:
    metadata = body.get("metadata")
    for source in (metadata.get("labels") if isinstance(metadata, dict) else None, body.get("tags"), body.get("Tags")):
        if isinstance(source, dict) and isinstance(source.get(key), str):
            return str(source[key])
    return None


def _restore_sensitive(
    address: Address,
    body: dict[str, Any],
    wanted: Sequence[tuple[str, str]],
    current: Resource | None,
    live: Mapping[str, Any] | None,
) -> list[str]:
    """Put back each recorded sensitive value whose hash the manifest or the live object matches.

    Returns the pointers that could not be restored.
    """
    missing = []
    for pointer, digest_text in wanted:
        candidates = [source for source in (current.body if current else None, live) if source is not None]
        for source in candidates:
            value = get_pointer(source, pointer, None)
            if value is not None and sensitive_digest(value) == digest_text:
                set_pointer(body, pointer, copy.deepcopy(value))
                break
        else:
            missing.append(pointer)
    return missing


def restore_resources(
    revision: Revision,
    backend: str,
    current: Sequence[Resource],
    provenance: Provenance,
    live: LiveBodies | None = None,
) -> list[Resource]:
    """The resources ``revision`` applied on ``backend``, ready to be planned as the desired state.

    ``current`` is what the manifest compiles to now (for plan metadata and sensitive values);
    ``provenance`` is stamped on the markers. Raises :class:`PlanError` when a sensitive value the
    revision applied is in neither the manifest nor the deployed object.
    """
    bodies = {Address.parse(a): copy.deepcopy(b) for a, b in decode_bodies(revision).items()}
    bodies = {a: b for a, b in bodies.items() if a.backend == backend}
    by_address = {r.address: r for r in current}
    by_kind: dict[str, Resource] = {}
    for resource in sorted(current, key=lambda r: r.address.sort_key()):
        by_kind.setdefault(resource.address.kind, resource)
    ranks = kind_ranks(current)

    wanted = {a: placeholders(b) for a, b in bodies.items()}
    unresolved: dict[Address, list[str]] = {}
    need_live: list[Address] = []
    for address, pointers in wanted.items():
        if pointers and _restore_sensitive(address, bodies[address], pointers, by_address.get(address), None):
            need_live.append(address)
    if need_live:
        found = live(need_live) if live is not None else {}
        for address in need_live:
            missing = _restore_sensitive(
                address, bodies[address], placeholders(bodies[address]), None, found.get(address)
            )
            if missing:
                unresolved[address] = missing
    if unresolved:
        ordered = sorted(unresolved.items(), key=lambda kv: str(kv[0]))
        listing = "\n".join(f"  {a} at {', '.join(p)}" for a, p in ordered)
        raise PlanError(
            f"revision {revision.number} applied sensitive values that neither the manifest nor the deployed "
            f"objects hold any more, and flowplan keeps only their hashes:\n{listing}",
            hint=f"give the values revision {revision.number} used (--var NAME=VALUE or a var file) and roll back "
            "again, or roll back only the flows that do not use them (flowplan rollback --to N FLOW...)",
        )

    markers = provenance.markers()
    resources: list[Resource] = []
    for address, body in sorted(bodies.items(), key=lambda kv: kv[0].sort_key()):
        now = by_address.get(address)
        like = now or by_kind.get(address.kind)
        volatile = tuple(now.volatile_paths) if now else tuple(_marker_pointers(body))
        for pointer in volatile:
            key = split_pointer(pointer)[-1] if pointer else ""
            if key in markers and get_pointer(body, pointer, None) is not None:
                set_pointer(body, pointer, markers[key])
        depends = {d for d in (now.depends_on if now else ()) if d in bodies}
        for other in bodies:
            earlier = ranks.get((other.backend, other.kind))
            later = ranks.get((address.backend, address.kind))
            before = earlier is not None and later is not None and earlier < later
            if other != address and before and _names(body, other.name):
                depends.add(other)
        flow = now.flow if now else flow_of_body(body)
        resources.append(
            Resource(
                address=address,
                body=body,
                depends_on=tuple(sorted(depends, key=Address.sort_key)),
                flow=flow,
                volatile_paths=volatile,
                replace_paths=like.replace_paths if like else (),
                sensitive_paths=tuple(p for p, _ in wanted[address]),
                notes=(f"as applied in revision {revision.number}",) if now is None else (),
                protect=(now.protect if now else _marker(body, PROTECT_KEY) == "true"),
                fires=like.fires if like else False,
                toggle=like.toggle if like else None,
            )
        )
    return _flows_from_dependencies(resources)


def _flows_from_dependencies(resources: list[Resource]) -> list[Resource]:
    """Objects without a flow marker (Scheduler schedules) belong to the flow of what they start."""
    flows = {r.address: r.flow for r in resources}
    result = []
    for resource in resources:
        if resource.flow is None:
            owner = next((flows[d] for d in resource.depends_on if flows.get(d)), None)
            if owner is not None:
                resource = replace(resource, flow=owner)
        result.append(resource)
    return result


class _RevisionCompiler(Compiler):
    """A compiler that returns a revision's resources: how a rollback reuses the planner unchanged."""

    def __init__(self, resources: Sequence[Resource], inner: Compiler) -> None:
        self.resources = list(resources)
        self.inner = inner

    def compile(self, context: CompileContext) -> list[Resource]:
        return list(self.resources)

    def schedule_facts(self, kind: str, body: Mapping[str, Any] | None) -> ScheduleFacts | None:
        """The real backend's reading: the revision's bodies are that backend's objects."""
        return self.inner.schedule_facts(kind, body)


class RollbackBackend(Backend):
    """A backend whose desired state is a recorded revision; everything else is the real backend's.

    ``writer`` is the backend operator's rollback writer when it has one (Step Functions moves its
    ``live`` alias back to the version published for the revision instead of publishing a copy);
    :meth:`restored` gathers what those writers moved back, for the rollback's summary.
    """

    def __init__(
        self,
        inner: Backend,
        resources: Sequence[Resource],
        writer: Callable[[bool], RollbackWriter | None] | None = None,
    ) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.capabilities = inner.capabilities
        self.resources = list(resources)
        self._writer = writer
        self._rollback_writers: list[RollbackWriter] = []

    def compiler(self) -> Compiler:
        return _RevisionCompiler(self.resources, self.inner.compiler())

    def reader(self) -> Reader:
        return self.inner.reader()

    def writer(self, dry_run: bool = False) -> Writer:
        special = self._writer(dry_run) if self._writer is not None else None
        if special is None:
            return self.inner.writer(dry_run)
        self._rollback_writers.append(special)
        return special

    def restored(self) -> list[tuple[str, str]]:
        """``(object, version)`` for each object the rollback writers moved back to a published version."""
        return [pair for writer in self._rollback_writers for pair in writer.restored()]

    def inventory(self, scope: Scope) -> Inventory:
        return self.inner.inventory(scope)

    def lock(self, scope: Scope) -> Lock:
        return self.inner.lock(scope)

    def describe(self) -> str:
        return self.inner.describe()

    def warnings(self) -> Sequence[str]:
        return self.inner.warnings()

    def leftovers(self) -> Sequence[str]:
        return self.inner.leftovers()

    def clean_leftovers(self) -> Sequence[str]:
        return self.inner.clean_leftovers()

    def operator(self) -> Operator:
        return self.inner.operator()
