"""Names and scopes (issue 19, bullet 6): further attacks with names that are almost valid.

A stray character at the end of a name (a newline, a carriage return, a NUL), a letter from
another alphabet that looks like a Latin one, a label one character too long, a payload path
with a newline: each must be refused where it is written, with the place named, before anything
is planned. The table of every name checker is tests/planner/manifest/test_name_checks.py; these
tests run the whole CLI, as a pull request's author would reach it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.errors import BackendError
from planner.resources import Address
from tests.backends.argo.test_live_support import Cluster, cluster
from tests.security.conftest import attack
from tests.security.test_attacks import _project

__all__ = ["cluster"]


@attack("names and scopes: a flow name ending in a carriage return or a NUL must be refused", fixed=True)
@pytest.mark.parametrize("suffix", ["\\r", "\\0"], ids=["cr", "nul"])
def test_a_flow_name_with_a_stray_control_character_is_refused(tmp_path: Path, suffix: str) -> None:
    project = _project(tmp_path, flow=f'"greet{suffix}"')
    result = project.run("validate")
    assert result.code == 1 and "greet" in result.err and "Traceback" not in result.err


@attack("names and scopes: a flow name with a Cyrillic 'а' (looks like the Latin 'a') must be refused", fixed=True)
def test_a_flow_name_with_a_lookalike_letter_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, flow='"gre\u0430t"')
    result = project.run("validate")
    assert result.code == 1 and "flow names use" in result.err


@attack("names and scopes: two flows whose names differ only in case must not deploy as one object", fixed=True)
def test_two_flows_equal_once_lowercased_are_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, flow="greet")
    text = project.manifest.read_text()
    project.manifest.write_text(
        text + "  Greet:\n    image: busybox\n    steps:\n      start:\n        command: [echo]\n"
    )
    result = project.run("validate")
    assert result.code == 1 and "Greet" in result.err and "greet" in result.err


@attack("names and scopes: a label value of 64 characters must be refused (63 is accepted)", fixed=True)
@pytest.mark.parametrize(("length", "code"), [(63, 0), (64, 1)])
def test_a_label_value_over_63_characters_is_refused(tmp_path: Path, length: int, code: int) -> None:
    project = _project(tmp_path)
    project.edit("    image: busybox\n", f"    image: busybox\n    tags: {{team: {'t' * length}}}\n")
    result = project.run("validate")
    assert result.code == code, result.err
    if code:
        assert "not a valid label value" in result.err


@attack("names and scopes: an event filter path with a newline must be refused", fixed=True)
def test_an_event_filter_path_with_a_newline_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.edit(
        "flows:\n",
        'events:\n  landed:\n    source: s\n    type: t\n    filters: [{path: "bucket.name\\n", value: x}]\nflows:\n',
    )
    result = project.run("validate")
    assert result.code == 1 and "is not a dotted payload path" in result.err


@attack("names and scopes: a resource name ending in a newline must never become a file name in deploy/", fixed=True)
def test_a_file_name_part_with_a_trailing_newline_is_refused() -> None:
    from backends.files_format import relative

    assert relative(Address("local", "WorkflowTemplate", "argo", "greet")) == "argo/workflowtemplate/greet.yaml"
    with pytest.raises(BackendError, match="cannot be used in a file name"):
        relative(Address("local", "WorkflowTemplate", "argo", "greet\n"))


@attack("names and scopes: an apply to a namespace that does not exist must be one clear error naming it", fixed=True)
def test_a_namespace_that_does_not_exist_is_one_clear_error(cluster: Cluster) -> None:
    missing = ["--var", "namespace=nowhere", "--var", "sensor_namespace=nowhere"]
    # A LIST in a missing namespace answers an empty list (as kube-apiserver does): the plan shows creates.
    assert cluster.flowplan("plan", *missing).code == 0
    result = cluster.flowplan("apply", "--auto-approve", *missing)
    assert result.code == 1
    assert "namespace 'nowhere' does not exist" in result.err and "kubectl create namespace nowhere" in result.err
    assert "Traceback" not in result.text and "unexpectedly" not in result.text
    assert cluster.server.get_object("Namespace", None, "nowhere") is None
