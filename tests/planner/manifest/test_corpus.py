"""The bad-manifest corpus: every case fails with exactly its golden message, and never with a traceback.

Each folder under ``corpus/`` holds a ``flows.yaml`` (and var files or an
``args.json`` with ``vars``, ``var_files``, ``branch`` where the case needs
them) and ``expected.txt``, the exact output of ``ManifestError.render()``.
Regenerate the goldens after an intended change of wording with

    FLOWPLAN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/planner/manifest/test_corpus.py

and read the diff: every message must name file:line:column and the dotted
path, say what is wrong, and what to do.
"""

from __future__ import annotations

import os
import re

import pytest

from planner.errors import ManifestError
from tests.planner.manifest.conftest import CORPUS, Case, corpus_cases, load_case

UPDATE = os.environ.get("FLOWPLAN_UPDATE_GOLDEN") == "1"
CASES = corpus_cases()


def _render(case: Case) -> str:
    with pytest.raises(ManifestError) as info:
        load_case(case)
    return info.value.render() + "\n"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_fails_with_its_golden_message(case: Case) -> None:
    text = _render(case)
    if UPDATE:
        case.expected.write_text(text)
    assert case.expected.exists(), f"{case.name}: no expected.txt; run with FLOWPLAN_UPDATE_GOLDEN=1 and review it"
    assert text == case.expected.read_text()


def test_corpus_is_large_and_every_folder_is_a_case() -> None:
    assert len(CASES) >= 40
    folders = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    assert folders == [c.name for c in CASES], "a corpus folder without flows.yaml"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_problem_names_a_position(case: Case) -> None:
    """file:line:column on every line, except problems of the command line itself."""
    with pytest.raises(ManifestError) as info:
        load_case(case)
    for problem in info.value.problems:
        if problem.location.file in ("--var", "--branch"):
            continue
        if case.name in ("binary-file", "var-file-missing"):
            continue  # a whole file is the problem: no line to point at
        assert problem.location.line >= 1 and problem.location.column >= 1, str(problem)


def test_many_errors_are_reported_in_one_run() -> None:
    case = next(c for c in CASES if c.name == "many-errors")
    with pytest.raises(ManifestError) as info:
        load_case(case)
    problems = info.value.problems
    assert len(problems) >= 5
    assert len({p.message.split()[0] for p in problems}) >= 4, "several kinds of problem, not one repeated"


def test_alias_bomb_is_refused_at_once(converter_visits: list[int]) -> None:
    case = next(c for c in CASES if c.name == "alias-bomb")
    with pytest.raises(ManifestError, match="alias bomb"):
        load_case(case)
    # One step per distinct node and per alias (a couple of hundred); a walk of the expansion, 9**10.
    assert len(converter_visits) < 500


def test_goldens_name_file_line_and_column() -> None:
    """The goldens themselves follow the message format (guards against a careless regeneration)."""
    pattern = re.compile(r"^  (flows\.yaml|staging\.yaml|prod\.yaml|--var|--branch)(:\d+:\d+)?: ")
    for case in CASES:
        lines = case.expected.read_text().splitlines()
        assert re.match(r"^the manifest has (1 problem|\d+ problems):$", lines[0]), case.name
        for line in lines[1:]:
            assert pattern.match(line), f"{case.name}: {line}"
