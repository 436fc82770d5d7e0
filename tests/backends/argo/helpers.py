"""Shared helpers for the Argo compiler tests: loading manifests, compiling, the golden cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from backends.argo.compile import ArgoCompiler
from planner.contract import CompileContext
from planner.manifest import Manifest, load_manifest
from planner.resources import Provenance, Resource

REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).resolve().parent / "golden"

#: A fixed provenance, so golden files do not change with every commit.
PROVENANCE = Provenance("0.0.0-test", "f" * 64, "0123456789abcdef0123456789abcdef01234567")


@dataclass(frozen=True)
class Case:
    """One golden case: a manifest on disk, compiled for one branch and backend."""

    manifest: str
    backend: str
    branch: str = "prod"
    enable_schedules: bool = False
    cli_vars: Mapping[str, str] = field(default_factory=dict)

    def load(self) -> Manifest:
        return load_manifest(
            REPO / self.manifest,
            branch=self.branch,
            enable_schedules=self.enable_schedules,
            cli_vars=dict(self.cli_vars),
        )

    def compile(self, provenance: Provenance = PROVENANCE) -> list[Resource]:
        return compile_manifest(self.load(), self.backend, provenance)


CASES: dict[str, Case] = {
    "repo_flows": Case("flows.yaml", "local"),
    "branch_dev": Case("flows.yaml", "local", branch="dev"),
    "minimal": Case("examples/minimal/flows.yaml", "local"),
    "triggers": Case("examples/triggers/flows.yaml", "cluster", cli_vars={"slack_token": "xoxb-test-sentinel"}),
}


def compile_manifest(
    manifest: Manifest, backend: str | None = None, provenance: Provenance = PROVENANCE
) -> list[Resource]:
    """Compile ``manifest`` for ``backend`` (default: its only backend)."""
    name = backend if backend is not None else next(iter(manifest.backends))
    return ArgoCompiler().compile(CompileContext(manifest, manifest.backends[name], provenance))


def load_text(text: str, **options: Any) -> Manifest:
    """A manifest from YAML text, as if read from ``flows.yaml`` (positions included)."""
    return load_manifest("flows.yaml", raw=text.encode(), **options)


def load_data(data: Mapping[str, Any], **options: Any) -> Manifest:
    return load_text(yaml.safe_dump(dict(data), sort_keys=False), **options)


def compile_text(text: str, backend: str | None = None, **options: Any) -> list[Resource]:
    return compile_manifest(load_text(text, **options), backend)


def find(resources: list[Resource], kind: str, name: str | None = None) -> Resource:
    """The one resource of ``kind`` (whose physical name ends with ``name``, when given)."""
    matches = [r for r in resources if r.address.kind == kind and (name is None or r.address.name.endswith(name))]
    assert len(matches) == 1, f"{len(matches)} {kind} resources match {name!r}: {[str(r.address) for r in resources]}"
    return matches[0]


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.address.kind == kind]


class _PlainDumper(yaml.SafeDumper):
    """No anchors: the compiler shares identical parts between bodies and steps (they are immutable)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(body: Mapping[str, Any]) -> str:
    """How golden files spell a body: block YAML in the compiler's key order."""
    return yaml.dump(
        dict(body), Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096
    )
