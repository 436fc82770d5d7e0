"""What every loading stage shares: the problem collector and lenient readers of checked data.

Each stage reports into one :class:`Context` instead of raising, so a manifest's
problems from all stages reach the person together. The readers (:func:`as_dict`,
:func:`as_str`, ...) let conversion code read data the structural check already
judged: a value of the wrong type was reported there, so here it only reads as
empty instead of being reported a second time.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from typing import Any

from planner.errors import Location, Problem
from planner.manifest.yamlsource import PathT, Source, dotted


class Context:
    """Problems found so far, placed at their line and column in the manifest."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []
        #: Strings whose template could not render; checks of their value would only repeat that.
        self.unrendered: set[PathT] = set()

    def error(self, path: PathT, message: str, hint: str | None = None, *, key: bool = False) -> None:
        """Report a problem at ``path``'s value, or at its key when ``key`` (where a missing or extra key is)."""
        if path in self.unrendered:
            return
        loc = self.source.locate_key(path) if key else self.source.locate(path)
        self.problems.append(Problem(loc, dotted(path), message, hint))

    def loc(self, path: PathT) -> Location:
        """Where a model object was declared: its key, so messages about it point at its name."""
        return self.source.locate_key(path)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate to a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def display_path(path: str | os.PathLike[str]) -> str:
    """A file's name as messages show it: relative to the current directory when below it."""
    text = os.fspath(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:  # pragma: no cover - other drive on Windows
        return text
    return rel if not rel.startswith("..") else text


def as_str(value: Any, default: str | None = None) -> str | None:
    return value if isinstance(value, str) else default


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def scalar_text(value: Any) -> str:
    """A scalar as the text a person wrote: YAML booleans as ``true``/``false``, null as empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
