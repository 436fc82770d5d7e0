"""The plan: what would change, why, and in which order. Types only.

A :class:`Plan` is frozen and self-contained: it records the inputs it was
made from and the live state it saw, so a saved plan can be checked against
the world at apply time and refused when stale. Rendering lives in
:mod:`planner.render` and starts from :meth:`Plan.to_json`; ``reason`` and
``cause`` are display-only (as Terraform's ``ActionReason``).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.codec import Options, Serialisable, rule
from planner.contract import ScheduleFacts
from planner.resources import Address, canonical_json, digest
from planner.secrets import scrub as scrub_secrets

FORMAT_VERSION = 1


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"
    MOVE = "move"
    NOOP = "noop"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.ADOPT: "<=",
    Action.MOVE: "->",
    Action.NOOP: " ",
}


class Cause(enum.StrEnum):
    """Why a resource is in the plan (the three-way view of desired, inventory and live)."""

    MANIFEST = "manifest"  # the manifest asks for something new or different
    DRIFT = "drift"  # changed outside flowplan; applying restores the manifest's version
    DELETED_OUTSIDE = "deleted-outside"  # in the inventory, gone live: will be recreated
    ORPHAN = "orphan"  # marked and in the inventory, no longer declared: will be deleted
    DESTROY = "destroy"  # `flowplan destroy`
    ADOPT = "adopt"  # taken over from an existing unowned object
    MOVED = "moved"  # a rename in the manifest's moved: list
    BOTH = "manifest+drift"  # the manifest changed and the object was also changed outside flowplan


class _Missing:
    """Marks a side of a field diff where the field does not exist."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(absent)"

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Missing()


def _absent(value: Any, options: Options) -> bool:
    return value is ABSENT


def _false(value: Any, options: Options) -> bool:
    return not value


def _masked(value: Any, owner: FieldDiff, options: Options) -> Any:
    return SENSITIVE if owner.sensitive and options.redact else value


@dataclass(frozen=True)
class FieldDiff(Serialisable):
    """One changed value, addressed by JSON pointer; ``ABSENT`` on the side where it does not exist."""

    path: str
    before: Any = field(metadata=rule(missing=ABSENT, omit=_absent, write=_masked))
    after: Any = field(metadata=rule(missing=ABSENT, omit=_absent, write=_masked))
    sensitive: bool = field(default=False, metadata=rule(omit=_false))

    @property
    def kind(self) -> str:
        if self.before is ABSENT:
            return "added"
        if self.after is ABSENT:
            return "removed"
        return "changed"

    def json_extras(self, options: Options) -> dict[str, Any]:
        return {"kind": self.kind}


SENSITIVE = "(sensitive)"


_SAVED = rule(saved_only=True)


@dataclass(frozen=True)
class ResourceChange(Serialisable):
    """One resource's change. ``before`` is the normalized live body, ``after`` the desired one.

    Bodies and the pointers that qualify them are kept in saved plans only (``bodies``): a shown
    plan carries the field diffs instead.
    """

    address: Address
    action: Action
    cause: Cause = Cause.MANIFEST
    before: dict[str, Any] | None = field(default=None, metadata=_SAVED)
    after: dict[str, Any] | None = field(default=None, metadata=_SAVED)
    field_diffs: tuple[FieldDiff, ...] = ()
    reason: str | None = None
    drifted: bool = False
    flow: str | None = None
    depends_on: tuple[Address, ...] = ()
    live_version: str | None = field(default=None, metadata=_SAVED)
    live_meta: Mapping[str, Any] = field(default_factory=dict, metadata=_SAVED)
    sensitive_paths: tuple[str, ...] = field(default=(), metadata=_SAVED)
    volatile_paths: tuple[str, ...] = field(default=(), metadata=_SAVED)
    ignored_paths: tuple[str, ...] = field(default=(), metadata=_SAVED)
    notes: tuple[str, ...] = ()
    protect: bool = False
    managers: tuple[Mapping[str, Any], ...] = ()
    moved_from: Address | None = None
    moved_scope: str | None = None  # "project/branch" the object moves from, when that differs
    fires: bool = False
    toggle: tuple[str, Any, Any] | None = field(default=None, metadata=_SAVED)
    #: The schedules the two bodies carry, as the backend's compiler reads them (kept with the bodies
    #: so a saved plan explains its schedules without the backend).
    schedule_before: ScheduleFacts | None = field(default=None, metadata=_SAVED)
    schedule_after: ScheduleFacts | None = field(default=None, metadata=_SAVED)

    @property
    def key(self) -> str:
        return str(self.address)

    def identity(self) -> dict[str, Any]:
        """What makes two plans' changes the same (compared before a saved plan is applied)."""
        return {
            "address": str(self.address),
            "action": self.action.value,
            "before": digest(self.before) if self.before is not None else None,
            "after": digest(self.after) if self.after is not None else None,
            "live_version": self.live_version,
            "moved_from": str(self.moved_from) if self.moved_from else None,
        }

    def json_extras(self, options: Options) -> dict[str, Any]:
        """The address's parts, so a reader of the JSON need not parse it."""
        address = self.address
        return {"backend": address.backend, "kind": address.kind, "namespace": address.namespace, "name": address.name}


@dataclass(frozen=True)
class Conflict(Serialisable):
    """A desired name already taken by something flowplan does not own here. Never touched."""

    address: Address
    owner: str
    detail: str


@dataclass(frozen=True)
class PlanInputs(Serialisable):
    """What the plan was made from; a saved plan is only applied to the same inputs."""

    project: str
    branch: str
    manifest_digest: str
    vars_digest: str
    backends: tuple[str, ...]
    flowplan_version: str
    targets: tuple[str, ...] = ()
    mode: str = "normal"  # normal | destroy | refresh-only
    enable_schedules: bool = False
    adopt: bool = False


def _unchanged(data: Mapping[str, Any]) -> Any:
    return data.get("summary", {}).get("unchanged", 0)


def _redacting(value: Any, options: Options) -> bool:
    return options.redact


@dataclass(frozen=True)
class Plan(Serialisable):
    changes: tuple[ResourceChange, ...]
    waves: tuple[tuple[Address, ...], ...]
    inputs: PlanInputs
    live_fingerprint: str
    created_at: str
    format_version: int = field(default=FORMAT_VERSION, metadata=rule(required=True))
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Written inside ``summary`` (see :meth:`summary`).
    unchanged: int = field(default=0, metadata=rule(stored=False, read=_unchanged))
    ignored_differences: int = 0
    untracked: tuple[Address, ...] = ()
    backend_targets: Mapping[str, str] = field(default_factory=dict)
    #: Only an unredacted (saved) plan lists them; a redacted one has them masked everywhere.
    sensitive_values: frozenset[str] = field(default=frozenset(), metadata=rule(omit=_redacting))
    #: Per flow of the manifest: schedule, triggers, sinks, step graph (see :mod:`planner.outline`). Display only.
    flows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Per changed address: every flow it affects, shared objects included. Display only.
    affected_flows: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        counts = Counter(c.action.value for c in self.changes)
        return {
            "create": counts["create"],
            "update": counts["update"],
            "replace": counts["replace"],
            "delete": counts["delete"],
            "adopt": counts["adopt"],
            "move": counts["move"],
            "unchanged": self.unchanged,
            "drifted": sum(1 for c in self.changes if c.drifted),
            "conflicts": len(self.conflicts),
        }

    def change(self, address: Address) -> ResourceChange:
        for c in self.changes:
            if c.address == address:
                return c
        raise KeyError(str(address))

    def by_address(self) -> dict[Address, ResourceChange]:
        return {c.address: c for c in self.changes}

    def drifted(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.drifted]

    def change_set_digest(self) -> str:
        """Digest of every change's identity; equal digests mean the same writes would happen."""
        return digest([c.identity() for c in self.changes] + [c.to_json() for c in self.conflicts])

    def to_json(self, *, redact: bool = True, bodies: bool = False) -> dict[str, Any]:
        """The JSON form (documented in docs/plan-json.md); ``bodies`` for saved plans only.

        With ``redact`` every sensitive value is replaced by ``(sensitive)``:
        at sensitive pointers, and wherever a known sensitive string appears.
        """
        data = super().to_json(redact=redact, bodies=bodies)
        return redact_values(data, self.sensitive_values) if redact else data

    def json_extras(self, options: Options) -> dict[str, Any]:
        return {"summary": self.summary()}


def redact_values(value: Any, secrets: frozenset[str] | set[str]) -> Any:
    """Replace every occurrence of a secret inside strings, keys included, recursively.

    Every spelling counts (JSON- and YAML-escaped, percent-encoded, base64): a body may hold a secret
    inside a JSON text or a URI, and the mask must cover it there too.
    """
    needles = [s for s in secrets if s]
    if not needles:
        return value

    def scrub(text: str) -> str:
        return scrub_secrets(text, needles)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return scrub(node)
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return {scrub(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        return node

    return walk(value)


def plan_file_checksum(payload: Mapping[str, Any]) -> str:
    """Checksum over a saved plan's payload, so a hand edit is caught before anything else."""
    return digest(canonical_json(payload))
