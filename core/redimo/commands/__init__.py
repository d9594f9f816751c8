"""Redis commands by data type, as in redis-py's ``redis/commands/core.py`` and fakeredis."""

from . import (bitmaps, geo, hashes, hyperloglog, keys, lists, pubsub, scripting, serialization, sets, sort,  # noqa: F401
               stream_groups, streams, strings, transactions, zsets)
from .base import COMMANDS, Command, command

__all__ = ["COMMANDS", "Command", "command"]
