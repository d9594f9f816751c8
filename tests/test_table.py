"""Creating the table: idempotence, the score index, TTL, billing, and the ``redimo`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from redimo import Redimo
from redimo.cli import main
from redimo.gateway import Gateway
from redimo.table import SCORE_INDEX_NAME, TTL_ATTRIBUTE, create_table

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def name(store: Any) -> str:
    return f"redimo-table-{uuid.uuid4().hex}"


@pytest.fixture
def gateway(store: Any, name: str) -> Gateway:
    return Gateway(name, store.client)


def describe(store: Any, name: str) -> dict:
    return store.client.describe_table(TableName=name)["Table"]


def ttl_status(store: Any, name: str) -> dict:
    return store.client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]


def test_create_table_is_idempotent(store: Any, gateway: Gateway, name: str) -> None:
    assert create_table(gateway) is True
    assert create_table(gateway) is False
    assert describe(store, name)["TableStatus"] == "ACTIVE"
    assert name in store.client.list_tables()["TableNames"]


def test_schema_index_ttl_and_on_demand_billing(store: Any, gateway: Gateway, name: str) -> None:
    create_table(gateway)
    table = describe(store, name)
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "B"), ("sk", "B"), ("sc", "N")}
    (index,) = table["LocalSecondaryIndexes"]
    assert index["IndexName"] == SCORE_INDEX_NAME
    assert index["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sc", "KeyType": "RANGE"}]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["g", "mb"]}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    status = ttl_status(store, name)
    assert status["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert status["AttributeName"] == TTL_ATTRIBUTE == "tx"


def test_provisioned_capacity(store: Any, gateway: Gateway, name: str) -> None:
    assert create_table(gateway, read_capacity=7, write_capacity=3) is True
    table = describe(store, name)
    throughput = table["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (7, 3)
    assert table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"


def test_one_capacity_alone_is_refused(store: Any, gateway: Gateway, name: str) -> None:
    with pytest.raises(ValueError, match="both"):
        create_table(gateway, read_capacity=5)
    with pytest.raises(ValueError, match="both"):
        create_table(gateway, write_capacity=5)
    assert name not in store.client.list_tables()["TableNames"]


def test_ttl_can_be_left_off_and_turned_on_later(store: Any, gateway: Gateway, name: str) -> None:
    assert create_table(gateway, ttl=False) is True
    assert ttl_status(store, name)["TimeToLiveStatus"] == "DISABLED"
    assert create_table(gateway) is False  # the table exists: only TTL is turned on
    assert ttl_status(store, name)["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert create_table(gateway) is False  # TTL already on: nothing to do


def test_the_new_table_serves_commands(store: Any, name: str) -> None:
    r = Redimo(name, client=store.client)
    assert r.create_table() is True
    r.set("k", "v", ex=100)
    assert r.get("k") == b"v"
    assert r.create_table() is False
    assert r.get("k") == b"v", "creating again leaves the data alone"


def test_cli_in_process(store: Any, name: str, capsys: pytest.CaptureFixture) -> None:
    endpoint = [] if store.is_moto else ["--endpoint-url", store.client.meta.endpoint_url]
    assert main(["create-table", name, *endpoint]) == 0
    out = capsys.readouterr().out
    assert f"Table {name} created; TTL on." in out
    assert ttl_status(store, name)["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert main(["create-table", name, *endpoint]) == 0
    assert f"Table {name} already exists; TTL on." in capsys.readouterr().out


def test_cli_options_in_process(store: Any, name: str, capsys: pytest.CaptureFixture) -> None:
    endpoint = [] if store.is_moto else ["--endpoint-url", store.client.meta.endpoint_url]
    assert main(["create-table", name, *endpoint, "--read-capacity", "4", "--write-capacity", "2",
                 "--no-ttl", "--region", "us-east-1"]) == 0
    assert f"Table {name} created; TTL off." in capsys.readouterr().out
    throughput = describe(store, name)["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (4, 2)
    assert ttl_status(store, name)["TimeToLiveStatus"] == "DISABLED"


def test_cli_usage_errors(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["create-table"])
    assert exited.value.code == 2
    assert "table" in capsys.readouterr().err


def run_cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "redimo"
    assert script.exists(), f"the redimo console script is not installed in {script.parent}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def test_cli_subprocess_on_dynamodb_local(dynamodb_local_endpoint: str, dynamodb_local_client: Any) -> None:
    name = f"redimo-cli-{uuid.uuid4().hex}"
    done = run_cli("create-table", name, "--endpoint-url", dynamodb_local_endpoint)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"Creating table {name} at {dynamodb_local_endpoint} ...",
                                        f"Table {name} created; TTL on."]
    table = dynamodb_local_client.describe_table(TableName=name)["Table"]
    assert table["LocalSecondaryIndexes"][0]["IndexName"] == SCORE_INDEX_NAME
    ttl = dynamodb_local_client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    again = run_cli("create-table", name, "--endpoint-url", dynamodb_local_endpoint)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"Table {name} already exists; TTL on."


def test_cli_subprocess_unreachable_endpoint_fails_cleanly() -> None:
    done = run_cli("create-table", "redimo-nowhere", "--endpoint-url", "http://127.0.0.1:1")
    assert done.returncode != 0
    assert "http://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_refuses_one_capacity_alone(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["create-table", "redimo-x", "--read-capacity", "5", "--endpoint-url", "http://127.0.0.1:1"])
    assert exited.value.code == 2
    assert "--write-capacity" in capsys.readouterr().err
