"""The ``redimo`` command: ``redimo create-table TABLE [--endpoint-url URL] [--region REGION]``."""

from __future__ import annotations

import argparse
import sys

from botocore.exceptions import BotoCoreError, ClientError

from .gateway import Gateway
from .table import create_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redimo", description="Redimo: Redis data structures on DynamoDB")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-table", help="create the table if missing and turn TTL on")
    create.add_argument("table")
    create.add_argument("--endpoint-url", help="DynamoDB endpoint (default: boto3's configuration)")
    create.add_argument("--region", help="AWS region (default: boto3's configuration)")
    create.add_argument("--read-capacity", type=int, help="provisioned RCU (default: on-demand billing)")
    create.add_argument("--write-capacity", type=int, help="provisioned WCU (default: on-demand billing)")
    create.add_argument("--no-ttl", action="store_true", help="leave the table's TTL off")
    arguments = parser.parse_args(argv)
    if (arguments.read_capacity is None) != (arguments.write_capacity is None):
        parser.error("--read-capacity and --write-capacity go together (provisioned billing)")
    gateway = Gateway(arguments.table, endpoint_url=arguments.endpoint_url, region_name=arguments.region)
    print(f"Creating table {arguments.table} at {gateway.endpoint} ...", flush=True)
    try:
        created = create_table(gateway, read_capacity=arguments.read_capacity,
                               write_capacity=arguments.write_capacity, ttl=not arguments.no_ttl)
    except (BotoCoreError, ClientError) as error:
        print(f"redimo: error: {error}", file=sys.stderr)
        return 1
    print(f"Table {arguments.table} {'created' if created else 'already exists'}; "
          f"TTL {'off' if arguments.no_ttl else 'on'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
