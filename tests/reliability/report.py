"""Run the reliability families and write docs/reliability.md from what they recorded.

    .venv/bin/python -m tests.reliability.report            # the issue's sizes (FLOWPLAN_TRIAL_SCALE=full)
    .venv/bin/python -m tests.reliability.report --scale seed --out /tmp/reliability.md   # CI's small seed

It runs ``pytest -m "slow or not slow" tests/reliability`` and the loader
fuzz (``tests/planner/manifest/test_fuzz.py -m slow``) with
``FLOWPLAN_RELIABILITY_RESULTS`` naming a scratch file: every trial appends one
JSON line (family, backend, size, faults injected by type from the counting
proxy's counters, retries observed, what was checked, the outcome; see the
``trial`` fixture in tests/reliability/conftest.py). This script folds them
into one table row per family and backend and writes the document. Nothing
in it is typed by hand except the prose in this file; rerun it after a change.
Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMMAND = ".venv/bin/python -m tests.reliability.report"

#: Table order of the families, and what each one attacks.
FAMILIES = {
    "fault injection": "10% of calls fail at random (seeded): 5xx, 429/ThrottlingException, delay past the client "
    "timeout, reset before forwarding, reset after the server applied the call",
    "fault injection (persistent)": "one resource's call fails every time",
    "crash consistency": "SIGKILL of the apply (a child process) at a seeded random write, mid-wave included",
    "concurrency": "applies started together behind a barrier, each through its own counting proxy",
    "stale plans": "a saved plan applied after something moved",
    "hostile input": "malformed and malicious manifests through the CLI",
    "fuzzing (CLI)": "hypothesis: token soup and mutated manifests through validate and plan",
    "fuzzing (loader)": "hypothesis: the loader and validator (tests/planner/manifest/test_fuzz.py)",
    "ownership (property)": "hypothesis: live states mixing owned, unmarked, other-project, other-branch and "
    "untracked objects, random manifests",
    "transport security": "TLS verification defaults and the explicit setting that turns it off",
    "transport security (secrets)": "bearer token, AWS keys and a sensitive var vs every output, --debug included",
}
#: Size keys that add up over the trials of one row (others show their range or list).
SUM_KEYS = {"calls", "file writes", "examples", "runs", "trials", "validate runs", "plan runs", "cases"}

#: (where, what went wrong, the fix) of every bug these trials found; rendered as a table.
BUGS: list[tuple[str, str, str]] = [
    (
        "`backends/stepfunctions/writer.py` `_send_once`",
        "a throttled non-idempotent create (RegisterJobDefinition, CreateStateMachine, CreateSchedule, "
        'PutParameter) failed its resource at once ("still failed after retries" after one try): '
        "throttling was treated as a definite refusal",
        "throttled means not processed: sent again after a backoff",
    ),
    (
        "`backends/stepfunctions/writer.py` `_delete_statemachine`",
        "tags were removed *before* the delete: a failed or interrupted delete left an untagged machine "
        "no later run ever saw as its own (leaked for good)",
        "delete first, untag after (moto keeps a deleted machine's tags)",
    ),
    (
        "`planner/applying/transaction.py` `Transaction.repair`, `planner/applying/inventory.py` `inventory_repairs`",
        "an apply killed after its last write left `pending-*` intents; the next plan was empty, so no "
        "apply ever stored them resolved and the inventory disagreed with what is live forever",
        "an apply with nothing to change stores the reconciled inventory under the lock",
    ),
    (
        "`backends/stepfunctions/reader.py`, `writer.py` `_one_revision`",
        "a RegisterJobDefinition held past the client's timeout landed after the writer, having read back "
        "nothing yet, sent it again: two ACTIVE revisions of one content; the reader showed only the newest, "
        "so the plan stayed empty and the duplicate (and any revision an interrupted update left) stayed for good",
        "surplus ACTIVE revisions show in the plan (`activeRevisions`); the update keeps one",
    ),
    (
        "`backends/files.py` `FileLock.acquire`",
        "the lock file was created empty and written after: a racing apply read it half-made and reported "
        '"held by unknown (unreadable lock file) on host ? (pid 0)" (five racers, test_concurrency.py); taking '
        "over an expired lock could move away a fresh lock another run had just made",
        "linked into place complete; a fresh lock moved aside by mistake is put back",
    ),
    (
        "`backends/files.py` `leftovers`",
        "a SIGKILL during parallel writes left `.NAME.XXXXXXXX.tmp` files in the GitOps directory (and "
        "`.flowplan/`) for good",
        "the plan warns about them, the next apply removes them",
    ),
    (
        "`backends/files.py` `_atomic_write`",
        'an OS error writing (disk full, EIO) escaped as "flowplan failed unexpectedly ... please report it"',
        "a BackendError naming the file; the next apply converges",
    ),
    (
        "`planner/cli/planning.py` `_refuse_other_options`",
        "`apply plan.bin --branch dev` (or `--var`, `--var-file`, `-f`, `--target`, `--adopt`) silently "
        "ignored the option and applied the saved plan's",
        "refused, naming the option (test_stale.py)",
    ),
    (
        "`planner/applying/compare.py` `check_same`",
        "a saved plan applied against another cluster or endpoint with the same state went through; a "
        'refusal said "the live objects it touches changed" for any difference',
        "refused when the backend target differs; the refusal names each address and how it differs (test_stale.py)",
    ),
    (
        "`planner/manifest/yamlsource.py`",
        "a 20 MB manifest took 13 s and 870 MB to load; `-f /dev/zero` or `--var-file /dev/zero` ran out "
        'of memory ("failed unexpectedly")',
        "files read at most 8 MiB (test_hostile.py)",
    ),
    (
        "`planner/manifest/loader.py`",
        'a files `path:` with a NUL byte crashed the plan ("failed unexpectedly"); `path: ~/deploy` '
        "wrote to a folder named `~`; `timezone: ''` silently meant UTC",
        "each a manifest error (test_hostile.py)",
    ),
    (
        "`planner/manifest/units.py`",
        "`timeout: 999999999999999999999999`, `memory: 99999999999999999999Ei` overflowed into the "
        "rendered objects; Arabic-Indic digits were read as durations",
        "durations up to ten years in ASCII digits, quantities within Kubernetes' 64 bits (test_hostile.py)",
    ),
    (
        "`planner/manifest/yamlsource.py`",
        'a control character in the file gave pyyaml\'s `in "<unicode string>", position 39`',
        "one line with line and column (test_hostile.py)",
    ),
    (
        "`planner/manifest/loader.py` `_redacted`, `planner/cli/__init__.py`",
        "a sensitive var's value that failed validation (e.g. as a cron) was quoted in the error, and "
        "`--debug` tracebacks were never scrubbed",
        "problems redacted; tracebacks scrubbed",
    ),
    (
        "`planner/contract.py` `remember_credential`, `planner/cli/redact.py`",
        "a kubeconfig bearer token or AWS key quoted by a server's error message reached the output",
        "credentials a backend loads are scrubbed from every output (test_transport.py)",
    ),
    (
        "`backends/argo/client.py`",
        "a kubeconfig with `insecure-skip-tls-verify: true` turned TLS verification off silently",
        "refused unless the backend says `verify_tls: false` (which every plan warns about) (test_transport.py)",
    ),
]


def _run_pytest(scale: str, results: Path, junit: Path, workers: int, extra: list[str]) -> tuple[int, float]:
    env = {**os.environ, "FLOWPLAN_TRIAL_SCALE": scale, "FLOWPLAN_RELIABILITY_RESULTS": str(results)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-m",
        "slow or not slow",
        f"--junitxml={junit}",
        "tests/reliability",
        "tests/planner/manifest/test_fuzz.py",
        *extra,
    ]
    if workers > 1:
        command += ["-n", str(workers)]
    started = time.monotonic()
    code = subprocess.call(command, cwd=REPO, env=env)
    return code, time.monotonic() - started


def _merge_size(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    values: dict[str, list[Any]] = defaultdict(list)
    for size in rows:
        for key, value in size.items():
            values[key].append(value)
    merged: dict[str, Any] = {}
    for key, items in values.items():
        if key in SUM_KEYS and all(isinstance(v, int | float) for v in items):
            merged[key] = sum(items)
        elif len(set(map(str, items))) == 1:
            merged[key] = items[0]
        elif all(isinstance(v, int | float) for v in items):
            merged[key] = f"{min(items)}–{max(items)}" if key not in ("seed", "racers") else sorted(set(items))
        else:
            merged[key] = sorted(set(map(str, items)))
    return merged


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _size_text(size: Mapping[str, Any]) -> str:
    return "; ".join(f"{k} {_fmt(v)}" for k, v in size.items()) or "—"


def _faults_text(faults: Mapping[str, int]) -> str:
    if not faults:
        return "—"
    total = sum(faults.values())
    return f"{total:,}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(faults.items(), key=lambda kv: -kv[1]))


def _rows(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        groups[(line["family"], line["backend"])].append(line)
    order = {name: i for i, name in enumerate(FAMILIES)}
    backends = {"files": 0, "argo": 1, "stepfunctions": 2}
    rows = []
    for (family, backend), items in sorted(
        groups.items(), key=lambda kv: (order.get(kv[0][0], 99), backends.get(kv[0][1], 9), kv[0][1])
    ):
        faults: dict[str, int] = defaultdict(int)
        checked: list[str] = []
        extra: dict[str, Any] = {}
        for item in items:
            for key, value in item["faults"].items():
                faults[key] += value
            for check in item["checked"]:
                if check not in checked:
                    checked.append(check)
            for key, value in item.get("extra", {}).items():
                extra.setdefault(key, []).append(value)
        failed = [i["test"] for i in items if i["outcome"] != "passed"]
        rows.append(
            {
                "family": family,
                "backend": backend,
                "size": _merge_size([i["size"] for i in items]),
                "faults": dict(faults),
                "retries": sum(int(i.get("retries", 0)) for i in items),
                "checked": checked,
                "result": "pass" if not failed else f"**FAIL** ({len(failed)} of {len(items)})",
                "trials": len(items),
                "extra": extra,
                "failed": failed,
            }
        )
    return rows


def _loader_fuzz_row(junit: Path, scale: str) -> dict[str, Any] | None:
    if not junit.exists():
        return None
    tree = ET.parse(junit)
    cases = [
        c
        for c in tree.iter("testcase")
        if "test_fuzz" in c.get("classname", "")
        and "manifest" in c.get("classname", "")
        and "_long" in c.get("name", "")
    ]
    if not cases:
        return None
    failed = [c.get("name") for c in cases if c.find("failure") is not None or c.find("error") is not None]
    examples = (300 if scale == "seed" else 10_000) * len(cases)
    return {
        "family": "fuzzing (loader)",
        "backend": "loader + validator",
        "size": {"examples": examples, "generators": len(cases)},
        "faults": {},
        "retries": 0,
        "checked": ["only ManifestError escapes; the schema's fast check agrees with jsonschema"],
        "result": "pass" if not failed else f"**FAIL** ({len(failed)} of {len(cases)})",
        "trials": len(cases),
        "extra": {},
        "failed": failed,
    }


_TMP = re.compile(r"/tmp/pytest-of-[^/\s]+/[^\s'\"]*/(?=[^/\s'\"]+)")


def _untmp(text: str) -> str:
    """Messages quote pytest's temporary paths: keep the file name only."""
    return _TMP.sub("", text)


def _details(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        extra = row["extra"]
        if not extra:
            continue
        lines = []
        for key, values in extra.items():
            if key == "messages":
                for messages in values:
                    for case, message in sorted(messages.items()):
                        message = _untmp(message)
                        shown = message if len(message) < 300 else message[:297] + "..."
                        lines.append(f"  - *{case}*: `{shown}`")
                continue
            same = all(json.dumps(v, sort_keys=True) == json.dumps(values[0], sort_keys=True) for v in values)
            shown = values[0] if same else values
            text = _untmp(json.dumps(shown, sort_keys=True, ensure_ascii=False))
            if len(text) > 700:
                text = text[:697] + "..."
            lines.append(f"- {key}: `{text}`")
        if lines:
            out.append(f"**{row['family']} — {row['backend']}**\n\n" + "\n".join(lines))
    return "\n\n".join(out)


def render(rows: list[dict[str, Any]], *, scale: str, seconds: float, code: int) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = f"""# Reliability: flowplan attacked on purpose

Generated by `{COMMAND}` (scale `{scale}`; `--scale seed` is what CI reruns) — do not edit by hand.
Last run: {now}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, {seconds / 60:.1f} min, \
pytest exit {code}.

Each row is one family of trials on one backend. *Size* counts what ran (resources per apply, calls through
the proxy, trials, cases, hypothesis examples, seeds). *Faults injected* comes from the counting proxy's
per-type counters (`tests/support/proxy.py`: `RandomFaults`, `fault_types()`), or from the files backend's
injected I/O errors, or counts the SIGKILLs. *Retries* are requests the proxy saw again after it faulted them
(same method, path, query and body). The trials live in `tests/reliability/`; `FLOWPLAN_TRIAL_SCALE=seed`
runs a small seed of each in CI (`.ci/run`), `full` (the default of `pytest -m slow`) the sizes below.

| family | backend | size | faults injected (by type) | retries | checked | result |
|---|---|---|---|---|---|---|
"""
    body = []
    for row in rows:
        checked = "; ".join(row["checked"]) or "—"
        body.append(
            f"| {row['family']} | {row['backend']} | {_size_text(row['size'])} | {_faults_text(row['faults'])} | "
            f"{row['retries']:,} | {checked} | {row['result']} |"
        )
    families = "\n".join(f"- **{name}**: {text}" for name, text in FAMILIES.items())
    failures = [f"- `{t}`" for row in rows for t in row["failed"]]
    bugs = "\n".join(f"| {where} | {what} | {fix} |" for where, what, fix in BUGS)
    failed_text = "\n\n## Failed trials\n\n" + "\n".join(failures) if failures else ""
    return (
        head
        + "\n".join(body)
        + "\n\n## The families\n\n"
        + families
        + f"""

## Knobs the trials use

- `FLOWPLAN_TRIAL_SCALE` — `seed` or `full` (default `full`): the sizes of every family
  (`tests/reliability/harness.py`, `SCALES`).
- `FLOWPLAN_LOCK_TTL` — seconds an apply lock lives without renewal (default 300; renewed every third of
  it). The crash trials run the killed apply with 3 s, so the lock it leaves is reported with its holder
  and then expires.
- `FLOWPLAN_RELIABILITY_RESULTS` — where trials append their JSON lines (set by this script).
- The fault trials shorten the clients' read timeout to 2.5 s (a `timeout` fault holds a call 3 s).
{failed_text}

## Bugs these trials found

Found by these trials and fixed (each pinned by a test in `tests/reliability/test_regressions.py`, or by the
family's own test where named):

| where | what went wrong | fix |
|---|---|---|
{bugs}

## Figures behind the table

{_details(rows)}
"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.report", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=("seed", "full"), default="full")
    parser.add_argument("--out", default=str(REPO / "docs" / "reliability.md"))
    parser.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    parser.add_argument("--results", help="render from an existing results file instead of running the trials")
    parser.add_argument("--save", help="also keep the trials' results (JSON lines) in this file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k crash)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flowplan-reliability-") as scratch:
        junit = Path(scratch) / "junit.xml"
        if args.results:
            results, code, seconds = Path(args.results), 0, 0.0
        else:
            results = Path(scratch) / "results.jsonl"
            results.touch()
            code, seconds = _run_pytest(args.scale, results, junit, args.workers, args.pytest_args)
        lines = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if args.save:
            Path(args.save).write_text(results.read_text())
        rows = _rows(lines)
        loader = _loader_fuzz_row(junit, args.scale)
        if loader is not None:
            position = next((i for i, r in enumerate(rows) if r["family"] == "ownership (property)"), len(rows))
            rows.insert(position, loader)
    Path(args.out).write_text(render(rows, scale=args.scale, seconds=seconds, code=code))
    print(f"wrote {args.out}: {len(rows)} rows from {len(lines)} trials (pytest exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
