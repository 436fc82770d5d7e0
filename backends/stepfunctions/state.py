"""The inventory and the apply lock in one DynamoDB table flowplan creates on its first apply.

Table (``inventory_table``, default ``flowplan-state``): on-demand billing, key
``pk`` (string, ``<backend>/<project>/<branch>``) and ``sk`` (string), TTL
attribute ``ttl``. Items per scope:

- ``sk = "lock"``: holder, host, pid, operation, ``acquired_at`` and
  ``expires_at`` (epoch seconds), ``ttl`` (DynamoDB's own cleanup, a day later).
  Taken with one conditional put (*absent or expired*), so an expired lock is
  taken over atomically; renewed and released only by its holder (conditions
  on host, pid and acquisition time); ``force-unlock`` deletes it.
- ``sk = "inventory"``: the head, naming the current generation and its shard
  count; ``sk = "inventory#<generation>#<nnnn>"``: the inventory JSON,
  zlib-compressed, in shards of at most 300 KB (an item may hold 400 KB).
  A save is one ``TransactWriteItems``: the new generation's shards, the head
  (on the condition that it still names the generation that was loaded:
  optimistic concurrency) and the deletion of the old shards, all or nothing.
  An inventory too large for one transaction (past ~3.5 MB compressed) is
  written in steps: shards, then the head, then old shards; a crash in
  between leaves only unreferenced shards, never a head naming a partial
  generation. The version of a loaded inventory is ``<generation>:<shards>``.

Planning only reads: ``load`` is one ``Query`` and a missing table is an empty
inventory. Only ``save`` and ``acquire`` create the table.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

from backends.stepfunctions.aws import Aws, AwsError
from planner.contract import InventoryState, LockInfo, Scope, lock_held
from planner.errors import BackendError, ConflictError, LockError

__all__ = ["DynamoInventory", "DynamoLock", "StateTable"]

SHARD_BYTES = 300_000
#: DynamoDB transactions: at most 100 actions and 4 MB.
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 3_500_000
_MISSING_TABLE = "ResourceNotFoundException"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class StateTable:
    """The table itself: found or created (only by writes), shared by the inventory and the lock."""

    def __init__(self, aws: Aws, name: str) -> None:
        self.aws = aws
        self.name = name
        self._ready = False

    def key(self, scope: Scope, sort: str) -> dict[str, Any]:
        return {"pk": {"S": f"{scope.backend}/{scope.project}/{scope.branch}"}, "sk": {"S": sort}}

    def ensure(self) -> None:
        """Create the table if it is missing (on-demand, TTL on ``ttl``) and wait until it is active."""
        if self._ready:
            return
        try:
            self.aws.call("dynamodb", "DescribeTable", TableName=self.name, resource=self.name)
        except AwsError as exc:
            if exc.code != _MISSING_TABLE:
                raise
            self._create()
        self._ready = True

    def _create(self) -> None:
        try:
            self.aws.call(
                "dynamodb",
                "CreateTable",
                once=True,
                resource=self.name,
                TableName=self.name,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": "app.kubernetes.io/managed-by", "Value": "flowplan"}],
            )
        except AwsError as exc:
            if exc.code != "ResourceInUseException" and not exc.ambiguous:
                raise  # another run creating it at the same time is fine; so is a lost answer
        self._wait_active()
        try:
            self.aws.call(
                "dynamodb",
                "UpdateTimeToLive",
                TableName=self.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
        except AwsError as exc:
            if "already enabled" not in str(exc).lower() and exc.code != "ValidationException":
                raise

    def _wait_active(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            try:
                table = self.aws.call("dynamodb", "DescribeTable", TableName=self.name)["Table"]
                if table.get("TableStatus") == "ACTIVE":
                    return
            except AwsError as exc:
                if exc.code != _MISSING_TABLE:
                    raise
            if time.monotonic() > deadline:
                raise BackendError(f"the DynamoDB table {self.name} did not become active in {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class DynamoInventory:
    """The :class:`~planner.contract.Inventory` of one project and branch on a Step Functions backend."""

    def __init__(self, table: StateTable, scope: Scope) -> None:
        self.table = table
        self.scope = scope

    def _items(self) -> list[Mapping[str, Any]] | None:
        """Every inventory item of the scope (one Query, paged); None when the table does not exist."""
        pk = self.table.key(self.scope, "")["pk"]
        items: list[Mapping[str, Any]] = []
        try:
            for page in self.table.aws.pages(
                "dynamodb",
                "Query",
                resource=self.table.name,
                TableName=self.table.name,
                ConsistentRead=True,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :inventory)",
                ExpressionAttributeValues={":pk": pk, ":inventory": {"S": "inventory"}},
            ):
                items += page.get("Items", [])
        except AwsError as exc:
            if exc.code == _MISSING_TABLE:
                return None
            raise
        return items

    def load(self) -> InventoryState:
        items = self._items()
        if not items:
            return InventoryState()
        head = next((i for i in items if i["sk"]["S"] == "inventory"), None)
        if head is None:
            return InventoryState()
        generation = head["generation"]["S"]
        count = int(head["shards"]["N"])
        shards = {i["sk"]["S"]: i["data"]["B"] for i in items if i["sk"]["S"].startswith(f"inventory#{generation}#")}
        try:
            data = b"".join(shards[_shard_key(generation, n)] for n in range(count))
            state = json.loads(zlib.decompress(data))
        except (KeyError, ValueError, zlib.error) as exc:
            raise BackendError(
                f"the inventory of {self.scope.project}/{self.scope.branch} in DynamoDB table {self.table.name} "
                f"is damaged ({type(exc).__name__}: {exc})",
                hint="restore the table from a backup (point-in-time recovery); flowplan will not guess what it owns",
            ) from None
        return InventoryState.from_json(state, f"{generation}:{count}")

    def save(self, state: InventoryState) -> InventoryState:
        """Write a new generation and swap the head to it in one transaction (conditional on the old head)."""
        self.table.ensure()
        data = zlib.compress(json.dumps(state.to_json(), sort_keys=True, separators=(",", ":")).encode(), 9)
        generation = uuid.uuid4().hex[:16]
        chunks = [data[i : i + SHARD_BYTES] for i in range(0, len(data), SHARD_BYTES)] or [b""]
        previous = _parse_version(state.version)
        head: dict[str, Any] = {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    **self.table.key(self.scope, "inventory"),
                    "generation": {"S": generation},
                    "shards": {"N": str(len(chunks))},
                    "saved_at": {"N": str(int(time.time()))},
                },
            }
        }
        if previous is None:
            head["Put"]["ConditionExpression"] = "attribute_not_exists(generation)"
        else:
            head["Put"]["ConditionExpression"] = "generation = :previous"
            head["Put"]["ExpressionAttributeValues"] = {":previous": {"S": previous[0]}}
        puts = [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {**self.table.key(self.scope, _shard_key(generation, i)), "data": {"B": chunk}},
                }
            }
            for i, chunk in enumerate(chunks)
        ]
        stale = [] if previous is None else [_shard_key(previous[0], i) for i in range(previous[1])]
        deletes = [{"Delete": {"TableName": self.table.name, "Key": self.table.key(self.scope, k)}} for k in stale]
        actions = [*puts, head, *deletes]
        if len(actions) <= MAX_TRANSACTION_ITEMS and len(data) <= MAX_TRANSACTION_BYTES:
            self._transaction(actions, generation)
        else:
            self._in_steps(puts, head, deletes, generation)
        return InventoryState(state.entries, state.revisions, f"{generation}:{len(chunks)}")

    def _conflict(self) -> ConflictError:
        return ConflictError(
            f"the inventory of {self.scope.project}/{self.scope.branch} was changed by another run",
            hint="another flowplan apply ran without the lock; run flowplan plan again",
        )

    def _transaction(self, actions: list[dict[str, Any]], generation: str) -> None:
        try:
            self.table.aws.call(
                "dynamodb",
                "TransactWriteItems",
                resource=self.table.name,
                TransactItems=actions,
                ClientRequestToken=generation,
            )
        except AwsError as exc:
            if exc.code not in ("TransactionCanceledException", _CONDITION_FAILED):
                raise
            if self._current_generation() != generation:  # not a retry of our own transaction that landed
                raise self._conflict() from None

    def _in_steps(
        self, puts: list[dict[str, Any]], head: dict[str, Any], deletes: list[dict[str, Any]], generation: str
    ) -> None:
        """For inventories past one transaction: shards first, then the head (conditional), then old shards."""
        aws = self.table.aws
        for put in puts:
            aws.call("dynamodb", "PutItem", resource=self.table.name, **put["Put"])
        try:
            aws.call("dynamodb", "PutItem", resource=self.table.name, **head["Put"])
        except AwsError as exc:
            if exc.code != _CONDITION_FAILED or self._current_generation() != generation:
                if exc.code == _CONDITION_FAILED:
                    raise self._conflict() from None
                raise
        for delete in deletes:
            try:
                aws.call("dynamodb", "DeleteItem", **delete["Delete"])
            except AwsError:
                return  # leftovers of an old generation are never read; the next save may remove them

    def _current_generation(self) -> str | None:
        answer = self.table.aws.call(
            "dynamodb",
            "GetItem",
            TableName=self.table.name,
            Key=self.table.key(self.scope, "inventory"),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return str(item["generation"]["S"]) if item and "generation" in item else None


def _parse_version(version: str | None) -> tuple[str, int] | None:
    """``"<generation>:<shards>"`` (what :meth:`DynamoInventory.load` and ``save`` return)."""
    if not version:
        return None
    generation, _, shards = version.partition(":")
    return generation, int(shards or 0)


def _shard_key(generation: str, index: int) -> str:
    return f"inventory#{generation}#{index:04d}"


class DynamoLock:
    """The :class:`~planner.contract.Lock` of one project and branch on a Step Functions backend."""

    #: DynamoDB deletes expired locks by itself this long after they expire (flowplan does not rely on it).
    TTL_GRACE = 86400

    def __init__(self, table: StateTable, scope: Scope, where: str) -> None:
        self.table = table
        self.scope = scope
        self.where = where

    def _item(self, info: LockInfo) -> dict[str, Any]:
        return {
            **self.table.key(self.scope, "lock"),
            "holder": {"S": info.holder},
            "host": {"S": info.host},
            "pid": {"N": str(info.pid)},
            "operation": {"S": info.operation},
            "acquired_at": {"N": repr(info.acquired_at)},
            "expires_at": {"N": repr(info.expires_at)},
            "ttl": {"N": str(int(info.expires_at) + self.TTL_GRACE)},
        }

    def current(self) -> LockInfo | None:
        try:
            answer = self.table.aws.call(
                "dynamodb",
                "GetItem",
                resource=self.table.name,
                TableName=self.table.name,
                Key=self.table.key(self.scope, "lock"),
                ConsistentRead=True,
            )
        except AwsError as exc:
            if exc.code == _MISSING_TABLE:
                return None
            raise
        item = answer.get("Item")
        if not item:
            return None
        return LockInfo(
            holder=item.get("holder", {}).get("S", "?"),
            host=item.get("host", {}).get("S", "?"),
            pid=int(item.get("pid", {}).get("N", "0")),
            operation=item.get("operation", {}).get("S", "apply"),
            acquired_at=float(item.get("acquired_at", {}).get("N", "0")),
            expires_at=float(item.get("expires_at", {}).get("N", "0")),
        )

    def _mine(self, found: LockInfo | None, info: LockInfo) -> bool:
        return found is not None and (found.host, found.pid, found.acquired_at) == (
            info.host,
            info.pid,
            info.acquired_at,
        )

    def acquire(self, info: LockInfo) -> None:
        self.table.ensure()
        try:
            self.table.aws.call(
                "dynamodb",
                "PutItem",
                resource=self.table.name,
                TableName=self.table.name,
                Item=self._item(info),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": repr(time.time())}},
            )
        except AwsError as exc:
            if exc.code != _CONDITION_FAILED:
                raise
            holder = self.current()
            if self._mine(holder, info):
                return  # a retried put after ours landed
            if holder is None:
                raise LockError(f"could not take the lock for {self.where}", hint="try again") from None
            raise lock_held(holder, self.where) from None

    def _ours_condition(self, info: LockInfo) -> dict[str, Any]:
        return {
            "ConditionExpression": "host = :host AND pid = :pid AND acquired_at = :acquired",
            "ExpressionAttributeValues": {
                ":host": {"S": info.host},
                ":pid": {"N": str(info.pid)},
                ":acquired": {"N": repr(info.acquired_at)},
            },
        }

    def renew(self, info: LockInfo) -> None:
        condition = self._ours_condition(info)
        values = dict(condition["ExpressionAttributeValues"])
        values[":expires"] = {"N": repr(info.expires_at)}
        values[":ttl"] = {"N": str(int(info.expires_at) + self.TTL_GRACE)}
        try:
            self.table.aws.call(
                "dynamodb",
                "UpdateItem",
                TableName=self.table.name,
                Key=self.table.key(self.scope, "lock"),
                UpdateExpression="SET expires_at = :expires, #ttl = :ttl",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ConditionExpression=condition["ConditionExpression"],
                ExpressionAttributeValues=values,
            )
        except AwsError as exc:
            if exc.code != _CONDITION_FAILED:
                raise
            raise LockError(f"the lock for {self.where} was taken over while this apply ran") from None

    def release(self, info: LockInfo) -> None:
        try:
            self.table.aws.call(
                "dynamodb",
                "DeleteItem",
                TableName=self.table.name,
                Key=self.table.key(self.scope, "lock"),
                **self._ours_condition(info),
            )
        except AwsError as exc:
            if exc.code not in (_CONDITION_FAILED, _MISSING_TABLE):
                raise

    def force_unlock(self) -> LockInfo | None:
        holder = self.current()
        if holder is None:
            return None
        self.table.aws.call("dynamodb", "DeleteItem", TableName=self.table.name, Key=self.table.key(self.scope, "lock"))
        return holder
