"""The command reference is complete: every command of the real redis-server is either supported by
Redimo (and then documented with its cost) or listed under "Not supported" with a reason."""

from __future__ import annotations

import re

import redis

from redimo.commands import COMMANDS
from redimo.commands.transactions import SESSION_COMMANDS

from conftest import ROOT
from differential import raw

DOCS = ROOT / "docs"


def unsupported_section() -> str:
    text = (DOCS / "commands.md").read_text()
    return text[text.index("\n## Not supported"):].split("\n## ", 2)[1]


def documented_commands() -> set[str]:
    """Commands named in the first cell of a row of a reference table (``| `HSET key field value` | cost |``)."""
    pages = [DOCS / "commands.md", *sorted((DOCS / "reference").glob("*.md"))]
    names = set()
    for page in pages:
        for first_cell in re.findall(r"^\|([^|\n]*)\|", page.read_text(), re.MULTILINE):
            names.update(name.lower() for name in re.findall(r"\b[A-Z][A-Z_]+\b", first_cell))
    return names


def test_every_redis_command_is_supported_or_listed_as_not(redis_server: redis.Redis) -> None:
    client = raw(redis.Redis(connection_pool=redis_server.connection_pool))
    redis_commands = {name.decode() for name in client.execute_command("COMMAND", "LIST") if b"|" not in name}
    supported = {name.decode() for name in [*COMMANDS, *SESSION_COMMANDS]}
    listed = {name.lower() for name in re.findall(r"`([A-Z][A-Z_-]*)`", unsupported_section())}
    assert not sorted(redis_commands - supported - listed), "neither supported nor listed as not supported"
    assert not sorted(supported & listed), "listed as not supported, but supported"
    assert not sorted(listed - redis_commands), "listed, but not a Redis 7 command"


def test_every_supported_command_has_a_reference_row() -> None:
    supported = {name.decode() for name in [*COMMANDS, *SESSION_COMMANDS]}
    assert not sorted(supported - documented_commands()), "supported commands without a row in docs/"
