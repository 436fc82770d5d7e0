"""The registry composes each backend's compiler in one place, the same for ``validate`` and ``plan``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backends.argo.compile import ArgoCompiler
from backends.files import SensitiveGuard
from backends.metaflow.backend import MetaflowCompiler
from backends.registry import OpenOptions, composed_compiler, open_backend
from backends.stepfunctions.compile import StepFunctionsCompiler
from planner.contract import CompileContext, Compiler, Scope
from planner.errors import ManifestError
from planner.manifest import Manifest, load_manifest
from planner.resources import Provenance
from planner.rollback import RollbackBackend

REPO = Path(__file__).resolve().parents[2]
PARITY = REPO / "tests" / "planner" / "parity"
CRON = {"kind": "CronWorkflow", "spec": {"schedules": ["0 4 * * *"], "timezone": "Europe/Berlin"}}


def _chain(compiler: Compiler) -> list[type]:
    """The compiler's classes from the outermost wrapper in."""
    chain: list[type] = [type(compiler)]
    while isinstance(compiler, SensitiveGuard | MetaflowCompiler):
        compiler = compiler.inner if isinstance(compiler, SensitiveGuard) else compiler.base
        chain.append(type(compiler))
    return chain


def _load(case: str) -> Manifest:
    return load_manifest(PARITY / case / "flows.yaml")


def _opened_compiler(manifest: Manifest, name: str) -> Compiler:
    spec = manifest.backends[name]
    options = OpenOptions(
        Path(manifest.path).parent, Scope(name, manifest.project, manifest.branch), Provenance("t", "d")
    )
    return open_backend(spec, options).compiler()


@pytest.mark.parametrize(
    ("case", "chain"),
    [
        ("files-sensitive-env", [SensitiveGuard, ArgoCompiler]),
        ("sfn-no-events-role", [SensitiveGuard, StepFunctionsCompiler]),
        ("metaflow-sinks", [MetaflowCompiler, SensitiveGuard, ArgoCompiler]),
        ("argo-live-static-problem", [ArgoCompiler]),
        ("sfn-live-static-problem", [StepFunctionsCompiler]),
    ],
)
def test_plan_and_validate_get_the_same_composition(case: str, chain: list[type]) -> None:
    manifest = _load(case)
    (name,) = manifest.backends
    assert _chain(composed_compiler(manifest.backends[name], offline=True)) == chain
    assert _chain(_opened_compiler(manifest, name)) == chain


def test_the_files_guard_refuses_through_either_way_in() -> None:
    manifest = _load("files-sensitive-env")
    (name,) = manifest.backends
    context = CompileContext(manifest, manifest.backends[name], Provenance("t", "d"))
    for compiler in (composed_compiler(manifest.backends[name]), _opened_compiler(manifest, name)):
        with pytest.raises(ManifestError, match="sensitive value refused"):
            compiler.compile(context)


def test_wrappers_pass_schedule_facts_through() -> None:
    for case in ("files-sensitive-env", "metaflow-sinks"):
        manifest = _load(case)
        (name,) = manifest.backends
        facts = composed_compiler(manifest.backends[name]).schedule_facts("CronWorkflow", CRON)
        assert facts is not None and facts.timezone == "Europe/Berlin"
        assert facts.expressions[0].cron == "0 4 * * *"


def test_a_rollback_reads_schedules_as_its_backend_does() -> None:
    """A rollback's compiler returns recorded bodies; the schedules in them are read by the real backend's."""
    manifest = _load("files-sensitive-env")
    (name,) = manifest.backends
    options = OpenOptions(
        Path(manifest.path).parent, Scope(name, manifest.project, manifest.branch), Provenance("t", "d")
    )
    compiler = RollbackBackend(open_backend(manifest.backends[name], options), []).compiler()
    facts = compiler.schedule_facts("CronWorkflow", CRON)
    assert facts is not None and (facts.timezone, facts.expressions[0].cron) == ("Europe/Berlin", "0 4 * * *")
    assert compiler.schedule_facts("WorkflowTemplate", {"kind": "WorkflowTemplate"}) is None


def test_backends_do_not_import_the_registry() -> None:
    """The registry composes backends; a backend importing it back (even inside a function) is a cycle."""
    for path in sorted((REPO / "backends").rglob("*.py")):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "backends.registry", path
            if isinstance(node, ast.Import):
                assert all(alias.name != "backends.registry" for alias in node.names), path
