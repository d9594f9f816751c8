"""A small map of names to numbers kept in one item beside a key's head (``sk = MAP``): the holders
of a semaphore, or the sessions of a user. It is not a Redis key (KEYS and TYPE do not see it).
Each entry is a top-level attribute ``e:<name>`` and ``n`` counts them, so every operation, the
first included, is one DynamoDB request (UpdateItem creates the item when it is missing)."""

from __future__ import annotations

from .gateway import ConditionFailed, Item
from .storage import Database

MAP = b"\x05map"
ENTRY = "e:"


def entries(item: Item | None) -> dict[str, int]:
    return {name[len(ENTRY):]: int(value["N"]) for name, value in (item or {}).items() if name.startswith(ENTRY)}


class MapItem:
    """The entries of the item ``(pk(key), MAP)``."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self.item_key = {"pk": {"B": db.pk(key)}, "sk": {"B": MAP}}

    def read(self) -> dict[str, int]:
        """Every entry: 1 GetItem."""
        return entries(self.db.gateway.get(self.item_key))

    def put(self, name: str, value: int, limit: int | None = None) -> dict[str, int] | None:
        """Add the entry ``name``: 1 UpdateItem. With ``limit``, only while there are fewer entries;
        a full map is left alone and its entries returned. None when the entry was added (an entry
        that was already there gets the new value, with one more UpdateItem)."""
        names = {"#entry": ENTRY + name}
        values = {":value": {"N": str(value)}, ":one": {"N": "1"}}
        condition = "attribute_not_exists(#entry)"
        if limit is not None:
            condition += " AND (attribute_not_exists(n) OR n < :limit)"
            values[":limit"] = {"N": str(limit)}
        try:
            self.db.gateway.update(self.item_key, "SET #entry = :value ADD n :one", values, names,
                                   condition=condition)
            return None
        except ConditionFailed as refused:
            if ENTRY + name not in (refused.item or {}):
                return entries(refused.item)
        self.db.gateway.update(self.item_key, "SET #entry = :value", {":value": values[":value"]}, names)
        return None

    def remove(self, *names: str, only_if: dict[str, int] | None = None) -> bool:
        """Remove entries: 1 UpdateItem, only while each is present (with ``only_if``: still has that
        value). Returns False, removing nothing, when one is not."""
        if not names:
            return True
        aliases = {f"#e{index}": ENTRY + name for index, name in enumerate(names)}
        values = {":gone": {"N": str(-len(names))}}
        conditions = []
        for index, (alias, name) in enumerate(zip(aliases, names)):
            if only_if is None:
                conditions.append(f"attribute_exists({alias})")
            else:
                conditions.append(f"{alias} = :v{index}")
                values[f":v{index}"] = {"N": str(only_if[name])}
        try:
            self.db.gateway.update(self.item_key, f"REMOVE {', '.join(aliases)} ADD n :gone", values, aliases,
                                   condition=" AND ".join(conditions))
            return True
        except ConditionFailed:
            return False

    def delete(self) -> None:
        """Drop the whole map: 1 DeleteItem."""
        self.db.gateway.delete(self.item_key, return_old=False)
