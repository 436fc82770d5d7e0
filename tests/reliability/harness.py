"""The reliability trials' harness: one *target* per backend, driven through the CLI, inspected directly.

A :class:`Target` holds a working directory with a generated ``flows.yaml``
(:mod:`tests.reliability.manifests`) aimed at one backend — the files backend,
the Kubernetes API test server, or moto — and knows how to

- run flowplan in this process (``run``) or give a child process what it
  needs to run it (``child_env``, ``args``), always through the counting proxy
  for the live backends;
- inspect what is deployed *without* going through the proxy (so inspection
  is never counted): the live objects the backend's reader sees, the
  inventory, the lock, and an independent listing that catches duplicates
  (Batch job definition revisions, rule targets, state machine aliases);
- say whether the deployment has converged (:meth:`Target.converged`): the
  plan is empty, owned objects are exactly the desired ones (no orphans,
  nothing lost), the inventory lists exactly them, all confirmed, and the
  lock is free.

Scale: ``FLOWPLAN_TRIAL_SCALE`` is ``seed`` (small; CI) or ``full`` (the issue's
sizes; the default). :func:`scale` gives the numbers each family uses.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.cli import run as cli_run
from planner.contract import Backend, InventoryState, LiveState, LockInfo, Scope
from planner.manifest import Manifest, load_manifest
from planner.resources import Address
from tests.reliability.manifests import manifest
from tests.support.kubeconfig import write_kubeconfig
from tests.support.proxy import CountingProxy, ProxyRequest

REPO = Path(__file__).resolve().parents[2]
KINDS = ("files", "argo", "stepfunctions")
NAMESPACE = "ml"
PROJECT = "rel"


# --------------------------------------------------------------------------- scale


def scale_name() -> str:
    value = os.environ.get("FLOWPLAN_TRIAL_SCALE", "full").strip().lower() or "full"
    if value not in ("seed", "full"):
        raise ValueError(f"FLOWPLAN_TRIAL_SCALE must be seed or full, not {value!r}")
    return value


@dataclass(frozen=True)
class Scale:
    name: str
    #: Fault injection: resources per apply (at least), fault rate, seeds.
    fault_resources: int
    fault_rate: float
    fault_seeds: tuple[int, ...]
    #: Crash consistency: flows in the manifest, trials per backend.
    crash_flows: int
    crash_trials: int
    #: Concurrency: how many applies race (each size is one trial).
    racers: tuple[int, ...]
    #: Ownership: hypothesis examples on the files backend, and on the Argo test server.
    ownership_examples: int
    ownership_examples_argo: int
    #: CLI fuzzing examples per generator (the loader's own fuzz runs 10,000 in tests/planner/manifest).
    fuzz_examples: int
    #: Stale-plan disturbances tried on the live backends (the files backend always tries all of them).
    stale_cases_live: int


SCALES = {
    "seed": Scale("seed", 40, 0.1, (1,), 6, 3, (2,), 25, 5, 100, 4),
    "full": Scale("full", 200, 0.1, (1, 2), 12, 20, (2, 5), 300, 40, 2_000, 99),
}


def scale() -> Scale:
    return SCALES[scale_name()]


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def flows_for(kind: str, resources: int) -> int:
    """The number of generated flows whose manifest deploys at least ``resources`` resources."""
    per_flow = {"files": 2.2, "argo": 2.2, "stepfunctions": 3.6}[kind]
    flows = max(1, int(resources / per_flow))
    while _count(kind, flows) < resources:
        flows += 1
    return flows


def _count(kind: str, flows: int) -> int:
    from backends.registry import compiler_for
    from planner.contract import CompileContext
    from planner.resources import Provenance

    text = manifest(kind, flows)
    cli_vars = {"region": "eu-west-1", "account_id": "123456789012"} if kind == "stepfunctions" else {}
    loaded = load_manifest("flows.yaml", raw=text.encode(), cli_vars=cli_vars)
    (spec,) = loaded.backends.values()
    compiler = compiler_for("argo" if kind == "files" else kind)
    return len(compiler.compile(CompileContext(loaded, spec, Provenance("0", "0" * 64, None))))


# --------------------------------------------------------------------------- targets


class Target:
    """One backend under test, with a working directory and a generated manifest."""

    kind = "target"
    backend_name = "backend"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.flows = 0
        self.variant = 0

    # -- the manifest -----------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.root / "flows.yaml"

    def write(self, flows: int, variant: int = 0) -> None:
        self.flows, self.variant = flows, variant
        self.manifest_path.write_text(manifest(self.kind, flows, variant, PROJECT))

    def var_args(self) -> list[str]:
        return []

    def args(self) -> list[str]:
        return ["-f", str(self.manifest_path), *self.var_args()]

    def cli_vars(self) -> dict[str, str]:
        return {}

    def var_files(self) -> list[str]:
        return []

    def load(self) -> Manifest:
        return load_manifest(self.manifest_path, cli_vars=self.cli_vars(), var_files=self.var_files())

    # -- running flowplan --------------------------------------------------------------

    def run(self, command: str, *args: str) -> Result:
        """``flowplan COMMAND -f flows.yaml [vars] ARGS`` in this process."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_run([command, *self.args(), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def apply(self, *args: str) -> Result:
        return self.run("apply", "--auto-approve", "--allow-destroy", *args)

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment of a child process running flowplan against this target."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **extra}
        env.pop("FLOWPLAN_DEBUG", None)
        return env

    def child_argv(self, command: str = "apply", *args: str) -> list[str]:
        code = "import sys; from planner.cli import main; sys.exit(main(sys.argv[1:]))"
        return [sys.executable, "-c", code, command, *self.args(), *args]

    # -- inspection (never through the proxy) ------------------------------------------

    def backend(self) -> Backend:
        raise NotImplementedError

    def scope(self) -> Scope:
        return Scope(self.backend_name, PROJECT, "prod")

    def desired(self) -> set[Address]:
        from planner.contract import CompileContext
        from planner.resources import Provenance

        loaded = self.load()
        backend = self.backend()
        resources = backend.compiler().compile(
            CompileContext(loaded, loaded.backends[self.backend_name], Provenance("0", "0" * 64, None))
        )
        return {r.address for r in resources}

    def live(self) -> LiveState:
        from planner.contract import CompileContext
        from planner.resources import Provenance

        loaded = self.load()
        backend = self.backend()
        resources = backend.compiler().compile(
            CompileContext(loaded, loaded.backends[self.backend_name], Provenance("0", "0" * 64, None))
        )
        return backend.reader().read(self.scope(), resources)

    def inventory(self) -> InventoryState:
        return self.backend().inventory(self.scope()).load()

    def lock(self) -> LockInfo | None:
        return self.backend().lock(self.scope()).current()

    def duplicates(self) -> list[str]:
        """Problems an independent listing finds: duplicated objects, revisions, targets, aliases."""
        return []

    def snapshot(self) -> str:
        """Everything the backend holds, as text (stale-plan trials compare it before and after)."""
        raise NotImplementedError

    def converged(self, *, check_plan: bool = True) -> list[str]:
        """Problems with the deployment; empty when it has converged."""
        problems: list[str] = []
        if check_plan:
            plan = self.run("plan", "--detailed-exitcode", "--allow-destroy")
            if plan.code != 0:
                problems.append(f"the plan is not empty (exit {plan.code}): {plan.text[-2000:]}")
        desired = self.desired()
        live = self.live()
        owned = set(live.owned)
        if owned - desired:
            problems.append(f"orphans (owned, not desired): {sorted(map(str, owned - desired))[:10]}")
        if desired - owned:
            problems.append(f"lost (desired, not deployed): {sorted(map(str, desired - owned))[:10]}")
        if live.others:
            problems.append(f"objects of others at desired names: {sorted(map(str, live.others))[:10]}")
        inventory = self.inventory()
        listed = set(inventory.entries)
        if listed != owned:
            problems.append(
                f"the inventory does not match what is live: missing {sorted(map(str, owned - listed))[:5]}, "
                f"extra {sorted(map(str, listed - owned))[:5]}"
            )
        pending = sorted(str(a) for a, e in inventory.entries.items() if e.state != "applied")
        if pending:
            problems.append(f"unconfirmed inventory entries: {pending[:5]}")
        holder = self.lock()
        if holder is not None and not holder.expired:
            problems.append(f"the lock is still held by {holder.describe()}")
        problems.extend(self.duplicates())
        return problems


class FilesTarget(Target):
    kind = "files"
    backend_name = "local"

    def backend(self) -> Backend:
        from backends.files import FilesBackend
        from backends.registry import composed_compiler
        from planner.resources import Provenance

        loaded = self.load()
        spec = loaded.backends[self.backend_name]
        return FilesBackend(
            spec, self.root, self.scope(), Provenance("0", "0" * 64, None).markers(), composed_compiler(spec)
        )

    def snapshot(self) -> str:
        """Every byte of what the backend wrote: the target directories and ``.flowplan/``."""
        parts = []
        for path in sorted(self.root.rglob("*")):
            top = path.relative_to(self.root).parts[0]
            if path.is_file() and (top.startswith("deploy") or top == ".flowplan"):
                parts.append(f"== {path.relative_to(self.root)}\n{path.read_bytes().hex()}")
        return "\n".join(parts)

    def deployed_files(self) -> list[Path]:
        return sorted(p for p in (self.root / "deploy").rglob("*") if p.is_file())

    def duplicates(self) -> list[str]:
        problems = []
        stray = [p for p in self.root.rglob("*.tmp")]
        if stray:
            problems.append(f"temporary files left behind: {[str(p) for p in stray[:5]]}")
        return problems


class ArgoTarget(Target):
    kind = "argo"
    backend_name = "cluster"

    def __init__(self, root: Path, server: Any, proxy: CountingProxy) -> None:
        super().__init__(root)
        self.server = server
        self.proxy = proxy
        self.kubeconfig = write_kubeconfig(root / "kubeconfig", proxy.url, server.admin_token)
        self.direct_kubeconfig = write_kubeconfig(root / "kubeconfig-direct", server.url, server.admin_token)

    def use_proxy(self, proxy: CountingProxy) -> Path:
        """A kubeconfig pointing at another proxy (the concurrency trials give each racer its own)."""
        return write_kubeconfig(self.root / f"kubeconfig-{proxy.port}", proxy.url, self.server.admin_token)

    def child_env(self, **extra: str) -> dict[str, str]:
        return super().child_env(KUBECONFIG=str(self.kubeconfig), **extra)

    def backend(self) -> Backend:
        from backends.argo import client as argo_client
        from backends.argo.backend import ArgoBackend

        loaded = self.load()
        return ArgoBackend(
            loaded.backends[self.backend_name],
            self.scope(),
            {"kubeconfig": str(self.direct_kubeconfig), "retry": argo_client.FAST_RETRY},
        )

    KINDS = ("ConfigMap", "EventSource", "WorkflowTemplate", "CronWorkflow", "Sensor")

    def objects(self) -> dict[str, list[dict[str, Any]]]:
        return {kind: self.server.list_objects(kind, NAMESPACE) for kind in (*self.KINDS, "Lease")}

    def snapshot(self) -> str:
        return json.dumps(self.objects(), sort_keys=True)

    def duplicates(self) -> list[str]:
        problems = []
        desired = {(a.kind, a.name) for a in self.desired()}
        for kind in self.KINDS:
            for obj in self.server.list_objects(kind, NAMESPACE):
                labels = obj["metadata"].get("labels") or {}
                if labels.get("flowplan.dev/project") != PROJECT or "flowplan.dev/inventory" in labels:
                    continue
                if (kind, obj["metadata"]["name"]) not in desired:
                    problems.append(f"a {kind} {obj['metadata']['name']} carries the project's labels, not desired")
        return problems


class StepFunctionsTarget(Target):
    kind = "stepfunctions"
    backend_name = "aws"

    def __init__(self, root: Path, aws: Any) -> None:
        super().__init__(root)
        self.aws = aws
        self.proxy: CountingProxy = aws.proxy
        self.vars_path = root / "test.vars.yaml"
        self.point_at(aws.url)

    def point_at(self, url: str) -> None:
        values = {"region": self.aws.region, "account_id": self.aws.account, "endpoint_url": url}
        self.vars_path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))

    def var_files(self) -> list[str]:
        return [str(self.vars_path)]

    def var_args(self) -> list[str]:
        return ["--var-file", str(self.vars_path)]

    def backend(self) -> Backend:
        from backends.stepfunctions.backend import StepFunctionsBackend

        loaded = self.load()
        return StepFunctionsBackend(
            loaded.backends[self.backend_name], self.scope(), {"endpoint_url": self.aws.server.url}
        )

    def snapshot(self) -> str:
        parts: list[Any] = []
        sfn = self.aws.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            described = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
            described.pop("ResponseMetadata", None)
            parts.append(described)
            tags = sfn.list_tags_for_resource(resourceArn=machine["stateMachineArn"])["tags"]
            parts.append(sorted((t["key"], t["value"]) for t in tags))
        batch = self.aws.client("batch")
        jobs = batch.describe_job_definitions()["jobDefinitions"]
        parts.append(sorted((j["jobDefinitionName"], j["revision"], j["status"]) for j in jobs))
        scheduler = self.aws.client("scheduler")
        for group in scheduler.list_schedule_groups()["ScheduleGroups"]:
            for item in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]:
                schedule = scheduler.get_schedule(GroupName=group["Name"], Name=item["Name"])
                schedule.pop("ResponseMetadata", None)
                parts.append(schedule)
        events = self.aws.client("events")
        for rule in events.list_rules()["Rules"]:
            parts.append(rule)
            parts.append(events.list_targets_by_rule(Rule=rule["Name"])["Targets"])
        ssm = self.aws.client("ssm")
        for item in ssm.get_parameters_by_path(Path="/", Recursive=True)["Parameters"]:
            parts.append((item["Name"], item["Value"], item["Version"]))
        dynamo = self.aws.client("dynamodb")
        for table in dynamo.list_tables()["TableNames"]:
            items = dynamo.scan(TableName=table)["Items"]
            parts.append(sorted(json.dumps(i, sort_keys=True, default=str) for i in items))
        return json.dumps(parts, sort_keys=True, default=str)

    def duplicates(self) -> list[str]:
        problems: list[str] = []
        desired = self.desired()
        names = {kind: {a.name for a in desired if a.kind == kind} for kind in {a.kind for a in desired}}
        batch = self.aws.client("batch")
        active: dict[str, int] = {}
        for page in batch.get_paginator("describe_job_definitions").paginate(status="ACTIVE"):
            for job in page["jobDefinitions"]:
                active[job["jobDefinitionName"]] = active.get(job["jobDefinitionName"], 0) + 1
        twice = {n: c for n, c in active.items() if c > 1}
        if twice:
            problems.append(f"job definitions with more than one ACTIVE revision: {dict(sorted(twice.items())[:5])}")
        if set(active) != names.get("JobDefinition", set()):
            problems.append(
                f"ACTIVE job definitions differ from the desired ones: extra "
                f"{sorted(set(active) - names.get('JobDefinition', set()))[:5]}, missing "
                f"{sorted(names.get('JobDefinition', set()) - set(active))[:5]}"
            )
        sfn = self.aws.client("stepfunctions")
        machines = [m for m in sfn.list_state_machines()["stateMachines"]]
        machine_names = [m["name"] for m in machines]
        wanted = names.get("StateMachine", set())
        if sorted(machine_names) != sorted(wanted):
            problems.append(
                f"state machines differ from the desired ones: extra {sorted(set(machine_names) - wanted)[:5]}, "
                f"missing {sorted(wanted - set(machine_names))[:5]}, listed {len(machine_names)}"
            )
        for machine in machines:
            aliases = sfn.list_state_machine_aliases(stateMachineArn=machine["stateMachineArn"])["stateMachineAliases"]
            if len(aliases) != 1:
                problems.append(f"state machine {machine['name']} has {len(aliases)} aliases")
        events = self.aws.client("events")
        rules = [r for r in events.list_rules(NamePrefix=f"{PROJECT}-prod-")["Rules"]]
        rule_names = {r["Name"] for r in rules}
        if sorted(r["Name"] for r in rules) != sorted(names.get("Rule", set())):
            problems.append(
                f"rules differ from the desired ones: extra {sorted(rule_names - names.get('Rule', set()))[:5]}, "
                f"missing {sorted(names.get('Rule', set()) - rule_names)[:5]}"
            )
        for rule in rules:
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            if len(targets) != 1:
                problems.append(f"rule {rule['Name']} has {len(targets)} targets")
        scheduler = self.aws.client("scheduler")
        schedules = []
        with contextlib.suppress(Exception):
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=f"{PROJECT}-prod"):
                schedules += [s["Name"] for s in page["Schedules"]]
        if sorted(schedules) != sorted(names.get("Schedule", set())):
            wanted = names.get("Schedule", set())
            problems.append(
                f"schedules differ from the desired ones: extra {sorted(set(schedules) - wanted)[:5]}"
                f", missing {sorted(wanted - set(schedules))[:5]}"
            )
        return problems


def reset_target(target: Target) -> None:
    """Forget everything deployed (a fresh trial)."""
    if isinstance(target, FilesTarget):
        for sub in ("deploy", ".flowplan"):
            shutil.rmtree(target.root / sub, ignore_errors=True)
    elif isinstance(target, ArgoTarget):
        target.server.reset()
    elif isinstance(target, StepFunctionsTarget):
        target.aws.server.reset()
    proxy = getattr(target, "proxy", None)
    if proxy is not None:
        proxy.rules.clear()
        proxy.reset_counts()


# --------------------------------------------------------------------------- calls through the proxy

#: Operations that only read (AWS), by prefix of the operation name.
_AWS_READS = ("Get", "List", "Describe", "Query", "Scan", "BatchGet")


def write_category(request: ProxyRequest) -> str | None:
    """``lock``, ``inventory`` or ``resource`` for a write request; None for a read.

    Kubernetes: Lease writes are the lock; ConfigMaps named ``flowplan-inventory-*``
    the inventory (a create names its object in the body); everything else a
    resource. AWS: the state table (DynamoDB) holds the lock (the ``lock``
    item, the table itself) and the inventory (transactions, ``inventory*``
    items); everything else is a resource.
    """
    key = request.key
    if ":" in key and " " not in key.split(":", 1)[0]:
        service, operation = key.split(":", 1)
        if operation.startswith(_AWS_READS):
            return None
        if service == "dynamodb":
            if operation == "TransactWriteItems" or b'"inventory' in request.body:
                return "inventory"
            return "lock"
        return "resource"
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if "/leases" in request.path:
        return "lock"
    if "/configmaps" in request.path:
        name = request.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "POST":
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                name = str(json.loads(request.body)["metadata"]["name"])
        return "inventory" if name.startswith("flowplan-inventory-") else "resource"
    return "resource"


class WriteLog:
    """A proxy rule that never acts: it counts write requests by :func:`write_category`.

    Put it first in ``proxy.rules`` so it sees every request, faulted or not.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: ProxyRequest) -> None:
        category = write_category(request)
        lock_read = "/leases" in request.path or request.key.startswith("dynamodb:")
        if category is None and lock_read and b'"inventory' not in request.body:
            category = "lock-read"  # reading who holds the lock (a lock attempt that wrote nothing)
        if category is not None:
            with self._lock:
                self.counts[category] += 1
                self.keys[f"{category} {request.key}"] += 1

    def snapshot(self) -> dict[str, int]:
        """Write calls by category, and ``lock-read``: reads of the lock (or the table that holds it)."""
        with self._lock:
            return {k: self.counts.get(k, 0) for k in ("lock", "lock-read", "inventory", "resource")}


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    started = time.monotonic()
    try:
        yield box
    finally:
        box["seconds"] = time.monotonic() - started


@dataclass
class Recorder:
    """What a trial reports for docs/reliability.md (see conftest's ``trial`` fixture)."""

    family: str
    backend: str
    size: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_faults(self, counts: Mapping[str, int]) -> None:
        for key, value in counts.items():
            self.faults[key] = self.faults.get(key, 0) + value

    def check(self, what: str) -> None:
        if what not in self.checked:
            self.checked.append(what)
