"""Checking a large deployment's files in a second process, while the planner compiles.

A no-change plan of 10,000 flows reads 30,000 files (80 MB) and checks each
one's header and body digest: over a second of CPU that depends on the files
only, not on the manifest. The interpreter lock keeps a thread from doing it
beside the compile, so for a deployment of :data:`IN_CHILD_FROM` files or more
the files reader starts ``python -m backends.files_scan`` as soon as a plan
begins and reads its answer when it needs it (machines that run plans have two
cores or more).

Protocol: the target directory on stdin; on stdout a JSON list, one item per
``.yaml`` file in :func:`backends.files.walk_files` order, ``[relative path,
owner header or null, version or null]``: the owner header of a file whose
bytes the header proves (``backends.files.proven_owner``) and the file's
version; nulls for a file the child could not read (the parent reads it again
and reports what is wrong). Anything else going wrong (no child, a crash, an
answer that does not parse) makes the parent scan in process: the child only
ever saves time, it never decides anything the parent would not.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson

from planner.child import Child

#: Smaller deployments are checked in process: starting the child costs about half a second of CPU.
IN_CHILD_FROM = 2_000


def count_at_least(top: str, limit: int) -> bool:
    """Whether ``top`` holds ``limit`` ``.yaml`` files or more; stops counting there.

    Directory listings only (``os.listdir`` builds plain strings in C; ``os.walk`` would build an
    entry object per file, which costs a tenth of a second at 30,000 files on a busy interpreter).
    """
    count = 0
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.endswith(".yaml"):
                count += 1
            elif not name.startswith(".") and os.path.isdir(os.path.join(folder, name)):
                pending.append(os.path.join(folder, name))
        if count >= limit:
            return True
    return False


class ChildScan:
    """A running child scan of ``top``; :meth:`result` is None when the parent must scan itself."""

    def __init__(self, top: str) -> None:
        self.child = Child([sys.executable, "-m", "backends.files_scan"], os.fsencode(top))

    def result(self) -> list[list[Any]] | None:
        out = self.child.answer()
        if out is None:
            return None
        try:
            answer = orjson.loads(out)
        except ValueError:
            return None
        if not isinstance(answer, list) or not all(isinstance(item, list) and len(item) == 3 for item in answer):
            return None
        return answer


def _scan(top: str) -> list[list[Any]]:
    from backends.files import proven_owner, version_of, walk_files

    answer: list[list[Any]] = []
    for rel, path in walk_files(top):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            answer.append([rel, None, None])
            continue
        answer.append([rel, proven_owner(data), version_of(data)])
    return answer


def main() -> int:
    import gc

    gc.disable()  # a short process building one list
    top = os.fsdecode(sys.stdin.buffer.read())
    sys.stdout.buffer.write(orjson.dumps(_scan(top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
