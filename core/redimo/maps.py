"""A small map of names to numbers kept in one item, beside a key's head (``sk = MAP``): the
holders of a semaphore, or the sessions of a user. It is not a Redis key (KEYS and TYPE do not
see it); each operation is one DynamoDB request (the first write of a map, two)."""

from __future__ import annotations

from .gateway import ConditionFailed
from .storage import Database

MAP = b"\x05map"


class MapItem:
    """The map attribute ``m`` of the item ``(pk(key), MAP)``."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self.item_key = {"pk": {"B": db.pk(key)}, "sk": {"B": MAP}}

    def read(self) -> dict[str, int]:
        """Every entry: 1 GetItem."""
        item = self.db.gateway.get(self.item_key)
        return {name: int(value["N"]) for name, value in (item or {}).get("m", {}).get("M", {}).items()}

    def put(self, name: str, value: int, limit: int | None = None) -> dict[str, int] | None:
        """Set ``name`` to ``value``: 1 UpdateItem. With ``limit``, only while the map has fewer
        entries; a full map is left alone and returned. None when the entry was set."""
        values = {":value": {"N": str(value)}}
        condition = "attribute_exists(m)"
        if limit is not None:
            condition += " AND size(m) < :limit"
            values[":limit"] = {"N": str(limit)}
        try:
            self.db.gateway.update(self.item_key, "SET m.#name = :value", values, {"#name": name}, condition=condition)
            return None
        except ConditionFailed as refused:
            if refused.item and "m" in refused.item:
                return {key: int(entry["N"]) for key, entry in refused.item["m"]["M"].items()}
        try:  # the map's first entry
            self.db.gateway.put({**self.item_key, "m": {"M": {name: {"N": str(value)}}}}, "attribute_not_exists(pk)")
            return None
        except ConditionFailed:
            return self.put(name, value, limit)

    def remove(self, *names: str, only_if: dict[str, int] | None = None) -> bool:
        """Remove entries: 1 UpdateItem, only while each is present (with ``only_if``: still has that
        value). Returns False, removing nothing, when one is not."""
        if not names:
            return True
        aliases = {f"#n{index}": name for index, name in enumerate(names)}
        conditions, values = ["attribute_exists(m)"], {}
        for alias, name in aliases.items():
            if only_if is None:
                conditions.append(f"attribute_exists(m.{alias})")
            else:
                conditions.append(f"m.{alias} = :v{alias[2:]}")
                values[f":v{alias[2:]}"] = {"N": str(only_if[name])}
        try:
            self.db.gateway.update(self.item_key, "REMOVE " + ", ".join(f"m.{alias}" for alias in aliases), values,
                                   aliases, condition=" AND ".join(conditions))
            return True
        except ConditionFailed:
            return False

    def contains(self, name: str) -> bool:
        """Whether ``name`` is an entry: 1 GetItem."""
        return name in self.read()

    def delete(self) -> None:
        """Drop the whole map: 1 DeleteItem."""
        self.db.gateway.delete(self.item_key, return_old=False)
