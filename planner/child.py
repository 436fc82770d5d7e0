"""A helper process the planner hands work to: a request on its stdin, an answer on its stdout.

Two kinds of work earn a second process: work that would hold the interpreter lock for seconds
beside the compile (listing a large Argo deployment, parsing part of a large manifest), and
work that must not share the planner's interpreter at all (Metaflow's compile). Every owner
uses this one class, and owns its child: whoever starts one stops it, by reading its answer,
by :meth:`Child.stop`, or by leaving a ``with`` block. Nothing else keeps a reference, so no
process outlives the object that started it.

A child that saves time only ever saves time: when there is no answer (the process could not
start, crashed, exited with anything but 0), :meth:`Child.answer` is None and the owner does the
work itself, reporting whatever is wrong as it always does.

Messages are JSON objects with named fields (each owner declares them as TypedDicts), one per
line when a request comes in two parts; the bytes are the owner's business, not this class's.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO


class Child:
    """``command`` started now with ``request`` on its stdin; :meth:`answer` waits for its stdout.

    With ``more=True`` its stdin stays open after ``request`` for one further part, given by
    :meth:`send` (the Argo listing sends the desired digests once the compile is done); otherwise
    stdin is closed after ``request``. ``env`` and ``cwd`` are the process's environment and
    working directory (default: the planner's own); its stderr goes to the file ``log`` (default:
    nowhere), for an owner that explains a failure from it.
    """

    def __init__(
        self,
        command: Sequence[str],
        request: bytes,
        *,
        more: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
    ) -> None:
        self._writer: threading.Thread | None = None
        #: Why the process could not start (no such interpreter…), if it could not.
        self.start_error: OSError | None = None
        #: Whether :meth:`answer` gave up waiting and killed it.
        self.timed_out = False
        try:
            with open(log, "wb") if log is not None else contextlib.nullcontext(subprocess.DEVNULL) as errors:
                self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                    list(command),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=dict(env) if env is not None else None,
                    cwd=str(cwd) if cwd is not None else None,
                )
        except OSError as exc:
            self.process = None
            self.start_error = exc
            return
        assert self.process.stdin is not None
        # Written by a thread: a pipe holds 64 KB, and the child reads it only once Python has started.
        self._writer = threading.Thread(target=_send, args=(self.process.stdin, request, not more), daemon=True)
        self._writer.start()

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited yet."""
        return self.process is not None and self.process.poll() is None

    def send(self, data: bytes) -> None:
        """The rest of the request (only with ``more=True``); stdin is closed after it.

        A child that died meanwhile is not an error here: :meth:`answer` says so.
        """
        if self.process is None or self._writer is None:
            return
        self._writer.join()  # the first part goes first
        assert self.process.stdin is not None
        _send(self.process.stdin, data, True)

    def answer(self, timeout: float | None = None) -> bytes | None:
        """Everything the child wrote, once it exited with 0; None otherwise.

        After ``timeout`` seconds the child is killed (:attr:`timed_out`) and there is no answer.
        """
        process = self.process
        if process is None:
            return None
        assert process.stdout is not None
        timer = threading.Timer(timeout, self._expire) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            out = process.stdout.read()  # the child has its answer ready, or is still working
            process.stdout.close()
            process.wait()
        except (OSError, ValueError):  # ValueError: stopped meanwhile (its pipe closed)
            self.stop()
            return None
        finally:
            if timer is not None:
                timer.cancel()
        return out if process.returncode == 0 and not self.timed_out else None

    def _expire(self) -> None:
        if self.running:
            self.timed_out = True
            assert self.process is not None
            self.process.kill()

    def stop(self) -> None:
        """Kill the child if it still runs (its answer is not wanted); its pipes are closed."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):  # a broken pipe to a dead process: nothing to flush
                    pipe.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def _send(pipe: IO[bytes], data: bytes, close: bool) -> None:
    try:
        pipe.write(data)
        pipe.flush()
        if close:
            pipe.close()
    except (OSError, ValueError):
        pass  # the child died (or was stopped): its exit code says so
