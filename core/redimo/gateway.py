"""The one module that talks to DynamoDB.

Every DynamoDB request Redimo makes goes through :class:`Gateway`. It

* retries throttling and transient errors with backoff: in the ``standard`` retry mode (the default)
  by its own rule, without botocore's retry quota, which stops retrying after a burst of errors even
  though a throttled request did nothing (``adaptive`` and ``legacy`` leave it to botocore);
* retries ``UnprocessedKeys`` / ``UnprocessedItems`` of batch calls until they are done;
* splits bulk calls into DynamoDB's limits (100 keys a BatchGetItem, 25 items a BatchWriteItem);
* turns "cannot reach the endpoint" into redis-py's ``ConnectionError``, naming the endpoint;
* counts requests and the read/write capacity DynamoDB reports as consumed.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .transport import LeanTransport

Item = dict[str, dict[str, Any]]  # a DynamoDB item in the low-level attribute-value format

ONCE_ATTEMPTS = 8  # attempts of an exactly-once write (the gateway retries those, not botocore)
THROTTLED = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                       "LimitExceededException"})  # refused before anything was done
UNSURE = frozenset({"InternalServerError", "ServiceUnavailable"})  # may have been applied
TRANSIENT = (BotocoreConnectionError, ConnectionClosedError, ReadTimeoutError)  # worth another attempt
_single_shot = threading.local()  # set while an exactly-once write is sent: botocore must not retry it

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
TRANSACTION_LIMIT = 100
RETRIES = 8  # attempts of a PartiQL statement refused by throttling or an internal error
RETRIED_STATEMENT_ERRORS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded",
                                      "InternalServerError", "TransactionConflict"})
READ_OPERATIONS = frozenset({"get_item", "batch_get_item", "query", "scan", "transact_get_items"})


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the item as it stood (None if absent)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


class TransactionConditionFailed(Exception):
    """A TransactWriteItems was cancelled because one of its conditions failed.

    ``items[i]`` is the current item of action ``i`` when that action's condition failed, else None.
    """

    def __init__(self, failed: list[bool], items: list[Item | None]) -> None:
        super().__init__("transaction condition failed")
        self.failed = failed
        self.items = items


@dataclass
class Usage:
    """What the gateway has spent: requests by operation and consumed capacity units."""

    requests: Counter = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def snapshot(self) -> "Usage":
        return Usage(Counter(self.requests), self.read_units, self.write_units)

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(self.requests - other.requests, self.read_units - other.read_units,
                     self.write_units - other.write_units)


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    retry_mode: str = "standard",
    max_attempts: int = 5,
    connect_timeout: float = 2.0,
    read_timeout: float = 10.0,
    max_pool_connections: int = 50,
    connect_attempts: int = 2,
    lean: bool = True,
    **session_options: Any,
):
    """A boto3 DynamoDB client; unset options come from boto3's own configuration
    (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_REGION``, the credentials chain).

    ``max_attempts``: retries after the first attempt, for throttling and transient errors (5xx,
    connections closed or timed out), with exponential backoff and full jitter; in the ``standard``
    mode each request gets all of them (botocore's retry quota, which gives up on every request after
    a burst of errors, is not used). Failing to *connect* at all is given up after
    ``connect_attempts`` attempts, so an unreachable endpoint fails within about
    ``connect_attempts * connect_timeout`` seconds instead of ``(max_attempts + 1) * connect_timeout``.
    ``lean=False``: gateways send this client's requests through boto3, never the lean transport."""
    config = Config(
        retries={"mode": retry_mode, "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )
    session = boto3.session.Session(**session_options)
    region_name = region_name or session.region_name or os.environ.get("AWS_REGION")  # botocore reads AWS_DEFAULT_REGION
    client = session.client("dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=config)
    client.redimo_retries = RetryRule(retry_mode, max_attempts, connect_attempts)  # the lean transport's too
    client.redimo_lean = lean
    client.meta.events.register_first("needs-retry.dynamodb", client.redimo_retries, unique_id="redimo-retries")
    return client


@dataclass(frozen=True)
class RetryRule:
    """The gateway's retry decision, for botocore (as a ``needs-retry`` handler) and the lean transport."""

    mode: str
    max_attempts: int
    connect_attempts: int

    def delay(self, attempts: int, code: str | None, status: int, exception: Exception | None) -> float | bool | None:
        """Seconds to wait before the next attempt, False for none, None when this rule does not decide."""
        if getattr(_single_shot, "on", False) or (
                isinstance(exception, BotocoreConnectionError) and attempts >= self.connect_attempts):
            return False  # an exactly-once write (the gateway retries it), or an unreachable endpoint
        if self.mode != "standard":
            return None
        if attempts > self.max_attempts:
            return False
        if code in THROTTLED:
            return random.random() * min(20.0, 0.05 * 2**attempts)
        if status >= 500 or isinstance(exception, TRANSIENT):
            return random.random() * min(20.0, 0.025 * 2**attempts)
        return None  # not retryable here; botocore's handler may know better (a bad checksum, ...)

    def __call__(self, attempts: int, response: Any = None, caught_exception: Exception | None = None,
                 **_: Any) -> float | bool | None:
        """botocore's needs-retry event; None leaves the decision to botocore's own handler."""
        code = response[1].get("Error", {}).get("Code") if response is not None else None
        status = response[0].status_code if response is not None else 0
        return self.delay(attempts, code, status, caught_exception)


def _no_retry_for_single_shots(**_: Any) -> bool | None:
    """botocore's retry decision: none while an exactly-once write is sent (the gateway retries it)."""
    return False if getattr(_single_shot, "on", False) else None


class Gateway:
    """DynamoDB access for one table."""

    nested_paths = True  # expressions may name map entries (``m.#member``); a MULTI's staging may not

    def __init__(self, table: str, client: Any = None, consistent_reads: bool = True, lean: bool = True,
                 **client_options: Any) -> None:
        self.table = table
        self.client = client if client is not None else make_client(lean=lean, **client_options)
        lean = lean and os.environ.get("REDIMO_LEAN", "1") != "0"
        self.transport = LeanTransport.for_client(self.client) if lean else None  # None: boto3 sends it all
        self.consistent_reads = consistent_reads
        self.partiql = True  # False once the store is found to take no PartiQL parameters (moto)
        self.usage = Usage()
        self._lock = threading.Lock()
        events = getattr(self.client.meta, "events", None)  # a stand-in client has no botocore retries to stop
        if events is not None:
            events.register_first("needs-retry.dynamodb", _no_retry_for_single_shots, unique_id="redimo-single-shots")

    @property
    def endpoint(self) -> str:
        return self.client.meta.endpoint_url

    # -- plumbing ---------------------------------------------------------------------------
    def _record(self, operation: str, consumed: Any) -> None:
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        with self._lock:
            self.usage.requests[operation] += 1
            for entry in entries:
                if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
                    self.usage.read_units += entry.get("ReadCapacityUnits", 0.0)
                    self.usage.write_units += entry.get("WriteCapacityUnits", 0.0)
                elif operation in READ_OPERATIONS:
                    self.usage.read_units += entry.get("CapacityUnits", 0.0)
                else:
                    self.usage.write_units += entry.get("CapacityUnits", 0.0)

    def call(self, operation: str, **params: Any) -> dict:
        """One DynamoDB request, through the lean transport when it serves the call, else boto3 (either
        retries throttling and transient errors inside it)."""
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
        try:
            if self.transport is not None and self.transport.serves(operation):
                response = self.transport.call(operation, params)
            else:
                response = getattr(self.client, operation)(**params)
        except ClientError as error:
            self._record(operation, error.response.get("ConsumedCapacity"))
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise ResponseError(f"DynamoDB table {self.table} does not exist at {self.endpoint}: "
                                    f"create it with `redimo create-table {self.table}`") from error
            raise
        except (BotocoreConnectionError, ConnectionClosedError) as error:
            raise RedisConnectionError(f"Error connecting to DynamoDB at {self.endpoint}: {error}") from error
        except ReadTimeoutError as error:
            raise RedisTimeoutError(f"Timeout reading from DynamoDB at {self.endpoint}: {error}") from error
        self._record(operation, response.get("ConsumedCapacity"))
        return response

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())

    # -- single items -----------------------------------------------------------------------
    def get(self, key: Item, projection: str | None = None, names: dict | None = None) -> Item | None:
        params: dict[str, Any] = {"TableName": self.table, "Key": key, "ConsistentRead": self.consistent_reads}
        if projection:
            params["ProjectionExpression"] = projection
        if names:
            params["ExpressionAttributeNames"] = names
        return self.call("get_item", **params).get("Item")

    def _conditional(self, operation: str, params: dict) -> dict:
        params["TableName"] = self.table
        if "ConditionExpression" in params:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        for name in ("ExpressionAttributeValues", "ExpressionAttributeNames"):
            if name in params and not params[name]:
                del params[name]
        try:
            return self.call(operation, **params)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed(error.response.get("Item")) from None
            raise

    def _once(self, operation: str, params: dict) -> dict:
        """An exactly-once write (its condition refuses an item that holds its operation record,
        see oplog.py): sent without botocore's retries, then retried here, at once when the last
        attempt may have been applied (a lost reply, a 500) and with backoff when throttled. Raises
        redis-py's ConnectionError, saying the outcome is unknown, when no attempt got an answer."""
        unsure: Exception | None = None
        for attempt in range(ONCE_ATTEMPTS):
            _single_shot.on = True
            try:
                return self._conditional(operation, dict(params))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code not in THROTTLED | UNSURE:
                    raise
                if code in UNSURE:
                    unsure = error
                last: Exception = error
                self._backoff(attempt if code in THROTTLED else 0)
            except (RedisConnectionError, RedisTimeoutError) as error:
                if not isinstance(error.__cause__, EndpointConnectionError):  # it may have arrived
                    unsure = error
                last = error
                self._backoff(0)
            finally:
                _single_shot.on = False
        if unsure is not None:
            raise RedisConnectionError(f"No reply from DynamoDB at {self.endpoint} after {ONCE_ATTEMPTS} attempts "
                                       f"of a write: it may or may not have been applied ({last})") from last
        raise last

    def put(self, item: Item, condition: str | None = None, values: dict | None = None,
            names: dict | None = None, return_old: bool = False, once: bool = False) -> Item | None:
        """PutItem; returns the replaced item when ``return_old``. Raises ConditionFailed. ``once``:
        an exactly-once write (see ``_once``)."""
        params: dict[str, Any] = {"Item": item}
        if condition:
            params.update(ConditionExpression=condition, ExpressionAttributeValues=values or {},
                          ExpressionAttributeNames=names or {})
        if return_old:
            params["ReturnValues"] = "ALL_OLD"
        response = self._once("put_item", params) if once else self._conditional("put_item", params)
        return response.get("Attributes")

    def update(self, key: Item, expression: str, values: dict | None = None, names: dict | None = None,
               condition: str | None = None, returns: str = "NONE", once: bool = False) -> Item | None:
        """UpdateItem; ``returns`` is DynamoDB's ReturnValues. Raises ConditionFailed. ``once``: an
        exactly-once write (see ``_once``)."""
        params: dict[str, Any] = {"Key": key, "UpdateExpression": expression, "ReturnValues": returns,
                                  "ExpressionAttributeValues": values or {},
                                  "ExpressionAttributeNames": names or {}}
        if condition:
            params["ConditionExpression"] = condition
        response = self._once("update_item", params) if once else self._conditional("update_item", params)
        return response.get("Attributes")

    def delete(self, key: Item, condition: str | None = None, values: dict | None = None,
               names: dict | None = None, return_old: bool = True) -> Item | None:
        """DeleteItem; returns the deleted item. Raises ConditionFailed."""
        params: dict[str, Any] = {"Key": key, "ReturnValues": "ALL_OLD" if return_old else "NONE"}
        if condition:
            params.update(ConditionExpression=condition, ExpressionAttributeValues=values or {},
                          ExpressionAttributeNames=names or {})
        return self._conditional("delete_item", params).get("Attributes")

    # -- bulk -------------------------------------------------------------------------------
    def batch_get(self, keys: list[Item], projection: str | None = None,
                  names: dict | None = None) -> list[Item]:
        """All existing items among ``keys`` (which must be distinct), 100 keys a request."""
        found: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {"Keys": keys[start:start + BATCH_GET_LIMIT],
                                       "ConsistentRead": self.consistent_reads}
            if projection:
                request["ProjectionExpression"] = projection
            if names:
                request["ExpressionAttributeNames"] = names
            pending = {self.table: request}
            attempt = 0
            while pending:
                response = self.call("batch_get_item", RequestItems=pending)
                found.extend(response["Responses"].get(self.table, []))
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    self._backoff(attempt)
                    attempt += 1
        return found

    def batch_write(self, puts: list[Item] = (), deletes: list[Item] = ()) -> None:
        """Put and delete items, 25 to a request, retrying unprocessed items until done.
        Keys must be distinct across ``puts`` and ``deletes``."""
        requests = [{"PutRequest": {"Item": item}} for item in puts]
        requests += [{"DeleteRequest": {"Key": key}} for key in deletes]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = {self.table: requests[start:start + BATCH_WRITE_LIMIT]}
            attempt = 0
            while pending:
                response = self.call("batch_write_item", RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if pending:
                    self._backoff(attempt)
                    attempt += 1

    def batch_execute(self, statements: list[dict]) -> list[dict]:
        """PartiQL statements (``{"Statement": ..., "Parameters": [...]}``), 25 to a BatchExecuteStatement,
        each conditional on its own WHERE clause; one response a statement (``{"Error": {"Code": ...}}``
        when refused). Statements refused by throttling or an internal error are sent again with
        backoff, up to RETRIES times. DynamoDB Local runs them; moto's PartiQL does not (its DELETE
        parser takes no ``?`` parameters)."""
        responses: list[dict] = [{} for _ in statements]
        for start in range(0, len(statements), BATCH_WRITE_LIMIT):
            pending = list(range(start, min(start + BATCH_WRITE_LIMIT, len(statements))))
            for attempt in range(RETRIES):
                answer = self.call("batch_execute_statement", Statements=[statements[index] for index in pending])
                retry = []
                for index, response in zip(pending, answer["Responses"]):
                    responses[index] = response
                    if response.get("Error", {}).get("Code") in RETRIED_STATEMENT_ERRORS:
                        retry.append(index)
                if not retry:
                    break
                pending = retry
                self._backoff(attempt)
        return responses

    def delete_statement(self, condition: str = "", returning: bool = False) -> str:
        """A PartiQL DELETE of one item of the table, its key as the first two parameters (pk, sk);
        ``condition`` (`` AND …``) adds to the WHERE clause."""
        table = self.table.replace('"', '""')
        return f'DELETE FROM "{table}" WHERE pk = ? AND sk = ?{condition}' + (" RETURNING ALL OLD *" if returning else "")

    def delete_many(self, keys: list[Item]) -> list[Item]:
        """Delete items (distinct keys), returning those that existed, as they were: a PartiQL
        ``DELETE … RETURNING ALL OLD *`` a key, 25 to a BatchExecuteStatement. A store whose PartiQL
        takes no parameters (moto 5) gets ceil(n/100) BatchGetItem, then ceil(found/25) BatchWriteItem.
        Not exactly-once: a statement sent again after a lost reply does not return what the lost
        attempt deleted."""
        if self.partiql:
            statement = self.delete_statement(returning=True)
            try:
                responses = self.batch_execute([{"Statement": statement, "Parameters": [key["pk"], key["sk"]]}
                                                for key in keys])
            except (AssertionError, NotImplementedError):  # moto's PartiQL parser, before anything is sent
                self.partiql = False
            else:
                refused = [response["Error"] for response in responses if "Error" in response]
                if refused:
                    raise ResponseError(f"DynamoDB refused {len(refused)} of {len(keys)} deletes: "
                                        f"{refused[0].get('Code')}: {refused[0].get('Message')}")
                return [response["Item"] for response in responses if "Item" in response]
        found = self.batch_get(keys)
        self.batch_write(deletes=[{"pk": item["pk"], "sk": item["sk"]} for item in found])
        return found

    def describe(self) -> dict:
        """The table's description (DescribeTable): item count and size, approximate, every 6 hours."""
        return self.client.describe_table(TableName=self.table)["Table"]

    def transact_write(self, actions: list[dict]) -> None:
        """One TransactWriteItems (at most 100 actions). Each action is ``{"Put": {...}}``,
        ``{"Update": ...}``, ``{"Delete": ...}`` or ``{"ConditionCheck": ...}`` without TableName.
        Raises TransactionConditionFailed when a condition fails; retries transaction conflicts."""
        if len(actions) > TRANSACTION_LIMIT:
            raise ValueError(f"a transaction takes at most {TRANSACTION_LIMIT} actions")
        items = []
        for action in actions:
            (kind, body), = action.items()
            body = {**body, "TableName": self.table}
            if "ConditionExpression" in body:
                body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            for name in ("ExpressionAttributeValues", "ExpressionAttributeNames"):
                if name in body and not body[name]:
                    del body[name]
            items.append({kind: body})
        token = uuid.uuid4().hex
        for attempt in range(8):
            try:
                self.call("transact_write_items", TransactItems=items, ClientRequestToken=token)
                return
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons") or []
                codes = [reason.get("Code") for reason in reasons]
                if "ConditionalCheckFailed" in codes:
                    raise TransactionConditionFailed(
                        [code == "ConditionalCheckFailed" for code in codes],
                        [reason.get("Item") for reason in reasons]) from None
                if "TransactionConflict" not in codes or attempt == 7:
                    raise
                token = uuid.uuid4().hex
                self._backoff(attempt)

    def query(self, key_condition: str, values: dict, names: dict | None = None, *,
              projection: str | None = None, limit: int | None = None, forward: bool = True,
              start: Item | None = None, index: str | None = None,
              filter_expression: str | None = None) -> Iterator[Item]:
        """Items matching a key condition and the filter, following pages until ``limit`` items were
        returned (each page asks for the number still missing; DynamoDB applies it before the filter)."""
        params: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": key_condition,
                                  "ExpressionAttributeValues": values, "ScanIndexForward": forward}
        if index:
            params["IndexName"] = index  # a local secondary index: strongly consistent reads work too
        params["ConsistentRead"] = self.consistent_reads
        if names:
            params["ExpressionAttributeNames"] = names
        if projection:
            params["ProjectionExpression"] = projection
        if filter_expression:
            params["FilterExpression"] = filter_expression
        if start:
            params["ExclusiveStartKey"] = start
        remaining = limit
        while True:
            if remaining is not None:
                params["Limit"] = remaining
            page = self.call("query", **params)
            yield from page.get("Items", [])
            if remaining is not None:
                remaining -= page.get("Count", 0)
                if remaining <= 0:
                    return
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count(self, key_condition: str, values: dict, *, index: str | None = None,
              filter_expression: str | None = None) -> int:
        """How many items match (a ``Select=COUNT`` Query, page after page: RCU as for reading them)."""
        params: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": key_condition,
                                  "ExpressionAttributeValues": values, "Select": "COUNT",
                                  "ConsistentRead": self.consistent_reads}
        if index:
            params["IndexName"] = index
        if filter_expression:
            params["FilterExpression"] = filter_expression
        total = 0
        while True:
            page = self.call("query", **params)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan_page(self, *, filter_expression: str | None = None, values: dict | None = None,
                  names: dict | None = None, projection: str | None = None, limit: int | None = None,
                  start: Item | None = None, segment: tuple[int, int] | None = None,
                  consistent: bool | None = None) -> tuple[list[Item], Item | None]:
        """One Scan page (of ``segment`` = (index, count) of a parallel Scan; ``consistent`` overrides
        the gateway's read consistency): (items, last evaluated key or None at the end)."""
        params: dict[str, Any] = {"TableName": self.table,
                                  "ConsistentRead": self.consistent_reads if consistent is None else consistent}
        if segment:
            params["Segment"], params["TotalSegments"] = segment
        if filter_expression:
            params["FilterExpression"] = filter_expression
        if values:
            params["ExpressionAttributeValues"] = values
        if names:
            params["ExpressionAttributeNames"] = names
        if projection:
            params["ProjectionExpression"] = projection
        if limit:
            params["Limit"] = limit
        if start:
            params["ExclusiveStartKey"] = start
        page = self.call("scan", **params)
        return page.get("Items", []), page.get("LastEvaluatedKey")

    def scan(self, **options: Any) -> Iterator[Item]:
        """Every item a filtered Scan returns, page after page."""
        start = None
        while True:
            items, start = self.scan_page(start=start, **options)
            yield from items
            if start is None:
                return
