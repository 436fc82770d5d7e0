"""An apply paused past its lock's TTL must not write once another apply has taken over (issue 19).

A preempted CI runner or a stopped container resumes an apply long after its lock expired. By
then a second apply may have taken the lock and deleted objects. Whatever the first apply still
had in flight, nothing the second deleted may come back, nothing may fall out of the inventory,
and the next plan must converge.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from bench import generate
from tests.security.conftest import attack, flowplan_argv, flowplan_env

TTL = "2"
FLOWS = 300


def _flowplan(root: Path, *args: str) -> subprocess.Popen[str]:
    """``flowplan ARGS`` in its own process, its output in a file (a pipe nobody reads would block it)."""
    log = (root / f"{args[0]}-{time.monotonic_ns()}.log").open("w")
    env = flowplan_env(FLOWPLAN_LOCK_TTL=TTL)
    return subprocess.Popen(flowplan_argv(*args), cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root / "deploy")) for p in (root / "deploy").rglob("*.yaml")}


@attack(
    "fenced applies: an apply paused past its lock TTL writes at most its one write in flight once another apply "
    "took over, and saves no inventory",
    fixed=True,
)
def test_a_resumed_apply_that_lost_its_lock_writes_nothing_more(tmp_path: Path) -> None:
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(generate.generate(FLOWS, "files"))
    first = _flowplan(tmp_path, "apply", "--auto-approve", "--parallelism", "1")
    deadline = time.monotonic() + 120
    while not (tmp_path / "deploy").exists() or len(_files(tmp_path)) < 20:
        assert first.poll() is None and time.monotonic() < deadline, "the first apply ended before it could be paused"
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        written_when_paused = _files(tmp_path)
        time.sleep(float(TTL) * 2)  # the paused apply's lock expires
        # The second apply: only the first flow is left, so it deletes everything else that exists.
        text = manifest.read_text()
        cut = text.index("\n  f00001:")
        manifest.write_text(text[:cut] + "\n")
        second = _flowplan(tmp_path, "apply", "--auto-approve", "--allow-destroy")
        second.wait(timeout=300)
        assert second.returncode == 0
        kept = _files(tmp_path)
        assert kept < written_when_paused or kept != written_when_paused
        (inventory_file,) = (tmp_path / ".flowplan").rglob("*.json")
        inventory = inventory_file.read_bytes()
    finally:
        first.send_signal(signal.SIGCONT)
    first.wait(timeout=300)
    assert first.returncode == 1, "the resumed apply did not notice it lost the lock"
    # A write that had passed the fence when the process was paused may land (the one write in flight);
    # nothing more. That write's recovery is the open attack below.
    assert len(_files(tmp_path) - kept) <= 1, "objects the second apply deleted came back"
    assert inventory_file.read_bytes() == inventory, "the resumed apply saved the inventory after losing the lock"


@attack(
    "fenced applies: the one write in flight that lands after a takeover must be recorded so the next apply "
    "recovers it (not left as an untracked object that keeps firing)"
)
def test_the_write_in_flight_after_a_takeover_is_recovered_by_the_next_apply(tmp_path: Path) -> None:
    """Deterministic stand-in for the race: the object the paused apply was writing lands after the
    apply that took over deleted its flow. The next plan must plan it away, not merely warn about it."""
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(generate.generate(2, "files"))
    assert _flowplan(tmp_path, "apply", "--auto-approve").wait(timeout=300) == 0
    late = {p: p.read_bytes() for p in (tmp_path / "deploy").rglob("*f00001.yaml")}
    text = manifest.read_text()
    manifest.write_text(text[: text.index("\n  f00001:")] + "\n")
    assert _flowplan(tmp_path, "apply", "--auto-approve", "--allow-destroy").wait(timeout=300) == 0
    (path, data), *_ = late.items()
    path.write_bytes(data)  # the paused apply's write in flight lands
    plan = _flowplan(tmp_path, "plan", "--detailed-exitcode")
    assert plan.wait(timeout=300) == 2, "the landed object is not planned for removal"
