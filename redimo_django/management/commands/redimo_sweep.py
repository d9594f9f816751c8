"""``manage.py redimo_sweep [alias] [--dry-run] [--grace S] [--workers N]``: delete the items of a
RedimoCache's table that no live key reaches (``redimo sweep``, docs/data-model.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redimo.sweep import GRACE, Sweep, describe
from redimo_django.management import redimo_cache


class Command(BaseCommand):
    help = ("Delete the items of a RedimoCache's DynamoDB table that no live key reaches (members of expired "
            "collections, chunks and members that overwrites left), in its namespace only.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("alias", nargs="?", default="default", help="the cache alias in CACHES (default: default)")
        parser.add_argument("--dry-run", action="store_true", help="count what is unreachable now; delete nothing")
        parser.add_argument("--grace", type=float, default=GRACE,
                            help=f"seconds an item must stay unreachable before it is deleted (default {GRACE:g})")
        parser.add_argument("--workers", type=int, default=4, help="parallel Scan segments (default 4)")

    def handle(self, *args: Any, alias: str, dry_run: bool, grace: float, workers: int, **options: Any) -> None:
        cache = redimo_cache(alias)
        if workers < 1 or grace < 0:
            raise CommandError("--workers must be at least 1 and --grace at least 0")
        redimo = cache.get_client()
        namespace = redimo.engine.db.namespace
        self.stdout.write(f"Sweeping namespace '{namespace}' of table '{redimo.gateway.table}' "
                          f"(grace {grace:g} s){' as a dry run' if dry_run else ''} ...")
        result = Sweep(redimo.gateway, namespace, grace=grace, workers=workers, dry_run=dry_run).run()
        scanned, deleted = describe(result)
        self.stdout.write(scanned)
        self.stdout.write(self.style.SUCCESS(deleted))
