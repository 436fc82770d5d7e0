"""The files backend: rendered manifests in a directory, the GitOps way.

One YAML file per resource under the target directory (``deploy/`` by
default), laid out ``<namespace>/<kind>/<name>.yaml`` so Argo CD or
``kubectl apply -R`` can sync it. Each file starts with a header naming the
owner (project, branch, flow), the spec hash and the provenance; the
provenance line is the only part that changes when nothing but the commit
changed, and it is excluded from comparison (the format is
:mod:`backends.files_format`'s). The files are scanned in process (about 1.5 s
for the 30,000 files of 10,000 flows): a second process hid most of that
beside the compile, but not enough to earn its place.

Inventory and lock live in ``.flowplan/<backend>/`` beside the manifest, not
in the synced directory. Reads compare file bytes with the rendering before
parsing (a no-change plan parses nothing); writes are atomic (temp file +
rename); only files carrying this project's header are changed; literal
sensitive values are refused, because this directory is committed to git.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import string
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, overload

import yaml

from backends.files_format import (
    BODY_DIGEST_KEY,
    HEADER,
    OWNER_PREFIX,
    PROVENANCE_PREFIX,
    Loader,
    dump_body,
    owner_header,
    proven_owner,
    relative,
    relative_path,
    render_file,
    split_file,
    version_of,
    walk_files,
)
from backends.files_operate import FilesOperator
from backends.files_state import FileLock, JsonFileInventory, legacy_scope_file, scope_file
from backends.origin import made_by
from planner import heap
from planner.contract import (
    Backend,
    Capabilities,
    CompileContext,
    Compiler,
    Inventory,
    LiveState,
    Lock,
    Reader,
    ScheduleFacts,
    Scope,
    Writer,
)
from planner.errors import BackendError, ConflictError, ManifestError, Problem
from planner.manifest import Backend as BackendSpec
from planner.resources import (
    PROTECT_KEY,
    Address,
    LiveResource,
    Owner,
    Resource,
)
from planner.safe_files import MAX_BYTES, UnsafeFile, directory_fd, read_regular
from planner.secrets import find as secrets_in

#: The name of an atomic write's temporary file: ``.<file name>.<8 random characters>.tmp`` (see ``_write_bytes``).
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def _unchanged(
    proven: dict[str, Any] | None, version: str, resource: Resource, scope: Scope, rel: str
) -> LiveResource | None:
    """The live resource when a proven file is exactly what flowplan renders for ``resource``, else None.

    The owner line names this scope, flow, address and spec hash (see :func:`proven_owner`).
    """
    if proven is None or proven != owner_header(resource, scope):
        return None
    return LiveResource(
        address=resource.address,
        body=resource.comparison_body,
        version=version,
        owner=Owner(scope.project, scope.branch, resource.flow),
        spec_hash=resource.spec_hash,
        meta={"path": rel},
        protected=resource.protect,
    )


class _Scanned(NamedTuple):
    """One file as the scan found it (a tuple: 30,000 of them per plan of 10,000 flows)."""

    #: The path relative to the target directory.
    rel: str
    #: The owner header, when the header proves the bytes (see :func:`proven_owner`).
    proven: dict[str, Any] | None
    version: str
    #: The bytes, when the header does not prove them (they are compared the slow way).
    data: bytes | None


def _scan_one(rel: str, path: str) -> _Scanned:
    data = _read_file(path)
    proven = proven_owner(data)
    return _Scanned(rel, proven, version_of(data), None if proven is not None else data)


@overload
def _read_file(path: str) -> bytes: ...
@overload
def _read_file(path: str, *, missing_ok: bool) -> bytes | None: ...
def _read_file(path: str, *, missing_ok: bool = False) -> bytes | None:
    """A rendered file's bytes: a regular file only, never through a link, at most :data:`MAX_BYTES`."""
    try:
        data = read_regular(path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise BackendError(f"cannot read {path}: no such file") from None
    except UnsafeFile as exc:
        raise _refused(exc) from None
    except OSError as exc:
        raise BackendError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise BackendError(
            f"cannot read {path}: it is more than {MAX_BYTES // 1048576} MiB, which no rendered file is",
            hint="remove it, or move it out of the files backend's directory",
        )
    return data


def _refused(exc: UnsafeFile) -> BackendError:
    """The error for a path the files backend will not read or write through (a link, a FIFO, a device)."""
    return BackendError(
        f"refusing {exc}",
        hint="the files backend reads and writes only regular files and folders below the manifest's directory; "
        "replace the link or special file with a regular one (or remove it) and run flowplan again",
    )


class SensitiveGuard(Compiler):
    """Wraps the real compiler: a GitOps directory must never receive a literal secret."""

    def __init__(self, inner: Compiler) -> None:
        self.inner = inner

    def schedule_facts(self, kind: str, body: Mapping[str, Any] | None) -> ScheduleFacts | None:
        return self.inner.schedule_facts(kind, body)

    def compile(self, context: CompileContext) -> list[Resource]:
        manifest = context.manifest
        problems = []
        for flow in manifest.flows_on(context.backend.name):
            for step in flow.steps.values():
                for key, value in step.env.items():
                    if value.sensitive:
                        problems.append(
                            Problem(
                                step.loc,
                                f"flows.{flow.name}.steps.{step.name}.env.{key}",
                                f"sensitive value refused: backend {context.backend.name!r} writes files that are "
                                "committed to git",
                                "reference a Kubernetes Secret instead (a sink's credentials), or deploy this flow "
                                "with the argo backend",
                            )
                        )
        if problems:
            raise ManifestError(problems)
        resources = self.inner.compile(context)
        secrets = [s for s in manifest.sensitive_values if s]
        if secrets:
            for res in resources:
                # The body's strings are decoded values: compare them (and their encodings) to each secret,
                # so an escaped quote, a non-ASCII character or a base64/URL encoding cannot hide one.
                if secrets_in(res.body, secrets):
                    raise ManifestError(
                        Problem(
                            manifest.backends[context.backend.name].loc,
                            f"backends.{context.backend.name}",
                            f"{res.address} would contain the value of a sensitive var; files backends write to git",
                            "use a secret reference, or a backend that talks to the cluster",
                        )
                    )
        return resources


class FilesReader(Reader):
    """Reads the rendered files: a file whose header proves its bytes is never parsed."""

    def __init__(self, target: Path, *, root: Path | None = None) -> None:
        """``root``: the folder below which no link is followed on the way to ``target`` (default ``target``)."""
        self.target = target
        self.root = root if root is not None else target

    def read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        with heap.paused():  # one LiveResource per file: 30,000 at 10,000 flows, no cycles
            try:
                return self._read(scope, desired)
            except UnsafeFile as exc:
                raise _refused(exc) from None

    def _read(self, scope: Scope, desired: Sequence[Resource]) -> LiveState:
        state = LiveState()
        wanted = {relative(r.address): r for r in desired}
        scanned = [_scan_one(rel, path) for rel, path in self._files()]
        top = str(self.target)
        for item in scanned:
            rel = item.rel
            resource = wanted.get(rel)
            if resource is not None:
                live = _unchanged(item.proven, item.version, resource, scope, rel)
                if live is not None:
                    state.owned[resource.address] = live
                    continue
            data = item.data if item.data is not None else _read_file(os.path.join(top, rel), missing_ok=True)
            if data is None:
                continue  # removed since the scan: absent now
            owner, _, body_text = split_file(data)
            if owner is None and resource is None:
                continue  # foreign file elsewhere: not ours, not in the way
            address = resource.address if resource is not None else None
            if address is None:
                try:
                    address = Address.parse(str(owner.get("address", ""))) if owner else None
                except ValueError:
                    address = None
                if address is None or address.backend != scope.backend:
                    continue
            body = self._body(resource, body_text)
            if body is None:
                continue
            live_owner = None
            if owner is not None:
                live_owner = Owner(str(owner.get("project")), str(owner.get("branch")), owner.get("flow"))
            live = LiveResource(
                address=address,
                body=body,
                version=version_of(data),
                owner=live_owner,
                spec_hash=owner.get("spec-hash") if owner else None,
                meta={"path": rel},
                protected=bool(owner.get("protect")) if owner else False,
                made_by=made_by(body),
            )
            if live.owned_by(scope.project, scope.branch):
                state.owned[address] = live
            elif resource is not None:
                state.others[address] = live
        state.calls = {"files read": len(scanned)}
        return state

    def _files(self) -> Iterator[tuple[str, str]]:
        return walk_files(str(self.target), root=str(self.root))

    def _body(self, resource: Resource | None, body_text: str) -> dict[str, Any] | None:
        if resource is not None and body_text == dump_body(resource.comparison_body):
            return resource.comparison_body  # rendered by a flowplan that wrote no body digest
        try:
            parsed = yaml.load(body_text, Loader=Loader)
        except yaml.YAMLError:
            parsed = {"unparseable": body_text[:2000]}
        if not isinstance(parsed, dict):
            parsed = {"unparseable": body_text[:2000]}
        return parsed


class FilesWriter(Writer):
    def __init__(
        self, target: Path, scope: Scope, provenance: dict[str, str], dry_run: bool, *, root: Path | None = None
    ):
        """``root``: the folder below which no link is followed on the way to a file (default ``target``)."""
        self.target = target
        self.root = root if root is not None else target
        self.provenance = provenance
        self.dry_run = dry_run
        self.scope = scope

    def _scope(self, resource: Resource) -> Scope:
        return self.scope

    def _check(self, path: Path, live: LiveResource) -> bytes:
        data = _read_file(str(path), missing_ok=True)
        if data is None:
            raise ConflictError(
                f"{live.address}: the file {path} was deleted since the plan", hint="run flowplan plan again"
            )
        if version_of(data) != live.version:
            raise ConflictError(
                f"{live.address}: the file {path} changed since the plan was made",
                hint="run flowplan plan to see the current state, then apply",
            )
        return data

    def create(self, resource: Resource) -> LiveResource | None:
        path = self.target / relative_path(resource.address)
        if os.path.lexists(path):
            raise ConflictError(f"{resource.address}: the file {path} appeared since the plan", hint="plan again")
        data, _ = render_file(resource, self._scope(resource), self.provenance)
        if not self.dry_run:
            _atomic_write(path, data, exclusive=True, root=self.root)
        return None

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        path = self.target / relative_path(resource.address)
        self._check(path, live)
        data, _ = render_file(resource, self._scope(resource), self.provenance)
        if not self.dry_run:
            _atomic_write(path, data, root=self.root)
        return None

    def delete(self, live: LiveResource) -> None:
        path = self.target / relative_path(live.address)
        self._check(path, live)
        if self.dry_run:
            return
        try:
            with directory_fd(self.root, path.parent.relative_to(self.root).parts) as folder:
                os.unlink(path.name, dir_fd=folder)
        except UnsafeFile as exc:
            raise _refused(exc) from None
        _prune_empty_dirs(path.parent, self.target)


def _prune_empty_dirs(folder: Path, stop: Path) -> None:
    """Remove folders a delete left empty, up to ``stop``; parallel deletes may race here, which is fine."""
    while folder != stop:
        try:
            folder.rmdir()  # only succeeds when empty
        except FileNotFoundError:
            pass  # another writer removed it first; its parent may be empty now
        except OSError:
            return  # not empty
        folder = folder.parent


def _atomic_write(path: Path, data: bytes, *, exclusive: bool = False, root: Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically, following no link below ``root`` (default: ``path``'s folder).

    An OS error (disk full, EIO, permissions) is a BackendError naming the file; a link or special
    file in the way is refused the same way (:func:`_refused`).
    """
    try:
        _write_bytes(path, data, exclusive=exclusive, root=root)
    except UnsafeFile as exc:
        raise _refused(exc) from None
    except OSError as exc:
        raise BackendError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check the directory's free space and permissions; the next flowplan apply converges",
        ) from None


#: The characters of a temporary file's random part (``_TEMPORARY`` matches them).
_RANDOM = string.ascii_letters + string.digits + "_"


def _write_bytes(path: Path, data: bytes, *, exclusive: bool = False, root: Path | None = None) -> None:
    """Write a temporary file beside ``path``, then rename it over ``path`` (or link it, when ``exclusive``).

    The folder is reached from ``root`` one component at a time without following a link (and made
    when missing), and every step is relative to its descriptor: a symlinked ``deploy/`` or a link in
    the chain is refused, and a link at ``path`` itself is replaced, never written through. Files are
    created with mode 0666 less the umask, like any generator's output.
    """
    if root is None:
        path.parent.mkdir(parents=True, exist_ok=True)  # no root given: only the last folder is checked
    top = root if root is not None else path.parent
    try:
        parts = path.parent.relative_to(top).parts
    except ValueError:
        raise UnsafeFile(str(path), f"is outside {top}, where this backend writes") from None
    for attempt in range(5):
        written = False
        try:
            with directory_fd(top, parts, create=True) as folder:
                fd, tmp = _temporary(folder, path.name)
                written = True  # the folder holds the temporary file now: no delete can prune it
                _finish(folder, fd, tmp, path, data, exclusive=exclusive)
                return
        except FileNotFoundError:
            # A parallel delete pruned a folder, empty until now, between its mkdir and its open, or
            # after it was opened (the temporary file's create fails): make the chain again.
            if written or attempt == 4:
                raise


def _temporary(folder: int, name: str) -> tuple[int, str]:
    """A new temporary file ``.<name>.<8 random characters>.tmp`` in ``folder`` (created exclusively)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp = f".{name}.{''.join(secrets.choice(_RANDOM) for _ in range(8))}.tmp"
        try:
            return os.open(tmp, flags, 0o666, dir_fd=folder), tmp
        except FileExistsError:
            continue


def _finish(folder: int, fd: int, tmp: str, path: Path, data: bytes, *, exclusive: bool) -> None:
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            except FileExistsError:
                raise ConflictError(f"the file {path} appeared while writing", hint="plan again") from None
            os.unlink(tmp, dir_fd=folder)
        else:
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)
        raise


class FilesBackend(Backend):
    """A ``type: files`` backend opened for one manifest."""

    capabilities = Capabilities(operate=True, leftovers=True)

    def __init__(
        self, spec: BackendSpec, manifest_dir: Path, scope: Scope, provenance: dict[str, str], compiler: Compiler
    ) -> None:
        """``compiler``: composed by :mod:`backends.registry` (the renders' compiler in a :class:`SensitiveGuard`)."""
        self.spec = spec
        self._compiler = compiler
        self.root = manifest_dir
        # Only the manifest's directory is resolved: the path below it (relative, no '..': the manifest
        # checks it) is walked without following links by the reader and the writer.
        self.target = manifest_dir.resolve() / os.path.normpath(str(spec.settings.get("path", "deploy")))
        self.state_dir = manifest_dir / ".flowplan" / spec.name
        self.provenance = provenance
        self.scope = scope
        self._locks: dict[Scope, FileLock] = {}

    def compiler(self) -> Compiler:
        return self._compiler

    def reader(self) -> FilesReader:
        return FilesReader(self.target, root=self.root.resolve())

    def writer(self, dry_run: bool = False) -> FilesWriter:
        if not dry_run:
            self.clean_leftovers()  # apply holds the lock: temporary files here were left by a killed apply
        return FilesWriter(self.target, self.scope, self.provenance, dry_run, root=self.root.resolve())

    def leftovers(self) -> list[Path]:  # type: ignore[override]
        """Temporary files a killed apply left (its atomic writes' ``.NAME.XXXXXXXX.tmp``), here and in .flowplan/."""
        found: list[Path] = []
        root = self.root.resolve()
        for folder in (self.target, root / self.state_dir.relative_to(self.root)):
            try:
                with directory_fd(root, folder.relative_to(root).parts):
                    pass
            except (OSError, ValueError):
                continue  # missing, or reached through a link: nothing of ours to list or remove there
            for where, _, names in os.walk(folder):  # never into a linked folder
                found.extend(
                    Path(where, name)
                    for name in names
                    if _TEMPORARY.fullmatch(name)
                    and ".lock." not in name  # a racer's lock: not ours
                    and os.path.isfile(os.path.join(where, name))
                    and not os.path.islink(os.path.join(where, name))
                )
        return sorted(found)

    def clean_leftovers(self) -> list[Path]:  # type: ignore[override]
        """Remove :meth:`leftovers` (only under the lock: a live apply's temporary files are not leftovers)."""
        removed = self.leftovers()
        for path in removed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return removed

    def warnings(self) -> tuple[str, ...]:
        left = self.leftovers()
        if not left:
            return ()
        shown = ", ".join(str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p) for p in left[:3])
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        return (
            f"backend {self.spec.name!r}: {len(left)} temporary file(s) an interrupted apply left behind "
            f"({shown}{more}); the next apply removes them",
        )

    def inventory(self, scope: Scope) -> Inventory:
        """The scope's inventory, fenced by the lock this backend took for the scope (if it took one)."""
        return JsonFileInventory(
            self.state_dir / f"{scope_file(scope)}.json",
            _atomic_write,
            fence=self._locks.get(scope),
            legacy=self.state_dir / f"{legacy_scope_file(scope)}.json",
        )

    def lock(self, scope: Scope) -> Lock:
        """One lock object per scope, kept: the inventory of the scope checks it before every save."""
        if scope not in self._locks:
            self._locks[scope] = FileLock(
                self.state_dir / f"{scope_file(scope)}.lock",
                self.describe(),
                _atomic_write,
                legacy=self.state_dir / f"{legacy_scope_file(scope)}.lock",
            )
        return self._locks[scope]

    def operator(self) -> FilesOperator:
        """Branch listings; runs and triggers are refused (see :mod:`backends.files_operate`)."""
        return FilesOperator(
            self.spec.name,
            self.describe(),
            self.target,
            self.state_dir,
            lambda p: JsonFileInventory(p, _atomic_write),
            root=self.root.resolve(),
        )

    def describe(self) -> str:
        try:
            shown = self.target.relative_to(Path.cwd())
        except ValueError:
            shown = self.target
        return f"files in {shown}/"


__all__ = [
    "BODY_DIGEST_KEY",
    "HEADER",
    "OWNER_PREFIX",
    "PROTECT_KEY",
    "PROVENANCE_PREFIX",
    "FileLock",
    "FilesBackend",
    "JsonFileInventory",
    "SensitiveGuard",
    "dump_body",
    "proven_owner",
    "relative_path",
    "render_file",
    "version_of",
    "walk_files",
]
