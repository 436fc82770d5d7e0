"""Helpers for end-to-end tests of the CLI on the files backend (a project in a temp directory)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from planner.cli import main

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class Project:
    """A copy of a manifest in a temporary directory, driven through ``flowplan`` as a user would."""

    def __init__(self, root: Path, manifest: Path = REPO / "flows.yaml") -> None:
        self.root = root
        self.manifest = root / "flows.yaml"
        shutil.copy(manifest, self.manifest)

    def run(self, *args: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        with chdir(self.root), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            import sys

            old_stdin = sys.stdin
            sys.stdin = io.StringIO(stdin)
            try:
                code = main(list(args))
            finally:
                sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue())

    def edit(self, old: str, new: str, count: int = 1) -> None:
        text = self.manifest.read_text()
        assert text.count(old) >= 1, f"{old!r} not in the manifest"
        self.manifest.write_text(text.replace(old, new, count))

    def snapshot(self) -> dict[str, tuple[int, int, bytes]]:
        """Every file flowplan may write, with inode, mtime and bytes: equal snapshots = nothing written."""
        result = {}
        for base in ("deploy", ".flowplan"):
            folder = self.root / base
            if not folder.exists():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    result[str(path.relative_to(self.root))] = (stat.st_ino, stat.st_mtime_ns, path.read_bytes())
        return result

    def deployed(self) -> list[str]:
        folder = self.root / "deploy"
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml")) if folder.exists() else []


def stable_json(text: str) -> str:
    """A plan's JSON with the one field that depends on the clock fixed."""
    data = json.loads(text)
    data["created_at"] = "2026-01-01T00:00:00Z"
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
