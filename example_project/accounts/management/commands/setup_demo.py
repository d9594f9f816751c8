"""``manage.py setup_demo``: the DynamoDB table, the SQLite auth tables and the user demo/demo."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from redimo import Redimo
from redimo_site import config


class Command(BaseCommand):
    help = "Create the table (idempotent), migrate the auth tables, and create the user demo (password demo)."

    def handle(self, *args: Any, **options: Any) -> None:
        Redimo(table=config.TABLE, endpoint_url=config.ENDPOINT).create_table()
        call_command("migrate", verbosity=0, interactive=False)
        users = get_user_model()
        if not users.objects.filter(username="demo").exists():
            users.objects.create_user("demo", password="demo")
        self.stdout.write(f"table {config.TABLE} ready; user demo (password demo) ready")
