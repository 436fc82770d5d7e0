"""A session closes the backends it opened: every one, once, even when one of them fails to close."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.cli.session import ManifestOptions, Session, load
from planner.contract import Backend
from planner.manifest import load_manifest
from planner.resources import Provenance

MANIFEST = """\
version: 1
project: shop
backends:
  one: {type: files, path: deploy/one}
  two: {type: files, path: deploy/two}
flows:
  ingest:
    image: python:3.12
    backend: one
    steps:
      start:
        command: [python, -m, shop.run]
"""


class _Closing(Backend):
    """Only what closing needs; ``fails`` makes its close raise."""

    def __init__(self, closed: list[str], name: str, fails: bool = False) -> None:
        self.closed, self.name, self.fails = closed, name, fails

    def close(self) -> None:
        self.closed.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} would not close")


def _session(tmp_path: Path) -> Session:
    path = tmp_path / "flows.yaml"
    path.write_text(MANIFEST)
    manifest = load_manifest(str(path))
    return Session(ManifestOptions(file=str(path)), manifest, Provenance("0", manifest.digest, None))


def test_every_backend_is_closed_once_and_the_first_failure_is_raised(tmp_path: Path) -> None:
    closed: list[str] = []
    session = _session(tmp_path)
    session.backends = {
        "a": _Closing(closed, "a", fails=True),
        "b": _Closing(closed, "b"),
        "c": _Closing(closed, "c", fails=True),
    }
    with pytest.raises(RuntimeError, match="a would not close"):
        session.close()
    assert closed == ["a", "b", "c"]
    session.close()
    assert closed == ["a", "b", "c"]


def test_a_session_outside_a_command_is_closed_by_its_with_block(tmp_path: Path) -> None:
    (tmp_path / "flows.yaml").write_text(MANIFEST)
    with load(ManifestOptions(file=str(tmp_path / "flows.yaml"))) as session:
        assert sorted(session.backends) == ["one", "two"]
    assert session.backends == {}
