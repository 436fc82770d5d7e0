"""flowplan's inventory of a project and branch, kept in ConfigMaps beside the objects it lists.

The idea of Kubernetes ApplySet's parent object (KEP-3659): the addresses and
spec hashes flowplan applied (or is about to: intents are saved before each
wave), and recent revisions for history and rollback.

Layout. ConfigMap ``flowplan-inventory-<project>.<branch>`` (shard 0) in the
backend's namespace, and ``.1``, ``.2``, … once the records outgrow
:data:`SHARD_BYTES` (~900 KB; a ConfigMap holds at most 1 MiB). They carry
flowplan's markers plus ``flowplan.dev/inventory: "true"``, which the reader's
selector excludes, so the inventory is never mistaken for a resource. Data
keys are *records*, each a complete JSON document:

- ``entries-NNN.json`` — the entries (address → hash, state, flow), in address
  order, split so each chunk stays under the shard size;
- ``revision-NNNNNN.json`` — one per apply (split into ``.pN`` parts only if a
  single revision outgrows a shard);
- ``index.json`` (shard 0 only) — the record order and which shard holds which
  part; shard 0 is written last, so it is the commit point of a save.

Loading is one LIST (label selector) whatever the shard count. Saving writes
only the shards whose content changed — one PUT each with the
resourceVersion read before (a 409 means another process wrote the
inventory: :class:`~planner.errors.ConflictError`), a POST for a new shard, a
DELETE with preconditions for a shard no longer needed — so the applier's
save before and after each wave costs one PUT in the common one-shard case,
and nothing when nothing changed. The concurrency token
(``InventoryState.version``) records each shard's resourceVersion and content
digest; that is how a save knows what changed without reading anything.

A save torn by a crash (some shards written, not shard 0) is tolerated: every
record is self-contained, the index in shard 0 still names the parts of the
previous save, a part missing from its shard is looked for in the others, and
a revision that cannot be found is dropped (history only). Entries chunks
that cannot be found make the inventory unusable, and the error says so.

Older flowplan versions named the shards ``flowplan-inventory-<project>-<branch>`` and ``-1``, …
(two scopes could meet in one name). An inventory found only under the old names is loaded, and
the next save (under the lock) writes the new names and deletes the old shards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

from backends.argo.client import CONFIG_MAP, Failure, Kube
from backends.argo.listing import INVENTORY_KEY, owner_selector
from planner.contract import InventoryState, Scope
from planner.errors import BackendError, ConflictError
from planner.resources import BRANCH_KEY, MANAGED_BY, MANAGED_BY_KEY, PROJECT_KEY, Address

__all__ = ["SHARD_BYTES", "ConfigMapInventory", "inventory_name", "legacy_inventory_name"]

#: Largest data size of one shard (a ConfigMap holds 1 MiB including keys; leave room for metadata).
SHARD_BYTES = 900_000
INDEX_KEY = "index.json"
FORMAT = 1


def inventory_name(scope: Scope) -> str:
    """``flowplan-inventory-<project>.<branch>``: projects and branches are DNS labels (no ``.``), so the
    name is an injective function of the pair, and shard names (``.1``, ``.2``, …) meet no other scope's."""
    return f"flowplan-inventory-{scope.project}.{scope.branch}"


def legacy_inventory_name(scope: Scope) -> str:
    """The name older flowplan versions used (not injective); its shards are ``-1``, ``-2``, …"""
    return f"flowplan-inventory-{scope.project}-{scope.branch}"


def _shard_number(name: str, base: str, separator: str) -> bool:
    """Whether ``name`` is shard 0 (``base``) or a numbered shard of ``base``."""
    return name == base or (name.startswith(base + separator) and name[len(base) + 1 :].isdigit())


def _digest(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ConfigMapInventory:
    """The :class:`~planner.contract.Inventory` of an argo backend for one scope."""

    def __init__(
        self,
        kube: Kube,
        scope: Scope,
        namespace: str,
        *,
        on_load: Callable[[Scope, set[Address]], None] | None = None,
        shard_bytes: int | None = None,
    ) -> None:
        self.kube = kube
        self.scope = scope
        self.namespace = namespace
        self.name = inventory_name(scope)
        self.legacy = legacy_inventory_name(scope)
        self.on_load = on_load
        self.shard_bytes = shard_bytes or SHARD_BYTES

    # -- naming ------------------------------------------------------------------------

    def shard_name(self, index: int) -> str:
        return self.name if index == 0 else f"{self.name}.{index}"

    def _legacy_shard_name(self, index: int) -> str:
        return self.legacy if index == 0 else f"{self.legacy}-{index}"

    def selector(self) -> str:
        return f"{owner_selector(self.scope)},{INVENTORY_KEY}=true"

    def _labels(self) -> dict[str, str]:
        return {
            MANAGED_BY_KEY: MANAGED_BY,
            PROJECT_KEY: self.scope.project,
            BRANCH_KEY: self.scope.branch,
            INVENTORY_KEY: "true",
        }

    # -- load --------------------------------------------------------------------------

    def load(self) -> InventoryState:
        items = self.kube.list(CONFIG_MAP, self.namespace, label_selector=self.selector())
        shards: dict[str, dict[str, Any]] = {}
        legacy: dict[str, dict[str, Any]] = {}
        for item in items:
            name = str((item.get("metadata") or {}).get("name", ""))
            if _shard_number(name, self.name, "."):
                shards[name] = item
            elif _shard_number(name, self.legacy, "-"):
                legacy[name] = item  # the label selector already limits these to this scope
        # The version lists the shards under the old names too: the next save deletes them (migration).
        every = {**shards, **legacy}
        if self.name in shards:
            state = replace(self._decode(shards, self.name, self.shard_name), version=_version(every))
        elif self.legacy in legacy:
            state = replace(self._decode(legacy, self.legacy, self._legacy_shard_name), version=_version(every))
        else:
            state = InventoryState(version=_version(every) if every else None)
        self._remember(state)
        return state

    def _remember(self, state: InventoryState) -> None:
        if self.on_load is not None:
            self.on_load(self.scope, set(state.entries))

    def _decode(
        self, shards: Mapping[str, Mapping[str, Any]], head_name: str, shard_name: Callable[[int], str]
    ) -> InventoryState:
        """The state the shards hold; ``head_name`` is shard 0's name, ``shard_name`` names the others."""
        data = {name: dict(item.get("data") or {}) for name, item in shards.items()}
        head = data[head_name]
        try:
            index = json.loads(head[INDEX_KEY])
            if int(index.get("format", 0)) > FORMAT:
                raise BackendError(
                    f"the inventory {self.namespace}/{self.name} was written by a newer flowplan (format "
                    f"{index.get('format')})",
                    hint="upgrade flowplan",
                )
            layout: list[list[str]] = index["layout"]
            records: list[list[Any]] = index["records"]
        except (KeyError, ValueError, TypeError) as exc:
            raise self._damaged(f"its index is unreadable ({exc})") from None
        where: dict[str, str] = {}
        for number, parts in enumerate(layout):
            for part in parts:
                where[part] = shard_name(number)
        entries: dict[str, Any] = {}
        revisions: list[Any] = []
        for key, parts in records:
            text = []
            for part in parts:
                value = data.get(where.get(part, ""), {}).get(part)
                if value is None:  # torn save: look in every shard
                    value = next((d[part] for d in data.values() if part in d), None)
                if value is None:
                    break
                text.append(value)
            else:
                try:
                    record = json.loads("".join(text))
                except ValueError:
                    record = None
                if key.startswith("entries-") and isinstance(record, dict):
                    entries.update(record)
                    continue
                if key.startswith("revision-") and isinstance(record, dict):
                    revisions.append(record)
                    continue
            if key.startswith("entries-"):
                raise self._damaged(f"the record {key} is missing or unreadable")
        try:
            state = InventoryState.from_json({"entries": entries, "revisions": revisions}, _version(shards))
        except (KeyError, ValueError, TypeError) as exc:
            raise self._damaged(str(exc)) from None
        return state

    def _damaged(self, why: str) -> BackendError:
        return BackendError(
            f"the inventory {self.namespace}/{self.name} is damaged: {why}",
            hint="flowplan will not guess what it owns; restore the ConfigMap(s) from a backup, or delete them and "
            "run `flowplan import` to take the live objects over again",
        )

    # -- encode ------------------------------------------------------------------------

    def encode(self, state: InventoryState) -> list[dict[str, str]]:
        """The data of each shard, shard 0 first (index included)."""
        doc = state.to_json()
        limit = self.shard_bytes
        records: list[tuple[str, str]] = []
        chunk: dict[str, Any] = {}
        size = 2
        number = 0
        for address, entry in doc["entries"].items():
            item = len(_dumps({address: entry}))
            if chunk and size + item > limit // 2:
                records.append((f"entries-{number:03d}.json", _dumps(chunk)))
                number += 1
                chunk, size = {}, 2
            chunk[address] = entry
            size += item
        records.append((f"entries-{number:03d}.json", _dumps(chunk)))
        for i, revision in enumerate(doc["revisions"]):
            records.append((f"revision-{int(revision.get('number') or i):06d}.json", _dumps(revision)))
        parts: list[tuple[str, list[tuple[str, str]]]] = []
        part_limit = limit // 2
        for key, text in records:
            if len(text.encode()) <= part_limit:
                parts.append((key, [(key, text)]))
            else:
                step = part_limit if text.isascii() else part_limit // 4  # keep every piece under the limit in bytes
                chunks = [text[i : i + step] for i in range(0, len(text), step)]
                parts.append((key, [(f"{key}.p{n}", chunk) for n, chunk in enumerate(chunks)]))
        shards: list[dict[str, str]] = [{}]
        used = [0]
        reserve = 64 * (len(parts) + 8)  # the index grows with the record count
        for _, record_parts in parts:
            for part_key, text in record_parts:
                cost = len(part_key) + len(text.encode())
                budget = limit - (reserve if len(shards) == 1 else 0)
                if used[-1] and used[-1] + cost > budget:
                    shards.append({})
                    used.append(0)
                shards[-1][part_key] = text
                used[-1] += cost
        layout = [sorted(s) for s in shards]
        index = {"format": FORMAT, "records": [[k, [p for p, _ in pieces]] for k, pieces in parts], "layout": layout}
        shards[0][INDEX_KEY] = _dumps(index)
        return shards

    # -- save --------------------------------------------------------------------------

    def save(self, state: InventoryState) -> InventoryState:
        shards = self.encode(state)
        known = _parse_version(state.version)
        written: dict[str, list[str]] = {}
        # Shards 1.. first, shard 0 (the index: the commit point) last, surplus shards deleted after.
        order = [*range(1, len(shards)), 0]
        for number in order:
            name = self.shard_name(number)
            data = shards[number]
            digest = _digest(data)
            previous = known.get(name)
            if previous is not None and previous[1] == digest:
                written[name] = previous
                continue
            body = self._body(name, data, previous[0] if previous else None)
            answer = self._write(name, body, create=previous is None)
            rv = str((answer.get("metadata") or {}).get("resourceVersion", ""))
            written[name] = [rv, digest]
        for name, (rv, _) in sorted(known.items()):
            if name not in written:
                self._delete(name, rv)
        return InventoryState(state.entries, state.revisions, _dumps({"shards": written}))

    def _body(self, name: str, data: Mapping[str, str], rv: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": self._labels()}
        meta["annotations"] = {
            "flowplan.dev/note": "flowplan's record of what it applied here; do not edit (see docs/argo-backend.md)"
        }
        if rv is not None:
            meta["resourceVersion"] = rv
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}

    def _write(self, name: str, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """One shard's POST or PUT, with the writer's rules for 409s and ambiguous outcomes."""
        verb: Literal["create", "update"] = "create" if create else "update"
        sent_rv = str(body["metadata"].get("resourceVersion", ""))
        ambiguous = False
        for attempt in range(1, self.kube.retry.attempts + 1):
            result = self.kube.attempt(
                lambda: self.kube.call(verb, CONFIG_MAP, self.namespace, None if create else name, body=body)
            )
            if not isinstance(result, Failure):
                return result
            failure = result
            if failure.status == 409:
                existing = self.kube.get(CONFIG_MAP, self.namespace, name) if ambiguous else None
                if existing is not None and (existing.get("data") or {}) == body["data"]:
                    return existing  # our own earlier try landed
                raise ConflictError(
                    f"the inventory {self.namespace}/{name} was changed by someone else during this apply",
                    hint="another flowplan run may be writing without the lock (was `flowplan force-unlock` used "
                    "on a live run?); plan and apply again",
                )
            if failure.kind == "fatal":
                raise self.kube.error(failure, verb=verb, kind=CONFIG_MAP, namespace=self.namespace, name=name)
            if failure.kind == "ambiguous":
                existing = self.kube.get(CONFIG_MAP, self.namespace, name)
                if existing is not None and (existing.get("data") or {}) == body["data"]:
                    return existing
                untouched = (
                    existing is None
                    if create
                    else (existing is not None and str(existing["metadata"].get("resourceVersion")) == sent_rv)
                )
                if not untouched:
                    raise ConflictError(f"the inventory {self.namespace}/{name} changed during this apply")
                ambiguous = True
            if attempt == self.kube.retry.attempts:
                raise self.kube.error(
                    failure, verb=verb, kind=CONFIG_MAP, namespace=self.namespace, name=name, attempts=attempt
                )
            self.kube.backoff(attempt, failure)
        raise AssertionError("unreachable")

    def _delete(self, name: str, rv: str) -> None:
        options = {"preconditions": {"resourceVersion": rv}}
        for attempt in range(1, self.kube.retry.attempts + 1):
            result = self.kube.attempt(lambda: self.kube.call("delete", CONFIG_MAP, self.namespace, name, body=options))
            if not isinstance(result, Failure) or (result.status == 404 and not result.missing_type):
                return
            if result.status == 409:
                raise ConflictError(f"the inventory shard {self.namespace}/{name} changed during this apply")
            if result.kind == "fatal" or attempt == self.kube.retry.attempts:
                raise self.kube.error(
                    result, verb="delete", kind=CONFIG_MAP, namespace=self.namespace, name=name, attempts=attempt
                )
            self.kube.backoff(attempt, result)


def _version(shards: Mapping[str, Mapping[str, Any]]) -> str:
    """The concurrency token: every shard's resourceVersion and content digest."""
    info = {
        name: [str((item.get("metadata") or {}).get("resourceVersion", "")), _digest(item.get("data") or {})]
        for name, item in sorted(shards.items())
    }
    return _dumps({"shards": info})


def _parse_version(version: str | None) -> dict[str, list[str]]:
    if not version:
        return {}
    try:
        parsed = json.loads(version)
        shards = parsed["shards"]
        return {str(k): [str(v[0]), str(v[1])] for k, v in shards.items()}
    except (ValueError, KeyError, TypeError, IndexError):
        return {}
