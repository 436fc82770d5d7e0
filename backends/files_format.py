"""The files backend's file format: one YAML file per resource, under a header naming its owner.

``<namespace>/<kind>/<name>.yaml`` (:func:`relative_path`), starting with :data:`HEADER`, an owner
line (project, branch, flow, address, spec hash, the body's digest) and a provenance line, the
only part that changes when nothing but the commit changed (excluded from comparison). Reading
and writing both use these functions; the reader, writer and operator are built on them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from planner.contract import Scope
from planner.errors import BackendError
from planner.resources import Address, Resource
from planner.safe_files import UnsafeFile, directory_fd, kind_problem

__all__ = [
    "BODY_DIGEST_KEY",
    "HEADER",
    "OWNER_PREFIX",
    "PROVENANCE_PREFIX",
    "Loader",
    "dump_body",
    "owner_header",
    "proven_owner",
    "relative",
    "relative_path",
    "render_file",
    "split_file",
    "version_of",
    "walk_files",
]

HEADER = "# Managed by flowplan: edit the manifest, not this file (flowplan apply rewrites it)."
OWNER_PREFIX = "# flowplan: "
PROVENANCE_PREFIX = "# provenance: "
#: The owner header's digest of the YAML body (see :func:`render_file`).
BODY_DIGEST_KEY = "body-sha256"
_HEADER_BYTES = (HEADER + "\n" + OWNER_PREFIX).encode()
_PROVENANCE_BYTES = PROVENANCE_PREFIX.encode()
SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

try:
    _BaseDumper: Any = yaml.CSafeDumper
    Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml ships with pyyaml wheels
    _BaseDumper = yaml.SafeDumper
    Loader = yaml.SafeLoader


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Plain YAML for GitOps: compilers share identical parts of bodies (one env entry object in
    every step, bodies being immutable), which must not come out as anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def relative_path(address: Address) -> Path:
    """``<namespace>/<kind>/<name>.yaml``; every part checked so no name can escape the directory."""
    return Path(relative(address))


def relative(address: Address) -> str:
    """:func:`relative_path` as a string (no ``Path`` per file on the read path)."""
    parts = [address.namespace, address.kind.lower(), address.name]
    for part in parts:
        if not SAFE_PART.fullmatch(part) or part in (".", ".."):
            raise BackendError(
                f"{address}: {part!r} cannot be used in a file name",
                hint="names are letters, digits, '.', '_' and '-', and do not start with '.'",
            )
    return f"{parts[0]}{os.sep}{parts[1]}{os.sep}{parts[2]}.yaml"


def dump_body(body: dict[str, Any]) -> str:
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def owner_header(resource: Resource, scope: Scope) -> dict[str, Any]:
    """The owner header of a desired resource, without the body digest."""
    owner: dict[str, Any] = {
        "project": scope.project,
        "branch": scope.branch,
        "flow": resource.flow,
        "address": str(resource.address),
        "spec-hash": resource.spec_hash,
    }
    if resource.protect:
        owner["protect"] = True
    return owner


def _body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def render_file(resource: Resource, scope: Scope, provenance: dict[str, str]) -> tuple[bytes, bytes]:
    """(the file's bytes, the same bytes without the provenance line) for a desired resource.

    The owner header carries ``body-sha256``, the digest of the YAML below the
    header: a reader that finds it matching the file's body, and the header's
    spec hash matching the desired resource's, knows the file is exactly this
    rendering without rendering or parsing anything.
    """
    body = dump_body(resource.comparison_body)
    owner = owner_header(resource, scope)
    owner[BODY_DIGEST_KEY] = _body_digest(body.encode())
    owner_line = OWNER_PREFIX + json.dumps(owner, sort_keys=True, separators=(",", ":"))
    stable = f"{HEADER}\n{owner_line}\n{body}"
    prov_line = PROVENANCE_PREFIX + json.dumps(provenance, sort_keys=True, separators=(",", ":"))
    full = f"{HEADER}\n{owner_line}\n{prov_line}\n{body}"
    return full.encode(), stable.encode()


def split_file(data: bytes) -> tuple[dict[str, Any] | None, bytes, str]:
    """(owner header or None, bytes without the provenance line, YAML text)."""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    owner: dict[str, Any] | None = None
    kept: list[str] = []
    body_start = 0
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            body_start = i
            break
        if line.startswith(PROVENANCE_PREFIX):
            continue
        if line.startswith(OWNER_PREFIX):
            with contextlib.suppress(ValueError):
                parsed = json.loads(line[len(OWNER_PREFIX) :])
                owner = parsed if isinstance(parsed, dict) else None
        kept.append(line)
    else:
        body_start = len(lines)
    body_text = "\n".join(lines[body_start:])
    stable = "\n".join(kept + lines[body_start:]).encode()
    return owner, stable, body_text


def proven_owner(data: bytes) -> dict[str, Any] | None:
    """The owner header of a file whose body is exactly what its header's digest says, else None.

    Decided from the header alone: no YAML is rendered or parsed. Anything
    unexpected (an older file without a digest, an edit, a different layout, a
    comment line under the header) returns None and the caller compares the
    slow way.
    """
    if not data.startswith(_HEADER_BYTES):
        return None
    start = len(_HEADER_BYTES)
    end = data.find(b"\n", start)
    if end < 0:
        return None
    body_start = end + 1
    if data.startswith(_PROVENANCE_BYTES, body_start):
        body_start = data.find(b"\n", body_start) + 1
        if body_start == 0:
            return None
    try:
        owner = orjson.loads(data[start:end])
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    if not isinstance(owner, dict) or owner.pop(BODY_DIGEST_KEY, None) != _body_digest(data[body_start:]):
        return None
    if data.startswith(b"#", body_start):
        return None
    return owner


def walk_files(top: str, *, root: str | None = None) -> Iterator[tuple[str, str]]:
    """(path relative to ``top``, full path) of every ``.yaml`` file, in a stable order.

    Nothing is followed: :class:`~planner.safe_files.UnsafeFile` is raised for a symlink on the way
    from ``root`` (default ``top``) to ``top``, a symlinked folder below ``top``, or a ``.yaml`` entry
    that is not a regular file (a symlink, a FIFO, a device). Dot-files and dot-folders are skipped,
    and so are other entries (they are never read). Nothing is yielded when ``top`` does not exist.
    """
    base = root if root is not None else top
    below = os.path.relpath(top, base)
    try:
        with directory_fd(base, "" if below == "." else below):
            pass
    except FileNotFoundError:
        return
    yield from _walk(top, "")


def _walk(folder: str, prefix: str) -> Iterator[tuple[str, str]]:
    """Files of ``folder`` first, then its sub-folders, each sorted by name (the order ``os.walk`` gave)."""
    with os.scandir(folder) as entries:
        listed = sorted(entries, key=lambda e: e.name)
    folders = []
    for entry in listed:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            if entry.name.endswith(".yaml") or entry.is_dir():
                raise UnsafeFile(entry.path, kind_problem(entry.stat(follow_symlinks=False).st_mode))
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name.endswith(".yaml"):  # where a rendered file would be: never a folder
                raise UnsafeFile(entry.path, kind_problem(entry.stat(follow_symlinks=False).st_mode))
            folders.append(entry)
        elif entry.name.endswith(".yaml"):
            if not entry.is_file(follow_symlinks=False):
                raise UnsafeFile(entry.path, kind_problem(entry.stat(follow_symlinks=False).st_mode))
            yield prefix + entry.name, entry.path
    for entry in folders:
        yield from _walk(entry.path, prefix + entry.name + os.sep)


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
