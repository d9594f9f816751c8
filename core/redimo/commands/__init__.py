"""Redis commands by data type, as in redis-py's ``redis/commands/core.py`` and fakeredis."""

from . import geo, hashes, hyperloglog, keys, lists, pubsub, scripting, sets, stream_groups, streams, strings, transactions, zsets  # noqa: F401,E501
from .base import COMMANDS, Command, command

__all__ = ["COMMANDS", "Command", "command"]
