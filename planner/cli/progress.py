"""Progress of a long apply: a bar on a terminal, one plain line per change otherwise (CI logs)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from planner.plan import ResourceChange

_DONE = {"create": "created", "update": "updated", "replace": "replaced", "delete": "destroyed", "adopt": "adopted"}


class Progress:
    def __init__(self, total: int, *, dry_run: bool = False, stream: Any = None) -> None:
        self.total = total
        self.count = 0
        self.dry_run = dry_run
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.bar: Any = None
        self.task: Any = None
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __enter__(self) -> Progress:
        if self.tty and self.total > 1:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("[bold]applying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(file=self.stream),
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def event(self, kind: str, change: ResourceChange, detail: str | None) -> None:
        with self.lock:
            if kind == "start":
                if self.bar is not None:
                    self.bar.update(self.task, description=str(change.address))
                return
            self.count += 1
            elapsed = time.monotonic() - self.started
            if kind == "done":
                verb = _DONE.get(change.action.value, change.action.value)
                if self.dry_run:
                    verb = f"would be {verb}"
                line = f"[{self.count}/{self.total}] {change.address}: {verb} ({elapsed:.1f}s)"
            elif kind == "fail":
                first = (detail or "").splitlines()[0] if detail else ""
                line = f"[{self.count}/{self.total}] {change.address}: FAILED: {first}"
            else:
                line = f"[{self.count}/{self.total}] {change.address}: skipped ({detail})"
            if self.bar is not None:
                self.bar.advance(self.task)
                if kind != "done":
                    self.bar.console.print(line)
            else:
                self.stream.write(line + "\n")
                self.stream.flush()
