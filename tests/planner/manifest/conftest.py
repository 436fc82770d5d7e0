"""Shared helpers for the manifest tests: where the corpus lives, how a case is loaded."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from planner.manifest import Manifest, load_manifest

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
REPO = HERE.parents[2]


@dataclass(frozen=True)
class Case:
    """One bad manifest: its folder, the CLI arguments it is loaded with, whether the schema alone rejects it."""

    name: str
    folder: Path

    @property
    def args(self) -> dict[str, Any]:
        file = self.folder / "args.json"
        return json.loads(file.read_text()) if file.exists() else {}

    @property
    def structural(self) -> bool:
        return (self.folder / "structural").exists()

    @property
    def expected(self) -> Path:
        return self.folder / "expected.txt"


def corpus_cases() -> list[Case]:
    return [Case(p.name, p) for p in sorted(CORPUS.iterdir()) if (p / "flows.yaml").exists()]


def load_case(case: Case) -> Manifest:
    """Load a case from inside its folder, so messages name ``flows.yaml`` whatever the working directory."""
    args = case.args
    cwd = os.getcwd()
    os.chdir(case.folder)
    try:
        return load_manifest(
            "flows.yaml",
            cli_vars=args.get("vars"),
            var_files=args.get("var_files", ()),
            branch=args.get("branch", "prod"),
        )
    finally:
        os.chdir(cwd)


@pytest.fixture
def write_manifest(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a manifest (and extra files) into a temporary folder; returns the manifest's path."""

    def write(text: str, **files: str) -> Path:
        for name, content in files.items():
            (tmp_path / name).write_text(content)
        path = tmp_path / "flows.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def converter_visits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per call of the YAML converter's per-node step (a walk of an alias bomb's expansion
    would make millions; the memoised pass makes one per distinct node and one per alias)."""
    from planner.manifest import yamlsource

    visits: list[int] = []
    real = yamlsource._Converter._convert

    def counting(self: Any, *args: Any) -> Any:
        visits.append(1)
        return real(self, *args)

    monkeypatch.setattr(yamlsource._Converter, "_convert", counting)
    return visits
