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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from planner.resources import Address, canonical_json, digest

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


@dataclass(frozen=True)
class FieldDiff:
    """One changed value, addressed by JSON pointer; ``ABSENT`` on the side where it does not exist."""

    path: str
    before: Any
    after: Any
    sensitive: bool = False

    @property
    def kind(self) -> str:
        if self.before is ABSENT:
            return "added"
        if self.after is ABSENT:
            return "removed"
        return "changed"

    def to_json(self, *, redact: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.before is not ABSENT:
            data["before"] = _shown(self.before, self.sensitive and redact)
        if self.after is not ABSENT:
            data["after"] = _shown(self.after, self.sensitive and redact)
        if self.sensitive:
            data["sensitive"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldDiff:
        return cls(
            data["path"], data.get("before", ABSENT), data.get("after", ABSENT), bool(data.get("sensitive", False))
        )


SENSITIVE = "(sensitive)"


def _shown(value: Any, redact: bool) -> Any:
    return SENSITIVE if redact else value


@dataclass(frozen=True)
class ResourceChange:
    """One resource's change. ``before`` is the normalized live body, ``after`` the desired one."""

    address: Address
    action: Action
    cause: Cause = Cause.MANIFEST
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    field_diffs: tuple[FieldDiff, ...] = ()
    reason: str | None = None
    drifted: bool = False
    flow: str | None = None
    depends_on: tuple[Address, ...] = ()
    live_version: str | None = None
    live_meta: Mapping[str, Any] = field(default_factory=dict)
    sensitive_paths: tuple[str, ...] = ()
    volatile_paths: tuple[str, ...] = ()
    ignored_paths: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    protect: bool = False
    managers: tuple[Mapping[str, Any], ...] = ()
    moved_from: Address | None = None
    moved_scope: str | None = None  # "project/branch" the object moves from, when that differs
    fires: bool = False
    toggle: tuple[str, Any, Any] | None = None

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

    def to_json(self, *, redact: bool = True, bodies: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "address": str(self.address),
            "backend": self.address.backend,
            "kind": self.address.kind,
            "namespace": self.address.namespace,
            "name": self.address.name,
            "action": self.action.value,
            "cause": self.cause.value,
            "flow": self.flow,
            "drifted": self.drifted,
            "reason": self.reason,
            "protect": self.protect,
            "depends_on": [str(a) for a in self.depends_on],
            "field_diffs": [d.to_json(redact=redact) for d in self.field_diffs],
            "notes": list(self.notes),
            "managers": [dict(m) for m in self.managers],
            "moved_from": str(self.moved_from) if self.moved_from else None,
            "moved_scope": self.moved_scope,
            "fires": self.fires,
        }
        if bodies:
            data["before"] = self.before
            data["after"] = self.after
            data["live_version"] = self.live_version
            data["live_meta"] = dict(self.live_meta)
            data["sensitive_paths"] = list(self.sensitive_paths)
            data["volatile_paths"] = list(self.volatile_paths)
            data["ignored_paths"] = list(self.ignored_paths)
            data["toggle"] = list(self.toggle) if self.toggle else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceChange:
        return cls(
            address=Address.parse(data["address"]),
            action=Action(data["action"]),
            cause=Cause(data.get("cause", "manifest")),
            before=data.get("before"),
            after=data.get("after"),
            field_diffs=tuple(FieldDiff.from_json(d) for d in data.get("field_diffs", [])),
            reason=data.get("reason"),
            drifted=bool(data.get("drifted", False)),
            flow=data.get("flow"),
            depends_on=tuple(Address.parse(a) for a in data.get("depends_on", [])),
            live_version=data.get("live_version"),
            live_meta=dict(data.get("live_meta", {})),
            sensitive_paths=tuple(data.get("sensitive_paths", [])),
            volatile_paths=tuple(data.get("volatile_paths", [])),
            ignored_paths=tuple(data.get("ignored_paths", [])),
            notes=tuple(data.get("notes", [])),
            protect=bool(data.get("protect", False)),
            managers=tuple(data.get("managers", [])),
            moved_from=Address.parse(data["moved_from"]) if data.get("moved_from") else None,
            moved_scope=data.get("moved_scope"),
            fires=bool(data.get("fires", False)),
            toggle=tuple(data["toggle"]) if data.get("toggle") else None,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Conflict:
    """A desired name already taken by something flowplan does not own here. Never touched."""

    address: Address
    owner: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"address": str(self.address), "owner": self.owner, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Conflict:
        return cls(Address.parse(data["address"]), data["owner"], data["detail"])


@dataclass(frozen=True)
class PlanInputs:
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

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "branch": self.branch,
            "manifest_digest": self.manifest_digest,
            "vars_digest": self.vars_digest,
            "backends": list(self.backends),
            "flowplan_version": self.flowplan_version,
            "targets": list(self.targets),
            "mode": self.mode,
            "enable_schedules": self.enable_schedules,
            "adopt": self.adopt,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanInputs:
        return cls(
            project=data["project"],
            branch=data["branch"],
            manifest_digest=data["manifest_digest"],
            vars_digest=data["vars_digest"],
            backends=tuple(data["backends"]),
            flowplan_version=data["flowplan_version"],
            targets=tuple(data.get("targets", [])),
            mode=data.get("mode", "normal"),
            enable_schedules=bool(data.get("enable_schedules", False)),
            adopt=bool(data.get("adopt", False)),
        )


@dataclass(frozen=True)
class Plan:
    changes: tuple[ResourceChange, ...]
    waves: tuple[tuple[Address, ...], ...]
    inputs: PlanInputs
    live_fingerprint: str
    created_at: str
    format_version: int = FORMAT_VERSION
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[str, ...] = ()
    unchanged: int = 0
    ignored_differences: int = 0
    untracked: tuple[Address, ...] = ()
    backend_targets: Mapping[str, str] = field(default_factory=dict)
    sensitive_values: frozenset[str] = frozenset()
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
        data = self._json(redact=redact, bodies=bodies)
        if redact:
            return redact_values(data, self.sensitive_values)
        data["sensitive_values"] = sorted(self.sensitive_values)
        return data

    def _json(self, *, redact: bool, bodies: bool) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "inputs": self.inputs.to_json(),
            "summary": self.summary(),
            "live_fingerprint": self.live_fingerprint,
            "changes": [c.to_json(redact=redact, bodies=bodies) for c in self.changes],
            "waves": [[str(a) for a in wave] for wave in self.waves],
            "conflicts": [c.to_json() for c in self.conflicts],
            "warnings": list(self.warnings),
            "ignored_differences": self.ignored_differences,
            "untracked": [str(a) for a in self.untracked],
            "backend_targets": dict(self.backend_targets),
            "flows": {name: dict(outline) for name, outline in self.flows.items()},
            "affected_flows": {address: list(flows) for address, flows in self.affected_flows.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            changes=tuple(ResourceChange.from_json(c) for c in data["changes"]),
            waves=tuple(tuple(Address.parse(a) for a in wave) for wave in data["waves"]),
            inputs=PlanInputs.from_json(data["inputs"]),
            live_fingerprint=data["live_fingerprint"],
            created_at=data["created_at"],
            format_version=int(data["format_version"]),
            conflicts=tuple(Conflict.from_json(c) for c in data.get("conflicts", [])),
            warnings=tuple(data.get("warnings", [])),
            unchanged=int(data.get("summary", {}).get("unchanged", 0)),
            ignored_differences=int(data.get("ignored_differences", 0)),
            untracked=tuple(Address.parse(a) for a in data.get("untracked", [])),
            backend_targets=dict(data.get("backend_targets", {})),
            sensitive_values=frozenset(data.get("sensitive_values", [])),
            flows=dict(data.get("flows", {})),
            affected_flows={address: list(flows) for address, flows in data.get("affected_flows", {}).items()},
        )

    def restricted_to(self, keep: Iterable[Address]) -> Plan:
        wanted = set(keep)
        changes = tuple(c for c in self.changes if c.address in wanted)
        waves = tuple(w for w in (tuple(a for a in wave if a in wanted) for wave in self.waves) if w)
        kept = {str(a) for a in wanted}
        affected = {a: f for a, f in self.affected_flows.items() if a in kept}
        return replace(self, changes=changes, waves=waves, affected_flows=affected)


def redact_values(value: Any, secrets: frozenset[str] | set[str]) -> Any:
    """Replace every occurrence of a secret inside strings, keys included, recursively."""
    needles = sorted((s for s in secrets if s), key=len, reverse=True)
    if not needles:
        return value

    def scrub(text: str) -> str:
        for needle in needles:
            if needle in text:
                text = text.replace(needle, SENSITIVE)
        return text

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return scrub(node)
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return {scrub(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        return node

    return walk(value)


def changes_by_backend(changes: Sequence[ResourceChange]) -> dict[str, list[ResourceChange]]:
    result: dict[str, list[ResourceChange]] = {}
    for change in changes:
        result.setdefault(change.address.backend, []).append(change)
    return result


def plan_file_checksum(payload: Mapping[str, Any]) -> str:
    """Checksum over a saved plan's payload, so a hand edit is caught before anything else."""
    return digest(canonical_json(payload))
