"""Gateways that wrap the real one for a batch of commands.

:class:`Staging` runs the commands of one EXEC: reads go to DynamoDB, overlaid with what this EXEC has
already written; writes are not sent but applied locally (conditions and update expressions are
evaluated here, for the subset of DynamoDB's expression language Redimo uses), so each command gets
the replies and ConditionFailed/TransactionConditionFailed it would get for real. :meth:`Staging.actions`
then turns every changed item into one action of a single TransactWriteItems, each conditioned on the
item being as this EXEC first read it.

:class:`Prefetched` serves the heads a non-transactional pipeline will read from one BatchGetItem made
before its commands run; a write through it drops the item from the cache.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

from .gateway import TRANSACTION_LIMIT, ConditionFailed, Gateway, Item, TransactionConditionFailed
from .protocol import ReplyError
from .storage import HEAD, MAX_PARTITION_KEY
from .table import SCORE_INDEX, SCORE_INDEX_NAME

Key = tuple[bytes, bytes]  # (pk, sk)
Value = dict[str, Any]  # one DynamoDB attribute value, e.g. {"N": "1"}
TRANSACTION_BYTES = 4_000_000  # DynamoDB's 4 MB a transaction, with room for attribute names
NUMBERS = Context(prec=38)  # DynamoDB's number precision


def key_of(item: Item) -> Key:
    return item["pk"]["B"], item["sk"]["B"]


def key_item(key: Key) -> Item:
    return {"pk": {"B": key[0]}, "sk": {"B": key[1]}}


# -- expressions ---------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(<>|<=|>=|[=<>(),+\-])|([#:]?[A-Za-z_][A-Za-z0-9_]*|[#:][A-Za-z0-9_]+))")
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}


def unsupported(text: str) -> ReplyError:
    return ReplyError(f"ERR Redimo cannot run this command inside MULTI (expression not supported: {text})")


@lru_cache(maxsize=512)
def tokens(text: str) -> tuple[str, ...]:
    found, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise unsupported(text)
        token = match.group(1) or match.group(2)
        found.append(token.upper() if token.upper() in _KEYWORDS else token)
        position = match.end()
    return tuple(found)


class Parser:
    """Recursive descent over a condition or update expression, giving nested tuples."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.position = text, tokens(text), 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise unsupported(self.text)
        self.position += 1
        return token

    def done(self) -> None:
        if self.peek() is not None:
            raise unsupported(self.text)

    # conditions
    def condition(self) -> tuple:
        node = self.conjunction()
        while self.peek() == "OR":
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple:
        node = self.negation()
        while self.peek() == "AND":
            self.take()
            node = ("and", node, self.negation())
        return node

    def negation(self) -> tuple:
        if self.peek() == "NOT":
            self.take()
            return ("not", self.negation())
        if self.peek() == "(":
            self.take()
            node = self.condition()
            self.take(")")
            return node
        token = self.peek()
        if token in ("attribute_exists", "attribute_not_exists", "begins_with", "contains", "attribute_type"):
            self.take()
            return ("call", token, self.arguments())
        left = self.operand()
        operator = self.take()
        if operator in ("=", "<>", "<", "<=", ">", ">="):
            return ("compare", operator, left, self.operand())
        if operator == "BETWEEN":
            low = self.operand()
            self.take("AND")
            return ("between", left, low, self.operand())
        if operator == "IN":
            return ("in", left, self.arguments())
        raise unsupported(self.text)

    def arguments(self) -> tuple:
        self.take("(")
        found = [self.operand()]
        while self.peek() == ",":
            self.take()
            found.append(self.operand())
        self.take(")")
        return tuple(found)

    def operand(self) -> tuple:
        token = self.take()
        if token == "size":
            return ("size", self.arguments()[0])
        if token in ("if_not_exists", "list_append"):
            return (token, *self.arguments())
        if token.startswith(":"):
            return ("value", token)
        if token[0] == "#" or token[0].isalpha() or token[0] == "_":
            return ("path", token)
        raise unsupported(self.text)

    # updates
    def update(self) -> dict[str, list]:
        clauses: dict[str, list] = {}
        while self.peek() is not None:
            clause = self.take()
            if clause not in ("SET", "REMOVE", "ADD", "DELETE") or clause in clauses:
                raise unsupported(self.text)
            actions = clauses[clause] = []
            while True:
                target = self.operand()
                if target[0] != "path":
                    raise unsupported(self.text)
                if clause == "SET":
                    self.take("=")
                    value = self.operand()
                    if self.peek() in ("+", "-"):
                        value = (self.take(), value, self.operand())
                    actions.append((target, value))
                elif clause == "REMOVE":
                    actions.append((target, None))
                else:
                    actions.append((target, self.operand()))
                if self.peek() != ",":
                    break
                self.take()
        return clauses


@lru_cache(maxsize=512)
def parse_condition(text: str) -> tuple:
    parser = Parser(text)
    node = parser.condition()
    parser.done()
    return node


@lru_cache(maxsize=512)
def parse_update(text: str) -> dict[str, list]:
    return Parser(text).update()


def number(value: Value) -> Decimal:
    return Decimal(value["N"])


def number_value(amount: Decimal) -> Value:
    text = format(amount.normalize(NUMBERS), "f")
    return {"N": "0" if text in ("-0", "0") else text}


def comparable(value: Value) -> tuple[str, Any]:
    """A value's type and a Python value that compares as DynamoDB compares it."""
    (kind, raw), = value.items()
    if kind == "N":
        return kind, Decimal(raw)
    if kind == "S":
        return kind, raw.encode()
    if kind in ("SS", "BS"):
        return kind, frozenset(raw)
    if kind == "NS":
        return kind, frozenset(Decimal(entry) for entry in raw)
    if kind == "L":
        return kind, tuple(comparable(entry) for entry in raw)
    if kind == "M":
        return kind, frozenset((name, comparable(entry)) for name, entry in raw.items())
    return kind, raw


class Evaluator:
    """Evaluates parsed expressions on one item with ``values`` and ``names``."""

    def __init__(self, item: Item | None, values: dict | None, names: dict | None) -> None:
        self.item, self.values, self.names = item or {}, values or {}, names or {}

    def name(self, node: tuple) -> str:
        token = node[1]
        return self.names[token] if token.startswith("#") else token

    def operand(self, node: tuple) -> Value | None:
        kind = node[0]
        if kind == "path":
            return self.item.get(self.name(node))
        if kind == "value":
            return self.values[node[1]]
        if kind == "size":
            value = self.operand(node[1])
            if value is None:
                return None
            (type_, raw), = value.items()
            if type_ in ("N", "BOOL", "NULL"):
                return None
            return {"N": str(len(raw.encode()) if type_ == "S" else len(raw))}
        if kind == "if_not_exists":
            return self.operand(node[1]) if self.operand(node[1]) is not None else self.operand(node[2])
        if kind == "list_append":
            left, right = self.operand(node[1]), self.operand(node[2])
            return {"L": left["L"] + right["L"]}
        if kind in ("+", "-"):
            left, right = self.operand(node[1]), self.operand(node[2])
            if left is None or right is None or "N" not in left or "N" not in right:
                raise ReplyError("ERR DynamoDB ValidationException: An operand in the update expression has "
                                 "an incorrect data type")
            result = number(left) + number(right) if kind == "+" else number(left) - number(right)
            return number_value(NUMBERS.plus(result))
        raise ReplyError(f"ERR unsupported expression node {kind}")

    def holds(self, node: tuple) -> bool:
        kind = node[0]
        if kind == "or":
            return self.holds(node[1]) or self.holds(node[2])
        if kind == "and":
            return self.holds(node[1]) and self.holds(node[2])
        if kind == "not":
            return not self.holds(node[1])
        if kind == "compare":
            return compare(node[1], self.operand(node[2]), self.operand(node[3]))
        if kind == "between":
            value = self.operand(node[1])
            return compare(">=", value, self.operand(node[2])) and compare("<=", value, self.operand(node[3]))
        if kind == "in":
            value = self.operand(node[1])
            return any(compare("=", value, self.operand(option)) for option in node[2])
        name, arguments = node[1], node[2]
        first = self.operand(arguments[0])
        if name == "attribute_exists":
            return first is not None
        if name == "attribute_not_exists":
            return first is None
        second = self.operand(arguments[1])
        if first is None:
            return False
        (kind_a, raw_a), = first.items()
        (kind_b, raw_b), = second.items()
        if name == "attribute_type":
            return kind_a == raw_b
        if name == "begins_with":
            return kind_a == kind_b and kind_a in ("S", "B") and raw_a.startswith(raw_b)
        if kind_a in ("S", "B"):  # contains
            return kind_a == kind_b and raw_b in raw_a
        if kind_a in ("SS", "NS", "BS"):
            return comparable(second)[1] in comparable(first)[1]
        if kind_a == "L":
            return comparable(second) in comparable(first)[1]
        return False


def compare(operator: str, left: Value | None, right: Value | None) -> bool:
    if left is None or right is None:
        return operator == "<>"
    (kind_a, a), (kind_b, b) = comparable(left), comparable(right)
    if operator == "=":
        return kind_a == kind_b and a == b
    if operator == "<>":
        return kind_a != kind_b or a != b
    if kind_a != kind_b or kind_a not in ("N", "S", "B"):
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator]


def condition_holds(item: Item | None, condition: str | None, values: dict | None, names: dict | None) -> bool:
    return not condition or Evaluator(item, values, names).holds(parse_condition(condition))


def apply_update(item: Item | None, key: Item, expression: str, values: dict | None, names: dict | None) -> Item:
    """The item after an UpdateItem (operands are read from the item as it was, as DynamoDB does)."""
    evaluator = Evaluator(item, values, names)
    new = {**copy.deepcopy(item or {}), **key}
    clauses = parse_update(expression)
    changes = [(evaluator.name(path), evaluator.operand(value)) for path, value in clauses.get("SET", [])]
    for name, value in changes:
        new[name] = copy.deepcopy(value)
    for path, _ in clauses.get("REMOVE", []):
        new.pop(evaluator.name(path), None)
    for path, operand in clauses.get("ADD", []):
        name, amount = evaluator.name(path), evaluator.operand(operand)
        old = new.get(name)
        if "N" in amount:
            new[name] = number_value(NUMBERS.plus((number(old) if old else Decimal(0)) + number(amount)))
        else:
            (kind, entries), = amount.items()
            new[name] = {kind: list(dict.fromkeys((old or {kind: []})[kind] + entries))}
    for path, operand in clauses.get("DELETE", []):
        name, amount = evaluator.name(path), evaluator.operand(operand)
        if name in new:
            (kind, entries), = amount.items()
            left = [entry for entry in new[name][kind] if entry not in entries]
            if left:
                new[name] = {kind: left}
            else:
                del new[name]
    return new


def project(item: Item | None, projection: str | None, names: dict | None = None) -> Item | None:
    """An item with only the attributes a ProjectionExpression names (top-level names only)."""
    if item is None:
        return None
    if not projection:
        return copy.deepcopy(item)
    wanted = {(names or {}).get(name.strip(), name.strip()) for name in projection.split(",")}
    return {name: copy.deepcopy(value) for name, value in item.items() if name in wanted}


def item_size(item: Item) -> int:
    """An item's size as DynamoDB counts it, near enough: attribute names and values."""
    def size(value: Any) -> int:
        if isinstance(value, dict):
            return sum(len(name) + size(entry) for name, entry in value.items())
        if isinstance(value, list):
            return sum(size(entry) for entry in value)
        return len(value) if isinstance(value, (bytes, str)) else 8
    return size(item)


def unchanged_condition(item: Item | None) -> dict:
    """The condition parameters of an action on an item that must still be ``item`` (None: absent):
    its version ``w`` when it has one, else every attribute."""
    if item is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    if "w" in item:
        return {"ConditionExpression": "w = :w", "ExpressionAttributeValues": {":w": item["w"]}}
    names = sorted(name for name in item if name not in ("pk", "sk"))
    return {"ConditionExpression": " AND ".join(f"#u{index} = :u{index}" for index in range(len(names)))
            or "attribute_exists(pk)",
            "ExpressionAttributeNames": {f"#u{index}": name for index, name in enumerate(names)},
            "ExpressionAttributeValues": {f":u{index}": item[name] for index, name in enumerate(names)}}


class Stale(Exception):
    """An item this EXEC read again had changed since its first read: the EXEC starts over."""


# -- the EXEC gateway ----------------------------------------------------------------------------
@dataclass
class Action:
    """One action of the final transaction; ``watched`` when its item is a WATCHed head."""

    request: dict
    watched: bool
    size: int


class Wrapper:
    """A stand-in for a :class:`Gateway` (the same table, client and usage counters) that changes
    how some requests are served."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.table, self.client, self.consistent_reads = gateway.table, gateway.client, gateway.consistent_reads

    @property
    def usage(self):
        return self.gateway.usage

    @property
    def endpoint(self) -> str:
        return self.gateway.endpoint


class Staging(Wrapper):
    """A gateway whose writes stay here (``staged``) until :meth:`actions` turns them into one
    transaction. ``seen`` holds each item as DynamoDB first returned it (None: absent): each command
    reads that state (see :meth:`read_many`), and the commit is conditioned on it."""

    nested_paths = False  # its expressions name top-level attributes only (no ``m.#member``, no size())

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.seen: dict[Key, Item | None] = {}
        self.staged: dict[Key, Item | None] = {}
        self.fresh: set[Key] = set()  # written first by a BatchWriteItem put (a new generation's item)
        self.direct: set[Key] = set()  # written by PutItem/UpdateItem/DeleteItem/TransactWriteItems
        self.served: set[Key] = set()  # read by the current command (read again: from DynamoDB)

    def __getattr__(self, name: str) -> Any:
        """A gateway operation the staging does not overlay: refused, rather than run unstaged."""
        if name.startswith("_"):
            raise AttributeError(name)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ReplyError(f"ERR Redimo cannot run this command inside MULTI (it uses {name})")
        return refuse

    # -- reads ------------------------------------------------------------------------------
    def read_many(self, keys: Iterable[Key], serve: bool = True) -> list[Item | None]:
        """The state of each key: as staged, or as this EXEC first read it, once per command
        (``serve``); a command reading a key again reads it anew (a chunked value re-reads its head
        when its chunks changed meanwhile), and if it changed since, raises :class:`Stale`."""
        keys = list(dict.fromkeys(keys))
        fetch = [key for key in keys if key not in self.staged and (key not in self.seen or key in self.served)]
        if fetch:
            if len(fetch) == 1:
                found = {fetch[0]: self.gateway.get(key_item(fetch[0]))}
            else:
                found = {key_of(item): item for item in self.gateway.batch_get([key_item(key) for key in fetch])}
            for key in fetch:
                if key in self.seen and found.get(key) != self.seen[key]:
                    raise Stale()
                self.seen[key] = found.get(key)
        if serve:
            self.served.update(keys)
        return [self.staged[key] if key in self.staged else self.seen[key] for key in keys]

    def next_command(self) -> None:
        self.served.clear()

    def current(self, key: Item) -> Item | None:
        """The state a write is evaluated on (and conditioned on at the commit)."""
        pk_sk = key_of(key)
        if pk_sk not in self.staged and pk_sk not in self.seen:
            self.seen[pk_sk] = self.gateway.get(key)
        return self.staged[pk_sk] if pk_sk in self.staged else self.seen[pk_sk]

    def get(self, key: Item, projection: str | None = None, names: dict | None = None) -> Item | None:
        return project(self.read_many([key_of(key)])[0], projection, names)

    def batch_get(self, keys: list[Item], projection: str | None = None, names: dict | None = None) -> list[Item]:
        return [project(item, projection, names) for item in self.read_many(map(key_of, keys)) if item is not None]

    def _staged_in(self, values: dict) -> bool:
        partitions = {value.get("B") for value in values.values()}
        return any(pk in partitions for pk, _ in self.staged)

    def query(self, key_condition: str, values: dict, names: dict | None = None, *,
              projection: str | None = None, limit: int | None = None, forward: bool = True,
              start: Item | None = None, index: str | None = None,
              filter_expression: str | None = None) -> Iterator[Item]:
        """DynamoDB's items merged with the staged ones of the partition, in sort order."""
        if not self._staged_in(values):
            yield from self.gateway.query(key_condition, values, names, projection=projection, limit=limit,
                                          forward=forward, start=start, index=index,
                                          filter_expression=filter_expression)
            return
        indexed = index == SCORE_INDEX_NAME
        real = [item for item in self.gateway.query(
            key_condition, values, names, limit=None if limit is None else limit + len(self.staged),
            forward=forward, start=start, index=index, filter_expression=filter_expression)
            if key_of(item) not in self.staged]
        if not index:
            for item in real:
                self.seen.setdefault(key_of(item), item)
        visible = "pk, sk, g, mb, " + SCORE_INDEX if indexed else None
        staged = [project(item, visible) for item in self.staged.values()
                  if item is not None and (not indexed or SCORE_INDEX in item)
                  and condition_holds(item, key_condition, values, names)
                  and condition_holds(item, filter_expression, values, names)]

        def order(item: Item) -> tuple:
            return (number(item[SCORE_INDEX]), item["sk"]["B"]) if indexed else (item["sk"]["B"],)

        if start is not None:
            staged = [item for item in staged if (order(item) > order(start) if forward else order(item) < order(start))]
        merged = sorted(real + staged, key=order, reverse=not forward)
        for item in merged[:limit]:
            yield project(item, projection, names)

    def count(self, key_condition: str, values: dict, *, index: str | None = None,
              filter_expression: str | None = None) -> int:
        if not self._staged_in(values):
            return self.gateway.count(key_condition, values, index=index, filter_expression=filter_expression)
        return sum(1 for _ in self.query(key_condition, values, index=index, filter_expression=filter_expression))

    def scan_page(self, **options: Any) -> tuple[list[Item], Item | None]:
        return self.gateway.scan_page(**options)  # scans see the table without this EXEC's writes

    def scan(self, **options: Any) -> Iterator[Item]:
        return self.gateway.scan(**options)

    # -- writes -----------------------------------------------------------------------------
    def _write(self, key: Item, new: Item | None, direct: bool = True) -> None:
        pk_sk = key_of(key)
        self.staged[pk_sk] = copy.deepcopy(new)
        if direct:
            self.direct.add(pk_sk)

    def _check(self, key: Item, condition: str | None, values: dict | None, names: dict | None) -> Item | None:
        old = self.current(key)
        if not condition_holds(old, condition, values, names):
            raise ConditionFailed(copy.deepcopy(old))
        return old

    def put(self, item: Item, condition: str | None = None, values: dict | None = None,
            names: dict | None = None, return_old: bool = False, once: bool = False) -> Item | None:
        key = {"pk": item["pk"], "sk": item["sk"]}
        old = self._check(key, condition, values, names)
        self._write(key, item)
        return copy.deepcopy(old) if return_old else None

    def update(self, key: Item, expression: str, values: dict | None = None, names: dict | None = None,
               condition: str | None = None, returns: str = "NONE", once: bool = False) -> Item | None:
        old = self._check(key, condition, values, names)
        new = apply_update(old, key, expression, values, names)
        self._write(key, new)
        if returns == "ALL_NEW":
            return copy.deepcopy(new)
        if returns == "ALL_OLD":
            return copy.deepcopy(old)
        if returns in ("UPDATED_NEW", "UPDATED_OLD"):
            source = new if returns == "UPDATED_NEW" else old or {}
            changed = {name for name in set(new) | set(old or {}) if new.get(name) != (old or {}).get(name)}
            return {name: copy.deepcopy(value) for name, value in source.items() if name in changed} or None
        return None

    def delete(self, key: Item, condition: str | None = None, values: dict | None = None,
               names: dict | None = None, return_old: bool = True) -> Item | None:
        old = self._check(key, condition, values, names)
        self._write(key, None)
        return copy.deepcopy(old) if return_old else None

    def batch_write(self, puts: list[Item] = (), deletes: list[Item] = ()) -> None:
        for item in puts:
            pk_sk = key_of(item)
            if pk_sk not in self.staged and pk_sk not in self.seen:
                self.fresh.add(pk_sk)
            self._write(item, item, direct=False)
        for key in deletes:
            self._write(key, None, direct=False)

    def delete_many(self, keys: list[Item]) -> list[Item]:
        old = self.read_many(map(key_of, keys))
        self.batch_write(deletes=keys)
        return [copy.deepcopy(item) for item in old if item is not None]

    def transact_write(self, actions: list[dict]) -> None:
        if len(actions) > TRANSACTION_LIMIT:
            raise ValueError(f"a transaction takes at most {TRANSACTION_LIMIT} actions")
        olds, failed = [], []
        for action in actions:
            (kind, body), = action.items()
            key = body["Key"] if "Key" in body else {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
            old = self.current(key)
            olds.append(old)
            failed.append(not condition_holds(old, body.get("ConditionExpression"),
                                              body.get("ExpressionAttributeValues"),
                                              body.get("ExpressionAttributeNames")))
        if any(failed):
            raise TransactionConditionFailed(failed, [copy.deepcopy(old) if bad else None
                                                      for old, bad in zip(olds, failed)])
        for action, old in zip(actions, olds):
            (kind, body), = action.items()
            if kind == "Put":
                self._write(body["Item"], body["Item"])
            elif kind == "Delete":
                self._write(body["Key"], None)
            elif kind == "Update":
                self._write(body["Key"], apply_update(old, body["Key"], body["UpdateExpression"],
                                                      body.get("ExpressionAttributeValues"),
                                                      body.get("ExpressionAttributeNames")))

    # -- the commit -------------------------------------------------------------------------
    def changes(self) -> Iterator[tuple[Key, Item | None]]:
        """Each staged item whose state differs from what was read (None: deleted)."""
        for key, item in self.staged.items():
            known = key in self.seen
            if not ((known and self.seen[key] == item) or (not known and item is None and key in self.fresh)):
                yield key, item

    def is_side(self, key: Key) -> bool:
        """An item only BatchWriteItem wrote, not a head: a new generation's member or chunk (unseen
        until a head names it), or an old one's left behind (unseen once its head changed)."""
        return key not in self.direct and key[1] != HEAD

    def side_writes(self) -> tuple[list[Item], list[Item]]:
        """The side items' changes: (puts, deletes), for BatchWriteItem before and after the transaction."""
        side = [(key, item) for key, item in self.changes() if self.is_side(key)]
        return [item for _, item in side if item is not None], [key_item(key) for key, item in side if item is None]

    def actions(self, watched: dict[Key, str], now: dict, without_side: bool = False) -> list[Action]:
        """The final transaction: every staged item that differs from what was read, conditioned on
        being as first read (an item never read is written blind), and a ConditionCheck for each
        watched head not written. ``watched`` maps a head to "live" or "absent" (as at WATCH).
        ``without_side`` leaves out the side items (see :meth:`side_writes`)."""
        found: list[Action] = []
        written: set[Key] = set()
        for key, item in self.changes():
            if without_side and self.is_side(key):
                continue
            known = key in self.seen
            request: dict = {"Item": item} if item is not None else {"Key": key_item(key)}
            if known:
                request.update(unchanged_condition(self.seen[key]))
            size = item_size(item or key_item(key)) + item_size(request.get("ExpressionAttributeValues", {}))
            found.append(Action({"Put" if item is not None else "Delete": request}, key in watched, size))
            written.add(key)
        for key, state in watched.items():
            if key in written:
                continue
            request = {"Key": key_item(key)}
            if state == "live":
                condition = unchanged_condition(self.seen[key])
                condition["ConditionExpression"] += " AND (attribute_not_exists(x) OR x > :now)"
                condition["ExpressionAttributeValues"] = {**condition.get("ExpressionAttributeValues", {}), **now}
            else:
                condition = {"ConditionExpression": "attribute_not_exists(t) OR x <= :now",
                             "ExpressionAttributeValues": now}
            request.update(condition)
            found.append(Action({"ConditionCheck": request}, True, item_size(request)))
        return found

    @staticmethod
    def fits(actions: list[Action]) -> bool:
        return len(actions) <= TRANSACTION_LIMIT and sum(action.size for action in actions) <= TRANSACTION_BYTES


# -- the pipeline gateway ------------------------------------------------------------------------
class Prefetched(Wrapper):
    """A gateway that serves GetItem/BatchGetItem of the items read in advance (one BatchGetItem
    for a whole pipeline), once per command (a command reading an item again reads it anew), and
    replaces an item by what a write made of it (or forgets it, when the write does not tell). ``written`` is told of
    each item a write changed (for WATCH: a connection's own writes touch its watched keys)."""

    def __init__(self, gateway: Gateway, keys: Iterable[Key] = (),
                 written: Callable[[Key], None] = lambda key: None) -> None:
        super().__init__(gateway)
        self.written = written
        keys = list(dict.fromkeys(keys))
        found = {key_of(item): item for item in gateway.batch_get([key_item(key) for key in keys])} if keys else {}
        self.cache: dict[Key, Item | None] = {key: found.get(key) for key in keys}
        self.served: set[Key] = set()

    def next_command(self) -> None:
        self.served.clear()

    def __getattr__(self, name: str) -> Any:
        """Another gateway operation: passed on, and the cache dropped (it may write)."""
        if name.startswith("_"):
            raise AttributeError(name)
        self.cache.clear()
        return getattr(self.gateway, name)

    def get(self, key: Item, projection: str | None = None, names: dict | None = None) -> Item | None:
        pk_sk = key_of(key)
        if pk_sk in self.cache and pk_sk not in self.served:
            self.served.add(pk_sk)
            return project(self.cache[pk_sk], projection, names)
        self.cache.pop(pk_sk, None)
        return self.gateway.get(key, projection, names)

    def batch_get(self, keys: list[Item], projection: str | None = None, names: dict | None = None) -> list[Item]:
        """From the cache when it holds every key; else all read now (one request either way, and a
        head is never paired with members read at another instant)."""
        wanted = [key_of(key) for key in keys]
        if not all(key in self.cache and key not in self.served for key in wanted):
            self.forget(keys)
            return self.gateway.batch_get(keys, projection, names)
        self.served.update(wanted)
        return [project(item, projection, names) for item in (self.cache[key] for key in wanted) if item]

    def forget(self, keys: Iterable[Item]) -> list[Key]:
        found = [key_of(key) for key in keys]
        for pk_sk in found:
            self.cache.pop(pk_sk, None)
        return found

    def wrote(self, key: Key, item: Item | None, known: bool = True) -> None:
        """After a write: the item as written is what a later read of the batch sees."""
        if known:
            self.cache[key] = copy.deepcopy(item)
        self.written(key)

    def put(self, item: Item, condition: str | None = None, values: dict | None = None,
            names: dict | None = None, return_old: bool = False, once: bool = False) -> Item | None:
        key, = self.forget([item])
        old = self.gateway.put(item, condition, values, names, return_old, once)
        self.wrote(key, item)
        return old

    def update(self, key: Item, expression: str, values: dict | None = None, names: dict | None = None,
               condition: str | None = None, returns: str = "NONE", once: bool = False) -> Item | None:
        pk_sk, = self.forget([key])
        new = self.gateway.update(key, expression, values, names, condition, returns, once)
        self.wrote(pk_sk, new, returns == "ALL_NEW")
        return new

    def delete(self, key: Item, condition: str | None = None, values: dict | None = None,
               names: dict | None = None, return_old: bool = True) -> Item | None:
        pk_sk, = self.forget([key])
        old = self.gateway.delete(key, condition, values, names, return_old)
        self.cache[pk_sk] = None
        if old is not None or not return_old:
            self.written(pk_sk)
        return old

    def batch_write(self, puts: list[Item] = (), deletes: list[Item] = ()) -> None:
        self.forget([*puts, *deletes])
        self.gateway.batch_write(puts, deletes)
        for item in puts:
            self.wrote(key_of(item), item)
        for key in deletes:
            self.wrote(key_of(key), None)

    def delete_many(self, keys: list[Item]) -> list[Item]:
        self.forget(keys)
        old = self.gateway.delete_many(keys)
        for key in keys:
            self.wrote(key_of(key), None)
        return old

    def transact_write(self, actions: list[dict]) -> None:
        writes = [(kind, body) for action in actions for kind, body in action.items() if kind != "ConditionCheck"]
        self.forget(body.get("Key") or body["Item"] for _, body in writes)
        self.gateway.transact_write(actions)
        for kind, body in writes:
            self.wrote(key_of(body.get("Key") or body["Item"]), body.get("Item"), kind != "Update")

    def query(self, *args: Any, **kwargs: Any) -> Iterator[Item]:
        return self.gateway.query(*args, **kwargs)

    def count(self, *args: Any, **kwargs: Any) -> int:
        return self.gateway.count(*args, **kwargs)

    def scan_page(self, **options: Any) -> tuple[list[Item], Item | None]:
        return self.gateway.scan_page(**options)

    def scan(self, **options: Any) -> Iterator[Item]:
        return self.gateway.scan(**options)


def head_keys(prefix: bytes, keys: Iterable[bytes]) -> list[Key]:
    """The (pk, sk) of the heads of Redis keys in a namespace (keys too long for DynamoDB left out)."""
    return [(prefix + key, HEAD) for key in keys if len(prefix + key) <= MAX_PARTITION_KEY]
