"""The benchmark: plans and applies of 100 to 10,000 generated flows on every backend, against budgets.

    .venv/bin/python -m bench.run --sizes 100,1000,10000

For each backend (``files``; ``argo`` against the Kubernetes API test server; ``stepfunctions``
against moto's server; the servers and a counting proxy each in their own process) and each size it
measures, as a separate ``flowplan`` process: the all-create plan, the full apply (servers: up to
``--apply-cap`` flows; larger live states are seeded directly, see :mod:`bench.seed`), the
no-change plan, the I/O floor (:mod:`bench.floor`) and the plan after one shared schedule changed.
Each gets wall time, CPU time (user + system), peak RSS and the API calls by verb/operation the
proxy counted. Then the apply with 20 ms of latency per call at ``--parallelism`` 1 and 10, the
start-up of ``flowplan --help``, and a cProfile breakdown of the largest no-change plans.

It writes ``docs/benchmarks.md`` (and the raw figures to ``bench/results.json``) and prints
PASS/FAIL per budget; the exit code is 1 when a budget fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import generate, servers
from bench.report import write_report

ROOT = Path(__file__).resolve().parents[1]
#: GNU time, for each child's own peak RSS (see :func:`measure`).
TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
FLOWPLAN = str(Path(sys.executable).parent / "flowplan")
TOKEN = "flowplan-test-admin"
NAMESPACE = "bench"
BACKENDS = ("files", "argo", "stepfunctions")


@dataclass
class Measure:
    """One measured process."""

    backend: str
    size: int
    scenario: str
    wall: float
    cpu: float
    rss_mb: float
    code: int
    calls: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    note: str = ""
    runs: list[float] = field(default_factory=list)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


@dataclass
class Results:
    started: str
    finished: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    resources: dict[str, dict[int, int]] = field(default_factory=dict)
    seeded: dict[str, dict[int, float]] = field(default_factory=dict)
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    help_wall: list[float] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, list[int]] = field(default_factory=dict)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0

    def find(self, backend: str, size: int, scenario: str) -> Measure | None:
        for m in self.measures:
            if (m.backend, m.size, m.scenario) == (backend, size, scenario):
                return m
        return None


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --------------------------------------------------------------------------- measuring one process


def measure(
    backend: str,
    size: int,
    scenario: str,
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    proxy_url: str | None = None,
    expect: Sequence[int] = (0,),
    repeat: int = 1,
    out: Path | None = None,
    before: Callable[[], None] | None = None,
) -> Measure:
    """Run ``args`` ``repeat`` times as a child process; keep the fastest run (calls of the last)."""
    best: Measure | None = None
    walls = []
    for _ in range(repeat):
        if before is not None:
            before()
        if proxy_url:
            servers.reset_counts(proxy_url)
        load = os.getloadavg()
        stdout = open(out, "wb") if out else subprocess.DEVNULL  # noqa: SIM115 - closed below
        # Peak RSS through GNU time: Linux carries a process's high-water RSS across exec, so a child forked
        # straight from this (large, after seeding) process would report this process's size, not its own.
        rss_file = Path(tempfile.mkstemp(prefix="bench-rss-")[1])
        wrapped = [TIME, "-f", "%M", "-o", str(rss_file), *args] if TIME else list(args)
        start = time.perf_counter()
        child = subprocess.Popen(wrapped, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE)
        assert child.stderr is not None
        err = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        if out is not None:
            (out.parent / f"{scenario.replace(' ', '-').split('-')[0]}.err").write_bytes(err)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if out:
            stdout.close()  # type: ignore[union-attr]
        code = child.returncode
        if code not in expect:
            tail = err.decode(errors="replace")[-3000:]
            raise RuntimeError(f"{backend} {size} {scenario}: exit {code} (expected {list(expect)}):\n{tail}")
        calls = servers.counts(proxy_url) if proxy_url else {}
        rss_kb = float(usage.ru_maxrss)
        with contextlib.suppress(ValueError, IndexError):
            rss_kb = float(rss_file.read_text().split()[-1])
        rss_file.unlink(missing_ok=True)
        run = Measure(backend, size, scenario, wall, usage.ru_utime + usage.ru_stime, rss_kb / 1024, code, calls, load)
        walls.append(wall)
        if best is None or run.wall < best.wall:
            best = run
    assert best is not None
    best.runs = walls
    return best


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(servers.AWS_ENV)
    env.update({"FLOWPLAN_GIT_COMMIT": "0" * 40, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    # the generated manifests name the benchmark's own kubeconfig and endpoint: the operator's opt-in
    env["FLOWPLAN_ALLOW_MANIFEST_CONNECTION"] = "1"
    env.pop("FLOWPLAN_DEBUG", None)
    env.update(extra or {})
    return env


def _plan_counts(text: str) -> str:
    match = re.search(r"Plan: (\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete", text)
    if match:
        return f"{match.group(1)} create, {match.group(2)} update, {match.group(3)} replace, {match.group(4)} delete"
    return "no changes" if "No changes." in text else "?"


# --------------------------------------------------------------------------- one backend, one size


@dataclass
class Target:
    """How the CLI, the floor and the seeding reach one backend."""

    backend: str
    workdir: Path
    server: servers.Process | None = None
    proxy: servers.Process | None = None

    @property
    def manifest(self) -> Path:
        return self.workdir / "flows.yaml"

    def cli_vars(self, *, direct: bool = False) -> list[str]:
        if self.backend == "argo":
            return ["--var", f"kubeconfig={self.kubeconfig(direct)}"]
        if self.backend == "stepfunctions":
            assert self.server is not None and self.proxy is not None
            return ["--var", f"endpoint_url={(self.server if direct else self.proxy).url}"]
        return []

    def kubeconfig(self, direct: bool = False) -> Path:
        from tests.support.kubeconfig import write_kubeconfig

        assert self.server is not None and self.proxy is not None
        path = self.workdir / ("direct.kubeconfig" if direct else "proxy.kubeconfig")
        write_kubeconfig(path, (self.server if direct else self.proxy).url, TOKEN, namespace=NAMESPACE)
        return path

    def reset(self) -> None:
        if self.backend == "files":
            for name in ("deploy", ".flowplan"):
                shutil.rmtree(self.workdir / name, ignore_errors=True)
        elif self.backend == "argo":
            assert self.server is not None
            servers.post(f"{self.server.url}/__harness__/reset", token=TOKEN)
        else:
            assert self.server is not None
            servers.post(f"{self.server.url}/moto-api/reset")

    def floor_args(self) -> list[str]:
        if self.backend == "files":
            return [sys.executable, "-m", "bench.floor", "files", str(self.workdir / "deploy")]
        if self.backend == "argo":
            return [
                sys.executable, "-m", "bench.floor", "argo",
                "--kubeconfig", str(self.kubeconfig()), "--namespace", NAMESPACE,
            ]  # fmt: skip
        assert self.proxy is not None
        return [sys.executable, "-m", "bench.floor", "stepfunctions", "--endpoint", self.proxy.url]

    def seed(self) -> float:
        from bench import seed
        from planner.cli.session import ManifestOptions

        start = time.perf_counter()
        options = ManifestOptions(str(self.manifest), cli_vars=tuple(_pairs(self.cli_vars(direct=True))))
        if self.backend == "argo":
            assert self.server is not None
            seed.seed_argo(options, self.server.url, TOKEN)
        else:
            assert self.server is not None
            seed.seed_stepfunctions(options, self.server.url)
        return time.perf_counter() - start


def _pairs(cli_vars: list[str]) -> list[tuple[str, str]]:
    return [tuple(v.split("=", 1)) for v in cli_vars[1::2]]  # type: ignore[misc]


def run_size(target: Target, size: int, results: Results, args: argparse.Namespace) -> None:
    backend = target.backend
    target.workdir.mkdir(parents=True, exist_ok=True)
    text = generate.generate(size, backend)
    target.manifest.write_text(text)
    target.reset()
    env = _child_env()
    proxy_url = target.proxy.url if target.proxy else None
    common = dict(cwd=target.workdir, env=env, proxy_url=proxy_url)
    plan = [FLOWPLAN, "plan", "-f", str(target.manifest), *target.cli_vars(), "--detailed-exitcode"]
    out = target.workdir / "plan.out"
    repeat = args.repeat if size <= 1000 else args.repeat_large

    log(f"{backend} {size}: all-create plan")
    created = measure(backend, size, "create plan", plan, expect=(2,), out=out, **common)  # type: ignore[arg-type]
    created.note = _plan_counts(out.read_text(errors="replace")[-400:])
    results.measures.append(created)
    match = re.search(r"Plan: (\d+) to create", out.read_text(errors="replace")[-400:])
    results.resources.setdefault(backend, {})[size] = int(match.group(1)) if match else 0

    if backend == "files" or size <= args.apply_cap:
        log(f"{backend} {size}: apply")
        apply = [FLOWPLAN, "apply", "-f", str(target.manifest), *target.cli_vars(), "--auto-approve"]
        applied = measure(backend, size, "apply", [*apply, "--parallelism", "10"], out=out, expect=(0, 1), **common)  # type: ignore[arg-type]
        results.measures.append(applied)
        if applied.code != 0:
            # The server failed some writes (moto answers 500 to a few concurrent RegisterJobDefinition calls):
            # flowplan skipped their dependents and converges on the next apply, which is measured too.
            failed = re.search(r"(\d+) change\(s\) failed", (target.workdir / "apply.err").read_text(errors="replace"))
            applied.note = f"{failed.group(1) if failed else 'some'} write(s) failed on the server; applied again"
            again = measure(backend, size, "apply again", [*apply, "--parallelism", "10"], out=out, **common)  # type: ignore[arg-type]
            results.measures.append(again)
    else:
        log(f"{backend} {size}: seeding the live state directly")
        results.seeded.setdefault(backend, {})[size] = target.seed()

    log(f"{backend} {size}: no-change plan")
    nochange = measure(backend, size, "no-change plan", plan, out=out, repeat=repeat, **common)  # type: ignore[arg-type]
    nochange.note = _plan_counts(out.read_text(errors="replace")[-400:])
    results.measures.append(nochange)

    log(f"{backend} {size}: I/O floor")
    floor = measure(backend, size, "floor", target.floor_args(), repeat=repeat, cwd=ROOT, env=env, proxy_url=proxy_url)
    same = {k: v for k, v in floor.calls.items()} == {k: v for k, v in nochange.calls.items()}
    floor.note = "same calls as the plan" if same or backend == "files" else "calls differ from the plan's"
    results.measures.append(floor)

    log(f"{backend} {size}: one shared schedule changed")
    target.manifest.write_text(generate.change_shared_schedule(text))
    changed = measure(backend, size, "schedule changed", plan, expect=(2,), out=out, **common)  # type: ignore[arg-type]
    changed.note = _plan_counts(out.read_text(errors="replace")[-400:])
    results.measures.append(changed)
    target.manifest.write_text(text)


# --------------------------------------------------------------------------- latency: --parallelism 1 vs 10


def run_latency(target: Target, delay: float, creates: int, results: Results) -> None:
    """Apply about ``creates`` new objects through a proxy adding ``delay`` per call, at parallelism 1 and 10."""
    assert target.server is not None
    per_flow = {"argo": 3, "stepfunctions": 8}[target.backend]
    flows = max(1, round((creates - 21) / per_flow))
    target.workdir.mkdir(parents=True, exist_ok=True)
    target.manifest.write_text(generate.generate(flows, target.backend))
    slow = servers.proxy(target.server.url, delay=delay)
    try:
        delayed = Target(target.backend, target.workdir, target.server, slow)
        env = _child_env()
        figures: dict[str, Any] = {"flows": flows, "delay": delay}
        for parallelism in (1, 10):
            delayed.reset()
            log(f"{target.backend}: apply with {delay * 1000:.0f} ms per call, --parallelism {parallelism}")
            args = [
                FLOWPLAN, "apply", "-f", str(delayed.manifest), *delayed.cli_vars(), "--auto-approve",
                "--parallelism", str(parallelism),
            ]  # fmt: skip
            out = delayed.workdir / "apply.out"
            m = measure(target.backend, flows, f"apply p{parallelism}", args, cwd=delayed.workdir, env=env,
                        proxy_url=slow.url, out=out, expect=(0, 1))  # fmt: skip
            text = out.read_text(errors="replace")
            found = re.search(r"Apply complete: (\d+) created", text)
            figures[f"p{parallelism}"] = asdict(m) | {"created": int(found.group(1)) if found else 0}
        figures["speedup"] = figures["p1"]["wall"] / figures["p10"]["wall"]
        results.latency[target.backend] = figures
    finally:
        slow.stop()


# --------------------------------------------------------------------------- the rest


def machine() -> dict[str, Any]:
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    import yaml

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "flowplan_commit": commit.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else ""),
        "packages": {
            name: version(name)
            for name in ("flowplan", "kubernetes", "boto3", "botocore", "moto", "PyYAML", "deepdiff", "networkx")
        },
        "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
    }


def measure_help(results: Results) -> None:
    env = _child_env()
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([FLOWPLAN, "--help"], env=env, stdout=subprocess.DEVNULL, check=True)
        results.help_wall.append(time.perf_counter() - start)


def profile(target: Target, size: int, results: Results) -> None:
    """cProfile one no-change plan at ``size`` (the state the size's run left)."""
    args = [
        sys.executable, "-m", "bench.profile", "--", "plan", "-f", str(target.manifest), *target.cli_vars(),
    ]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, env=_child_env(), capture_output=True, text=True)
    if done.returncode == 0:
        results.profiles[f"{target.backend} {size}"] = json.loads(done.stdout.strip().splitlines()[-1])


def slope(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares exponent k of time ≈ c·N^k over the sizes measured (1.0 is linear)."""
    pts = [(math.log(n), math.log(t)) for n, t in points if t > 0]
    if len(pts) < 2:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def evaluate(results: Results, args: argparse.Namespace) -> None:
    """PASS/FAIL per budget of issue 12, with the figures behind each verdict."""
    budgets: list[dict[str, Any]] = []
    sizes = results.sizes
    largest = max(sizes)

    def add(name: str, ok: bool | None, detail: str) -> None:
        budgets.append(
            {"budget": name, "result": "n/a" if ok is None else ("PASS" if ok else "FAIL"), "detail": detail}
        )

    argo = [m for m in results.measures if m.backend == "argo" and m.scenario == "no-change plan"]
    if argo:
        gets = {m.size: {k: v for k, v in m.calls.items() if not k.startswith("list ")} for m in argo}
        ok = all(not g for g in gets.values())
        detail = "; ".join(f"{m.size} flows: {m.total_calls} calls, {_calls_text(m.calls)}" for m in argo)
        add("Argo: a no-change plan makes only paged LISTs", ok, detail)
    sfn = [m for m in results.measures if m.backend == "stepfunctions" and m.scenario == "no-change plan"]
    if sfn:
        details, ok = [], True
        for m in sfn:
            over = stepfunctions_over_budget(m.calls, m.size)
            ok = ok and not over
            details.append(f"{m.size} flows: {m.total_calls} calls" + (f", over: {over}" if over else ", within"))
        add(
            "Step Functions: ≤ 1 describe per machine and schedule, 1 target listing and 1 tag lookup per rule",
            ok,
            "; ".join(details),
        )
    files_big = results.find("files", 10000, "no-change plan") or results.find("files", largest, "no-change plan")
    if files_big is not None:
        add(
            f"files: no-change plan of {files_big.size:,} flows under 10 s",
            files_big.wall < 10.0 if files_big.size >= 10000 else None,
            f"{files_big.wall:.2f} s wall ({files_big.cpu:.2f} s CPU)",
        )
    for backend in ("argo", "stepfunctions"):
        rows = []
        ok = True
        for size in sizes:
            plan, floor = results.find(backend, size, "no-change plan"), results.find(backend, size, "floor")
            if plan is None or floor is None:
                continue
            ratio = plan.wall / floor.wall
            rows.append(f"{size}: {ratio:.2f}× ({plan.wall:.2f} / {floor.wall:.2f} s)")
            if size >= args.floor_from:
                ok = ok and ratio <= 2.0
        if rows:
            add(
                f"{backend}: no-change plan within 2× the I/O floor (from {args.floor_from:,} flows)",
                ok,
                "; ".join(rows),
            )
    big = [m for m in results.measures if m.size >= 10000 and m.backend in BACKENDS and m.scenario != "floor"]
    if big:
        worst = max(big, key=lambda m: m.rss_mb)
        add(
            "peak RSS under 1 GiB at 10,000 flows",
            worst.rss_mb < 1024,
            f"largest: {worst.rss_mb:.0f} MiB ({worst.backend}, {worst.scenario})",
        )
    for backend, figures in results.latency.items():
        add(
            f"{backend}: with {figures['delay'] * 1000:.0f} ms per call, --parallelism 10 ≥ 5× faster than 1",
            figures["speedup"] >= 5.0,
            f"{figures['p1']['created']} creates: {figures['p1']['wall']:.1f} s vs {figures['p10']['wall']:.1f} s "
            f"= {figures['speedup']:.1f}×",
        )
    if len(sizes) >= 2:
        worst_slope, where = 0.0, ""
        parts = []
        for backend in BACKENDS:
            for scenario in ("no-change plan", "create plan", "schedule changed"):
                points = [(m.size, m.cpu) for m in results.measures if (m.backend, m.scenario) == (backend, scenario)]
                k = top_slope(points)
                if k is None:
                    continue
                parts.append(f"{backend} {scenario}: {k:.2f}")
                if k > worst_slope:
                    worst_slope, where = k, f"{backend} {scenario}"
        add(
            "cost linear in N (CPU-time exponent between the two largest sizes ≤ 1.15)",
            worst_slope <= 1.15,
            f"worst {worst_slope:.2f} ({where}); " + "; ".join(parts),
        )
    if results.help_wall:
        median = statistics.median(results.help_wall)
        add(
            "flowplan --help starts in under 0.5 s", median < 0.5, f"median of {len(results.help_wall)}: {median:.3f} s"
        )
    results.budgets = budgets


def top_slope(points: Sequence[tuple[int, float]]) -> float | None:
    """The exponent between the two largest sizes (fixed start-up costs flatten the small end)."""
    pts = sorted(points)
    if len(pts) < 2:
        return None
    (n1, t1), (n2, t2) = pts[-2], pts[-1]
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)


def stepfunctions_over_budget(calls: dict[str, int], size: int) -> dict[str, tuple[int, int]]:
    """Per-resource calls over the budget; listings (paged) are free, anything unlisted allows none."""
    schedules = size  # one per flow (every generated flow has one)
    rules = size  # one trigger per flow
    parameters = generate.SINKS
    allowed = {
        "states:DescribeStateMachine": size,
        "scheduler:GetSchedule": schedules,
        "events:ListTargetsByRule": rules,
        "events:ListTagsForResource": rules,
        "ssm:ListTagsForResource": parameters,
        "scheduler:GetScheduleGroup": 1,
        "scheduler:ListTagsForResource": 1,
    }
    listings = {
        "tag:GetResources",
        "events:ListRules",
        "scheduler:ListSchedules",
        "batch:DescribeJobDefinitions",
        "ssm:GetParametersByPath",
        "dynamodb:Query",
    }
    return {
        op: (n, allowed.get(op, 0)) for op, n in sorted(calls.items()) if op not in listings and n > allowed.get(op, 0)
    }


def _calls_text(calls: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))


def load_results(path: Path) -> Results:
    """A run's figures back from its results.json."""
    data = json.loads(path.read_text())
    measures = [Measure(**{**m, "load": tuple(m["load"])}) for m in data.pop("measures")]
    for key in ("resources", "seeded"):
        data[key] = {b: {int(n): v for n, v in sizes.items()} for b, sizes in data.get(key, {}).items()}
    return Results(**data, measures=measures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="flow counts (comma-separated)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--apply-cap", type=int, default=1000, help="largest apply on the servers (seed above)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each plan and floor up to 1,000 flows (best)")
    parser.add_argument(
        "--repeat-large",
        type=int,
        default=3,
        help="runs of the no-change plan and the floor above 1,000 flows (best: other work shares these cores)",
    )
    parser.add_argument("--latency-creates", type=int, default=1000, help="objects created in the latency runs")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per call in the latency runs")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--floor-from", type=int, default=1000, help="smallest size the 2× floor budget applies to")
    parser.add_argument(
        "--limit",
        default="stepfunctions=1000",
        help="largest size per backend, BACKEND=N,... (moto scans its whole store per describe: a plan of 10,000 "
        "flows takes it the better part of an hour)",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--workdir", default=None, help="where manifests and deployments go (default: a temp dir)")
    parser.add_argument("--merge", default=None, help="results.json of an earlier run: keep its other backends")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    chosen = [b for b in args.backends.split(",") if b]
    limits = {k: int(v) for k, v in (item.split("=", 1) for item in args.limit.split(",") if item)}
    start = time.perf_counter()
    results = Results(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), machine=machine(), sizes=sizes)
    if args.merge:
        earlier = load_results(Path(args.merge))
        results.started = earlier.started + f" (and {results.started} for {', '.join(chosen)})"
        results.measures = [m for m in earlier.measures if m.backend not in chosen]
        for name in ("resources", "seeded", "latency", "skipped"):
            getattr(results, name).update({b: v for b, v in getattr(earlier, name).items() if b not in chosen})
        results.profiles = {k: v for k, v in earlier.profiles.items() if k.split()[0] not in chosen}
        results.sizes = sorted(set(results.sizes) | set(earlier.sizes))
    root = Path(args.workdir or tempfile.mkdtemp(prefix="flowplan-bench-"))
    log(f"working in {root}; load average {os.getloadavg()}")
    measure_help(results)
    try:
        for backend in chosen:
            server = proxy = None
            try:
                if backend == "argo":
                    server = servers.k8s_server()
                elif backend == "stepfunctions":
                    server = servers.moto_server()
                if server is not None:
                    proxy = servers.proxy(server.url)
                limit = limits.get(backend)
                sizes_here = [s for s in sizes if limit is None or s <= limit]
                if len(sizes_here) < len(sizes):
                    results.skipped[backend] = [s for s in sizes if s not in sizes_here]
                for size in sizes_here:
                    target = Target(backend, root / f"{backend}-{size}", server, proxy)
                    run_size(target, size, results, args)
                    # moto answers a 10,000-flow plan in minutes: its profile is taken at 1,000 flows
                    small = [s for s in sizes_here if s <= 1000] or sizes_here
                    profiled = max(small) if backend == "stepfunctions" else max(sizes_here)
                    if size == profiled:
                        log(f"{backend} {size}: profile of the no-change plan")
                        profile(target, size, results)
                if server is not None and not args.no_latency:
                    run_latency(Target(backend, root / f"{backend}-latency", server), args.delay, args.latency_creates,
                                results)  # fmt: skip
            finally:
                for process in (proxy, server):
                    if process is not None:
                        process.stop()
    finally:
        results.duration = time.perf_counter() - start
        results.finished = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        evaluate(results, args)
        Path(args.json).write_text(json.dumps(asdict(results), indent=1, default=str) + "\n")
        write_report(results, Path(args.out), " ".join(["python -m bench.run", *(argv or sys.argv[1:])]))
        shutil.rmtree(root, ignore_errors=True) if not args.workdir else None
    for budget in results.budgets:
        print(f"{budget['result']:5s} {budget['budget']}: {budget['detail']}")
    return 1 if any(b["result"] == "FAIL" for b in results.budgets) else 0


if __name__ == "__main__":
    sys.exit(main())
