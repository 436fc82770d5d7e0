"""Errors a person can act on: each names the flow in flows.yaml (file:line) and says what to do."""

from __future__ import annotations

import pytest

from backends.metaflow import compile as metaflow_compile
from tests.backends.metaflow.conftest import Workspace, argo_backend, manifest, metaflow_flow

BROKEN = {
    "imports": (
        "from metaflow import FlowSpec, step\nimport no_such_module_anywhere\n\n\nclass ImportsFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    ImportsFlow()\n"
    ),
    "nomain": (
        "from metaflow import FlowSpec, step\n\n\nclass NoMainFlow(FlowSpec):\n    @step\n    def start(self):\n"
        "        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
    ),
    "both": (
        "from metaflow import FlowSpec, step, trigger, trigger_on_finish\n\n\n@trigger(event='a')\n"
        "@trigger_on_finish(flow='LinearFlow')\nclass BothFlow(FlowSpec):\n    @step\n    def start(self):\n"
        "        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    BothFlow()\n"
    ),
}


def test_every_broken_flow_is_reported_at_its_manifest_entry(workspace: Workspace) -> None:
    ws = workspace
    for name, text in BROKEN.items():
        (ws.flows / name).mkdir()
        (ws.flows / name / f"{name}_flow.py").write_text(text)
    flows = {name: metaflow_flow(name) for name in BROKEN}
    flows["missing"] = metaflow_flow("missing")
    flows["wrongclass"] = {"metaflow": {"file": "flows/linear/linear_flow.py", "flow_class": "TrainFlow"}}
    ws.write(manifest(argo_backend(ws.aws), flows))
    planned = ws.flowplan("plan")
    assert planned.code == 1
    text = " ".join(planned.err.split())
    assert "the manifest has 5 problems" in text
    assert (
        "flows.imports.metaflow: flows/imports/imports_flow.py failed to import (imports_flow.py:2): "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in text
    )
    assert "install what the flow imports (or set metaflow.python on the backend)" in text
    assert "flows.nomain.metaflow: running the file starts no flow" in text
    assert "`if __name__ == '__main__': MyFlow()`" in text
    assert "flows.both.metaflow: Metaflow cannot deploy it to Argo Workflows" in text
    assert "both *@trigger* and *@trigger_on_finish*" in text or "both @trigger and @trigger_on_finish" in text
    assert "flows.missing.metaflow.file: no such file: flows/missing/missing_flow.py" in text
    assert "flows.wrongclass.metaflow.flow_class: running the file starts LinearFlow, not TrainFlow" in text
    assert "flows.yaml:" in planned.err  # every problem points into the manifest


def test_another_metaflow_version_is_refused(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metaflow_compile, "METAFLOW_VERSION", "2.99.0")
    workspace.write(manifest(argo_backend(workspace.aws), {"linear": metaflow_flow("linear")}))
    planned = workspace.flowplan("plan")
    assert planned.code == 1
    text = " ".join(planned.err.split())
    assert "has metaflow 2.19.39; flowplan is pinned to metaflow==2.99.0" in text
    assert "pip install metaflow==2.99.0" in text


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"image": "x"}, "missing required key 'datastore_root'"),
        ({"datastore_root": "/data/metaflow", "image": "x"}, "'/data/metaflow' is not an S3 datastore root"),
        (
            {"datastore_root": "s3://b/p", "image": "x", "config": {"METAFLOW_DATASTORE_SYSROOT_S3": "s3://c"}},
            "METAFLOW_DATASTORE_SYSROOT_S3 is set by flowplan from the manifest",
        ),
    ],
)
def test_missing_or_contradicting_settings(workspace: Workspace, settings: dict[str, object], expected: str) -> None:
    backend = {"type": "files", "argo": {"namespace": "ml"}, "metaflow": settings}
    workspace.write(manifest(backend, {"linear": metaflow_flow("linear")}))
    planned = workspace.flowplan("plan")
    assert planned.code == 1
    assert expected in " ".join(planned.err.split())


def test_a_metaflow_flow_on_a_backend_without_metaflow_settings(workspace: Workspace) -> None:
    workspace.write(manifest({"type": "files", "argo": {"namespace": "ml"}}, {"linear": metaflow_flow("linear")}))
    planned = workspace.flowplan("validate")
    assert planned.code == 1
    assert "backend 'ml' has no metaflow: settings block" in planned.err


@pytest.mark.slow
def test_trigger_on_finish_of_an_undeployed_flow_on_step_functions(workspace: Workspace) -> None:
    from tests.backends.metaflow.conftest import make_batch_queue, metaflow_settings, sfn_settings

    aws = workspace.aws
    make_batch_queue(aws)
    backend = {"type": "stepfunctions", "endpoint_url": aws.url, "stepfunctions": sfn_settings(aws)}
    backend["metaflow"] = metaflow_settings(aws)
    workspace.write(manifest(backend, {"downstream": metaflow_flow("downstream")}))
    planned = workspace.flowplan("plan")
    assert planned.code == 1
    text = " ".join(planned.err.split())
    assert (
        "@trigger_on_finish(flow='LinearFlow') of DownstreamFlow: no Metaflow flow of this backend is LinearFlow"
        in text
    )
