"""Resource types shared by compilers, backends and the planner.

A :class:`Resource` is what a compiler wants to exist; a
:class:`LiveResource` is what a backend reader found. Both carry a
JSON-ready ``body``; the planner pairs them by :class:`Address` and compares
canonical hashes of their bodies with the *volatile* parts removed
(provenance: flowplan version, manifest digest, git commit; and the spec-hash
marker itself), so that a new commit alone never makes a change.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

# --------------------------------------------------------------------------- markers

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = "flowplan"
PROJECT_KEY = "flowplan.dev/project"
BRANCH_KEY = "flowplan.dev/branch"
FLOW_KEY = "flowplan.dev/flow"
SPEC_HASH_KEY = "flowplan.dev/spec-hash"
LOGICAL_NAME_KEY = "flowplan.dev/logical-name"
VERSION_KEY = "flowplan.dev/version"
MANIFEST_DIGEST_KEY = "flowplan.dev/manifest-digest"
GIT_COMMIT_KEY = "flowplan.dev/git-commit"

#: Marker keys whose values change without the spec changing; never diffed, never hashed.
PROVENANCE_KEYS = (VERSION_KEY, MANIFEST_DIGEST_KEY, GIT_COMMIT_KEY)
#: Present (value "true") on objects of a flow with ``protect: true``: never deleted or replaced.
PROTECT_KEY = "flowplan.dev/protect"


@dataclass(frozen=True, order=True)
class Address:
    """Where a resource lives: ``<backend>.<Kind>.<namespace>/<name>``.

    ``backend`` is the manifest's name for the target, so two clusters never
    collide; ``namespace`` is the Kubernetes namespace or the AWS region.
    """

    backend: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.backend}.{self.kind}.{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> Address:
        """Inverse of ``str()``; raises ``ValueError`` with the expected shape."""
        head, sep, name = text.partition("/")
        parts = head.split(".", 2)
        if not sep or len(parts) != 3 or not all(parts) or not name:
            raise ValueError(f"{text!r} is not an address; addresses look like backend.Kind.namespace/name")
        return cls(parts[0], parts[1], parts[2], name)

    def sort_key(self) -> tuple[str, str, str, str]:
        """Ties in ordering break by kind, then name (then namespace, backend)."""
        return (self.kind, self.name, self.namespace, self.backend)


@dataclass(frozen=True)
class Owner:
    """Who a live resource says it belongs to (from its markers)."""

    project: str
    branch: str
    flow: str | None = None


@dataclass(frozen=True)
class Provenance:
    """Where an apply came from; carried on every object, excluded from every diff."""

    flowplan_version: str
    manifest_digest: str
    git_commit: str | None = None

    def markers(self) -> dict[str, str]:
        result = {VERSION_KEY: self.flowplan_version, MANIFEST_DIGEST_KEY: self.manifest_digest[:16]}
        if self.git_commit:
            result[GIT_COMMIT_KEY] = self.git_commit
        return result


@dataclass(frozen=True)
class Toggle:
    """Where an object that starts runs (a schedule, a rule) is switched on and off, and the two values.

    A move carries an operator's pause over to the new object through it.
    """

    pointer: str
    on: Any
    off: Any


@dataclass(frozen=True)
class Resource:
    """A desired resource, as a compiler produced it.

    ``volatile_paths`` are JSON pointers excluded from hashing and diffing (the
    provenance and spec-hash markers); ``replace_paths`` are pointers whose
    change cannot be made in place; ``sensitive_paths`` point at values that
    are never shown. ``notes`` are display-only remarks for the plan.
    ``fires`` marks objects that start runs (schedules, triggers): a move
    never lets the old and the new one be live at the same time.
    ``sources`` maps body pointers to the manifest positions (``file:line:column``)
    their values came from; display-only, outside every hash and comparison.
    """

    address: Address
    body: dict[str, Any]
    depends_on: tuple[Address, ...] = ()
    flow: str | None = None
    volatile_paths: tuple[str, ...] = ()
    replace_paths: tuple[str, ...] = ()
    sensitive_paths: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    protect: bool = False
    fires: bool = False
    toggle: Toggle | None = None
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)
    #: ``(body, comparison body, digest)`` when the compiler built them anyway (the Argo compiler hashes a
    #: body before stamping its spec-hash marker): exactly ``without(body, volatile_paths)`` and its digest,
    #: for that very body object. A copy with another body (``dataclasses.replace``) computes its own.
    known: tuple[dict[str, Any], dict[str, Any], str] | None = field(
        default=None, repr=False, compare=False, hash=False
    )

    # Computed once per resource: bodies are not changed after a compiler made them, and the planner asks
    # for each of these several times per resource.
    @functools.cached_property
    def comparison_body(self) -> dict[str, Any]:
        """The body without its volatile pointers (shares unchanged parts with ``body``)."""
        if self.known is not None and self.known[0] is self.body:
            return self.known[1]
        return without(self.body, self.volatile_paths)

    @functools.cached_property
    def digest(self) -> str:
        """Full SHA-256 of :attr:`comparison_body`'s canonical JSON (what the planner compares)."""
        if self.known is not None and self.known[0] is self.body:
            return self.known[2]
        return digest(self.comparison_body)

    @property
    def spec_hash(self) -> str:
        return self.digest[:16]


@dataclass(frozen=True)
class FieldManager:
    """Who last wrote part of a live object, and when (Kubernetes managedFields, CloudTrail-like data)."""

    manager: str
    operation: str
    time: str | None = None


@dataclass(frozen=True)
class LiveResource:
    """A resource as a backend reader found it, with server-filled fields already removed.

    ``version`` is the backend's concurrency token (Kubernetes resourceVersion,
    a content hash for files and AWS); ``meta`` holds what writers need for
    preconditions (uid, ARNs) and is never diffed.
    """

    address: Address
    body: dict[str, Any]
    version: str
    owner: Owner | None = None
    spec_hash: str | None = None
    managers: tuple[FieldManager, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    protected: bool = False
    #: The other tool that deployed the object, as the backend recognised it (``Metaflow (flow TrainFlow)``),
    #: so a plan taking it over can say so; None when the backend recognises none.
    made_by: str | None = None

    def owned_by(self, project: str, branch: str) -> bool:
        return self.owner is not None and self.owner.project == project and self.owner.branch == branch


# --------------------------------------------------------------------------- canonical form and hashing


def canonical_bytes(value: Any) -> bytes:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept (as bytes, ready to hash).

    orjson writes the same bytes as ``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` for what bodies hold (strings, 64-bit integers, booleans, null, floats
    from 1e-4 up; a property test checks), three times as fast: every body is hashed at least once
    per plan. What it refuses (integers beyond 64 bits, non-string keys) takes the standard
    library's spelling. Two differences are accepted, both deterministic: floats below 1e-4 are
    written out (``0.00001``, not ``1e-05``), and NaN and infinities become ``null`` where the
    standard library would refuse them (the compilers write parameter values as strings, and JSON
    APIs cannot send them).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_json(value: Any) -> str:
    """:func:`canonical_bytes` as text."""
    return canonical_bytes(value).decode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def spec_hash(body: Mapping[str, Any], excluded: Iterable[str] = ()) -> str:
    """Hash of a body without its excluded (volatile or ignored) pointers; 16 hex digits."""
    return digest(without(body, excluded))[:16]


# --------------------------------------------------------------------------- JSON pointers (RFC 6901)


def split_pointer(pointer: str) -> list[str]:
    return list(_parts(pointer))


@functools.lru_cache(maxsize=4096)
def _parts(pointer: str) -> tuple[str, ...]:
    """The unescaped parts of a pointer; memoised (a plan splits the same few pointers for every resource)."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must start with '/'")
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/"))


def join_pointer(parts: Sequence[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_MISSING = object()


def get_pointer(body: Any, pointer: str, default: Any = _MISSING) -> Any:
    """Value at ``pointer``; ``default`` (or ``KeyError``) when absent."""
    node = body
    for part in _parts(pointer):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            if default is _MISSING:
                raise KeyError(pointer)
            return default
    return node


def has_pointer(body: Any, pointer: str) -> bool:
    return get_pointer(body, pointer, _MISSING_SENTINEL) is not _MISSING_SENTINEL


_MISSING_SENTINEL = object()


def set_pointer(body: dict[str, Any], pointer: str, value: Any) -> None:
    """Set in place, creating intermediate mappings."""
    parts = split_pointer(pointer)
    if not parts:
        raise ValueError("cannot set the whole document")
    node: Any = body
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        index = int(last)
        if index == len(node):
            node.append(value)
        else:
            node[index] = value
    else:
        node[last] = value


def delete_pointer(body: Any, pointer: str) -> None:
    """Remove in place if present; empty parent mappings are left as they are."""
    parts = split_pointer(pointer)
    node = body
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    if not parts:
        return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]


def pointers_to_values(body: Any, values: frozenset[str] | set[str], path: tuple[str | int, ...] = ()) -> Iterator[str]:
    """JSON pointers of every string in ``body`` that is one of ``values`` (document order).

    Compilers use it to list the sensitive pointers of a body: a value marked
    sensitive in the manifest may land anywhere (an env entry, a template).
    """
    if not values:
        return
    if isinstance(body, str):
        if body in values:
            yield join_pointer(path)
    elif isinstance(body, dict):
        for key, value in body.items():
            yield from pointers_to_values(value, values, (*path, key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from pointers_to_values(value, values, (*path, index))


def without(body: Mapping[str, Any], pointers: Iterable[str]) -> dict[str, Any]:
    """A copy of ``body`` without ``pointers`` (the original is untouched); no deep copy.

    Only the containers on the way to a removed pointer are copied (shallowly);
    every other subtree is shared with ``body``: deep-copy the result before
    changing anything inside it. Bodies are treated as immutable once built,
    and sharing keeps hashing a body without its volatile markers from
    deep-copying the whole document (that was most of the compile and read
    time of a 10,000-flow plan).
    """
    result = dict(body)
    copied = {id(result)}
    for pointer in sorted(pointers, reverse=True):
        parts = _parts(pointer)
        if not parts:
            continue
        node: Any = result
        keys: list[Any] = []  # the way down to the parent of the leaf
        for part in parts[:-1]:
            if isinstance(node, dict) and part in node:
                key: Any = part
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                key = int(part)
            else:
                break
            keys.append(key)
            node = node[key]
        else:
            last = parts[-1]
            if isinstance(node, dict):
                if last not in node:
                    continue
            elif not (isinstance(node, list) and last.isdigit() and int(last) < len(node)):
                continue
            # present: copy the containers on the way (once each), then remove
            parent: Any = result
            for key in keys:
                child = parent[key]
                if id(child) not in copied:
                    child = dict(child) if isinstance(child, dict) else list(child)
                    copied.add(id(child))
                    parent[key] = child
                parent = child
            if isinstance(parent, dict):
                del parent[last]
            else:
                del parent[int(last)]
            _prune_emptied(result, list(parts[:-1]))
    return result


def _prune_emptied(body: dict[str, Any], parents: list[str]) -> None:
    """Drop mappings that a removal left empty, so ``{annotations: {}}`` and no annotations compare equal."""
    while parents:
        node: Any = body
        for part in parents[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        last = parents[-1]
        if isinstance(node, dict) and node.get(last) == {}:
            del node[last]
            parents = parents[:-1]
        else:
            return
