"""The fast paths of issue 12 give the same answers as the slow ones they replaced."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import files as files_backend
from backends.registry import composed_compiler
from planner.resources import delete_pointer, has_pointer, join_pointer, split_pointer, without
from tests.planner.loop import Project


def _without_by_deepcopy(body: dict[str, Any], pointers: list[str]) -> dict[str, Any]:
    """The implementation before issue 12: deep copy, then delete (reference semantics)."""
    present = [p for p in pointers if has_pointer(body, p)]
    if not present:
        return dict(body)
    result = copy.deepcopy(dict(body))
    for pointer in sorted(present, reverse=True):
        delete_pointer(result, pointer)
        parents = split_pointer(pointer)[:-1]
        while parents:
            node: Any = result
            for part in parents[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(parents[-1]) == {}:
                del node[parents[-1]]
                parents = parents[:-1]
            else:
                break
    return result


_keys = st.sampled_from(["a", "b", "c", "x/y", "t~0", "0", "1"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text("ab", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_pointer = st.lists(st.sampled_from(["a", "b", "c", "x/y", "t~0", "0", "1", "2"]), min_size=0, max_size=4).map(
    join_pointer
)


@settings(max_examples=2000, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=4), st.lists(_pointer, max_size=4))
def test_without_shares_untouched_parts_and_matches_the_deep_copy_version(
    body: dict[str, Any], pointers: list[str]
) -> None:
    before = json.dumps(body, sort_keys=True)
    assert without(body, pointers) == _without_by_deepcopy(body, pointers)
    assert json.dumps(body, sort_keys=True) == before  # the original is untouched


def test_what_the_argo_compiler_remembers_is_what_would_be_computed_afresh() -> None:
    from backends.files import dump_body
    from planner.resources import digest
    from tests.backends.argo.helpers import CASES

    for case in CASES.values():
        for resource in case.compile():
            assert resource.known is not None, "recorded by the compiler"
            fresh = without(resource.body, resource.volatile_paths)
            assert dump_body(resource.comparison_body) == dump_body(fresh), resource.address  # key order too
            assert resource.digest == digest(fresh), resource.address
            assert resource.spec_hash == resource.body["metadata"]["annotations"]["flowplan.dev/spec-hash"]


# --------------------------------------------------------------------------- files: the header decides, bytes prove it


def _files_project(tmp_path: Path) -> Project:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    return project


def _no_yaml_parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = files_backend.yaml.load

    def counting(text: str, Loader: Any) -> Any:
        parsed.append(text[:40])
        return real(text, Loader=Loader)

    monkeypatch.setattr(files_backend.yaml, "load", counting)
    monkeypatch.setattr(files_backend, "dump_body", _forbidden)
    return parsed


def _forbidden(*_: Any) -> str:
    raise AssertionError("a file whose header and digest match must not be rendered")


def test_an_unchanged_file_is_recognised_from_its_header_without_rendering_or_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _files_project(tmp_path)
    parsed = _no_yaml_parsed(monkeypatch)
    result = project.run("plan", "--detailed-exitcode")
    assert result.code == 0, result.out + result.err
    assert parsed == []


def test_a_body_edited_by_hand_under_an_untouched_header_is_drift(tmp_path: Path) -> None:
    project = _files_project(tmp_path)
    target = tmp_path / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    target.write_text(target.read_text().replace("timezone: Europe/Berlin", "timezone: UTC"))
    result = project.run("plan", "--detailed-exitcode")
    assert result.code == 2
    assert "~ spec.timezone" in result.out and "drift" in result.out


def test_files_written_before_the_body_digest_still_plan_no_change(tmp_path: Path) -> None:
    project = _files_project(tmp_path)
    for path in (tmp_path / "deploy").rglob("*.yaml"):
        lines = path.read_text().split("\n")
        owner = json.loads(lines[1][len(files_backend.OWNER_PREFIX) :])
        del owner[files_backend.BODY_DIGEST_KEY]
        lines[1] = files_backend.OWNER_PREFIX + json.dumps(owner, sort_keys=True, separators=(",", ":"))
        path.write_text("\n".join(lines))
    result = project.run("plan", "--detailed-exitcode")
    assert result.code == 0, result.out + result.err


def test_a_header_claiming_another_spec_hash_is_not_trusted(tmp_path: Path) -> None:
    project = _files_project(tmp_path)
    target = tmp_path / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    text = target.read_text()
    owner_line = text.split("\n")[1]
    owner = json.loads(owner_line[len(files_backend.OWNER_PREFIX) :])
    owner["spec-hash"] = "0" * 16
    forged = files_backend.OWNER_PREFIX + json.dumps(owner, sort_keys=True, separators=(",", ":"))
    target.write_text(text.replace(owner_line, forged).replace("timezone: Europe/Berlin", "timezone: UTC"))
    result = project.run("plan", "--detailed-exitcode")
    assert result.code == 2 and "~ spec.timezone" in result.out


@settings(max_examples=500, deadline=None)
@given(_json, st.integers(0, 6))
def test_first_leaves_is_the_head_of_leaves(value: Any, limit: int) -> None:
    from planner.render.common import first_leaves, leaves

    everything = leaves(value)
    assert first_leaves(value, limit) == (everything[:limit], len(everything))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _json, max_size=5))
def test_revision_bodies_pack_to_the_same_bytes_as_before(bodies: dict[str, Any]) -> None:
    import base64
    import zlib

    from planner.applying.revision import pack
    from planner.resources import canonical_json

    assert pack(bodies) == base64.b64encode(zlib.compress(canonical_json(bodies).encode(), 9)).decode()


# --------------------------------------------------------------------------- the files reader's answer


def _reader(tmp_path: Path) -> tuple[Any, Any, list[Any]]:
    """(files reader, scope, desired resources) for the manifest in ``tmp_path``."""
    from planner.contract import CompileContext, Scope
    from planner.manifest import load_manifest
    from planner.resources import Provenance

    manifest = load_manifest(tmp_path / "flows.yaml")
    name = sorted(manifest.backends)[0]
    spec = manifest.backends[name]
    scope = Scope(name, manifest.project, manifest.branch)
    backend = files_backend.FilesBackend(spec, tmp_path, scope, {}, composed_compiler(spec))
    desired = backend.compiler().compile(CompileContext(manifest, spec, Provenance("t", "d")))
    return backend.reader(), scope, desired


def _read_live(tmp_path: Path) -> dict[str, Any]:
    """A summary of the files reader's answer."""
    reader, scope, desired = _reader(tmp_path)
    state = reader.read(scope, desired)
    return {
        "owned": {str(a): (live.version, live.spec_hash, _dump(live.body)) for a, live in state.owned.items()},
        "others": {str(a): (live.version, _dump(live.body)) for a, live in state.others.items()},
    }


def _dump(body: Any) -> str:
    return json.dumps(body, sort_keys=True)


def test_the_reader_parses_an_edited_file_and_skips_a_foreign_one(tmp_path: Path) -> None:
    project = _files_project(tmp_path)
    # a file edited by hand (read again and parsed) and a foreign file beside ours
    target = tmp_path / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    target.write_text(target.read_text().replace("timezone: Europe/Berlin", "timezone: UTC"))
    (tmp_path / "deploy/argo/configmap/someone-else.yaml").write_text("kind: ConfigMap\n")
    assert project.run("plan").code == 0
    live = _read_live(tmp_path)
    assert len(live["owned"]) > 10 and live["others"] == {}
    assert not [a for a in live["owned"] if "someone-else" in a]
    edited = [v for a, v in live["owned"].items() if a.endswith("recsys-prod-train") and "Cron" in a]
    assert edited and '"UTC"' in edited[0][2]


def test_shared_parts_of_bodies_render_without_anchors(tmp_path: Path) -> None:
    """The Argo compiler shares identical env entries between steps (memory at 10,000 flows);
    the files backend must still write plain YAML, with no anchors or aliases."""
    from planner.contract import CompileContext
    from planner.manifest import load_manifest
    from planner.resources import Provenance

    manifest = load_manifest(Path(__file__).resolve().parents[2] / "flows.yaml")
    name = sorted(manifest.backends)[0]
    resources = (
        files_backend.FilesBackend(
            manifest.backends[name],
            tmp_path,
            None,  # type: ignore[arg-type]
            {},
            composed_compiler(manifest.backends[name]),
        )
        .compiler()
        .compile(CompileContext(manifest, manifest.backends[name], Provenance("t", "d")))
    )
    template = next(
        r for r in resources if r.address.kind == "WorkflowTemplate" and len(r.body["spec"]["templates"]) > 2
    )
    envs = [t["container"]["env"] for t in template.body["spec"]["templates"] if "container" in t]
    assert envs[0][0] is envs[1][0], "the same entry object in two steps"
    text = files_backend.dump_body(template.body)
    assert "&id" not in text and "*id" not in text
    assert text.count("name: FLOWPLAN_PROJECT") == len(envs)


_IMPORTS = """
import json, sys
from planner.cli import run
code = run(sys.argv[1:])
heavy = ("networkx", "deepdiff", "jsonschema")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def _plan_imports(directory: Path, *extra: str) -> dict[str, Any]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, "plan", "-f", str(directory / "flows.yaml"), "--detailed-exitcode", *extra],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_plan_without_changes_imports_no_graph_diff_or_schema_library(tmp_path: Path) -> None:
    """A no-change plan (CI's drift check, most plans of a large deployment) loads none of them: ~0.3 s."""
    project = _files_project(tmp_path)
    assert _plan_imports(tmp_path) == {"code": 0, "loaded": []}
    # ... and each is loaded where it is needed: changed bodies are diffed and their writes ordered,
    # deletes are ordered by kind, an invalid manifest is explained by jsonschema
    manifest = tmp_path / "flows.yaml"
    text = manifest.read_text()
    assert "Europe/Berlin" in text
    manifest.write_text(text.replace("Europe/Berlin", "UTC"))
    assert _plan_imports(tmp_path) == {"code": 2, "loaded": ["deepdiff", "networkx"]}
    manifest.write_text(text.replace("protect: true", "protect: false"))
    assert project.run("apply", "--auto-approve").code == 0  # protected flows are never destroyed
    assert _plan_imports(tmp_path, "--destroy", "--allow-destroy") == {"code": 2, "loaded": ["networkx"]}
    manifest.write_text(text.replace("version: 1", "version: 1\nbogus: 1", 1))
    assert _plan_imports(tmp_path) == {"code": 1, "loaded": ["jsonschema"]}
