"""Creating the Redimo table (idempotent): ``pk``/``sk`` binary keys, a local secondary index on
the numeric ``sc`` attribute (sorted-set scores and geo cells), on-demand billing, TTL on ``tx``."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from .gateway import Gateway

SCORE_INDEX = "sc"  # the numeric attribute
SCORE_INDEX_NAME = "by-score"
TTL_ATTRIBUTE = "tx"


def create_table(gateway: Gateway, *, read_capacity: int | None = None, write_capacity: int | None = None,
                 ttl: bool = True, wait: bool = True) -> bool:
    """Create the table unless it exists, then make sure TTL is on. Returns True if it was created.
    Billing is on-demand unless both capacities are given (provisioned)."""
    if (read_capacity is None) != (write_capacity is None):
        raise ValueError("give both read_capacity and write_capacity (provisioned), or neither (on-demand)")
    client, name = gateway.client, gateway.table
    params: dict = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "B"},
                                 {"AttributeName": "sk", "AttributeType": "B"},
                                 {"AttributeName": SCORE_INDEX, "AttributeType": "N"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "LocalSecondaryIndexes": [{
            "IndexName": SCORE_INDEX_NAME,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": SCORE_INDEX, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["g", "mb"]},
        }],
    }
    if read_capacity is not None and write_capacity is not None:
        params["ProvisionedThroughput"] = {"ReadCapacityUnits": read_capacity, "WriteCapacityUnits": write_capacity}
    else:
        params["BillingMode"] = "PAY_PER_REQUEST"
    created = True
    try:
        client.create_table(**params)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
        created = False
    if wait or ttl:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    if ttl:
        enable_ttl(gateway)
    return created


def enable_ttl(gateway: Gateway) -> None:
    client, name = gateway.client, gateway.table
    status = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    for attempt in range(30):
        try:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": TTL_ATTRIBUTE})
            return
        except ClientError as error:  # a table still being created refuses TTL changes for a moment
            if error.response["Error"]["Code"] not in ("ResourceInUseException", "LimitExceededException"):
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))
