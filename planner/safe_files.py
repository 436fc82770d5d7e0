"""Reading and writing only regular files inside a root: no symlink, FIFO or device (stdlib only).

A pull request's author controls the manifest, the var files, ``deploy/`` and ``.flowplan/``, and
``plan`` runs on every pull request. A symlink there could point at an operator's file (its content
would be printed in a diff, or overwritten by apply), a FIFO would block the read for ever and
``/dev/zero`` would fill memory. So every file flowplan reads from the repository is opened with
``O_NOFOLLOW | O_NONBLOCK`` (a FIFO cannot block the open), checked with ``fstat`` to be a regular
file, and read up to a size limit; every directory on the way from a root to a file is opened one
component at a time with ``O_NOFOLLOW`` relative to its parent, so no link in the chain is followed
and nothing is read or written outside the root.

A hard link is a regular file: its content is whatever the file holds, and git stores it as an
ordinary file, so a hard link committed to a repository cannot point outside it. Reading one that a
local user made is reading a file that user could read anyway; it is accepted. Writes replace the
directory entry (a temporary file renamed over it), so they never write through a hard link either.

The errors are :class:`UnsafeFile`, an ``OSError`` whose ``strerror`` says what the path is and what
to do, so a caller's existing ``except OSError`` reports it in one line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence

__all__ = [
    "MAX_BYTES",
    "UnsafeFile",
    "directory_fd",
    "kind_of_mode",
    "kind_problem",
    "open_regular",
    "read_regular",
]

#: The most flowplan reads from one file it did not write (manifests, var files, rendered files, state).
MAX_BYTES = 8 * 1024 * 1024

_LINK = "a symbolic link; flowplan follows no links in what it reads or writes (replace it with the file itself)"


class UnsafeFile(OSError):
    """A path flowplan refuses to read or write through: a link, a FIFO, a device, a directory, too big."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(errno.EPERM, problem, path)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def kind_of_mode(mode: int) -> str:
    """What a file is, for a message (``a FIFO``, ``a device``, ...)."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "an unknown kind of file"


def kind_problem(mode: int) -> str:
    """Why a file of this mode is refused, and what to do (the text of an :class:`UnsafeFile`)."""
    if stat.S_ISLNK(mode):
        return _LINK
    return f"{kind_of_mode(mode)}, not a regular file; flowplan reads only regular files"


def _not_regular(path: str, mode: int) -> UnsafeFile:
    return UnsafeFile(path, kind_problem(mode))


def open_regular(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> int:
    """A read-only descriptor of the regular file at ``path`` (relative to ``dir_fd`` when given).

    Refused (:class:`UnsafeFile`) when ``path`` is a symbolic link, a FIFO, a device or anything but
    a regular file; ``FileNotFoundError`` and other ``OSError`` pass through. A symlink or FIFO is
    seen by ``lstat`` before any open; ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat`` cover a swap between
    the two (the descriptor must be the very file ``lstat`` saw).
    """
    shown = os.fspath(path)
    before = os.lstat(path, dir_fd=dir_fd)
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(shown, before.st_mode)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(shown, _LINK) from None
        raise
    try:
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode):
            raise _not_regular(shown, after.st_mode)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise UnsafeFile(shown, "was replaced while flowplan opened it; run flowplan again")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], *, limit: int = MAX_BYTES, dir_fd: int | None = None) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit + 1`` of them.

    One byte past the limit lets the caller say "more than ``limit``" in its own words (a manifest
    names the limit of manifests); nothing larger is ever read into memory.
    """
    fd = open_regular(path, dir_fd=dir_fd)
    try:
        # Sized by fstat (one read for a file that does not grow): a read of ``limit + 1`` bytes
        # would allocate that much for every small file.
        want = min(limit + 1, os.fstat(fd).st_size + 1)
        chunks = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, max(min(want, limit + 1 - total), 1))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = 1 << 20
        return b"".join(chunks)
    finally:
        os.close(fd)


def _components(relative: str) -> list[str]:
    parts = [p for p in relative.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or os.path.isabs(relative):
        raise UnsafeFile(relative, "climbs out of its root; use a relative path without '..'")
    return parts


@contextlib.contextmanager
def directory_fd(
    root: str | os.PathLike[str], relative: str | Sequence[str] = (), *, create: bool = False
) -> Iterator[int]:
    """A descriptor of the directory ``root/relative``, reached without following any link below ``root``.

    ``root`` itself is trusted (the manifest's directory, chosen by whoever runs flowplan); each
    component of ``relative`` is opened with ``O_NOFOLLOW`` relative to its parent, so a symlink in
    the chain is refused (:class:`UnsafeFile`) rather than followed. ``create`` makes missing
    directories (mode 0777 minus the umask); otherwise a missing one raises ``FileNotFoundError``.
    """
    parts = _components(relative) if isinstance(relative, str) else list(relative)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    fd = os.open(root, flags)
    walked = os.fspath(root)
    try:
        for part in parts:
            walked = os.path.join(walked, part)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                child = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    mode = os.lstat(part, dir_fd=fd).st_mode
                    if stat.S_ISLNK(mode):
                        raise UnsafeFile(walked, _LINK) from None
                    raise UnsafeFile(walked, f"{kind_of_mode(mode)}, not a directory") from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)
