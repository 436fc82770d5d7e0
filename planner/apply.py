"""Run a plan through backend writers, wave by wave, idempotently.

The applier holds the lock of every backend it writes to, records each
change's intent in the inventory before the wave that makes it and confirms
it after, so a crash at any point leaves a state the next run repairs. Within
a wave writes run in parallel; when one fails, its dependents are skipped,
independent resources still proceed, and the run ends with an
:class:`~planner.errors.ApplyError` (exit 1). A rerun converges.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import datetime
import getpass
import hashlib
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from planner.builder import BackendView, PlanResult
from planner.contract import Backend, InventoryEntry, InventoryState, Lock, LockInfo, Revision, lock_ttl
from planner.errors import ApplyError, ConflictError, FlowplanError, LockError
from planner.plan import Action, Plan, ResourceChange
from planner.resources import Address, Provenance, Resource, canonical_json, get_pointer, set_pointer, spec_hash

#: How many revisions keep their applied bodies (older ones keep only the summary).
REVISIONS_WITH_BODIES = 10
MAX_REVISIONS = 100


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = 10
    dry_run: bool = False
    #: Seconds the lock lives without renewal; ``FLOWPLAN_LOCK_TTL`` when set (see planner.contract.lock_ttl).
    lock_ttl: float = field(default_factory=lock_ttl)
    operation: str = "apply"


Event = Callable[[str, ResourceChange, str | None], None]


@dataclass
class ApplyOutcome:
    succeeded: list[Address] = field(default_factory=list)
    failed: dict[Address, str] = field(default_factory=dict)
    skipped: dict[Address, str] = field(default_factory=dict)
    writes: int = 0
    revision: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class LockRenewer:
    """Keeps held locks alive while a long apply runs."""

    def __init__(self, locks: list[tuple[Lock, LockInfo]], ttl: float) -> None:
        self.locks = locks
        self.ttl = ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="flowplan-lock-renew", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(max(0.2, self.ttl / 3)):
            for lock, info in self.locks:
                # a lost lock shows at the next write's precondition; renewal itself never stops an apply
                with contextlib.suppress(FlowplanError):
                    lock.renew(replace(info, expires_at=time.time() + self.ttl))

    def __enter__(self) -> LockRenewer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def acquire_locks(
    backends: Mapping[str, Backend],
    result: PlanResult,
    options: ApplyOptions,
    names: Sequence[str] | None = None,
) -> list[tuple[Lock, LockInfo]]:
    """Take the lock of every backend with changes (or of ``names``), in name order; all or none."""
    held: list[tuple[Lock, LockInfo]] = []
    names = sorted({c.address.backend for c in result.plan.changes} if names is None else set(names))
    info = LockInfo.here(options.operation, options.lock_ttl)
    try:
        for name in names:
            lock = backends[name].lock(result.views[name].scope)
            lock.acquire(info)
            held.append((lock, info))
            renamed = result.views[name].renamed
            if renamed is not None and any(c.moved_scope and c.address.backend == name for c in result.plan.changes):
                old_lock = backends[name].lock(renamed.scope)
                old_lock.acquire(info)
                held.append((old_lock, info))
    except BaseException:
        release_locks(held)
        raise
    return held


def release_locks(held: list[tuple[Lock, LockInfo]]) -> None:
    for lock, info in reversed(held):
        with contextlib.suppress(FlowplanError):
            lock.release(info)


def apply_plan(
    result: PlanResult,
    backends: Mapping[str, Backend],
    provenance: Provenance,
    options: ApplyOptions | None = None,
    on_event: Event | None = None,
) -> ApplyOutcome:
    """Apply ``result.plan``; the caller holds the locks (see :func:`acquire_locks`)."""
    options = options or ApplyOptions()
    plan = result.plan
    order = result.order
    assert order is not None
    outcome = ApplyOutcome()
    if plan.is_empty:
        return outcome
    by_address = plan.by_address()
    writers = {
        name: backends[name].writer(dry_run=options.dry_run) for name in {c.address.backend for c in plan.changes}
    }
    entries: dict[str, dict[Address, InventoryEntry]] = {}
    inventory_state: dict[str, InventoryState] = {}
    for name in writers:
        view = result.views[name]
        entries[name] = _starting_entries(view, by_address)
        inventory_state[name] = view.inventory
    # objects moving from a renamed project or branch are booked in that scope's inventory
    old_entries: dict[str, dict[Address, InventoryEntry]] = {}
    old_state: dict[str, InventoryState] = {}
    for name in writers:
        renamed = result.views[name].renamed
        if renamed is not None and any(c.moved_scope and c.address.backend == name for c in plan.changes):
            old_entries[name] = dict(renamed.inventory.entries)
            old_state[name] = renamed.inventory

    def book(change: ResourceChange) -> dict[Address, InventoryEntry]:
        """Where the inventory entry of what a change moves *from* lives."""
        name = change.address.backend
        return old_entries[name] if change.moved_scope and name in old_entries else entries[name]

    blocked: dict[Address, str] = {}
    unavailable = {c.address: f"{c.address} is taken by an object flowplan does not own" for c in plan.conflicts}
    for wave in plan.waves:  # waves are in dependency order: one pass blocks transitive dependents
        for address in wave:
            why = next((unavailable[d] for d in by_address[address].depends_on if d in unavailable), None)
            if why is not None:
                blocked[address] = why
                unavailable[address] = why
    lock = threading.Lock()

    def save(names: set[str]) -> None:
        if options.dry_run:
            return
        for name in sorted(names):
            state = inventory_state[name].with_entries(entries[name])
            inventory_state[name] = backends[name].inventory(result.views[name].scope).save(state)
            renamed = result.views[name].renamed
            if name in old_entries and renamed is not None:
                old = old_state[name].with_entries(old_entries[name])
                old_state[name] = backends[name].inventory(renamed.scope).save(old)

    def run(change: ResourceChange) -> None:
        writer = writers[change.address.backend]
        if on_event:
            on_event("start", change, None)
        if change.action is Action.CREATE:
            writer.create(_resource(change))
        elif change.action in (Action.UPDATE, Action.ADOPT):
            writer.update(_resource(change), _live(change))
        elif change.action is Action.REPLACE:
            writer.replace(_resource(change), _live(change))
        elif change.action is Action.DELETE:
            writer.delete(_live(change))
        elif change.action is Action.MOVE:
            if change.fires:
                # never two live schedules or triggers: the old one goes first, the new one right after
                writer.delete(_old_live(change))
                writer.create(_resource(change))
            else:
                writer.create(_resource(change))
                with lock:
                    deferred.append(change)

    deferred: list[ResourceChange] = []
    for wave in plan.waves:
        todo: list[ResourceChange] = []
        for address in wave:
            change = by_address[address]
            if address in blocked:
                outcome.skipped[address] = blocked[address]
                if on_event:
                    on_event("skip", change, blocked[address])
                continue
            todo.append(change)
        if not todo:
            continue
        for change in todo:
            entries[change.address.backend][change.address] = _intent(change)
            if change.moved_from is not None:
                book(change)[change.moved_from] = _old_intent(change)
        save({c.address.backend for c in todo})
        workers = max(1, min(options.parallelism, len(todo)))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flowplan-write") as pool:
            futures = {pool.submit(run, change): change for change in todo}
            for future in concurrent.futures.as_completed(futures):
                change = futures[future]
                error = future.exception()
                with lock:
                    outcome.writes += 1
                    if error is None:
                        outcome.succeeded.append(change.address)
                        _confirm(entries[change.address.backend], change)
                        if change.action is Action.MOVE and change.fires and change.moved_from is not None:
                            book(change).pop(change.moved_from, None)
                        if on_event:
                            on_event("done", change, None)
                        continue
                    message = _describe_error(error)
                    outcome.failed[change.address] = message
                    if on_event:
                        on_event("fail", change, message)
                    for dep in order.dependents(change.address):
                        blocked.setdefault(dep, f"{change.address} failed")
                    if not isinstance(error, FlowplanError):
                        # keep the intent: the next run reads back and repairs
                        continue
        save({c.address.backend for c in todo})
    _clean_up_moves(deferred, writers, order, outcome, book, save, on_event)
    if not options.dry_run:
        outcome.revision = _record_revision(result, backends, entries, inventory_state, provenance, outcome)
    return outcome


def _starting_entries(view: BackendView, planned: Mapping[Address, ResourceChange]) -> dict[Address, InventoryEntry]:
    """The inventory an apply starts from: intents reconciled, unchanged owned objects at desired names recorded."""
    current = dict(view.reconciled)
    for address, live in view.live.owned.items():
        if address in view.desired and address not in current and address not in planned:
            current[address] = InventoryEntry(
                spec_hash(live.body, view.desired[address].volatile_paths),
                "applied",
                live.owner.flow if live.owner else None,
            )
    return current


def inventory_repairs(result: PlanResult) -> dict[str, dict[Address, InventoryEntry]]:
    """Backends whose stored inventory differs from what planning reconciled, with the entries to store.

    Only an apply that was killed between recording an intent and confirming
    it leaves such a difference (a ``pending-*`` entry, or an object it made
    whose intent it never saved). Planning resolves them in memory; when the
    plan is empty nothing else would ever write them, so ``apply`` stores them
    (under the lock) and the inventory matches what is live again.
    """
    planned = result.plan.by_address()
    repairs = {}
    for name, view in sorted(result.views.items()):
        entries = _starting_entries(view, planned)
        if entries != dict(view.inventory.entries):
            repairs[name] = entries
    return repairs


def repair_inventories(
    result: PlanResult, backends: Mapping[str, Backend], repairs: Mapping[str, Mapping[Address, InventoryEntry]]
) -> None:
    """Store the repaired inventories (the caller holds the locks)."""
    for name, entries in sorted(repairs.items()):
        view = result.views[name]
        backends[name].inventory(view.scope).save(view.inventory.with_entries(entries))


def _describe_error(error: BaseException) -> str:
    if isinstance(error, FlowplanError):
        return error.render()
    return f"{type(error).__name__}: {error}"


def _resource(change: ResourceChange) -> Resource:
    assert change.after is not None
    return Resource(
        address=change.address,
        body=change.after,
        depends_on=change.depends_on,
        flow=change.flow,
        volatile_paths=change.volatile_paths,
        sensitive_paths=change.sensitive_paths,
        protect=change.protect,
    )


def _live(change: ResourceChange) -> Any:
    from planner.resources import LiveResource

    assert change.before is not None
    return LiveResource(
        address=change.address,
        body=change.before,
        version=change.live_version or "",
        meta=dict(change.live_meta),
        protected=change.protect,
    )


def _old_live(change: ResourceChange) -> Any:
    from planner.resources import LiveResource

    assert change.before is not None and change.moved_from is not None
    return LiveResource(
        address=change.moved_from,
        body=change.before,
        version=change.live_version or "",
        meta=dict(change.live_meta),
        protected=change.protect,
    )


def _old_intent(change: ResourceChange) -> InventoryEntry:
    return InventoryEntry(spec_hash(change.before or {}, change.volatile_paths), "pending-delete", change.flow)


def _clean_up_moves(
    deferred: list[ResourceChange],
    writers: Mapping[str, Any],
    order: Any,
    outcome: ApplyOutcome,
    book: Callable[[ResourceChange], dict[Address, InventoryEntry]],
    save: Callable[[set[str]], None],
    on_event: Event | None,
) -> None:
    """Delete the old objects of moves once everything that used them has moved (dependents first).

    A move whose dependents failed keeps its old object: the old schedule may
    still point at it, and the next run finishes the job.
    """
    troubled = set(outcome.failed) | set(outcome.skipped)
    ready = [c for c in deferred if not (order.dependents(c.address) & troubled)]
    ranks = order.ranks
    ready.sort(key=lambda c: (-ranks.get((c.address.backend, c.address.kind), 0), c.address.sort_key()))
    for change in ready:
        assert change.moved_from is not None
        try:
            writers[change.address.backend].delete(_old_live(change))
        except FlowplanError as exc:
            outcome.failed[change.moved_from] = exc.render()
            if on_event:
                on_event("fail", change, f"removing {change.moved_from}: {exc.message}")
            continue
        book(change).pop(change.moved_from, None)
    if ready:
        save({c.address.backend for c in ready})


def _intent(change: ResourceChange) -> InventoryEntry:
    state = {
        Action.CREATE: "pending-create",
        Action.UPDATE: "pending-update",
        Action.ADOPT: "pending-update",
        Action.MOVE: "pending-create",
        Action.REPLACE: "pending-update",
        Action.DELETE: "pending-delete",
    }[change.action]
    body = change.after if change.after is not None else change.before or {}
    return InventoryEntry(spec_hash(body, change.volatile_paths), state, change.flow)  # type: ignore[arg-type]


def _confirm(entries: dict[Address, InventoryEntry], change: ResourceChange) -> None:
    if change.action is Action.DELETE:
        entries.pop(change.address, None)
        return
    assert change.after is not None
    entries[change.address] = InventoryEntry(spec_hash(change.after, change.volatile_paths), "applied", change.flow)


def _who() -> str:
    for key in ("FLOWPLAN_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        return getpass.getuser()
    except Exception:
        return f"uid-{os.getuid()}"


def _hashed_sensitive(change: ResourceChange) -> dict[str, Any] | None:
    if change.after is None:
        return None
    if not change.sensitive_paths:
        return change.after  # nothing to mask: no copy (a revision of 10,000 flows copied 30,000 bodies)
    body = json.loads(json.dumps(change.after))
    for pointer in change.sensitive_paths:
        try:
            value = get_pointer(body, pointer)
        except KeyError:
            continue
        digest_text = hashlib.sha256(str(value).encode()).hexdigest()
        set_pointer(body, pointer, f"(sensitive sha256:{digest_text[:16]})")
    return body


def _record_revision(
    result: PlanResult,
    backends: Mapping[str, Backend],
    entries: Mapping[str, dict[Address, InventoryEntry]],
    states: dict[str, InventoryState],
    provenance: Provenance,
    outcome: ApplyOutcome,
) -> int | None:
    plan: Plan = result.plan
    number: int | None = None
    done = set(outcome.succeeded)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, state in states.items():
        changes = [c for c in plan.changes if c.address.backend == name and c.address in done]
        if not changes:
            continue
        revisions = list(state.revisions)
        number = (revisions[-1].number if revisions else 0) + 1
        summary: dict[str, int] = {}
        for c in changes:
            summary[c.action.value] = summary.get(c.action.value, 0) + 1
        view = result.views[name]
        bodies = {
            str(a): _hashed_sensitive(_as_change(r)) for a, r in view.desired.items() if plan.inputs.mode != "destroy"
        }
        packed = _pack(bodies)
        revisions.append(
            Revision(
                number=number,
                time=now,
                who=_who(),
                git_commit=provenance.git_commit,
                manifest_digest=provenance.manifest_digest,
                flowplan_version=provenance.flowplan_version,
                summary=summary,
                changes=[{"address": str(c.address), "action": c.action.value} for c in changes],
                bodies=packed,
            )
        )
        trimmed = [
            r if i >= len(revisions) - REVISIONS_WITH_BODIES else replace(r, bodies=None)
            for i, r in enumerate(revisions[-MAX_REVISIONS:])
        ]
        new_state = replace(state, revisions=trimmed).with_entries(entries[name])
        states[name] = backends[name].inventory(view.scope).save(new_state)
    return number


def _pack(bodies: Mapping[str, Any]) -> str:
    """``canonical_json(bodies)``, zlib-compressed and base64-encoded, without holding the whole JSON text.

    The same bytes as compressing the text at once; one body's JSON at a time is in memory (the
    revision of a 10,000-flow apply was a 100 MB string, then as many bytes, at the peak of the apply).
    """
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(b"{")]
    for i, key in enumerate(sorted(bodies)):
        text = ("," if i else "") + json.dumps(key, ensure_ascii=False) + ":" + canonical_json(bodies[key])
        chunks.append(compressor.compress(text.encode()))
    chunks.append(compressor.compress(b"}"))
    chunks.append(compressor.flush())
    return base64.b64encode(b"".join(chunks)).decode()


def _as_change(resource: Resource) -> ResourceChange:
    return ResourceChange(
        address=resource.address,
        action=Action.NOOP,
        after=resource.body,
        sensitive_paths=resource.sensitive_paths,
    )


def raise_for_outcome(outcome: ApplyOutcome) -> None:
    """Turn failures into one ApplyError a person can act on."""
    if outcome.ok:
        return
    lines = []
    for address, message in sorted(outcome.failed.items(), key=lambda kv: kv[0].sort_key()):
        first, _, rest = message.partition("\n")
        lines.append(f"  failed  {address}: {first}")
        if rest:
            lines.extend(f"          {line}" for line in rest.splitlines())
    for address, why in sorted(outcome.skipped.items(), key=lambda kv: kv[0].sort_key()):
        lines.append(f"  skipped {address} (because {why})")
    conflict = any(isinstance(x, str) and "changed since" in x for x in outcome.failed.values())
    hint = "independent changes were applied; fix the cause and run flowplan apply again: it converges"
    if conflict:
        hint = "someone changed these objects since the plan; run flowplan plan to see the current state, then apply"
    raise ApplyError(
        f"{len(outcome.failed)} change(s) failed and {len(outcome.skipped)} were skipped "
        f"({len(outcome.succeeded)} succeeded):\n" + "\n".join(lines),
        hint=hint,
    )


__all__ = [
    "ApplyOptions",
    "ApplyOutcome",
    "ConflictError",
    "LockError",
    "acquire_locks",
    "apply_plan",
    "inventory_repairs",
    "raise_for_outcome",
    "release_locks",
    "repair_inventories",
]
