"""An apply paused past its lock's TTL must not write once another apply has taken over (issue 19).

A preempted CI runner or a stopped container resumes an apply long after its lock expired. By
then a second apply may have taken the lock and deleted objects. Whatever the first apply still
had in flight, nothing the second deleted may come back, nothing may fall out of the inventory,
and the next plan must converge.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import generate
from tests.planner.loop import REPO
from tests.security.conftest import attack

TTL = "2"
FLOWS = 300


def _flowplan(root: Path, *args: str) -> subprocess.Popen[str]:
    """``flowplan ARGS`` in its own process, its output in a file (a pipe nobody reads would block it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "FLOWPLAN_LOCK_TTL": TTL}
    command = [sys.executable, "-c", "import sys; from planner.cli import main; sys.exit(main())", *args]
    log = (root / f"{args[0]}-{time.monotonic_ns()}.log").open("w")
    return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root / "deploy")) for p in (root / "deploy").rglob("*.yaml")}


@attack("fenced applies: an apply paused past its lock TTL must write nothing once another apply took over", fixed=True)
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
    finally:
        first.send_signal(signal.SIGCONT)
    first.wait(timeout=300)
    assert _files(tmp_path) == kept, "objects the second apply deleted came back"
    inventory = json.loads(next((tmp_path / ".flowplan").rglob("*.json")).read_text())
    assert len(inventory["entries"]) == len(kept), "the inventory and the deployment disagree"
    again = _flowplan(tmp_path, "plan", "--detailed-exitcode")
    again.wait(timeout=300)
    assert again.returncode == 0
