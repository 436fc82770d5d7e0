"""The DynamoDB table: a plan never creates it, the inventory shards and swaps atomically, the lock is exclusive.

The race at the end runs two real ``flowplan apply`` processes. A proxy rule
holds each one's lock request until both have sent theirs (a barrier inside
the proxy), so the two conditional puts reach DynamoDB together and the table
decides; each process tags its requests (``AWS_SDK_UA_APP_ID``), so the proxy
can tell who wrote what.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest

from backends.stepfunctions.backend import StepFunctionsBackend
from backends.stepfunctions.state import SHARD_BYTES
from planner.contract import InventoryEntry, InventoryState, LockInfo, Revision, Scope
from planner.errors import ConflictError, LockError
from planner.manifest import load_manifest
from planner.resources import Address
from tests.backends.stepfunctions.helpers import REPO, TINY_RESOURCES, Workspace
from tests.support.aws_fixtures import AwsEnv, _is_write
from tests.support.proxy import ProxyRequest

SCOPE = Scope("aws", "tiny", "prod")


def _backend(tiny: Workspace) -> StepFunctionsBackend:
    manifest = load_manifest(tiny.manifest, var_files=[str(tiny.vars)])
    return StepFunctionsBackend(manifest.backends["aws"], SCOPE, {})


def _info(holder: str, pid: int = 4242, ttl: float = 300.0) -> LockInfo:
    now = time.time()
    return LockInfo(holder, "host-" + holder, pid, "apply", now, now + ttl)


def _tables(aws: AwsEnv) -> list[str]:
    return list(aws.client("dynamodb").list_tables()["TableNames"])


def test_planning_reads_an_empty_inventory_and_creates_no_table(tiny: Workspace, aws: AwsEnv) -> None:
    result = tiny.run("plan", "--detailed-exitcode")
    assert result.code == 2, result.text
    assert {k: v for k, v in aws.proxy.counts().items() if k.startswith("dynamodb:")} == {"dynamodb:Query": 1}
    assert _tables(aws) == []
    assert _backend(tiny).lock(SCOPE).current() is None


def test_the_lock_is_exclusive_names_its_holder_expires_and_can_be_forced(tiny: Workspace, aws: AwsEnv) -> None:
    backend = _backend(tiny)
    lock = backend.lock(SCOPE)
    alice = _info("alice")
    lock.acquire(alice)
    assert _tables(aws) == ["flowplan-state"]
    held = lock.current()
    assert held is not None and (held.holder, held.host, held.pid) == ("alice", "host-alice", 4242)
    with pytest.raises(LockError) as info:
        backend.lock(SCOPE).acquire(_info("bob", pid=7))
    assert "held by alice on host host-alice (pid 4242" in info.value.message
    assert "force-unlock" in (info.value.hint or "")
    # Another project's or branch's lock is its own.
    backend.lock(Scope("aws", "tiny", "staging")).acquire(_info("carol"))

    # alice died long ago: her lock expired, bob takes it over; alice can neither renew nor release it
    aws.client("dynamodb").update_item(
        TableName="flowplan-state",
        Key={"pk": {"S": "aws/tiny/prod"}, "sk": {"S": "lock"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(time.time() - 1)}},
    )
    expired = lock.current()
    assert expired is not None and expired.expired
    bob = _info("bob", pid=7)
    backend.lock(SCOPE).acquire(bob)
    with pytest.raises(LockError, match="taken over"):
        lock.renew(replace(alice, expires_at=time.time() + 300))
    lock.release(alice)
    current = lock.current()
    assert current is not None and current.holder == "bob"
    lock.renew(replace(bob, expires_at=time.time() + 600))
    renewed = lock.current()
    assert renewed is not None and renewed.expires_at > bob.expires_at
    forced = lock.force_unlock()
    assert forced is not None and forced.holder == "bob"
    assert lock.current() is None


def test_a_large_inventory_is_sharded_and_swapped_whole(tiny: Workspace, aws: AwsEnv) -> None:
    inventory = _backend(tiny).inventory(SCOPE)
    assert inventory.load() == InventoryState()
    rng = random.Random(7)
    entries = {
        Address("aws", "JobDefinition", "eu-west-1", f"tiny-prod-flow{i}-{rng.getrandbits(256):064x}"): (
            InventoryEntry(f"{rng.getrandbits(64):016x}", "applied", f"flow{i}")
        )
        for i in range(10000)
    }
    revision = Revision(1, "2026-01-01T00:00:00Z", "ci", None, "d" * 64, "0.1.0", {"create": len(entries)})
    first = inventory.save(InventoryState(entries, [revision]))
    loaded = inventory.load()
    assert loaded.entries == entries and loaded.version == first.version
    items = aws.client("dynamodb").scan(TableName="flowplan-state")["Items"]
    shards = [i for i in items if i["sk"]["S"].startswith("inventory#")]
    assert len(shards) >= 2 and all(len(i["data"]["B"]) <= SHARD_BYTES for i in shards)

    second = inventory.save(loaded.with_entries(dict(list(entries.items())[:10])))
    assert len(inventory.load().entries) == 10
    items = aws.client("dynamodb").scan(TableName="flowplan-state")["Items"]
    assert [i["sk"]["S"] for i in items if i["sk"]["S"].startswith("inventory#")] == [
        f"inventory#{second.version.split(':')[0]}#0000"  # type: ignore[union-attr]
    ]
    with pytest.raises(ConflictError, match="changed by another run"):
        inventory.save(loaded)  # made from the first generation, which is gone


def _writes_by_app(log: list[tuple[str, str]]) -> dict[str, Counter[str]]:
    result: dict[str, Counter[str]] = {}
    for app, key in log:
        result.setdefault(app, Counter())[key] += 1
    return result


def test_two_applies_started_together_one_proceeds_the_other_names_the_holder(tiny: Workspace, aws: AwsEnv) -> None:
    barrier = threading.Barrier(2, timeout=60)
    log: list[tuple[str, str]] = []

    def rule(request: ProxyRequest) -> None:
        agent = request.headers.get("User-Agent", "") or request.headers.get("user-agent", "")
        match = re.search(r"app/(\w+)", agent)
        app = match.group(1) if match else "?"
        if _is_write(request.key):
            log.append((app, request.key))
        if request.key == "dynamodb:PutItem" and b'"lock"' in request.body:
            barrier.wait()
        return None

    aws.proxy.rules.append(rule)
    code = "import sys; from planner.cli import main; sys.exit(main(sys.argv[1:]))"
    procs = {}
    for name in ("alice", "bob"):
        env = dict(os.environ, FLOWPLAN_LOCK_HOLDER=name, AWS_SDK_UA_APP_ID=name, PYTHONPATH=str(REPO))
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", code, "apply", "--auto-approve", *tiny.args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outcome = {name: (*proc.communicate(timeout=120), proc.returncode) for name, proc in procs.items()}
    codes = sorted(code for _, _, code in outcome.values())
    assert codes == [0, 1], outcome
    winner = next(name for name, (_, _, code) in outcome.items() if code == 0)
    loser = next(name for name in procs if name != winner)
    err = outcome[loser][1]
    assert f"held by {winner} on host {socket.gethostname()} (pid {procs[winner].pid}, apply since" in err, err
    assert "Traceback" not in err

    writes = _writes_by_app(log)
    resource_writes = {k: v for k, v in writes.get(loser, Counter()).items() if not k.startswith("dynamodb:")}
    assert resource_writes == {}, f"{loser} wrote {resource_writes}"
    assert writes[winner]["batch:RegisterJobDefinition"] == 2
    jobs = aws.client("batch").describe_job_definitions()["jobDefinitions"]
    assert len(jobs) == 2
    aws.proxy.rules.clear()
    assert tiny.run("plan", "--detailed-exitcode").code == 0
    assert f"{TINY_RESOURCES} created" in outcome[winner][0]


def test_force_unlock_removes_a_dead_holders_lock(tiny: Workspace) -> None:
    lock = _backend(tiny).lock(SCOPE)
    lock.acquire(_info("ghost", pid=99))
    result = tiny.run("force-unlock", "--yes")
    assert result.code == 0, result.text
    assert "locked by ghost on host host-ghost (pid 99" in result.err and "lock removed" in result.err
    assert lock.current() is None
