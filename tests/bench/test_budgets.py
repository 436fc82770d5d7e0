"""The API-call budgets of issue 12, counted by the proxy on generated manifests: counts, not timings.

* Argo: a no-change plan of 250 flows (771 objects, more than one LIST page per kind) makes only
  paged LISTs: no GET of any single object, and the number of LISTs follows the pages, not the
  objects.
* Step Functions: a no-change plan of 30 flows makes at most one describe per state machine and
  schedule, one target listing and one tag lookup per rule (and per sink parameter), besides the
  listings; nothing else.

Both live states are seeded the way the benchmark seeds them (:mod:`bench.seed`), which is itself
checked: seeding and applying leave states that plan the same, call for call.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import pytest

from backends.argo import list_scan
from backends.argo.client import PAGE_SIZE
from bench import generate, seed
from bench.moto_server import Replayer
from bench.run import stepfunctions_over_budget
from planner.cli import run
from planner.cli.session import ManifestOptions
from planner.contract import Scope
from tests.support.aws_fixtures import AwsEnv
from tests.support.fixtures import ProxyEnv
from tests.support.kubeconfig import write_kubeconfig


def _plan(manifest: Path, var: str, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = run(["plan", "-f", str(manifest), "--var", var, "--detailed-exitcode", *extra])
    return code, out.getvalue()


@pytest.mark.parametrize("in_child", [False, True], ids=["listed in process", "listed by a second process"])
def test_argo_no_change_plan_of_771_objects_makes_only_paged_lists(
    k8s_proxy: ProxyEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_child: bool
) -> None:
    monkeypatch.setattr(list_scan, "IN_CHILD_FROM", 1 if in_child else 10**9)  # 10,000 flows: a second process
    flows = 250
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(generate.generate(flows, "argo"))
    server = k8s_proxy.k8s.server
    direct = write_kubeconfig(tmp_path / "direct", server.url, k8s_proxy.k8s.token, namespace="bench")
    count = seed.seed_argo(
        ManifestOptions(str(manifest), cli_vars=(("kubeconfig", str(direct)),)), server.url, k8s_proxy.k8s.token
    )
    assert count == 3 * flows + generate.SINKS + 1
    k8s_proxy.proxy.reset_counts()
    code, out = _plan(manifest, f"kubeconfig={k8s_proxy.kubeconfig_path}")
    assert code == 0, out
    counts = k8s_proxy.proxy.counts()
    assert all(key.startswith("list ") for key in counts), f"a per-resource call in a no-change plan: {counts}"
    pages = math.ceil(flows / PAGE_SIZE)
    assert counts == {
        "list configmaps": 2,  # the inventory, and the sink ConfigMaps (20: one page)
        "list eventsources": 1,
        "list workflowtemplates": pages,
        "list cronworkflows": pages,
        "list sensors": pages,
    }


def _seed(aws: AwsEnv, manifest: Path) -> None:
    """The live state and inventory a first apply of ``manifest`` leaves, seeded the benchmark's way."""
    options = ManifestOptions(str(manifest), cli_vars=(("endpoint_url", aws.server.url),))
    session, name, backend, resources = seed.compiled(options)
    scope = Scope(name, session.manifest.project, session.manifest.branch)
    Replayer(aws.account, aws.region).replay(seed.record_stepfunctions_creates(backend, scope, resources))
    backend.inventory(scope).save(seed.first_apply_inventory(session, resources))


def test_stepfunctions_no_change_plan_stays_within_the_call_budget(aws: AwsEnv, tmp_path: Path) -> None:
    flows = 30
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(generate.generate(flows, "stepfunctions"))
    _seed(aws, manifest)
    aws.proxy.reset_counts()
    code, out = _plan(manifest, f"endpoint_url={aws.url}")
    assert code == 0, out
    counts = aws.proxy.counts()
    assert stepfunctions_over_budget(counts, flows) == {}, counts
    assert counts["states:DescribeStateMachine"] == flows
    assert counts["events:ListTargetsByRule"] == counts["events:ListTagsForResource"] == flows
    assert counts["scheduler:GetSchedule"] == flows


def test_seeding_leaves_what_an_apply_leaves(aws: AwsEnv, tmp_path: Path) -> None:
    """The benchmark's 10,000-flow live states are seeded: they must plan exactly like applied ones."""
    manifest = tmp_path / "flows.yaml"
    manifest.write_text(generate.generate(4, "stepfunctions"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert run(["apply", "-f", str(manifest), "--var", f"endpoint_url={aws.server.url}", "--auto-approve"]) == 0
    aws.proxy.reset_counts()
    assert _plan(manifest, f"endpoint_url={aws.url}")[0] == 0
    applied = aws.proxy.counts()

    aws.server.reset()
    _seed(aws, manifest)
    aws.proxy.reset_counts()
    code, text = _plan(manifest, f"endpoint_url={aws.url}")
    assert code == 0, text
    assert aws.proxy.counts() == applied
