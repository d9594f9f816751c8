"""``manage.py redimo_createtable [alias] [--no-ttl]``: create the DynamoDB table of a RedimoCache."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from redimo_django.management import redimo_cache


class Command(BaseCommand):
    help = ("Create the DynamoDB table (LOCATION) of a RedimoCache alias unless it exists, "
            "and turn on DynamoDB's TTL so expired entries are eventually deleted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("alias", nargs="?", default="default", help="the cache alias in CACHES (default: default)")
        parser.add_argument("--no-ttl", action="store_true",
                            help="leave DynamoDB's TTL off: expired entries are then ignored but never deleted")

    def handle(self, *args: Any, alias: str, no_ttl: bool, **options: Any) -> None:
        cache = redimo_cache(alias)
        redimo = cache.get_client()
        table = redimo.gateway.table
        self.stdout.write(f"Creating DynamoDB table '{table}' for cache '{alias}' at {redimo.gateway.endpoint} ...")
        created = redimo.create_table(ttl=not no_ttl)
        self.stdout.write(f"Table '{table}' " + ("created." if created else "already exists."))
        if no_ttl:
            self.stdout.write(self.style.WARNING("TTL left as it was: expired entries are never deleted by DynamoDB."))
        else:
            self.stdout.write("TTL is on (attribute 'tx').")
        self.stdout.write(self.style.SUCCESS(f"Cache '{alias}' is ready."))
