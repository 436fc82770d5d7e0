"""The compile cache and its temporary directory belong to one opened backend, which removes them when closed.

The unit tests need no Metaflow; the others compile the test flows with the real driver (one compile group
each) and plan and apply through the CLI against moto's S3 and the Kubernetes API test server.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from backends.metaflow.backend import MetaflowBackend
from backends.metaflow.common import CODE_PACKAGE
from backends.metaflow.compile import CompiledFlow, MetaflowWorkspace, Package
from backends.registry import OpenOptions, open_backend
from planner.contract import CompileContext, Scope
from planner.manifest import load_manifest
from planner.resources import Provenance
from tests.backends.metaflow.conftest import Workspace, argo_backend, manifest, metaflow_flow


def _compiled(sha: str, path: str) -> CompiledFlow:
    package = Package(f"s3://b/m/F/data/{sha[:2]}/{sha}", sha, 1, path, "F", "s3://b/m")
    return CompiledFlow("f", "argo", "F", "f", "t", None, None, package, None, None, (), None, ())


def test_a_workspace_makes_its_directory_when_needed_and_removes_it_when_closed(tmp_path: Path) -> None:
    workspace = MetaflowWorkspace(tmp_path)
    assert workspace.root is None and list(tmp_path.iterdir()) == []
    group = workspace.directory("compile-")
    root = workspace.root
    assert root is not None and group.parent == root and root.parent == tmp_path
    (group / "package.tgz").write_bytes(b"x")
    workspace.keep("key", _compiled("ab" * 20, str(group / "package.tgz")))
    assert workspace.cached("key") is not None
    assert workspace.package("ab" * 20) is not None and workspace.package("cd" * 20) is None
    workspace.close()
    assert list(tmp_path.iterdir()) == []
    assert workspace.root is None and workspace.cached("key") is None and workspace.package("ab" * 20) is None
    workspace.close()  # closing twice is harmless


def test_two_workspaces_share_nothing(tmp_path: Path) -> None:
    with MetaflowWorkspace(tmp_path) as first, MetaflowWorkspace(tmp_path) as second:
        first.keep("key", _compiled("ab" * 20, "p"))
        assert second.cached("key") is None and second.package("ab" * 20) is None
        assert first.directory("a-").parent != second.directory("b-").parent
    assert list(tmp_path.iterdir()) == []


def _open(ws: Workspace) -> tuple[MetaflowBackend, CompileContext]:
    loaded = load_manifest(str(ws.root / "flows.yaml"))
    spec = loaded.backends["ml"]
    provenance = Provenance("0", loaded.digest, None)
    backend = open_backend(spec, OpenOptions(ws.root, Scope("ml", loaded.project, loaded.branch), provenance))
    assert isinstance(backend, MetaflowBackend)
    return backend, CompileContext(loaded, spec, provenance)


def test_two_backends_compile_into_their_own_caches_and_close_only_their_own(workspace: Workspace) -> None:
    workspace.write(manifest(argo_backend(workspace.aws), {"linear": metaflow_flow("linear")}))
    first, context = _open(workspace)
    second, _ = _open(workspace)
    try:
        assert first.workspace is not second.workspace and first.store.workspace is first.workspace
        compiled = first.compiler().compile(context)
        first.compiler().compile(context)  # the same backend plans again: served from its cache
        assert first.workspace.compiled == 1
        second.compiler().compile(context)  # another backend compiles for itself
        assert second.workspace.compiled == 1
        sha = next(r.body["sha"] for r in compiled if r.address.kind == CODE_PACKAGE)
        mine, theirs = first.workspace.package(sha), second.workspace.package(sha)
        assert mine is not None and theirs is not None and mine.path != theirs.path
        root = first.workspace.root
        assert root is not None and Path(mine.path).is_relative_to(root)
        first.close()
        assert not root.exists() and first.workspace.package(sha) is None
        assert Path(theirs.path).is_file() and second.workspace.package(sha) == theirs
    finally:
        first.close()
        second.close()
    assert not Path(theirs.path).exists()


@pytest.mark.parametrize("command", [("plan",), ("apply", "--auto-approve")])
def test_a_command_leaves_no_temporary_directory_behind(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    """Every temporary directory flowplan makes in this process goes under ``tmp``; none is left after the
    command, although it compiled (and, for apply, uploaded) a code package."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    workspace.write(manifest(argo_backend(workspace.aws), {"linear": metaflow_flow("linear")}))
    result = workspace.flowplan(*command)
    assert result.code == 0, result.text
    assert "CodePackage" in result.out or "code package" in result.out.lower(), result.out
    assert sorted(p.name for p in tmp.iterdir()) == []


def test_a_failed_compile_leaves_no_temporary_directory_behind(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    workspace.edit("linear", "from metaflow import", "import no_such_module_anywhere\nfrom metaflow import")
    workspace.write(manifest(argo_backend(workspace.aws), {"linear": metaflow_flow("linear")}))
    result = workspace.flowplan("plan")
    assert result.code == 1 and "failed to import" in " ".join(result.err.split()), result.text
    assert sorted(p.name for p in tmp.iterdir()) == []
