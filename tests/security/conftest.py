"""Marks for the attack tests: what each one tries, and whether the hole is still open.

``@attack("what is tried", fixed=False)`` keeps the description on the test for good (the report in
``tests/security/report.py`` reads it from the JUnit XML) and, while the hole is open, makes the
test ``xfail(strict=True)``: the commit that fixes the hole flips ``fixed=True`` and nothing else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.planner.loop import REPO

F = TypeVar("F", bound=Callable[..., Any])


def attack(what: str, *, fixed: bool = False) -> Callable[[F], F]:
    def mark(test: F) -> F:
        marked = pytest.mark.attack(what)(test)
        if not fixed:
            marked = pytest.mark.xfail(strict=True, reason=f"issue 19 open: {what}")(marked)
        return marked  # type: ignore[no-any-return]

    return mark


def flowplan_argv(*args: str) -> list[str]:
    """``flowplan ARGS`` as a child process of this checkout (a hostile file may hang or kill it, not the test)."""
    return [sys.executable, "-c", "import sys; from planner.cli import main; sys.exit(main())", *args]


def flowplan_env(**extra: str) -> dict[str, str]:
    """The child's environment: this checkout first on the path, no colours, plus ``extra``."""
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **extra}


@pytest.fixture(autouse=True)
def _record_attack(request: pytest.FixtureRequest, record_property: Callable[[str, object], None]) -> None:
    marker = request.node.get_closest_marker("attack")
    if marker is not None:
        record_property("attack", marker.args[0])
