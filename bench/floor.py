"""The I/O floor of a plan: the same reads a no-change plan makes, and parsing their answers, nothing else.

Run as its own process (``python -m bench.floor KIND ...``), so it pays interpreter start-up and
the import of its transport like the plan does, and nothing of flowplan's:

* ``files DIR``: walk the directory and read every deployed file's bytes;
* ``argo``: the paged LISTs the Argo reader makes (one chain per kind with flowplan's owner label
  selector, 500 per page, plus the inventory's), on urllib3 (the transport of the ``kubernetes``
  client) with 8 in flight, each answer ``json.loads``-ed;
* ``stepfunctions``: the listings and describes the Step Functions reader makes (tag listing, a
  describe per machine; rules by prefix per bus, a tag lookup and a target listing per rule; the
  schedule group, its tags, its schedules and a describe per schedule; active job definitions;
  the sink parameters and a tag lookup each; the inventory Query), on boto3 with the reader's
  bounded pool of 8, answers parsed by botocore.

The benchmark runs the floor through the same counting proxy as the plan and reports whether the
two made the same calls. It prints ``{"calls": N}``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

T = TypeVar("T")
R = TypeVar("R")
WORKERS = 8


def _map(fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> list[R]:
    todo = list(items)
    if len(todo) <= 1:
        return [fn(x) for x in todo]
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(todo))) as pool:
        return list(pool.map(fn, todo))


def files(directory: str) -> int:
    count = 0
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.endswith(".yaml"):
                with open(os.path.join(root, name), "rb") as handle:
                    handle.read()
                count += 1
    return count


def argo(kubeconfig: str, namespace: str, project: str, branch: str) -> int:
    import urllib3
    import yaml

    with open(kubeconfig) as handle:
        config = yaml.safe_load(handle)
    server = config["clusters"][0]["cluster"]["server"].rstrip("/")
    token = config["users"][0]["user"]["token"]
    pool = urllib3.PoolManager(maxsize=WORKERS, headers={"Authorization": f"Bearer {token}"})
    owner = f"app.kubernetes.io/managed-by=flowplan,flowplan.dev/project={project},flowplan.dev/branch={branch}"
    chains = [
        f"/api/v1/namespaces/{namespace}/configmaps?labelSelector={quote(owner + ',flowplan.dev/inventory=true')}",
        f"/api/v1/namespaces/{namespace}/configmaps?labelSelector={quote(owner + ',!flowplan.dev/inventory')}",
    ] + [
        f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/{plural}?labelSelector={quote(owner)}"
        for plural in ("eventsources", "workflowtemplates", "cronworkflows", "sensors")
    ]

    def listing(path: str) -> int:
        calls, token_ = 0, ""
        while True:
            url = f"{server}{path}&limit=500" + (f"&continue={quote(token_)}" if token_ else "")
            answer = json.loads(pool.request("GET", url).data)
            calls += 1
            token_ = (answer.get("metadata") or {}).get("continue") or ""
            if not token_:
                return calls

    return sum(_map(listing, chains))


def stepfunctions(endpoint: str, region: str, account: str, project: str, branch: str) -> int:
    import boto3
    from botocore.config import Config

    from backends.stepfunctions.names import fit, parameter_path, rule_prefix

    session = boto3.session.Session(region_name=region)
    config = Config(max_pool_connections=WORKERS * 2, retries={"mode": "standard"})
    clients: dict[str, Any] = {}

    def client(name: str) -> Any:
        if name not in clients:
            clients[name] = session.client(name, endpoint_url=endpoint, config=config)
        return clients[name]

    for name in ("resourcegroupstaggingapi", "stepfunctions", "events", "scheduler", "batch", "ssm", "dynamodb"):
        client(name)
    base = f"{project}-{branch}"
    calls = [0]

    def pages(service: str, operation: str, **params: Any) -> list[dict[str, Any]]:
        paginator = client(service).get_paginator(operation)
        found = list(paginator.paginate(**params))
        calls[0] += len(found)
        return found

    def one(service: str, operation: str, **params: Any) -> Any:
        calls[0] += 1
        return getattr(client(service), operation)(**params)

    def machines() -> None:
        filters = [
            {"Key": "app.kubernetes.io/managed-by", "Values": ["flowplan"]},
            {"Key": "flowplan.dev/project", "Values": [project]},
            {"Key": "flowplan.dev/branch", "Values": [branch]},
        ]
        arns = [
            m["ResourceARN"]
            for p in pages(
                "resourcegroupstaggingapi",
                "get_resources",
                TagFilters=filters,
                ResourceTypeFilters=["states:stateMachine"],
            )
            for m in p["ResourceTagMappingList"]
            if m["ResourceARN"].count(":") == 6
        ]
        _map(lambda arn: one("stepfunctions", "describe_state_machine", stateMachineArn=arn), arns)

    def rules() -> None:
        listed = [
            rule
            for bus in ("default",)
            for p in pages("events", "list_rules", NamePrefix=rule_prefix(base), EventBusName=bus)
            for rule in p["Rules"]
        ]

        def both(rule: dict[str, Any]) -> None:
            one("events", "list_tags_for_resource", ResourceARN=rule["Arn"])
            one("events", "list_targets_by_rule", Rule=rule["Name"], EventBusName=rule.get("EventBusName", "default"))

        _map(both, listed)

    def schedules() -> None:
        group = one("scheduler", "get_schedule_group", Name=fit(base, "ScheduleGroup").physical)
        one("scheduler", "list_tags_for_resource", ResourceArn=group["Arn"])
        listed = pages("scheduler", "list_schedules", GroupName=group["Name"])
        names = [s["Name"] for p in listed for s in p["Schedules"]]
        _map(lambda n: one("scheduler", "get_schedule", GroupName=group["Name"], Name=n), names)

    def jobs() -> None:
        pages("batch", "describe_job_definitions", status="ACTIVE")

    def parameters() -> None:
        root = parameter_path("", project, branch, "x").rsplit("/", 1)[0]
        items = [i for p in pages("ssm", "get_parameters_by_path", Path=root, Recursive=True) for i in p["Parameters"]]
        _map(
            lambda i: one("ssm", "list_tags_for_resource", ResourceType="Parameter", ResourceId=i["Name"]),
            items,
        )

    def inventory() -> None:
        pages(
            "dynamodb",
            "query",
            TableName="flowplan-state",
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :inventory)",
            ExpressionAttributeValues={":pk": {"S": f"aws/{project}/{branch}"}, ":inventory": {"S": "inventory"}},
        )

    jobs_ = [inventory, machines, rules, schedules, jobs, parameters]
    _map(lambda job: job(), jobs_, workers=len(jobs_))
    return calls[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    f = sub.add_parser("files")
    f.add_argument("directory")
    a = sub.add_parser("argo")
    a.add_argument("--kubeconfig", required=True)
    a.add_argument("--namespace", required=True)
    s = sub.add_parser("stepfunctions")
    s.add_argument("--endpoint", required=True)
    s.add_argument("--region", default="eu-west-1")
    s.add_argument("--account", default="123456789012")
    for p in (a, s):
        p.add_argument("--project", default="bench")
        p.add_argument("--branch", default="prod")
    args = parser.parse_args(argv)
    if args.kind == "files":
        n = files(args.directory)
    elif args.kind == "argo":
        n = argo(args.kubeconfig, args.namespace, args.project, args.branch)
    else:
        n = stepfunctions(args.endpoint, args.region, args.account, args.project, args.branch)
    print(json.dumps({"calls": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
