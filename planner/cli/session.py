"""What every command needs: the manifest, the backends, the provenance, the secrets to scrub.

This is the only place that wires backends to the planner; commands stay thin.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer._click.globals import get_current_context

from backends.registry import OpenOptions, open_backend
from planner import __version__
from planner.cli.redact import SECRETS, scrub
from planner.contract import Backend, Scope
from planner.errors import FlowplanError, ManifestError, PlanError, Problem
from planner.manifest import Manifest, load_manifest
from planner.resources import Provenance


@dataclass(frozen=True)
class ManifestOptions:
    """How the manifest is read (recorded in saved plans so ``apply FILE`` reads it the same way)."""

    file: str = "flows.yaml"
    cli_vars: tuple[tuple[str, str], ...] = ()
    var_files: tuple[str, ...] = ()
    branch: str = "prod"
    enable_schedules: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "vars": [list(v) for v in self.cli_vars],
            "var_files": list(self.var_files),
            "branch": self.branch,
            "enable_schedules": self.enable_schedules,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestOptions:
        return cls(
            file=str(data.get("file", "flows.yaml")),
            cli_vars=tuple((str(k), str(v)) for k, v in data.get("vars", [])),
            var_files=tuple(str(f) for f in data.get("var_files", [])),
            branch=str(data.get("branch", "prod")),
            enable_schedules=bool(data.get("enable_schedules", False)),
        )


def parse_vars(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    result = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ManifestError(_var_problem(pair))
        result.append((key.strip(), value))
    return tuple(result)


def _var_problem(pair: str) -> Problem:
    from planner.errors import Location

    return Problem(Location("--var"), "", f"{pair!r} is not KEY=VALUE", "for example --var env=staging")


def git_commit(directory: Path) -> str | None:
    """The commit the manifest comes from: CI's variable, else ``git rev-parse``, else None."""
    for key in ("FLOWPLAN_GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT"):
        if os.environ.get(key):
            return os.environ[key][:40]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and len(text) == 40 else None


@dataclass
class Session:
    """One command's manifest and opened backends; :meth:`close` closes the backends (see :func:`load`)."""

    options: ManifestOptions
    manifest: Manifest
    provenance: Provenance
    backends: dict[str, Backend] = field(default_factory=dict)

    @property
    def manifest_dir(self) -> Path:
        return Path(self.options.file).resolve().parent

    def close(self) -> None:
        """Close every opened backend (each once, all of them even if one fails; the first failure is raised)."""
        backends, self.backends = self.backends, {}
        failure: BaseException | None = None
        for backend in backends.values():
            try:
                backend.close()
            except Exception as exc:  # the others are still closed, then the first is raised
                failure = failure or exc
        if failure is not None:
            raise failure

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_options(options: ManifestOptions, *, raw: bytes | None = None) -> Manifest:
    """The manifest ``options`` name, loaded with its vars, var files and branch (``raw``: other bytes)."""
    return load_manifest(
        options.file,
        cli_vars=dict(options.cli_vars),
        var_files=options.var_files,
        branch=options.branch,
        enable_schedules=options.enable_schedules,
        raw=raw,
    )


def load(options: ManifestOptions, *, open_backends: bool = True, only: Sequence[str] = ()) -> Session:
    """The manifest and its backends (all, or ``only`` these), opened for one command.

    Inside a CLI command the session is closed when the command ends, however it ends (the command's
    click context calls :meth:`Session.close`); any other caller closes it itself (it is a context manager).
    """
    manifest = load_options(options)
    SECRETS.update(s for s in manifest.sensitive_values if s)
    directory = Path(options.file).resolve().parent
    provenance = Provenance(__version__, manifest.digest, git_commit(directory))
    session = Session(options, manifest, provenance)
    if not open_backends:
        return session
    context = get_current_context(silent=True)
    if context is not None:
        context.call_on_close(session.close)
    try:
        _open_backends(session, list(only) or sorted(manifest.backends), directory)
    except BaseException:
        if context is None:
            session.close()
        raise
    return session


def _open_backends(session: Session, names: Sequence[str], directory: Path) -> None:
    manifest, options = session.manifest, session.options
    for name in names:
        if name not in manifest.backends:
            raise PlanError(
                f"no backend named {name!r} in {options.file}",
                hint="backends: " + ", ".join(sorted(manifest.backends)),
            )
        spec = manifest.backends[name]
        opts = OpenOptions(directory, Scope(name, manifest.project, manifest.branch), session.provenance)
        session.backends[name] = open_backend(spec, opts)


__all__ = [
    "SECRETS",
    "FlowplanError",
    "ManifestOptions",
    "Session",
    "git_commit",
    "load",
    "load_options",
    "parse_vars",
    "scrub",
]
