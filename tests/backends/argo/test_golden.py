"""Golden rendered manifests: one folder per case under ``golden/``, one YAML file per object.

Files are laid out as the files backend lays them out (``relative_path``), plus an
``index.yaml`` with what the Resource carries beside its body (dependencies,
flow, protect, sensitive pointers, notes). Regenerate after an intended change:

    FLOWPLAN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/backends/argo/test_golden.py

and review the diff like any other code change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from backends.argo import relative_path
from planner.resources import Provenance, Resource
from tests.backends.argo.helpers import CASES, GOLDEN, dump

UPDATE = os.environ.get("FLOWPLAN_UPDATE_GOLDEN") == "1"


def render_case(resources: list[Resource]) -> dict[str, str]:
    """Every file of a golden folder, by relative path."""
    files = {relative_path(r): dump(r.body) for r in resources}
    index = []
    for resource in resources:
        entry: dict[str, object] = {"address": str(resource.address)}
        if resource.flow is not None:
            entry["flow"] = resource.flow
        if resource.protect:
            entry["protect"] = True
        if resource.depends_on:
            entry["depends_on"] = [str(a) for a in resource.depends_on]
        if resource.sensitive_paths:
            entry["sensitive_paths"] = list(resource.sensitive_paths)
        if resource.notes:
            entry["notes"] = list(resource.notes)
        index.append(entry)
    files["index.yaml"] = dump({"resources": index})
    return files


def _read(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.yaml"))}


def _write(folder: Path, files: dict[str, str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    files = render_case(CASES[case].compile())
    folder = GOLDEN / case
    if UPDATE:
        _write(folder, files)
    existing = _read(folder)
    assert sorted(existing) == sorted(files), "objects were added or removed; FLOWPLAN_UPDATE_GOLDEN=1 rewrites"
    for path, text in files.items():
        assert existing[path] == text, f"{case}/{path} differs; FLOWPLAN_UPDATE_GOLDEN=1 rewrites"


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_input_same_bytes(case: str) -> None:
    """Two compiles of two loads of one manifest render byte for byte the same."""
    assert render_case(CASES[case].compile()) == render_case(CASES[case].compile())


def test_provenance_changes_no_hash_and_only_provenance() -> None:
    """A new commit, version or manifest digest changes provenance annotations and nothing else."""
    case = CASES["triggers"]
    before = case.compile()
    after = case.compile(Provenance("9.9.9", "0" * 64, None))
    assert [r.address for r in before] == [r.address for r in after]
    for old, new in zip(before, after, strict=True):
        assert old.spec_hash == new.spec_hash
        assert old.body["metadata"]["annotations"]["flowplan.dev/spec-hash"] == old.spec_hash
        assert new.body["metadata"]["annotations"]["flowplan.dev/spec-hash"] == old.spec_hash
        assert "flowplan.dev/git-commit" not in new.body["metadata"]["annotations"]
        strip = {"flowplan.dev/git-commit", "flowplan.dev/version", "flowplan.dev/manifest-digest"}
        for body in (old.body, new.body):
            for key in strip:
                body["metadata"]["annotations"].pop(key, None)
        assert old.body == new.body
