"""``docs/benchmarks.md`` from a benchmark run's figures (see :mod:`bench.run`)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Measure, Results

SCENARIOS = ("create plan", "apply", "no-change plan", "floor", "schedule changed")

#: What issue 12 changed, measured before and after on this machine (10,000 flows on the files backend unless
#: said otherwise): (where, what was slow, the fix, before → after). Every regeneration carries it.
FIXES = (
    (
        "`planner/resources.py` `without()`",
        "deep-copied the whole body to drop 4 marker pointers; called per hash, per render, per read",
        "copies only the containers on the path to a removed pointer; pointer splitting memoised",
        "compile 15.5 s → 8 s CPU; the files read stopped deep-copying 30,000 bodies",
    ),
    (
        "`Resource.comparison_body` / `digest`",
        "the body without volatile markers, and its SHA-256, recomputed 3–4 times per resource",
        "computed once per resource; the Argo compiler hands over the ones it made for the spec-hash marker",
        "4 canonical-JSON passes per resource → 2 (Argo: compile + live) or 1 (files)",
    ),
    (
        "`backends/files.py` read",
        "rendered every desired object to YAML (PyYAML's Python representer, ~1 ms each) and parsed mismatches",
        "the owner header carries `body-sha256`: header spec hash = desired and digest = body bytes means "
        "unchanged, with nothing rendered or parsed (older files: body text against the rendering, no parse)",
        "live read 43 s → 1.9 s CPU",
    ),
    (
        "cyclic garbage collector",
        "every 25% of heap growth re-traversed millions of long-lived, acyclic containers (8 full collections "
        "in one compile)",
        "the CLI freezes its start-up heap and keeps full collections out of reach; young collections still "
        "free short-lived cycles",
        "compile 10.6 s → 5.9 s, load 8.8 s → 6.3 s CPU",
    ),
    (
        "`planner/outline.py` `affected_flows`",
        "walked every desired resource's dependents on every plan",
        "looks up changed addresses only",
        "1.2 s → ~0 on a no-change plan (profiled)",
    ),
    (
        "`backends/argo/reader.py` `normalize`",
        "deep-copied every listed object (fresh JSON nobody else holds)",
        "shares the decoded `spec`; copies labels and annotations only",
        "one deep copy of 30,000 objects less per Argo plan",
    ),
    (
        "`backends/argo/filters.py` `go_quote_meta`",
        "a per-character join: a tenth of an Argo compile",
        "`str.translate`",
        "1.0 s → 0.05 s (profiled)",
    ),
    (
        "`planner/manifest/model.py` step order",
        "recomputed 3× per flow per compile",
        "computed once per flow",
        "1.3 s → 0.3 s (profiled)",
    ),
    (
        "`backends/argo/client.py` (Argo plans)",
        "the generated `CoreV1Api` loads every core model on first use, and every plan lists the inventory ConfigMap",
        "every call through `ApiClient.param_serialize` / `call_api` with the path spelled out: the same requests",
        "Argo no-change plan of 60 flows 2.65 s → 1.53 s",
    ),
    (
        "`backends/argo/client.py` (Argo writes)",
        "per call: pydantic validation and a walk of the whole body (`sanitize_for_serialization`), and the "
        "kubeconfig's credential refresh re-reading every proxy variable of the environment",
        "no generated API classes; the refresh runs at most once a second; a create copies only its metadata",
        "1,000 creates at 20 ms per call, --parallelism 10: 6.4 s → 4.6 s CPU, speedup over 1: 3.3× → 4.4×",
    ),
    (
        "`planner/cli/planning.py` apply",
        "loaded and compiled the manifest a second time to plan again under the lock",
        "plans again from the compiled resources it showed (the live state is read anew)",
        "one manifest load and compile less per apply (~10 s at 10,000 flows)",
    ),
    (
        "`planner/render/` creates, `planner/explain.py`",
        "flattened every new body to show 40 fields; explained each of 20 shared schedules 10,000 times; held a "
        "million line strings",
        "the first fields only (and a count); explanations memoised per schedule and plan time; one string per change",
        "all-create plan of 10,000 flows: 39 s → 25 s (quiet) and less memory",
    ),
    (
        "`planner/manifest/loader.py`, `stepgraph.py` (session 15)",
        "two recursive closures kept the loader's context, and through it the YAML node tree (4 million "
        "objects), in a reference cycle: only the collector could free it, in a 1.5 s young collection after "
        "every load, and freezing the heap would have kept it for good",
        "module-level recursion; the node tree is released by reference counting when the load ends "
        "(a test checks no node is left to the collector)",
        "young collection after the load 1.48 s → 0.2 s; load 5.9 → 5.2 s",
    ),
    (
        "`planner/heap.py` (session 15)",
        "young collections re-traversed what each phase built (46 young and 2 middle collections, 1.7 s per "
        "no-change plan), and the interpreter's last collection walked the whole heap at exit (1.2 s)",
        "load, compile and the files read run with the collector paused; in the CLI what they built is then "
        "frozen (out of the collector's sight), and the heap is frozen before exit",
        "collections in a no-change plan 1.7 s → ~0; exit 1.2 s → ~0; compile 4.2 → 2.7 s",
    ),
    (
        "`planner/resources.py` `canonical_bytes` (session 15)",
        "the standard library's JSON encoder for every body hashed (30,021 bodies at 10,000 flows)",
        "orjson with sorted keys: the same bytes for what bodies hold (a property test compares them)",
        "canonical JSON of 30,021 bodies 1.42 s → 0.45 s",
    ),
    (
        "`planner/builder.py`, `backends/argo/reader.py` (session 15)",
        "the Argo listings started only after the compile; beside a compile, reader threads waited up to "
        "Python's 5 ms switch interval after every socket read (the listings of 10,000 flows took 10.8 s "
        "beside a 3.8 s compile, 3.5 s alone)",
        "readers get optional `begin`/`prefetch` hooks: the inventory and the kinds it names are listed while "
        "compiling; the CLI sets a 0.5 ms switch interval",
        "Argo no-change plan of 10,000 flows 22.7 s → 15.7 s (in process, same minutes)",
    ),
    (
        "`backends/files_scan.py` (session 15)",
        "reading and checking 30,000 files (80 MB) came after the compile, on one core",
        "a deployment of 2,000 files or more is checked by a second process started as the plan begins; "
        "the parent scans itself if the child fails (tests compare both answers); removed again by issue 18 "
        "(the files are scanned in process: a second process did not earn its place)",
        "files read in the critical path 1.5 s → 0.45 s (before the removal)",
    ),
    (
        "`backends/argo/client.py` `list_as`, `workflow.py` (session 15)",
        "all 30,000 listed objects were held decoded (managedFields, status) until converted; every step "
        "had its own copy of identical env entries",
        "each page converted as it arrives; identical env entries, resources and config-map references are "
        "one shared object (bodies are immutable; the files backend writes no YAML anchors)",
        "Argo no-change plan of 10,000 flows: peak RSS 1,112 → 962 MiB",
    ),
    (
        "`backends/argo/client.py` kubeconfig refresh (session 15)",
        "the loader's refresh hook re-installs itself, so the once-a-second throttle fell off after the first "
        "refresh and every request re-read the whole environment for proxy settings",
        "the throttle puts itself back after each refresh (a test counts the environment reads)",
        "environment scans in 40 listings: 40 → 0",
    ),
    (
        "`planner/apply.py` revision",
        "copied every applied body (JSON round trip) and held the whole compressed JSON text at once",
        "copies only bodies with sensitive paths; compresses body by body (same bytes)",
        "apply of 10,000 flows: peak RSS 1,616 → 985 MiB (with the fixes above)",
    ),
    (
        "`bench/moto_server.py` (session 16)",
        "moto's dispatcher listed its package directory and tried every service's URL patterns under one "
        "lock per request, and ten threads missing its model cache at once each loaded the same model",
        "host → backend memoised, models and apps built before serving (the emulator's answers are unchanged)",
        "moto's CPU per 1,000-create apply 16.5 s → 8.3 s; Step Functions --parallelism speed-up 4.9× → 5.1×",
    ),
    (
        "`planner/manifest/yamlsource.py`, `loader.py` (session 16)",
        "the position of each of 80,000 flows, steps and triggers was found by walking from the root; "
        "a manifest without template syntax still had its million scalars looked at for templates",
        "the converter records the positions of containers as it meets them; `may_render` (the file's bytes, "
        "escapes included) skips the render walk when no string can hold a template",
        "load of 10,000 flows 6.2 s → 5.5 s CPU (same minutes)",
    ),
    (
        "`backends/argo/list_scan.py`, `planner/cli/speculate.py` (session 16)",
        "the listings started once the manifest was loaded (6 s in at 10,000 flows) and their 30,000 objects "
        "were decoded, normalised and hashed under the interpreter lock beside the compile",
        "a large manifest's first lines (everything but the flows after the first) are loaded first and its "
        "listings start in a second process, which sends back bodies only where they differ from the desired "
        "ones; the reader adopts it only for exactly its own cluster, client and scope (tests: same plans); "
        "issue 18 removed the early start (`speculate.py`): the listing starts once the inventory is loaded, "
        "and the figure includes the early start",
        "Argo no-change plan of 10,000 flows 15.2–15.8 s → 13.5–13.9 s, peak RSS 984 → 675 MiB (A/B, same minutes)",
    ),
    (
        "`planner/manifest/yamlsplit.py` (session 16)",
        "libyaml composed and the loader converted the 6 MiB manifest of 10,000 flows on one core (2.5–3 s)",
        "a manifest of 1 MiB or more is cut at a flow boundary: a second process parses the last 40% and sends "
        "data and positions back as JSON; anything unusual or invalid is parsed whole again, so every message "
        "is unchanged (tests load both ways and compare)",
        "load of 10,000 flows 5.3–6.3 s → 4.3–5.1 s (A/B, same minutes)",
    ),
    (
        "`planner/render/common.py` `friendly`, `planner/schedule.py` `_is_regular_day` (session 16)",
        "an apply prints its plan before writing: 40 fields of each of 1,000 creates spelled pointer by pointer, "
        "and every cron checked the same 1,461 reference days for DST on its own",
        "both memoised (pure functions of a pointer, and of a day and zone)",
        "Argo --parallelism 10 apply of 999 creates 5.1–5.9 s → 4.8–4.9 s (speed-up over 1: 4.5–5.3× → 5.4–5.5×)",
    ),
    (
        "`planner/graph.py`, `diff.py`, `loader.py` imports (session 16)",
        "every plan imported networkx, deepdiff (with pydantic) and jsonschema",
        "each is imported where it is needed: a no-change plan of a valid manifest imports none (a test checks)",
        "~0.3 s off every no-change plan, whatever its size",
    ),
)


def _fmt_calls(calls: dict[str, int], limit: int = 12) -> str:
    if not calls:
        return "–"
    items = sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {v:,}" for k, v in items[:limit])
    if len(items) > limit:
        text += f", … ({len(items) - limit} more)"
    return text


def _row(m: Measure) -> str:
    load = f"{m.load[0]:.2f}"
    runs = f" (best of {len(m.runs)})" if len(m.runs) > 1 else ""
    return (
        f"| {m.backend} | {m.size:,} | {m.scenario}{runs} | {m.wall:.2f} | {m.cpu:.2f} | {m.rss_mb:.0f} | "
        f"{m.total_calls:,} | {_fmt_calls(m.calls, 6)} | {load} | {m.note} |"
    )


def write_report(results: Results, path: Path, command: str) -> None:
    from bench.run import BACKENDS, slope, top_slope

    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Generated by the benchmark harness (`bench/`); do not edit by hand. Reproduce with")
    add("")
    add("```sh")
    add(".venv/bin/python -m bench.run --sizes 100,1000,10000")
    add("```")
    add("")
    add(f"This run: `{command}`, {results.started} → {results.finished} ({results.duration / 60:.1f} min).")
    add("")
    add("Each flow has 5 steps with a fan-out, a schedule (one of 20 shared ones), a trigger (`after:` the")
    add("previous flow of its chain, or one of 5 shared events) and a sink (one of 20 shared ones): see")
    add("`bench/generate.py`. Every figure is one `flowplan` process (start-up included) measured from")
    add("outside: wall time, CPU time (user + system), peak RSS, and the API calls the counting proxy saw.")
    add("The servers (the Kubernetes API test server, moto's server) and the proxy run in their own")
    add("processes. No-change plans and floors are the best of three runs at every size (the machine is")
    add("shared: its speed moves by a third from minute to minute, see the load column); the other")
    add("scenarios are one run each.")
    add("")
    add("## Machine")
    add("")
    m = results.machine
    add(f"- CPU: {m.get('cpu')} — {m.get('cores')} cores, {m.get('memory_gib')} GiB RAM; {m.get('os')}")
    add(
        f"- Python {m.get('python')}; libyaml: {'yes' if m.get('libyaml') else 'no'}; "
        f"flowplan at {m.get('flowplan_commit')}"
    )
    add("- " + ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items()))
    loads = [x.load[0] for x in results.measures]
    if loads:
        add(
            f"- Load average (1 min) when each measurement started: {min(loads):.2f} to {max(loads):.2f} "
            f"(median {statistics.median(loads):.2f}); other engineers' test runs share this 2-core machine, so "
            "the load column below says how much to trust each figure."
        )
    add("")
    add("## Budgets")
    add("")
    add("| budget | result | figures |")
    add("|---|---|---|")
    for b in results.budgets:
        add(f"| {b['budget']} | **{b['result']}** | {b['detail']} |")
    add("")
    add("## Results")
    add("")
    add("Seconds and MiB; *calls* is what crossed the proxy (files: none). The floor is the same reads")
    add("as the no-change plan and parsing their answers, nothing else (`bench/floor.py`).")
    add("")
    add("| backend | flows | scenario | wall s | CPU s | peak RSS MiB | calls | by verb/operation | load | note |")
    add("|---|---:|---|---:|---:|---:|---:|---|---:|---|")
    order = {s: i for i, s in enumerate(SCENARIOS)}
    for backend in BACKENDS:
        for size in results.sizes:
            rows = [x for x in results.measures if x.backend == backend and x.size == size]
            for row in sorted(rows, key=lambda x: order.get(x.scenario, 9)):
                add(_row(row))
    add("")
    for backend, sizes in results.resources.items():
        add(f"- {backend}: resources per size: " + ", ".join(f"{n:,} flows → {r:,}" for n, r in sorted(sizes.items())))
    for backend, skipped in results.skipped.items():
        add(
            f"- {backend}: not run at "
            + ", ".join(f"{n:,}" for n in skipped)
            + " flows (`--limit`): "
            + SKIP_REASONS.get(backend, "limited by the run's options")
        )
    for backend, seeded in results.seeded.items():
        add(
            f"- {backend}: live state seeded directly (not measured) at "
            + ", ".join(f"{n:,} flows in {s:.0f} s" for n, s in sorted(seeded.items()))
            + " — see `bench/seed.py`; the no-change plan after it found nothing to do."
        )
    add("")
    add("## Plan time over the I/O floor")
    add("")
    add("| backend | flows | no-change plan s | floor s | ratio | same calls |")
    add("|---|---:|---:|---:|---:|---|")
    for backend in BACKENDS:
        for size in results.sizes:
            plan, floor = results.find(backend, size, "no-change plan"), results.find(backend, size, "floor")
            if plan and floor:
                same = "yes" if floor.note == "same calls as the plan" else "no"
                if backend == "files":
                    same = f"{floor.total_calls or '–'} (reads every file)"
                add(
                    f"| {backend} | {size:,} | {plan.wall:.2f} | {floor.wall:.2f} | "
                    f"{plan.wall / floor.wall:.2f}× | {same} |"
                )
    add("")
    add("## Cost in N")
    add("")
    add("Exponent *k* of time ≈ c·N^k: least squares over all sizes, and between the two largest (start-up")
    add("costs flatten the small end, so the latter is the honest one). 1.0 is linear. CPU time of the")
    add("flowplan process; per-flow cost at the largest size.")
    add("")
    add(
        "| backend | scenario | k (all sizes, CPU) | k (two largest, CPU) | k (two largest, wall) "
        "| per flow at the largest |"
    )
    add("|---|---|---:|---:|---:|---:|")
    for backend in BACKENDS:
        for scenario in ("create plan", "apply", "no-change plan", "schedule changed"):
            rows = sorted(
                (x for x in results.measures if (x.backend, x.scenario) == (backend, scenario)), key=lambda x: x.size
            )
            if len(rows) < 2:
                continue
            k_all = slope([(x.size, x.cpu) for x in rows])
            k_top = top_slope([(x.size, x.cpu) for x in rows])
            k_wall = top_slope([(x.size, x.wall) for x in rows])
            per = rows[-1].wall / rows[-1].size * 1000
            add(f"| {backend} | {scenario} | {_f(k_all)} | {_f(k_top)} | {_f(k_wall)} | {per:.2f} ms |")
    add("")
    if results.latency:
        add("## Latency: `--parallelism` 1 vs 10")
        add("")
        add("An apply of about 1,000 new objects through the proxy with a fixed delay added to every call.")
        add("")
        add("| backend | flows | objects created | delay | p=1 wall s | p=10 wall s | speedup | calls |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|")
        for backend, f in results.latency.items():
            calls = sum(f["p10"]["calls"].values())
            add(
                f"| {backend} | {f['flows']} | {f['p10']['created']:,} | {f['delay'] * 1000:.0f} ms | "
                f"{f['p1']['wall']:.1f} | {f['p10']['wall']:.1f} | {f['speedup']:.1f}× | {calls:,} |"
            )
        add("")
    if results.help_wall:
        walls = ", ".join(f"{w:.3f}" for w in results.help_wall)
        add(f"`flowplan --help`: {walls} s (median {statistics.median(results.help_wall):.3f} s).")
        add("")
    add("## Where the remaining time goes")
    add("")
    if results.profiles:
        add("cProfile of the largest no-change plan per backend (`bench/profile.py`; the profiler roughly")
        add("doubles Python-heavy phases, so read the shares, not the seconds). Phases are cumulative")
        add("times of the functions named; what is left is start-up, imports and the CLI.")
        add("")
        for name, prof in results.profiles.items():
            total = prof.get("profiled_total") or prof.get("profiled_wall") or 1.0
            add(f"**{name} flows** — {prof.get('profiled_wall', 0):.1f} s under the profiler:")
            add("")
            add("| phase | s | share |")
            add("|---|---:|---:|")
            for phase, seconds in prof.get("phases", {}).items():
                add(f"| {phase} | {seconds:.2f} | {seconds / total:.0%} |")
            add("")
            add("Most time of their own: " + "; ".join(
                f"`{t['function']}` {t['seconds']:.2f} s" for t in prof.get("top_own_time", [])[:8]
            ))  # fmt: skip
            add("")
    add(NOTES)
    add("")
    add("## Fixes made for these budgets")
    add("")
    add("| where | what was slow | fix | before → after |")
    add("|---|---|---|---|")
    for row in FIXES:
        add("| " + " | ".join(row) + " |")
    path.write_text("\n".join(lines) + "\n")


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


#: Why a backend is limited by default (``--limit``).
SKIP_REASONS = {
    "stepfunctions": (
        "moto's server scans its whole store for each describe and each tag-listing page, so its own time grows "
        "with the square of the flows: at 2,000 flows a no-change plan took 64.7 s and the I/O floor (the same "
        "8,309 calls, nothing else) 61.7 s, both moto's time; at 10,000 flows a single plan would take it the "
        "better part of an hour. flowplan's own share was measured up to 1,000 flows here, and its calls are "
        "linear (one describe per machine, schedule and rule, as the budget says). Run "
        "`--limit stepfunctions=10000` to measure it anyway."
    ),
}

#: The reading of the profiles, kept with the generator (reviewed when the numbers move).
NOTES = """\
Reading the profiles (and what is left to do):

- **Manifest load** is about half of a large no-change plan and now the largest single cost: libyaml
  composes the 6 MiB manifest of 10,000 flows into about 1.1 million nodes (with two position marks
  each) and pyyaml's C parser calls the Python resolver for every scalar; the loader then converts the
  nodes, checks the compiled schema and builds the typed model, about 0.5 ms per flow in all. Since
  session 16 a second process parses the last 40% of a large manifest's flows (the JSON it sends
  back decodes 15 times faster than YAML parses); the schema check and the model are still one core. It is
  linear and leaves no garbage behind, but its high-water mark stays: the model is 62 MiB of live
  objects, yet the process keeps about 450 MiB after the load (the node tree's memory, scattered
  between the strings the model keeps). Reading YAML without building a node tree is what is left to try:
  libyaml's events alone take 1.7 s for this file through pyyaml's C binding (a Python object and two
  marks per event), so a parser that builds Python data directly would be the next step. Forking the
  compile was measured and rejected: pickling half of the 30,000 compiled resources back (0.75 s out,
  0.42 s in) costs as much as compiling them.
- **Compile** is a third: pure Python building about 30,000 JSON bodies and hashing each once
  (canonical JSON through orjson). No pass is repeated; identical parts are shared.
- **Live reads** overlap the load and the compile. On files a second process checks the files while
  flowplan compiles; on Argo a large deployment is listed by a second process started from the
  manifest's first lines, before the manifest is loaded, and only the objects that differ come back
  whole. What remains is the planner's own CPU, and on two cores the server, the proxy and the
  listing process take turns with it: loading and compiling 10,000 flows alone takes longer than the
  server needs to list everything, and the floor measures only the listing. That is why Argo stays
  above 2× its floor; at 1,000 flows start-up (the kubernetes client's import alone is 0.36 s) and
  the load are most of the plan.
- **Compare** is a hash lookup per resource (no deepdiff on equal hashes; on files not even a hash:
  the header's digest proves the bytes). Render is negligible on a no-change plan.
- **Parallel applies** are CPU-bound on these two cores once latency is hidden: flowplan spends about
  2.5 ms of CPU per call (the clients' request building, signing and parsing; botocore most), and the
  server and the proxy share the same two cores. Until session 16 moto itself was the cap (16.5 s of
  CPU for a 1,000-create apply, half of it routing each request to its service); the benchmark's moto
  server now routes as a long-running server would (`bench/moto_server.py`). Step Functions also makes
  a check before each create (a name taken since the plan must not be overwritten: `PutRule` and
  `RegisterJobDefinition` would), which keeps its calls at 2.8 per object.
- **Step Functions** plans are moto's time: the plan and its floor make the same calls and take
  nearly the same time."""


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/benchmarks.md from a saved run (``bench/results.json``) without measuring again."""
    import argparse

    from bench.run import ROOT, load_results

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("results", nargs="?", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--command", default="python -m bench.run --sizes 100,1000,10000")
    args = parser.parse_args(argv)
    write_report(load_results(Path(args.results)), Path(args.out), args.command)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
