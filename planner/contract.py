"""The contract between the planner and a backend: everything a backend offers, declared here.

A backend folder (``backends/<name>/``) implements these protocols; the core
imports no backend. Optional behaviour is declared as data in
:class:`Capabilities` (as a Terraform provider declares its
``ServerCapabilities``) and every optional hook has a default implementation
on its protocol, so the core calls hooks unconditionally and never discovers
them by name. A backend class subclasses the protocols it implements to
inherit those defaults.

The planner gets a :class:`Compiler`, a :class:`Reader` and an
:class:`Inventory` to plan with — never a :class:`Writer` or a :class:`Lock`,
so planning cannot have side effects by construction. The applier gets the
writer, the inventory and the lock.

Contracts every backend keeps (the tests of each backend check them):

- A reader lists; it does not GET per resource. It returns normalized bodies
  (server-filled fields removed), so a fresh apply followed by a plan is empty.
- A writer stamps ownership markers in the same request that creates an
  object, retries only idempotent calls (with backoff and jitter), reads back
  after an ambiguous outcome, and raises :class:`~planner.errors.ConflictError`
  when the object changed since it was read or is not ours.
- Writers are safe to call from several threads at once.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from planner.codec import Options, Serialisable, decode, rule
from planner.errors import BackendError, ConflictError, LockError, TransientError
from planner.manifest import Backend as BackendSpec
from planner.manifest import Manifest
from planner.resources import Address, LiveResource, Provenance, Resource

__all__ = [
    "Backend",
    "BackendError",
    "BackendSpec",
    "BranchInfo",
    "Capabilities",
    "CompileContext",
    "Compiler",
    "ConflictError",
    "FlowTarget",
    "Inventory",
    "InventoryEntry",
    "InventoryState",
    "LiveState",
    "Lock",
    "LockError",
    "LockInfo",
    "NotSupported",
    "Operator",
    "Reader",
    "Revision",
    "RollbackWriter",
    "Run",
    "RunOutcome",
    "ScheduleExpression",
    "ScheduleFacts",
    "Scope",
    "Submitted",
    "TransientError",
    "TriggerHealth",
    "Writer",
    "lock_held",
    "operator_of",
    "unreachable",
]


@dataclass(frozen=True)
class Scope:
    """What one backend holds for one project and branch."""

    backend: str
    project: str
    branch: str


@dataclass(frozen=True)
class CompileContext:
    manifest: Manifest
    backend: BackendSpec
    provenance: Provenance


@dataclass(frozen=True)
class ScheduleExpression(Serialisable):
    """One expression of a schedule object, in terms any orchestrator's schedule can be explained in.

    ``written`` is what the object says (shown to people). ``cron`` is the standard 5-field cron firing
    at the same times; without one, ``every`` is a fixed rate (count, and ``minute``, ``hour`` or
    ``day``) and ``once_at`` a single instant as written; with none of them it is shown as written.
    """

    written: str
    cron: str | None = None
    every: tuple[int, str] | None = None
    once_at: str | None = None


@dataclass(frozen=True)
class ScheduleFacts(Serialisable):
    """What a schedule object (a CronWorkflow, a Scheduler schedule, a scheduled rule) says, as plain data."""

    expressions: tuple[ScheduleExpression, ...]
    timezone: str = "UTC"
    suspended: bool = False


class Compiler(Protocol):
    """Manifest → desired resources for one backend. Pure: no I/O, no SDK."""

    def compile(self, context: CompileContext) -> list[Resource]: ...

    def schedule_facts(self, kind: str, body: Mapping[str, Any] | None) -> ScheduleFacts | None:
        """The schedule a body of ``kind`` (desired or live) carries, so the core explains it without
        reading orchestrator bodies; None when it carries none (the default: no schedules)."""
        return None


@dataclass
class LiveState:
    """What a reader found.

    ``owned``: carries this project's and branch's markers. ``others``: found at
    a desired address but not ours (unmarked, or another project or branch) —
    a conflict or an adoption candidate, never touched without ``import``.
    ``retained``: owned objects nothing desires any more that the backend must
    keep (e.g. job definitions an older published state machine version still
    runs): never planned for deletion, listed apart.
    """

    owned: dict[Address, LiveResource] = field(default_factory=dict)
    others: dict[Address, LiveResource] = field(default_factory=dict)
    calls: Mapping[str, int] = field(default_factory=dict)
    retained: dict[Address, LiveResource] = field(default_factory=dict)


class Reader(Protocol):
    """Reads the live state.

    ``prefetch(scope)``, called once the scope's inventory is loaded (while the compile runs),
    reads what it names ahead of :meth:`read`, which must give the same answer with or without
    it; by default it does nothing. ``close`` stops what a read-ahead still runs.
    """

    def prefetch(self, scope: Scope) -> None:
        """Start reads of what the loaded inventory names."""
        return None

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        """List what ``scope`` owns, and whatever sits at the desired addresses."""
        ...

    def close(self) -> None:
        """Stop what the read-ahead hooks still run (a plan that ended before :meth:`read`)."""
        return None


class Writer(Protocol):
    def create(self, resource: Resource) -> LiveResource | None: ...

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None: ...

    def delete(self, live: LiveResource) -> None: ...

    def replace(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        """Replace an object whose changed field cannot change in place: by default delete, then create.

        A backend that can do better (keep a name's history, swap atomically) overrides it and
        says so with ``Capabilities.replace_in_place``.
        """
        self.delete(live)
        return self.create(resource)


class RollbackWriter(Writer, Protocol):
    """A writer for returning to a recorded revision (see :meth:`Operator.rollback_writer`)."""

    def restored(self) -> Sequence[tuple[str, str]]:
        """``(object, version)`` for each object moved back to a version it had published, for the summary."""
        return ()


def _falsy(value: Any, options: Options) -> bool:
    return not value


def _none(value: Any, options: Options) -> bool:
    return value is None


@dataclass(frozen=True)
class InventoryEntry(Serialisable):
    """One address flowplan applied (or is about to), with the spec hash it wrote.

    ``state`` is ``applied`` once confirmed; ``pending-*`` records an intent
    written before the call, so a crash between intent and confirmation is
    repaired by the next run (adopted when live matches, dropped otherwise).
    """

    spec_hash: str = field(metadata=rule(key="hash", missing=""))
    state: Literal["applied", "pending-create", "pending-update", "pending-delete"] = "applied"
    flow: str | None = field(default=None, metadata=rule(omit=_falsy))


@dataclass(frozen=True)
class Revision(Serialisable):
    """One apply, for history and rollback; ``bodies`` hold applied bodies (sensitive values hashed)."""

    number: int = field(metadata=rule(missing=0))
    time: str = field(metadata=rule(missing=""))
    who: str = field(metadata=rule(missing=""))
    git_commit: str | None = field(metadata=rule(missing=None))
    manifest_digest: str = field(metadata=rule(missing=""))
    flowplan_version: str = field(metadata=rule(missing=""))
    summary: Mapping[str, int] = field(metadata=rule(missing={}))
    changes: Sequence[Mapping[str, Any]] = field(default=(), metadata=rule(missing=()))
    bodies: str | None = field(default=None, metadata=rule(omit=_none))


@dataclass(frozen=True)
class InventoryState(Serialisable):
    """The inventory of one project and branch on one backend (ApplySet's parent object)."""

    entries: Mapping[Address, InventoryEntry] = field(default_factory=dict, metadata=rule(missing={}))
    revisions: Sequence[Revision] = field(default=(), metadata=rule(missing=()))
    #: The store's concurrency token: given by whoever loaded the state, never written into it.
    version: str | None = field(default=None, metadata=rule(stored=False))

    def json_extras(self, options: Options) -> dict[str, Any]:
        return {"format": 1}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: str | None = None) -> InventoryState:
        return decode(cls, data, version=version)

    def with_entries(self, entries: Mapping[Address, InventoryEntry]) -> InventoryState:
        return replace(self, entries=dict(entries))


class Inventory(Protocol):
    def load(self) -> InventoryState:
        """The current state (empty when flowplan never applied here)."""
        ...

    def save(self, state: InventoryState) -> InventoryState:
        """Replace the stored state; returns it with the new concurrency version."""
        ...


#: Credentials backends loaded (bearer tokens, secret keys, session tokens): the CLI scrubs them from
#: everything it prints, --debug tracebacks included, whatever message quotes them.
CREDENTIALS: set[str] = set()


def remember_credential(value: object) -> None:
    """Record a credential to be scrubbed from output (values shorter than 8 characters are not secrets)."""
    if isinstance(value, str) and len(value.strip()) >= 8:
        CREDENTIALS.add(value.strip())


#: Seconds an apply lock lives without renewal (renewed every third of it while the apply runs).
DEFAULT_LOCK_TTL = 300.0
LOCK_TTL_ENV = "FLOWPLAN_LOCK_TTL"


def lock_ttl() -> float:
    """The lock TTL: ``FLOWPLAN_LOCK_TTL`` (seconds, at least 1) when set, else 5 minutes.

    A lock left by a killed apply is reported with its holder until it expires,
    then the next apply takes it over; tests and short CI jobs shorten the wait.
    """
    raw = os.environ.get(LOCK_TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TTL
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 1.0 or value == float("inf"):
        raise LockError(
            f"{LOCK_TTL_ENV}={raw!r} is not a number of seconds of at least 1",
            hint=f"unset {LOCK_TTL_ENV} for the default ({DEFAULT_LOCK_TTL:.0f} s), or set it to e.g. 600",
        )
    return value


@dataclass(frozen=True)
class LockInfo(Serialisable):
    """Who holds (or asks for) the apply lock.

    ``generation`` is the fencing token: the store raises it at every acquisition and takeover,
    so a paused holder that resumes after a takeover holds a smaller number than the lock's and
    its writes can be refused (0 when the store keeps no generation).
    """

    holder: str = field(metadata=rule(missing="?"))
    host: str = field(metadata=rule(missing="?"))
    pid: int = field(metadata=rule(missing=0))
    operation: str = "apply"
    acquired_at: float = 0.0
    expires_at: float = 0.0
    generation: int = 0

    @classmethod
    def here(cls, operation: str = "apply", ttl: float | None = None) -> LockInfo:
        """This process as a lock holder; ``ttl`` defaults to :func:`lock_ttl` (``FLOWPLAN_LOCK_TTL``)."""
        ttl = lock_ttl() if ttl is None else ttl
        now = time.time()
        try:
            user = getpass.getuser()
        except Exception:
            user = f"uid-{os.getuid()}"
        holder = os.environ.get("FLOWPLAN_LOCK_HOLDER") or os.environ.get("GITHUB_ACTOR") or user
        return cls(holder, socket.gethostname(), os.getpid(), operation, now, now + ttl)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired_at)) if self.acquired_at else "?"
        return f"{self.holder} on host {self.host} (pid {self.pid}, {self.operation} since {when})"

    @property
    def expired(self) -> bool:
        return bool(self.expires_at) and time.time() > self.expires_at


class Lock(Protocol):
    def acquire(self, info: LockInfo) -> None:
        """Take the lock or raise :class:`LockError` naming the holder; an expired lock is taken over."""
        ...

    def renew(self, info: LockInfo) -> None:
        """Extend the lock; raise :class:`LockError` when it is no longer ours (expired and taken over, forced)."""
        ...

    def release(self, info: LockInfo) -> None: ...

    def current(self) -> LockInfo | None: ...

    def force_unlock(self) -> LockInfo | None:
        """Remove whatever lock is there; returns who held it."""
        ...


@dataclass(frozen=True)
class Capabilities:
    """What a backend offers beyond the required protocols, declared as data.

    The core reads these flags; it never probes a backend object for methods.

    - ``operate``: :meth:`Backend.operator` returns an :class:`Operator` (status, run, branches,
      rollback's version handling); without it those commands say the backend cannot answer.
    - ``replace_in_place``: the writer's :meth:`Writer.replace` is its own (not delete then create).
    - ``leftovers``: an interrupted apply can leave temporary objects that
      :meth:`Backend.clean_leftovers` removes under the lock.
    """

    operate: bool = False
    replace_in_place: bool = False
    leftovers: bool = False


@runtime_checkable
class Backend(Protocol):
    """One named target from the manifest, opened for use.

    Optional parts have defaults here; a backend overrides those its :class:`Capabilities` declare.
    """

    spec: BackendSpec
    capabilities: Capabilities = Capabilities()

    def compiler(self) -> Compiler: ...

    def reader(self) -> Reader: ...

    def writer(self, dry_run: bool = False) -> Writer:
        """A writer; with ``dry_run`` every write is validated by the backend but nothing persists."""
        ...

    def inventory(self, scope: Scope) -> Inventory: ...

    def lock(self, scope: Scope) -> Lock: ...

    def describe(self) -> str:
        """Where this backend points, for messages (directory, cluster and namespace, account and region)."""
        ...

    def warnings(self) -> Sequence[str]:
        """Warnings every plan on this backend carries (e.g. TLS verification switched off)."""
        return ()

    def leftovers(self) -> Sequence[str]:
        """Temporary objects an interrupted apply left behind (``Capabilities.leftovers``)."""
        return ()

    def clean_leftovers(self) -> Sequence[str]:
        """Remove :meth:`leftovers` (the caller holds the lock); returns what was removed."""
        return ()

    def operator(self) -> Operator:
        """Reads and writes for operating what is deployed (``Capabilities.operate``)."""
        spec = self.spec
        raise NotSupported(
            f"backend {spec.name!r} (type {spec.type}) cannot report runs, triggers or branches",
            hint="status, run, branches and rollback's version handling need a backend with an operator",
        )

    def close(self) -> None:
        """Release what the opened backend holds (connections, temporary files); its opener calls it once, last."""
        return None


def unreachable(what: str, detail: str, hint: str) -> BackendError:
    return BackendError(f"cannot reach {what}: {detail}", hint=hint)


def lock_held(info: LockInfo, where: str) -> LockError:
    return LockError(
        f"the apply lock for {where} is held by {info.describe()}",
        hint="wait for that run to finish; if it died, run `flowplan force-unlock` after checking it is gone "
        f"(the lock expires by itself at {time.strftime('%H:%M:%S UTC', time.gmtime(info.expires_at))})",
    )


# --------------------------------------------------------------------------- operating what is deployed
#
# Planning and applying need the protocols above; `flowplan status`, `run`, `branches` and `rollback`
# also need to read runs, trigger plumbing and other branches, and to start a run. Those reads and writes
# live behind an optional :class:`Operator` (``Backend.operator()``), so a backend that cannot answer them
# (the files backend has no runs) says so through :class:`NotSupported` instead of the command guessing.

#: A run's outcome in flowplan's words; the backend's own status stays in ``Run.detail``.
RunOutcome = Literal["succeeded", "failed", "running", "pending", "aborted", "unknown"]


class NotSupported(BackendError):
    """This backend cannot do what was asked (the message names the backend and why)."""


@dataclass(frozen=True)
class FlowTarget:
    """A flow as one backend deploys it: its compiled resources name the objects that run it.

    ``parameters`` are the flow's parameters with their defaults as text (what a run gets unless
    ``flowplan run --param`` says otherwise).
    """

    name: str
    resources: tuple[Resource, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run(Serialisable):
    """One run of a flow (an Argo Workflow, a Step Functions execution). Times are ISO 8601 UTC."""

    flow: str
    id: str
    outcome: RunOutcome
    started: str | None = None
    finished: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class TriggerHealth(Serialisable):
    """Whether one object that starts runs (a schedule, a sensor, a rule) and its plumbing can do so.

    ``healthy`` is None when the backend cannot tell (no controller has reported on the object yet);
    ``state`` is one word (``enabled``, ``suspended``, ``missing``, ``degraded``, ``unknown``).
    """

    flow: str
    kind: str
    name: str
    state: str
    healthy: bool | None
    detail: str = ""


@dataclass(frozen=True)
class Submitted:
    """A run that was just started, and how to follow it (commands and URLs a person can paste)."""

    flow: str
    id: str
    where: str
    watch: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BranchInfo:
    """One branch deployment of a project on one backend, as its inventory and its markers show it."""

    backend: str
    branch: str
    tracked: int = 0
    marked: int = 0
    last: Revision | None = None
    has_inventory: bool = False


class Operator(Protocol):
    """Reads and writes for operating what is deployed; ``Backend.operator()`` returns one (optional).

    Methods take every flow at once so a backend can answer with one listing (Argo lists the
    Workflows of a project and branch once, not once per flow). A method a backend cannot answer
    raises :class:`NotSupported`.
    """

    def runs(self, scope: Scope, flows: Sequence[FlowTarget], limit: int) -> dict[str, list[Run]]:
        """The last ``limit`` runs of each flow, newest first."""
        ...

    def trigger_health(
        self, scope: Scope, flows: Sequence[FlowTarget], live: LiveState
    ) -> dict[str, list[TriggerHealth]]:
        """Per flow: its schedules and triggers and the plumbing they need (``live``: what the reader found)."""
        ...

    def submit(self, scope: Scope, flow: FlowTarget, params: Mapping[str, str]) -> Submitted:
        """Start one run of ``flow`` now, with ``params`` over the parameters' defaults."""
        ...

    def branches(self, project: str) -> list[BranchInfo]:
        """Every branch deployment of ``project`` on this backend (inventories and marked objects)."""
        ...

    def rollback_writer(self, scope: Scope, dry_run: bool = False) -> RollbackWriter | None:
        """A writer for rollbacks when returning to a recorded state differs from applying it (else None)."""
        ...


def operator_of(backend: Backend) -> Operator:
    """The backend's :class:`Operator`, or :class:`NotSupported` naming the backend and its type."""
    return backend.operator()
