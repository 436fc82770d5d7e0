"""A helper process answering one request: bytes on its stdin, bytes on its stdout.

A plan hands work that needs no interpreter state of its own (checking a directory of files,
parsing part of a large manifest) to a second process, so it runs on the other core while
the planner goes on. The helper only ever saves time: when there is no answer (the process
could not start, crashed, exited with anything but 0), the caller does the work itself and
reports whatever is wrong as it always does.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from typing import IO


class Child:
    """``command`` started now with ``request`` on its stdin; :meth:`answer` waits for its stdout."""

    def __init__(self, command: Sequence[str], request: bytes) -> None:
        try:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError:
            self.process = None
            return
        assert self.process.stdin is not None
        # Written by a thread: a pipe holds 64 KB, and the child reads it only once Python has started.
        threading.Thread(target=_send, args=(self.process.stdin, request), daemon=True).start()

    def answer(self) -> bytes | None:
        """Everything the child wrote, once it exited with 0; None otherwise."""
        process = self.process
        if process is None:
            return None
        assert process.stdout is not None
        try:
            out = process.stdout.read()  # the child has its answer ready, or is still working
            process.stdout.close()
            process.wait()
        except OSError:
            self.stop()
            return None
        return out if process.returncode == 0 else None

    def stop(self) -> None:
        """Kill the child if it still runs (its answer is not wanted)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _send(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except OSError:
        pass  # the child died: its exit code says so
