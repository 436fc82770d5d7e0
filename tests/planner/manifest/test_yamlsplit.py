"""A large manifest parsed in two processes loads exactly as when parsed in one (planner/manifest/yamlsplit.py).

Every case loads the same file both ways and compares the results: the manifest (every flow,
step and position in it) when it is valid, the problems (messages, paths, lines and columns)
when it is not.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import generate
from planner.errors import ManifestError
from planner.manifest import load_manifest, yamlsplit


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every manifest is split; records, per load, whether the two-process parse was used."""
    used: list[bool] = []
    real = yamlsplit.parse_split

    def recording(raw: bytes, file: str) -> Any:
        source = real(raw, file)
        used.append(source is not None)
        return source

    monkeypatch.setattr(yamlsplit, "SPLIT_FROM", 0)
    monkeypatch.setattr("planner.manifest.loader.parse_split", recording)
    return used


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(split, whole): each a Manifest or the ManifestError's problems."""

    def load() -> Any:
        try:
            return load_manifest(path)
        except ManifestError as exc:
            return exc.problems

    first = load()
    monkeypatch.setattr(yamlsplit, "SPLIT_FROM", 10**12)
    second = load()
    monkeypatch.setattr(yamlsplit, "SPLIT_FROM", 0)
    return first, second


def test_a_generated_manifest_loads_the_same_in_two_processes(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(generate.generate(300, "files") + "moved:\n  - {from: old-f00001, to: f00001}\n")
    two, one = _both(path, monkeypatch)
    assert split[0] is True
    assert two == one  # every flow, step, parameter and trigger, with its position
    last = two.flows["f00299"]
    assert last.loc.line == path.read_text().splitlines().index("  f00299:") + 1
    assert two.moved[0].loc == one.moved[0].loc  # after the flows: still on its own line


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("      end: {command: [python, -m, f299.end]", "      end: {command: [python, -m, f299.end], bogus: 1"),
        ("      left: {command: [python, -m, f299.left], next: join", "      left: {command: [python, -m, f299.left]"),
        ("    schedule: s19\n", "    schedule: s19\n    schedule: s18\n"),  # a duplicate key in the second half
        ("  f00299:\n", "  f00001:\n"),  # a flow name used in both halves
        ("  f00299:\n", "  f00299: *nowhere\n  f00298b:\n"),  # an alias to nothing
        ("      join: {command: [python, -m, f299.join]", "      join: {command: [python, -m, f299.join"),
        ("      join: {command: [python, -m, f299.join]", "\tjoin: {command: [python, -m, f299.join]"),
    ],
    ids=["unknown key", "dangling step", "duplicate key", "name in both halves", "undefined alias", "syntax", "tab"],
)
def test_problems_in_the_second_half_are_reported_as_by_one_process(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    text = generate.generate(300, "files")
    assert old in text
    path = tmp_path / "flows.yaml"
    path.write_text(text.replace(old, new, 1))
    two, one = _both(path, monkeypatch)
    assert isinstance(one, list) and one, "the edit makes the manifest invalid"
    assert two == one


def test_an_alias_across_the_cut_loads_as_in_one_process(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = generate.generate(300, "files")
    text = re.sub(r"(  f00000:\n    image: )(\S+)", r"\1&img \2", text)
    text = re.sub(r"(  f00299:\n    image: )(\S+)", r"\1*img", text)
    assert "*img" in text and "&img" in text
    path = tmp_path / "flows.yaml"
    path.write_text(text)
    two, one = _both(path, monkeypatch)
    assert split[0] is False  # the alias is undefined in the second half: parsed whole
    assert two == one and two.flows["f00299"].image == two.flows["f00000"].image


def test_a_failing_second_process_leaves_the_parse_to_the_first(
    tmp_path: Path, split: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlsplit, "COMMAND", [sys.executable, "-c", "import sys; sys.exit(1)"])
    path = tmp_path / "flows.yaml"
    path.write_text(generate.generate(50, "files"))
    two, one = _both(path, monkeypatch)
    assert split[0] is False and two == one


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nflows: {a: {x: 1}, b: {y: 2}}\n",  # a flow mapping
        "version: 1\nflows:\n  a: {x: 1}\n",  # one flow
        "%YAML 1.1\n---\nflows:\n  a: {x: 1}\n  b: {y: 2}\n",  # a directive
        "base: &b {x: 1}\nflows:\n  a: {x: 1}\n  b:\n    <<: *b\n",  # a merge key after the cut
        "version: 1\n",
    ],
)
def test_unusual_layouts_are_not_cut(text: str) -> None:
    assert yamlsplit.cut(text) is None


def test_the_cut_keeps_every_line_where_it_was() -> None:
    text = "version: 1\nflows:\n  a:\n    x: 1\n  b:\n    y: 2\n  c:\n    z: 3\nmoved: []\n"
    pieces = yamlsplit.cut(text)
    assert pieces is not None
    assert pieces.head.splitlines()[-1] == "moved: []" and len(pieces.head.splitlines()) == len(text.splitlines())
    first_tail_line = pieces.tail.splitlines()[1]
    assert text.splitlines()[1 + pieces.offset] == first_tail_line
