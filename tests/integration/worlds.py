"""One scenario, three backends: the files backend, the Kubernetes API test server, moto.

A *world* deploys the repository's flows on one backend through the CLI and
knows how to change what it deployed *behind flowplan's back*: edit a field
the manifest sets, add a field it does not set, delete an object, and put an
unowned look-alike where flowplan wants to write. Out-of-band changes go
straight to the server (or the files), never through flowplan.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.cli import run

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class World:
    name = "world"

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- driving flowplan -------------------------------------------------------------

    def args(self) -> list[str]:
        raise NotImplementedError

    def run(self, command: str, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([command, *self.args(), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def apply(self, *args: str) -> Result:
        return self.run("apply", "--auto-approve", *args)

    def drift(self) -> tuple[int, dict[str, Any]]:
        result = self.run("drift", "--format", "json")
        return result.code, json.loads(result.out) if result.out.strip() else {"err": result.err}

    @property
    def manifest(self) -> Path:
        return self.root / "flows.yaml"

    def edit_manifest(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, f"{old!r} is not in the manifest"
        self.manifest.write_text(text.replace(old, new, 1))

    # -- out of band ------------------------------------------------------------------

    def edit_set_field(self) -> str:
        raise NotImplementedError

    def add_unset_field(self) -> str:
        raise NotImplementedError

    def delete_one(self) -> str:
        raise NotImplementedError

    def lookalike(self) -> str:
        raise NotImplementedError

    def undo_lookalike(self) -> None:
        raise NotImplementedError

    def stored_text(self) -> str:
        """Everything the backend holds for the project (objects and inventory), as text."""
        raise NotImplementedError

    def inventory_text(self) -> str:
        """What flowplan's inventory (and lock) hold, as text."""
        raise NotImplementedError


# --------------------------------------------------------------------------- files


class FilesWorld(World):
    name = "files"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        shutil.copy(REPO / "flows.yaml", self.manifest)

    def args(self) -> list[str]:
        return ["-f", str(self.manifest)]

    def _edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / "deploy" / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    def edit_set_field(self) -> str:
        self._edit("argo/cronworkflow/recsys-prod-train.yaml", "concurrencyPolicy: Forbid", "concurrencyPolicy: Allow")
        return "local.CronWorkflow.argo/recsys-prod-train"

    def add_unset_field(self) -> str:
        self._edit("argo/cronworkflow/recsys-prod-report.yaml", "spec:\n", "spec:\n  failedJobsHistoryLimit: 9\n")
        return "local.CronWorkflow.argo/recsys-prod-report"

    def delete_one(self) -> str:
        (self.root / "deploy/argo/sensor/recsys-prod-features.yaml").unlink()
        return "local.Sensor.argo/recsys-prod-features"

    def lookalike(self) -> str:
        path = self.root / "deploy/argo/configmap/recsys-prod-sink-feature-cache.yaml"
        path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: recsys-prod-sink-feature-cache\n")
        return "local.ConfigMap.argo/recsys-prod-sink-feature-cache"

    def undo_lookalike(self) -> None:
        (self.root / "deploy/argo/configmap/recsys-prod-sink-feature-cache.yaml").unlink()

    def stored_text(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.root.rglob("*")) if p.is_file() and p.suffix != ".py")

    def inventory_text(self) -> str:
        return "\n".join(p.read_text() for p in sorted((self.root / ".flowplan").rglob("*")) if p.is_file())


# --------------------------------------------------------------------------- argo


class ArgoWorld(World):
    name = "argo"
    NS = "ml-test"

    def __init__(self, root: Path, server: Any) -> None:
        super().__init__(root)
        self.server = server
        for item in (REPO / "examples" / "argo").iterdir():
            shutil.copy(item, root / item.name)

    def args(self) -> list[str]:
        return ["-f", str(self.manifest), "--var", f"namespace={self.NS}", "--var", f"sensor_namespace={self.NS}"]

    def _change(self, kind: str, name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
        obj = self.server.get_object(kind, self.NS, name)
        mutate(obj)
        self.server.put_object(obj, manager="kubectl-edit")

    def edit_set_field(self) -> str:
        self._change("CronWorkflow", "recsys-prod-train", lambda o: o["spec"].update(concurrencyPolicy="Allow"))
        return "cluster.CronWorkflow.ml-test/recsys-prod-train"

    def add_unset_field(self) -> str:
        self._change("CronWorkflow", "recsys-prod-report", lambda o: o["spec"].update(failedJobsHistoryLimit=9))
        return "cluster.CronWorkflow.ml-test/recsys-prod-report"

    def delete_one(self) -> str:
        self.server.delete_object("Sensor", self.NS, "recsys-prod-features")
        return "cluster.Sensor.ml-test/recsys-prod-features"

    def lookalike(self) -> str:
        name = "recsys-prod-sink-feature-cache"
        self.server.delete_object("ConfigMap", self.NS, name)
        self.server.put_object(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": self.NS}, "data": {}},
            manager="kubectl-create",
        )
        return f"cluster.ConfigMap.ml-test/{name}"

    def undo_lookalike(self) -> None:
        self.server.delete_object("ConfigMap", self.NS, "recsys-prod-sink-feature-cache")

    def stored_text(self) -> str:
        kinds = ("ConfigMap", "EventSource", "WorkflowTemplate", "CronWorkflow", "Sensor", "Lease")
        return json.dumps([self.server.list_objects(kind, self.NS) for kind in kinds])

    def inventory_text(self) -> str:
        maps = [
            o for o in self.server.list_objects("ConfigMap", self.NS) if o["metadata"]["name"].startswith("flowplan-")
        ]
        return json.dumps([maps, self.server.list_objects("Lease", self.NS)])


# --------------------------------------------------------------------------- step functions


class StepFunctionsWorld(World):
    name = "stepfunctions"

    def __init__(self, root: Path, aws: Any) -> None:
        super().__init__(root)
        self.aws = aws
        shutil.copy(REPO / "examples" / "stepfunctions" / "flows.yaml", self.manifest)
        values = {
            "region": aws.region,
            "account_id": aws.account,
            "job_queue": "flowplan-batch",
            "endpoint_url": aws.url,
        }
        self.vars = root / "test.vars.yaml"
        self.vars.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))

    def args(self) -> list[str]:
        return ["-f", str(self.manifest), "--var-file", str(self.vars)]

    def _update_schedule(self, name: str, **changes: Any) -> None:
        scheduler = self.aws.client("scheduler")
        current = scheduler.get_schedule(Name=name, GroupName="recsys-prod")
        keep = (
            "Name",
            "GroupName",
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "State",
            "FlexibleTimeWindow",
            "Target",
            "Description",
        )
        request = {k: current[k] for k in keep if k in current}
        request.update(changes)
        scheduler.update_schedule(**request)

    def edit_set_field(self) -> str:
        self._update_schedule("recsys-prod-train", State="DISABLED")
        return "aws.Schedule.eu-west-1/recsys-prod-train"

    def add_unset_field(self) -> str:
        self._update_schedule("recsys-prod-report", Description="paused by ops for the migration")
        return "aws.Schedule.eu-west-1/recsys-prod-report"

    def delete_one(self) -> str:
        self.aws.client("ssm").delete_parameter(Name="/flowplan/recsys/prod/sinks/feature-cache")
        return "aws.Parameter.eu-west-1/flowplan.recsys.prod.sinks.feature-cache"

    def lookalike(self) -> str:
        events = self.aws.client("events")
        name = "recsys-prod-ingest-on-raw-data-landed"
        targets = [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]]
        if targets:
            events.remove_targets(Rule=name, Ids=targets)
        events.delete_rule(Name=name)
        events.put_rule(Name=name, EventPattern=json.dumps({"source": ["someone.else"]}))
        return f"aws.Rule.eu-west-1/{name}"

    def undo_lookalike(self) -> None:
        self.aws.client("events").delete_rule(Name="recsys-prod-ingest-on-raw-data-landed")

    def stored_text(self) -> str:
        parts: list[Any] = []
        sfn = self.aws.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            parts.append(sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"]))
        batch = self.aws.client("batch")
        parts.append(batch.describe_job_definitions())
        dynamo = self.aws.client("dynamodb")
        for table in dynamo.list_tables()["TableNames"]:
            parts.append(dynamo.scan(TableName=table))
        ssm = self.aws.client("ssm")
        parts.append(ssm.get_parameters_by_path(Path="/flowplan", Recursive=True))
        return json.dumps(parts, default=str)

    def inventory_text(self) -> str:
        dynamo = self.aws.client("dynamodb")
        return json.dumps([dynamo.scan(TableName=t) for t in dynamo.list_tables()["TableNames"]], default=str)
