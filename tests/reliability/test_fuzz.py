"""Fuzzing through the CLI: whatever the manifest, ``flowplan validate`` and ``plan`` exit 0 or 1, never crash.

Reuses the loader fuzz's generators (tests/planner/manifest/test_fuzz.py:
YAML-ish token soup, and the repository's flows.yaml randomly mutated) and
drives the whole command: file reading, loading, validation, compiling for
the files backend, planning and rendering. An uncaught exception would show
as "flowplan failed unexpectedly" (exit 1) or a traceback: both fail the
test. The loader-level fuzz itself runs in tests/planner/manifest (10,000
examples per generator in the slow suite, 300 with the seed scale).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli import run
from tests.planner.manifest.test_fuzz import BASE, _mutate, yamlish
from tests.reliability.harness import Recorder, scale

EXAMPLES = scale().fuzz_examples
LONG = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
SHORT = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
_FOLDER = Path(tempfile.mkdtemp(prefix="flowplan-fuzz-"))


def _cli(raw: bytes, command: str) -> tuple[int, str]:
    (_FOLDER / "flows.yaml").write_bytes(raw)
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(_FOLDER)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([command, "-f", "flows.yaml"])
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def _check(raw: bytes, trial: Recorder | None) -> None:
    for command in ("validate", "plan"):
        code, err = _cli(raw, command)
        assert code in (0, 1), (command, code, err)
        assert "unexpectedly" not in err and "Traceback" not in err, err
        if code == 1:
            assert err.startswith("Error: "), err
        if trial is not None:
            trial.size[f"{command} runs"] = trial.size.get(f"{command} runs", 0) + 1
            trial.extra.setdefault("exit codes", {}).setdefault(str(code), 0)
            trial.extra["exit codes"][str(code)] += 1
        if code == 1:
            break  # plan would report the same manifest problems


def _mutated(draw: Any) -> bytes | None:
    doc = _mutate(BASE, draw)
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "replace")
    except (yaml.YAMLError, ValueError, OverflowError):
        return None


def _start(trial: Recorder) -> None:
    if trial.family == "?":
        trial.family, trial.backend = "fuzzing (CLI)", "CLI (files)"
        trial.check("exit 0 or 1, no traceback, no 'failed unexpectedly'")
        trial.extra["loader fuzz"] = (
            f"tests/planner/manifest/test_fuzz.py: {2 * (300 if scale().name == 'seed' else 10_000)} examples"
        )


@given(yamlish)
@SHORT
def test_token_soup_through_the_cli(text: str) -> None:
    _check(text.encode("utf-8", "replace"), None)


@pytest.mark.slow
@given(text=yamlish)
@LONG
def test_token_soup_through_the_cli_long(text: str, trial: Recorder) -> None:
    _start(trial)
    trial.size["examples"] = trial.size.get("examples", 0) + 1
    _check(text.encode("utf-8", "replace"), trial)


@pytest.mark.slow
@given(data=st.data())
@LONG
def test_mutated_manifests_through_the_cli_long(data: st.DataObject, trial: Recorder) -> None:
    _start(trial)
    trial.size["examples"] = trial.size.get("examples", 0) + 1
    raw = _mutated(data.draw)
    if raw is not None:
        _check(raw, trial)
