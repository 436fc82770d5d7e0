"""``naming: metaflow``: the names Metaflow's ``argo-workflows create`` gives, so its deployments are adopted
in place. Checked against Metaflow's own name function (the pinned version), not against a copy of it."""

from __future__ import annotations

import random
import string
import textwrap
from typing import Any

import pytest

from backends.argo.names import metaflow_branch, metaflow_name

cli = pytest.importorskip("metaflow.plugins.argo.argo_workflows_cli")


class _Current(dict[str, Any]):
    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, key, default)

    def __getattr__(self, key: str) -> Any:
        return self[key]


def _theirs(project: str, branch: str, flow: str, monkeypatch: pytest.MonkeyPatch) -> str:
    b = metaflow_branch(branch)
    fake = _Current(project_name=project, branch_name=b, flow_name=flow, project_flow_name=f"{project}.{b}.{flow}")
    monkeypatch.setattr(cli, "current", fake)
    return str(cli.resolve_workflow_name_v2(None, None)[0])


def _cases() -> list[tuple[str, str, str]]:
    rng = random.Random(8)
    fixed = [("recsys", "prod", "TrainFlow"), ("recsys", "pr-7", "Train_Flow"), ("p", "prod", "x")]
    letters = string.ascii_lowercase + string.digits
    for _ in range(60):
        project = rng.choice(string.ascii_lowercase) + "".join(rng.choices(letters + "-", k=rng.randint(0, 30)))
        branch = rng.choice(["prod", "dev", "feature-" + "".join(rng.choices(letters, k=rng.randint(1, 25)))])
        flow = rng.choice(string.ascii_uppercase) + "".join(
            rng.choices(string.ascii_letters + "_", k=rng.randint(0, 40))
        )
        fixed.append((project.rstrip("-") or "p", branch, flow))
    return fixed


@pytest.mark.parametrize(("project", "branch", "flow"), _cases())
def test_names_equal_metaflows(project: str, branch: str, flow: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert metaflow_name(project, branch, flow).physical == _theirs(project, branch, flow, monkeypatch)


def test_the_compiler_uses_them_with_naming_metaflow() -> None:
    from tests.backends.argo.helpers import compile_text

    text = textwrap.dedent(
        """\
        version: 1
        project: recsys
        backends:
          k8s: {type: files, argo: {namespace: ml, naming: metaflow}}
        events:
          landed: {source: s3, type: created}
        flows:
          TrainFlow:
            image: img:1
            schedule: {cron: "0 2 * * *"}
            triggers: [{event: landed}]
            steps:
              start: {command: [run]}
        """
    )
    names = {(r.address.kind, r.address.name) for r in compile_text(text)}
    assert ("WorkflowTemplate", "recsys.prod.trainflow") in names
    assert ("CronWorkflow", "recsys.prod.trainflow") in names
    assert ("Sensor", "recsys-prod-trainflow") in names
