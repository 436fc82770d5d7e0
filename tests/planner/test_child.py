"""planner.child.Child: the one way flowplan runs a helper process, and how its owner stops it."""

from __future__ import annotations

import sys
from pathlib import Path

from planner.child import Child

ECHO = [sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().upper())"]
TWO_PARTS = [
    sys.executable,
    "-c",
    "import sys; first = sys.stdin.buffer.readline(); rest = sys.stdin.buffer.read(); "
    "sys.stdout.buffer.write(rest + b'|' + first)",
]


def test_the_answer_is_the_childs_stdout() -> None:
    big = b"x" * 300_000 + b"\n"  # more than a pipe holds: written while the child reads
    assert Child(ECHO, big).answer() == big.upper()


def test_a_request_in_two_parts() -> None:
    child = Child(TWO_PARTS, b"first\n", more=True)
    child.send(b"second")
    assert child.answer() == b"second|first\n"


def test_no_answer_from_a_failing_child_or_one_that_cannot_start(tmp_path: Path) -> None:
    assert Child([sys.executable, "-c", "print('half'); raise SystemExit(3)"], b"").answer() is None
    missing = Child([str(tmp_path / "no-such-program")], b"")
    assert missing.answer() is None and isinstance(missing.start_error, FileNotFoundError)


def test_stderr_goes_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    child = Child([sys.executable, "-c", "import sys; sys.stderr.write('why')"], b"", log=log)
    assert child.answer() == b""
    assert log.read_text() == "why"


def test_a_child_past_its_time_is_killed() -> None:
    child = Child([sys.executable, "-c", "import time; time.sleep(60)"], b"")
    assert child.answer(timeout=0.5) is None
    assert child.timed_out and not child.running


def test_leaving_the_block_stops_the_child() -> None:
    with Child([sys.executable, "-c", "import time; time.sleep(60)"], b"", more=True) as child:
        assert child.running
    assert not child.running and child.process is not None and child.process.returncode is not None
