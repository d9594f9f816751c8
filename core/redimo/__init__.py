"""Redimo: the Redis data-structure API, served by Amazon DynamoDB."""

from .client import EngineConnection, Redimo
from .engine import Engine
from .gateway import Gateway, Usage, make_client
from .table import create_table

__all__ = ["Redimo", "Engine", "EngineConnection", "Gateway", "Usage", "make_client", "create_table"]
__version__ = "0.1.0"
