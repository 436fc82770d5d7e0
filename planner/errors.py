"""The one error hierarchy of flowplan.

Every error a person can cause or fix is one of these, carrying a message
that says what went wrong *and what to do*. The CLI turns any of them into
exit code 1 and one paragraph; only ``--debug`` shows a traceback.

    FlowplanError
    ├── ManifestError        flows.yaml (or a var file) is wrong; holds every Problem found
    ├── PlanError            planning could not finish (inputs disagree, guard tripped, bad target)
    │   └── StalePlanError   a saved plan no longer matches the world it was made for
    ├── LockError            someone else holds the apply lock (names holder, host, pid)
    ├── ApplyError           one or more writes failed; the run reports which and stops dependents
    └── BackendError         talking to a backend failed (unreachable, credentials, forbidden, ...)
        ├── ConflictError    the live object changed since it was read, or belongs to someone else
        └── TransientError   a retryable failure that outlived its retries
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FlowplanError(Exception):
    """Base of every error flowplan raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The paragraph the CLI prints."""
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


@dataclass(frozen=True, order=True)
class Location:
    """Where in an input file a problem sits (1-based line and column)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    """One validation finding; many are collected before anything is raised."""

    location: Location
    path: str
    message: str
    hint: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = str(self.location)
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ManifestError(FlowplanError):
    """The manifest is invalid; ``problems`` lists every finding, sorted by position."""

    def __init__(self, problems: list[Problem] | Problem | str, *, hint: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(Location("<manifest>"), "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = [f"the manifest has {head}:"] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines), hint=hint)


class PlanError(FlowplanError):
    """Planning could not produce a trustworthy plan."""


class StalePlanError(PlanError):
    """A saved plan differs from what planning now would do; nothing was written."""


class LockError(FlowplanError):
    """The apply lock is held by someone else (or could not be taken or released)."""


class ApplyError(FlowplanError):
    """Some writes failed; independent ones went through, dependents were skipped."""


class BackendError(FlowplanError):
    """A backend could not be read or written."""


class ConflictError(BackendError):
    """The live object changed since it was read, or is not ours to change."""


class TransientError(BackendError):
    """A retryable failure (throttling, 5xx, connection) that outlived its retries."""
