"""The files backend's state beside the manifest: the inventory and the apply lock of each scope.

Both live in ``.flowplan/<backend>/``, named ``<project>.<branch>.json`` and ``.lock`` (see
:func:`scope_file`). The lock carries a fencing token, and an inventory save is a compare-and-swap
that also checks the lock is still this process's: an apply paused past its lock's TTL, and
resumed after another apply took over, saves nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from backends.files_format import version_of
from planner.contract import InventoryState, LockInfo, Scope, lock_held
from planner.errors import BackendError, ConflictError, LockError

__all__ = ["FileLock", "JsonFileInventory", "legacy_scope_file", "scope_file"]


class Write(Protocol):
    """The files backend's atomic write: complete or absent, OS errors as BackendError."""

    def __call__(self, path: Path, data: bytes, *, exclusive: bool = False) -> None: ...


def scope_file(scope: Scope) -> str:
    """The file name (without suffix) of a scope's inventory and lock: ``<project>.<branch>``.

    Projects and branches are DNS labels (no ``.``), so the name is an injective function of the
    pair: ``a`` + ``b-prod`` and ``a-b`` + ``prod`` no longer meet in one file.
    """
    return f"{scope.project}.{scope.branch}"


def legacy_scope_file(scope: Scope) -> str:
    """The name older flowplan versions used (``<project>-<branch>``, not injective), read for migration."""
    return f"{scope.project}-{scope.branch}"


def _stage_name(path: Path) -> Path:
    """A fresh temporary name beside ``path``, shaped like an atomic write's (so leftovers are recognised)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


class JsonFileInventory:
    """The inventory as one JSON file (``.flowplan/<backend>/<scope file name>.json``, see :func:`scope_file`).

    A save is a compare-and-swap: the file must still be the one the state was loaded from
    (``InventoryState.version``, None when there was none), and, when ``fence`` is given (the lock
    this process took for the scope), the lock file must still be that lock, checked right before
    the rename. An apply that lost its lock therefore saves nothing, except in the microseconds
    between that check and the rename. No lock is held meanwhile: an ``flock`` held by a paused
    process would stop the run that took the apply lock over.

    ``legacy`` is where an older flowplan kept this scope's inventory: loaded when the file is
    missing, removed by the first save here.
    """

    def __init__(self, path: Path, write: Write, fence: FileLock | None = None, legacy: Path | None = None) -> None:
        """``write(path, data)``: the backend's atomic write (raises BackendError on OS errors)."""
        self.path = path
        self.write = write
        self.fence = fence
        self.legacy = legacy

    def _source(self) -> Path:
        if self.legacy is not None and not self.path.exists() and self.legacy.exists():
            return self.legacy
        return self.path

    def load(self) -> InventoryState:
        source = self._source()
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            return InventoryState()
        try:
            return InventoryState.from_json(json.loads(data), version_of(data))
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(
                f"the inventory {source} is damaged ({exc})",
                hint="restore it from git history; flowplan will not guess what it owns",
            ) from None

    def save(self, state: InventoryState) -> InventoryState:
        data = (json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n").encode()
        staged = _stage_name(self.path)
        self.write(staged, data)
        try:
            source = self._source()
            try:
                current: str | None = version_of(source.read_bytes())
            except FileNotFoundError:
                current = None
            if current != state.version:
                raise ConflictError(
                    f"the inventory {self.path} changed since this run read it",
                    hint="another run wrote it; plan and apply again",
                )
            # Checked last, right before the rename: no process-wide lock is held here, so a run
            # paused at any point never blocks the run that took its lock over.
            if self.fence is not None:
                self.fence.check()
            try:
                os.replace(staged, self.path)
            except OSError as exc:
                raise BackendError(
                    f"cannot write {self.path}: {exc.strerror or exc}",
                    hint="check the directory's free space and permissions; the next flowplan apply converges",
                ) from None
            if source != self.path:
                with contextlib.suppress(FileNotFoundError):
                    source.unlink()
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        return InventoryState(state.entries, state.revisions, version_of(data))


class FileLock:
    """A lock file created exclusively; an expired one is moved aside atomically, then retaken.

    Each acquisition writes a generation into the lock file: this machine's clock in microseconds,
    and above the generation of a lock it takes over, so it grows at every acquisition without a
    counter file. It is part of the identity :meth:`check` compares before an inventory save.
    """

    def __init__(self, path: Path, where: str, write: Write, legacy: Path | None = None) -> None:
        """``write(path, data, exclusive=...)``: the backend's atomic write (``backends.files._atomic_write``)."""
        self.path = path
        self.where = where
        self.write = write
        #: where an older flowplan kept this lock: a live lock there is still honoured
        self.legacy = legacy
        #: what this process wrote when it took the lock (None while it holds nothing)
        self.held: LockInfo | None = None

    def current(self) -> LockInfo | None:
        for path in (self.path, self.legacy):
            if path is None:
                continue
            try:
                return LockInfo.from_json(json.loads(path.read_text()))
            except FileNotFoundError:
                continue
            except (ValueError, OSError):
                return LockInfo("unknown (unreadable lock file)", "?", 0)
        return None

    @staticmethod
    def _generation(seen: LockInfo | None) -> int:
        return max(time.time_ns() // 1000, (seen.generation if seen is not None else 0) + 1)

    def acquire(self, info: LockInfo) -> None:
        """Create the lock file with its content in one step (a hard link of a complete temporary file).

        Created empty and then written, a racing run could read it half-made and report an "unknown"
        holder; linked complete, it names its holder from the first moment it exists.
        """
        legacy = self._legacy_holder()
        if legacy is not None:
            raise lock_held(legacy, self.where)
        seen: LockInfo | None = None
        for _ in range(5):
            mine = replace(info, generation=self._generation(seen))
            try:
                self.write(self.path, json.dumps(mine.to_json()).encode(), exclusive=True)
            except ConflictError:
                holder = self.current()
                if holder is None:
                    continue
                if holder.expired:
                    seen = holder
                    self._move_aside_if_expired()
                    continue
                raise lock_held(holder, self.where) from None
            self.held = mine
            return
        holder = self.current()
        if holder is not None:
            raise lock_held(holder, self.where)
        raise LockError(f"could not take the lock {self.path}", hint="try again")

    def _legacy_holder(self) -> LockInfo | None:
        """A live lock at the old file name (an older flowplan is applying this scope right now)."""
        if self.legacy is None:
            return None
        try:
            holder = LockInfo.from_json(json.loads(self.legacy.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return LockInfo("unknown (unreadable lock file)", "?", 0)
        return None if holder.expired else holder

    def _move_aside_if_expired(self) -> None:
        """Remove an expired lock; a fresh one another run made meanwhile is put back, not taken."""
        aside = self.path.with_name(f"{self.path.name}.expired-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = LockInfo.from_json(json.loads(aside.read_text()))
        except (ValueError, OSError):
            moved = None
        if moved is not None and not moved.expired:
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)  # give the other run its lock back
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)

    def _mine(self, info: LockInfo) -> bool:
        try:
            holder: LockInfo | None = LockInfo.from_json(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError, OSError):
            holder = None
        ours = info if self.held is None else self.held
        return holder is not None and (holder.host, holder.pid, holder.acquired_at, holder.generation) == (
            ours.host,
            ours.pid,
            ours.acquired_at,
            ours.generation,
        )

    def check(self) -> None:
        """Raise :class:`LockError` unless the lock file is still the one this process took, unexpired.

        A no-op when this process took no lock here (a command that saves without one).
        """
        if self.held is None:
            return
        holder = self.current()
        if not self._mine(self.held):
            who = holder.describe() if holder is not None else "nobody (it was removed)"
            raise self._lost(f"it is now held by {who}")
        if holder is not None and holder.expired:
            raise self._lost("it expired while this run was not renewing it")

    def _lost(self, why: str) -> LockError:
        return LockError(
            f"the apply lock {self.path} was lost: {why}",
            hint="this run stopped before writing more; check what the other run changed, then plan and apply again",
        )

    def renew(self, info: LockInfo) -> None:
        if not self._mine(info):
            holder = self.current()
            raise self._lost(f"it is now held by {holder.describe() if holder is not None else 'nobody'}")
        renewed = replace(info, generation=self.held.generation) if self.held is not None else info
        self.write(self.path, json.dumps(renewed.to_json()).encode())
        if self.held is not None:
            self.held = renewed

    def release(self, info: LockInfo) -> None:
        if self._mine(info):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.held = None

    def force_unlock(self) -> LockInfo | None:
        holder = self.current()
        for path in (self.path, self.legacy):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return holder
