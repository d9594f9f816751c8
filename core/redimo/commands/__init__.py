"""Redis commands by data type, as in redis-py's ``redis/commands/core.py`` and fakeredis."""

from . import hashes, keys, strings  # noqa: F401  (registers the commands)
from .base import COMMANDS, Command, command

__all__ = ["COMMANDS", "Command", "command"]
