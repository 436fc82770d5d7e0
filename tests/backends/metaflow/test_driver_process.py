"""The driver runs in a process of its own (planner.child.Child): what flowplan says when it cannot.

Stand-in interpreters (shell scripts) play the failing cases; the real driver runs in the other
Metaflow tests.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from backends.metaflow import compile as metaflow_compile
from backends.metaflow.compile import run_driver
from planner.errors import BackendError


def _interpreter(tmp_path: Path, script: str) -> str:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return str(path)


def _workdir(tmp_path: Path) -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return workdir


def test_no_such_interpreter(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no interpreter"):
        run_driver("compile", {}, dict(os.environ), str(tmp_path / "missing"), _workdir(tmp_path))


def test_an_interpreter_without_metaflow(tmp_path: Path) -> None:
    python = _interpreter(
        tmp_path, "cat >/dev/null; echo \"ModuleNotFoundError: No module named 'metaflow'\" >&2; exit 1"
    )
    with pytest.raises(BackendError, match="has no metaflow"):
        run_driver("compile", {}, dict(os.environ), python, _workdir(tmp_path))


def test_a_driver_without_a_status_is_explained_by_its_last_error_line(tmp_path: Path) -> None:
    python = _interpreter(tmp_path, 'cat >/dev/null; echo "first" >&2; echo "the real reason" >&2; exit 0')
    with pytest.raises(BackendError, match="the Metaflow upload process failed: the real reason"):
        run_driver("upload", {}, dict(os.environ), python, _workdir(tmp_path))


def test_the_status_is_read_from_stdout_and_the_request_from_stdin(tmp_path: Path) -> None:
    """The request reaches the driver whole (with the pinned version); its stdout is the status."""
    python = _interpreter(tmp_path, 'cat > request.json; echo \'{"ok": true, "protocol": 2}\'')
    workdir = _workdir(tmp_path)
    status = run_driver("compile", {"jobs": []}, dict(os.environ), python, workdir)
    assert status == {"ok": True, "protocol": 2}
    request = (workdir / "request.json").read_text()
    assert '"jobs": []' in request and metaflow_compile.METAFLOW_VERSION in request


def test_a_driver_past_its_time_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = _interpreter(tmp_path, "echo $$ > pid; exec sleep 60")
    workdir = _workdir(tmp_path)
    monkeypatch.setattr(metaflow_compile, "COMPILE_TIMEOUT", 1.0)
    with pytest.raises(BackendError, match="did not finish within 1 s"):
        run_driver("compile", {}, dict(os.environ), python, workdir)
    pid = int((workdir / "pid").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the driver was killed and reaped"


def test_the_python_version_probe(tmp_path: Path) -> None:
    assert metaflow_compile._python_minor(sys.executable) == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert metaflow_compile._python_minor(_interpreter(tmp_path, "echo 3.99")) == "3.99"
    assert metaflow_compile._python_minor(str(tmp_path / "missing")) == "unknown"
