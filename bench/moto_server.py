"""moto's server in its own process, with a test-only seeding side door for large benchmarks.

``python -m bench.moto_server --port 0`` serves moto (the same app ``ThreadedMotoServer`` runs) and
prints its URL. ``POST /__seed__/calls`` with ``{"calls": [[service, operation, params], ...]}``
replays create calls straight into moto's in-process backends: the calls flowplan's Step Functions
writer makes on a first apply, recorded by :mod:`bench.seed`. 10,000 flows are about 90,000 such
calls; through HTTP (and moto's linear scans per create) that is the better part of an hour, here it
is seconds. Only the create operations a first apply makes are understood; anything else is an
error, so the seeded state cannot silently differ from an apply's (and the benchmark checks that a
plan right after seeding is empty).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-west-1"


class Replayer:
    """Applies recorded create calls to moto's backends (skipping their per-create linear scans)."""

    def __init__(self, account: str = ACCOUNT, region: str = REGION) -> None:
        from moto.batch.models import batch_backends
        from moto.events.models import events_backends
        from moto.scheduler.models import scheduler_backends
        from moto.ssm.models import ssm_backends
        from moto.stepfunctions.models import stepfunctions_backends

        self.sfn = stepfunctions_backends[account][region]
        self.events = events_backends[account][region]
        self.scheduler = scheduler_backends[account][region]
        self.batch = batch_backends[account][region]
        self.ssm = ssm_backends[account][region]
        self.machines: dict[str, Any] = {m.arn: m for m in self.sfn.state_machines}
        self.handlers: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
            ("stepfunctions", "CreateStateMachine"): self.create_state_machine,
            ("stepfunctions", "CreateStateMachineAlias"): self.create_alias,
            ("stepfunctions", "TagResource"): self.tag_machine,
            ("events", "PutRule"): self.put_rule,
            ("events", "PutTargets"): self.put_targets,
            ("events", "TagResource"): self.tag_rule,
            ("scheduler", "CreateScheduleGroup"): self.create_group,
            ("scheduler", "CreateSchedule"): self.create_schedule,
            ("batch", "RegisterJobDefinition"): self.register_job,
            ("ssm", "PutParameter"): self.put_parameter,
            ("ssm", "AddTagsToResource"): self.tag_parameter,
        }

    def replay(self, calls: Iterable[list[Any]]) -> int:
        done = 0
        for service, operation, params in calls:
            handler = self.handlers.get((service, operation))
            if handler is None:
                raise ValueError(f"the seeding side door does not replay {service}:{operation}")
            handler(params)
            done += 1
        return done

    # -- Step Functions (moto: a list scanned per create, and per alias over every version) ---

    def create_state_machine(self, p: dict[str, Any]) -> None:
        from moto.stepfunctions.models import StateMachine

        name = p["name"]
        self.sfn._validate_name(name)
        self.sfn._validate_role_arn(p["roleArn"])
        arn = f"arn:aws:states:{self.sfn.region_name}:{self.sfn.account_id}:stateMachine:{name}"
        if arn in self.machines:
            raise ValueError(f"state machine {name} exists already")
        machine = StateMachine(
            arn,
            name,
            p["definition"],
            p["roleArn"],
            self.sfn,
            p.get("encryptionConfiguration"),
            p.get("loggingConfiguration"),
            p.get("tracingConfiguration"),
            sm_type=p.get("type"),
        )
        if p.get("publish"):
            machine.publish(description=p.get("versionDescription"))
        if p.get("tags"):
            self.sfn.tagger.tag_resource(arn, p["tags"])
        self.sfn.state_machines.append(machine)
        self.machines[arn] = machine

    def create_alias(self, p: dict[str, Any]) -> None:
        from moto.stepfunctions.models import StateMachineAlias

        routing = p["routingConfiguration"]
        version_arn = routing[0]["stateMachineVersionArn"]
        machine = self.machines[version_arn.rsplit(":", 1)[0]]
        if not any(v.arn == version_arn for v in machine.versions.values()):
            raise ValueError(f"no version {version_arn}")
        machine.aliases[p["name"]] = StateMachineAlias(p["name"], machine.arn, routing, p.get("description"))

    def tag_machine(self, p: dict[str, Any]) -> None:
        self.sfn.tag_resource(p["resourceArn"], {t["key"]: t["value"] for t in p.get("tags", [])})

    # -- EventBridge, Scheduler, Batch, SSM (moto: keyed by name, or scanned: see register_job) --------

    def put_rule(self, p: dict[str, Any]) -> None:
        self.events.put_rule(
            p["Name"],
            scheduled_expression=p.get("ScheduleExpression"),
            event_pattern=p.get("EventPattern"),
            state=p.get("State"),
            description=p.get("Description"),
            role_arn=p.get("RoleArn"),
            event_bus_arn=p.get("EventBusName"),
            tags=p.get("Tags"),
        )

    def put_targets(self, p: dict[str, Any]) -> None:
        self.events.put_targets(p["Rule"], p.get("EventBusName"), p["Targets"])

    def tag_rule(self, p: dict[str, Any]) -> None:
        self.events.tag_resource(p["ResourceARN"], p["Tags"])

    def create_group(self, p: dict[str, Any]) -> None:
        self.scheduler.create_schedule_group(name=p["Name"], tags=p.get("Tags"))

    def create_schedule(self, p: dict[str, Any]) -> None:
        self.scheduler.create_schedule(
            description=p.get("Description"),
            end_date=p.get("EndDate"),
            flexible_time_window=p.get("FlexibleTimeWindow"),
            group_name=p.get("GroupName"),
            kms_key_arn=p.get("KmsKeyArn"),
            name=p["Name"],
            schedule_expression=p.get("ScheduleExpression"),
            schedule_expression_timezone=p.get("ScheduleExpressionTimezone"),
            start_date=p.get("StartDate"),
            state=p.get("State"),
            target=p.get("Target"),
            action_after_completion=p.get("ActionAfterCompletion"),
        )

    def register_job(self, p: dict[str, Any]) -> None:
        """``register_job_definition`` without its scan of every definition for the name's last revision.

        Only first registrations are replayed (revision 1), which is all a first apply makes.
        """
        from moto.batch.models import JobDefinition

        retry = p.get("retryStrategy")
        for strategy in (retry or {}).get("evaluateOnExit", []):
            if "action" in strategy:
                strategy["action"] = strategy["action"].lower()
        job = JobDefinition(
            p["jobDefinitionName"],
            p.get("parameters"),
            p.get("type"),
            p.get("containerProperties"),
            node_properties=p.get("nodeProperties"),
            eks_properties=p.get("eksProperties"),
            tags=p.get("tags") or {},
            retry_strategy=retry,
            timeout=p.get("timeout"),
            backend=self.batch,
            platform_capabilities=p.get("platformCapabilities"),
            propagate_tags=p.get("propagateTags"),
        )
        if job.arn in self.batch._job_definitions:
            raise ValueError(f"job definition {job.arn} exists already")
        self.batch._job_definitions[job.arn] = job

    def put_parameter(self, p: dict[str, Any]) -> None:
        self.ssm.put_parameter(
            p["Name"],
            p.get("Description"),
            p["Value"],
            p.get("Type"),
            p.get("AllowedPattern"),
            p.get("KeyId"),
            p.get("Overwrite", False),
            p.get("Tags"),
            p.get("DataType", "text"),
            tier=p.get("Tier"),
            policies=p.get("Policies"),
        )

    def tag_parameter(self, p: dict[str, Any]) -> None:
        self.ssm.add_tags_to_resource(p["ResourceType"], p["ResourceId"], p["Tags"])


#: moto backends (package names) and botocore service models the Step Functions backend reaches.
SERVICES = {
    "stepfunctions": "stepfunctions",
    "events": "events",
    "scheduler": "scheduler",
    "batch": "batch",
    "ssm": "ssm",
    "dynamodb": "dynamodb",
    "resourcegroupstaggingapi": "resourcegroupstaggingapi",
    "s3": "s3",
    "sts": "sts",
}


def _dispatcher() -> Any:
    """moto's request dispatcher with two costs of its own taken out, its answers unchanged.

    Per request, moto's ``get_application`` lists its package directory and tries every service's
    URL patterns under one lock to find the backend for a host, and the first requests for a service
    each load its botocore model (``functools.cache`` does not stop ten threads missing at once).
    Here the host → backend answer is memoised and the models and apps are built before serving, as
    a long-running server has them: otherwise the emulator's CPU, not flowplan's calls, decides how
    fast a parallel apply goes (issue 12's ``--parallelism`` budget).
    """
    from moto.core.utils import get_service_model, service_name_from_moto_package_name
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self.hosts: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host in self.hosts:
                return self.hosts[host]
            found = self.hosts[host] = super().get_backend_for_host(host)
            return found

    dispatcher = Dispatcher()
    for package, model in SERVICES.items():
        get_service_model(model)
        service_name_from_moto_package_name(package)
        dispatcher.app_instances[package] = create_backend_app(package)  # type: ignore[arg-type]
    return dispatcher


def _app() -> Any:
    moto_app = _dispatcher()
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/__seed__/"):
            return moto_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
            with lock:
                done = Replayer().replay(payload.get("calls", []))
            status, body = "200 OK", json.dumps({"replayed": done})
        except Exception as exc:  # reported to the benchmark, which stops
            status, body = "400 Bad Request", json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        start_response(status, [("Content-Type", "application/json")])
        return [body.encode()]

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.moto_server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    import logging

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", args.port, _app(), True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    host, port = server.server_address[:2]
    print(f"http://{host}:{port}", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
