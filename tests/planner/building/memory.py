"""A backend that lives in memory: the builder's decisions tested without a CLI or a real backend.

The compiler returns the desired resources as given, the reader returns the live state as given,
the inventory holds a fixed state. It never writes: planning is given no writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.contract import (
    Backend,
    BackendSpec,
    CompileContext,
    Compiler,
    Inventory,
    InventoryState,
    LiveState,
    Lock,
    Reader,
    Scope,
    Writer,
)
from planner.resources import Address, LiveResource, Owner, Resource, Toggle, spec_hash

PROJECT, BRANCH = "proj", "main"


@dataclass
class MemoryBackend(Backend):
    spec: BackendSpec
    desired: list[Resource] = field(default_factory=list)
    live: LiveState = field(default_factory=LiveState)
    state: InventoryState = field(default_factory=InventoryState)

    def compiler(self) -> Compiler:
        return _Compiler(self.desired)

    def reader(self) -> Reader:
        return _Reader(self.live)

    def writer(self, dry_run: bool = False) -> Writer:
        raise AssertionError("planning asked for a writer")

    def inventory(self, scope: Scope) -> Inventory:
        return _Inventory(self.state)

    def lock(self, scope: Scope) -> Lock:
        raise AssertionError("planning asked for a lock")

    def describe(self) -> str:
        return "memory"


@dataclass
class _Compiler(Compiler):
    resources: list[Resource]

    def compile(self, context: CompileContext) -> list[Resource]:
        return list(self.resources)


@dataclass
class _Reader(Reader):
    state: LiveState

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        return self.state


@dataclass
class _Inventory(Inventory):
    state: InventoryState

    def load(self) -> InventoryState:
        return self.state

    def save(self, state: InventoryState) -> InventoryState:
        raise AssertionError("planning saved the inventory")


# --------------------------------------------------------------------------- fixtures to objects


def resource(data: Mapping[str, Any]) -> Resource:
    """A desired resource from its fixture form (address, body and the optional qualifiers)."""
    toggle = data.get("toggle")
    return Resource(
        address=Address.parse(data["address"]),
        body=data["body"],
        depends_on=tuple(Address.parse(a) for a in data.get("depends_on", [])),
        flow=data.get("flow"),
        volatile_paths=tuple(data.get("volatile_paths", [])),
        replace_paths=tuple(data.get("replace_paths", [])),
        sensitive_paths=tuple(data.get("sensitive_paths", [])),
        protect=bool(data.get("protect", False)),
        fires=bool(data.get("fires", False)),
        toggle=Toggle(*toggle) if toggle else None,
    )


def live_resource(data: Mapping[str, Any], owned: bool) -> LiveResource:
    """A live object from its fixture form; owned ones carry this project's markers unless told.

    ``made_by`` is what a real backend's reader recognised (the core only reads that field).
    """
    owner = data.get("owner")
    if owner is not None:
        marker = Owner(owner["project"], owner["branch"], owner.get("flow"))
    else:
        marker = Owner(PROJECT, BRANCH, data.get("flow")) if owned else None
    return LiveResource(
        Address.parse(data["address"]), data["body"], str(data.get("version", "1")), marker, made_by=data.get("made_by")
    )


def live_state(data: Mapping[str, Any]) -> LiveState:
    owned = [live_resource(d, True) for d in data.get("owned", [])]
    others = [live_resource(d, False) for d in data.get("others", [])]
    return LiveState(owned={r.address: r for r in owned}, others={r.address: r for r in others})


def inventory_state(data: Mapping[str, Any], desired: Mapping[Address, Resource], live: LiveState) -> InventoryState:
    """The inventory fixture, with readable hashes resolved.

    An entry's ``hash`` may be ``"desired"`` or ``"live"`` (the hash of that side's body at the
    address), or an entry may give the ``body`` that was applied instead of a hash.
    """
    entries: dict[str, Any] = {}
    for key, entry in data.get("entries", {}).items():
        address = Address.parse(key)
        volatile = desired[address].volatile_paths if address in desired else ()
        resolved = dict(entry)
        if "body" in resolved:
            resolved["hash"] = spec_hash(resolved.pop("body"), volatile)
        elif resolved.get("hash") == "desired":
            resolved["hash"] = desired[address].spec_hash
        elif resolved.get("hash") == "live":
            resolved["hash"] = spec_hash(live.owned[address].body, volatile)
        entries[key] = resolved
    return InventoryState.from_json({"entries": entries})


def build(
    desired: Sequence[Resource],
    live: LiveState,
    state: InventoryState,
    options: Any = None,
    *,
    branch: str = BRANCH,
) -> Any:
    """``build_plan`` over one memory backend named ``mem`` and an empty manifest of this project."""
    from planner.building import PlanOptions, build_plan
    from planner.manifest import Manifest
    from planner.resources import Provenance

    spec = BackendSpec("mem", "files", {})
    manifest = Manifest(path="flows.yaml", project=PROJECT, branch=branch, backends={"mem": spec}, flows={})
    backend = MemoryBackend(spec, list(desired), live, state)
    return build_plan(manifest, {"mem": backend}, Provenance("0", "d"), options or PlanOptions())
