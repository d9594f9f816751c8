"""The ``redimo`` command: ``create-table``, ``migrate``, ``verify``, ``sweep`` and ``serve``
(``redimo COMMAND --help``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from redis.exceptions import RedisError

from .engine import Engine
from .gateway import Gateway
from .migrate import TYPES, MigrationError, Options, Selection, migrate, open_source
from .protocol import ReplyError
from .rdb import RDBError
from .server import add_serve_command, run_serve
from .sweep import GRACE, Sweep, describe
from .table import create_table
from .verify import verify


def add_dynamodb_options(parser: argparse.ArgumentParser, summary: bool = True) -> None:
    """Where DynamoDB is; with ``summary``, also --json and --no-progress."""
    if summary:
        parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (drawn on a terminal only)")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (default: boto3's configuration)")
    parser.add_argument("--region", help="AWS region (default: boto3's configuration)")


def add_target(parser: argparse.ArgumentParser, table_required: bool) -> None:
    parser.add_argument("source", help="redis://[:password@]host:port/db or rediss://..., or the path of an RDB file")
    parser.add_argument("--table", required=table_required, help="the Redimo table (create it with create-table)")
    parser.add_argument("--namespace", default="0", help="the namespace the source database goes to (default 0)")
    parser.add_argument("--db-map", help="several databases: 0=ns0,3=sessions (database=namespace, comma-separated)")
    parser.add_argument("--match", help="only keys matching this glob pattern (as SCAN MATCH)")
    parser.add_argument("--type", choices=TYPES, help="only keys of this type")
    add_dynamodb_options(parser)


def namespaces(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> dict[int, str]:
    """Database number -> namespace: --db-map, else the URL's database (an RDB file's 0)."""
    if arguments.db_map:
        mapping = {}
        for pair in arguments.db_map.split(","):
            db, _, namespace = pair.partition("=")
            if not db.strip().isdigit() or not namespace or "\x00" in namespace:
                parser.error(f"--db-map: {pair!r} is not database=namespace (such as 3=sessions)")
            mapping[int(db)] = namespace
        return mapping
    path = urlsplit(arguments.source).path.strip("/") if "://" in arguments.source else ""
    if path and not path.isdigit():
        parser.error(f"the URL's database {path!r} is not a number")
    return {int(path or 0): arguments.namespace}


def gateway_options(arguments: argparse.Namespace) -> dict:
    return {name: value for name, value in (("endpoint_url", arguments.endpoint_url),
                                            ("region_name", arguments.region)) if value}


def shard(parser: argparse.ArgumentParser, text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        parser.error(f"--shard {text!r}: give I/N with 0 <= I < N (such as 0/4)")
    return int(index), int(count)


def print_migrate(result: dict) -> None:
    verb = "Would copy" if result["dry_run"] else "Wrote" if result["files"] else "Copied"
    types = ", ".join(f"{count} {name}" for name, count in sorted(result["keys_by_type"].items())) or "none"
    print(f"{verb} {result['keys']} keys ({types}) as {result['items']} items"
          f"{' to ' + result['files'] if result['files'] else ''} in {result['seconds']} s"
          f" ({result['keys_per_second']} keys/s).")
    if result["dry_run"]:
        print(f"Estimated: {result['requests']} BatchWriteItem requests, {result['write_units']} WCU "
              f"(${result['estimated_dollars']} on demand), {result['estimated_storage_gb']} GB stored.")
    elif not result["files"]:
        print(f"DynamoDB: {result['requests']} requests, {result['write_units']} WCU consumed.")
    if result["skipped_expired"] or result["skipped_already_copied"]:
        print(f"Skipped: {result['skipped_expired']} expired, {result['skipped_already_copied']} copied by an "
              f"earlier run (resumed from its checkpoint).")
    if result["unsupported"]:
        print(f"Not copied: {len(result['unsupported'])} keys Redimo cannot hold:")
        for entry in result["unsupported"][:20]:
            print(f"  db {entry['db']} {entry['key']!r} ({entry['type']}): {entry['reason']}")
    if result["stopped"]:
        print(f"Stopped: {result['stopped']}. Keys before it were copied.")


def run_migrate(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> int:
    from tqdm import tqdm

    options = Options(arguments.source, namespaces(parser, arguments), arguments.table, gateway_options(arguments),
                      arguments.match.encode() if arguments.match else None, arguments.type,
                      shard(parser, arguments.shard), arguments.workers,
                      Path(arguments.checkpoint) if arguments.checkpoint else None,
                      Path(arguments.to_files) if arguments.to_files else None, arguments.dry_run)
    bar = None

    def progress(total: int, position: int, keys: int) -> None:
        nonlocal bar
        if bar is None:
            bytes_ = isinstance(options.source, str) and "://" not in options.source
            bar = tqdm(total=total, unit="B" if bytes_ else " keys", unit_scale=bytes_, file=sys.stderr,
                       disable=arguments.no_progress or None, desc="migrate", dynamic_ncols=True)
        bar.update(position - bar.n)
        rate = keys / bar.format_dict["elapsed"] if bar.format_dict["elapsed"] else 0
        bar.set_postfix_str(f"{keys} keys, {rate:,.0f} keys/s", refresh=False)

    try:
        result = migrate(options, progress)
    except KeyboardInterrupt:
        print("redimo: interrupted; run the same command again to resume from its checkpoint", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    print(json.dumps(result, indent=2)) if arguments.json else print_migrate(result)
    return 1 if result["stopped"] else 3 if result["unsupported"] else 0


def run_verify(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> int:
    mapping = namespaces(parser, arguments)
    gateway = Gateway(arguments.table, **gateway_options(arguments))
    engines = {db: Engine(gateway, namespace) for db, namespace in mapping.items()}
    source = open_source(arguments.source, mapping)
    selection = Selection(mapping, arguments.match.encode() if arguments.match else None, arguments.type)
    from tqdm import tqdm

    with tqdm(unit=" keys", file=sys.stderr, disable=arguments.no_progress or None, desc="verify") as bar:
        try:
            report = verify(source, selection, engines, arguments.sample, int(arguments.tolerance * 1000),
                            bar.update)
        except RDBError as error:
            print(f"redimo: error: {error}", file=sys.stderr)
            return 1
    differing = [{"db": db, "key": key.decode("utf-8", "backslashreplace"), "reason": reason}
                 for db, key, reason in report.differences]
    if arguments.json:
        print(json.dumps({"checked": report.checked, "skipped_expired": report.expired,
                          "differences": len(differing), "differing_keys": differing}, indent=2))
    elif differing:
        print(f"{len(differing)} of {report.checked} keys differ:")
        for entry in differing[:20]:
            print(f"  db {entry['db']} {entry['key']!r}: {entry['reason']}")
        if len(differing) > 20:
            print(f"  ... and {len(differing) - 20} more")
    else:
        print(f"All {report.checked} keys match ({report.expired} expiring or expired keys not compared).")
    return 1 if differing else 0


def run_sweep(arguments: argparse.Namespace) -> int:
    from tqdm import tqdm

    gateway = Gateway(arguments.table, **gateway_options(arguments))
    with tqdm(unit=" items", file=sys.stderr, disable=arguments.no_progress or None, desc="sweep") as bar:
        checkpoint = Path(arguments.checkpoint) if arguments.checkpoint else None
        result = Sweep(gateway, arguments.namespace, grace=arguments.grace, workers=arguments.workers,
                       dry_run=arguments.dry_run, checkpoint=checkpoint, progress=bar.update).run()
    if arguments.json:
        print(json.dumps(result, indent=2))
        return 0
    print("\n".join(describe(result)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redimo", description="Redimo: Redis data structures on DynamoDB")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-table", help="create the table if missing and turn TTL on")
    create.add_argument("table")
    add_dynamodb_options(create, summary=False)
    create.add_argument("--read-capacity", type=int, help="provisioned RCU (default: on-demand billing)")
    create.add_argument("--write-capacity", type=int, help="provisioned WCU (default: on-demand billing)")
    create.add_argument("--no-ttl", action="store_true", help="leave the table's TTL off")
    copy = commands.add_parser("migrate", help="copy a Redis server or RDB file into a table (docs/migration.md)")
    add_target(copy, table_required=False)
    copy.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes writing (default: cores)")
    copy.add_argument("--shard", help="I/N: only the I-th of N disjoint parts of the keys (for several machines)")
    copy.add_argument("--checkpoint", help="the checkpoint file (default: .redimo-migrate-<hash>.checkpoint here)")
    copy.add_argument("--dry-run", action="store_true", help="count keys and estimate the cost; write nothing")
    copy.add_argument("--to-files", metavar="DIR", help="write DynamoDB JSON gzip files for S3 ImportTable instead")
    check = commands.add_parser("verify", help="compare a Redis server or RDB file with its copy")
    add_target(check, table_required=True)
    check.add_argument("--sample", type=int, help="compare a random sample of this many keys (default: all)")
    check.add_argument("--tolerance", type=float, default=5.0, help="seconds TTLs may differ by (default 5)")
    sweep = commands.add_parser("sweep", help="delete the items no live key reaches (docs/data-model.md)")
    sweep.add_argument("--table", required=True, help="the Redimo table")
    sweep.add_argument("--namespace", help="only this namespace (default: every namespace of the table)")
    sweep.add_argument("--dry-run", action="store_true", help="count what is unreachable now; delete nothing")
    sweep.add_argument("--workers", type=int, default=4, help="parallel Scan segments (default 4)")
    sweep.add_argument("--grace", type=float, default=GRACE,
                       help=f"seconds an item must stay unreachable before it is deleted (default {GRACE:g})")
    sweep.add_argument("--checkpoint", help="resume file: the Scan's positions (default: none)")
    add_dynamodb_options(sweep)
    add_serve_command(commands)
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        return run_serve(arguments)
    if arguments.command == "sweep":
        if arguments.workers < 1 or arguments.grace < 0:
            parser.error("--workers must be at least 1 and --grace at least 0")
        try:
            return run_sweep(arguments)
        except (ValueError, ReplyError, BotoCoreError, ClientError, RedisError) as error:
            print(f"redimo: error: {error}", file=sys.stderr)
            return 1
    if arguments.command in ("migrate", "verify"):
        if arguments.command == "migrate" and arguments.workers < 1:
            parser.error("--workers must be at least 1")
        try:
            return (run_migrate if arguments.command == "migrate" else run_verify)(parser, arguments)
        except (MigrationError, ReplyError, BotoCoreError, ClientError, RedisError) as error:
            print(f"redimo: error: {error}", file=sys.stderr)
            return 1
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
