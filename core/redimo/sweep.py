"""``redimo sweep``: delete the items that no live key reaches (docs/data-model.md, "Lifetimes").

Redimo leaves some items unreachable rather than pay to delete them at once: the members of a
collection whose head expired (only heads carry the TTL), the old chunks and members that MSET and
other batch writes replace without reading, expired heads kept for exactly-once DEL. The sweep finds
them with a Scan (parallel segments), waits a grace period, reads their heads again, and deletes the
ones still unreachable in 25-statement BatchExecuteStatements, each conditioned on the item being as it
was judged (its generation ``g``, or an expired head's ``x``), so an item that a concurrent write made
reachable again is never deleted. The grace period covers writes in several steps (a promotion, a
large replace, a chunked value: members first, head last), whose new items are unreachable until their
head is written.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .compact import item_size
from .gateway import Gateway, Item
from .pubsub import SIDE_SUFFIX
from .storage import CHUNK, HEAD, millis

GRACE = 600.0  # seconds an item stays unreachable before the sweep deletes it
PUBSUB = SIDE_SUFFIX.encode()
SIDE = b"\x05"  # side items (redimo.maps) live beside a key, not in it: never swept
KIND_TYPES = {0x02: "hash", 0x03: "set", 0x04: "zset", 0x06: "list", 0x07: "stream", 0x08: "stream",
              0x09: "stream", 0x0A: "stream"}
HEAD_PROJECTION = "pk, sk, t, g, x, tx, c, nb"


def unreachable(item: Item, head: Item | None, now: int) -> bool:
    """Whether no live key reaches ``item`` (a chunk or member item, or a head) given its key's head."""
    sk = item["sk"]["B"]
    live = head is not None and "t" in head and ("x" not in head or int(head["x"]["N"]) > now)
    if sk == HEAD:  # an expired head that DynamoDB's TTL would delete (lock heads keep no tx: kept)
        return not live and head is not None and "tx" in head and "x" in head
    if not live:
        return True
    if sk[:1] == CHUNK:
        return "c" not in head or head.get("g", {}).get("B") != sk[1:9] or int.from_bytes(sk[9:13], "big") >= int(head["c"]["N"])
    return ("nb" in head or head.get("g") != item.get("g")  # a compact head holds its members itself
            or KIND_TYPES.get(sk[0]) != head["t"]["S"])


def condition(item: Item) -> tuple[str, list[dict]]:
    """The WHERE clause (after pk and sk) that keeps the item as it was judged, and its parameters."""
    if item["sk"]["B"] == HEAD:
        return " AND x = ?", [item["x"]]
    if "g" in item:
        return " AND g = ?", [item["g"]]
    return "", []  # a chunk: its generation is in its sort key


@dataclass
class Report:
    scanned: int = 0
    read_units: float = 0.0
    found: int = 0  # unreachable when scanned
    deleted: int = 0
    kept: int = 0  # reachable again after the grace period, or changed since
    deleted_bytes: int = 0
    write_units: float = 0.0
    requests: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)

    def summary(self, seconds: float, dry_run: bool) -> dict:
        return {"dry_run": dry_run, "items_scanned": self.scanned, "unreachable_found": self.found,
                "deleted": self.deleted, "kept_reachable_again": self.kept, "deleted_bytes": self.deleted_bytes,
                "read_units": round(self.read_units, 1), "write_units": round(self.write_units, 1),
                "requests": dict(self.requests), "deleted_by_kind": dict(self.by_kind), "seconds": round(seconds, 2)}


def describe(result: dict) -> list[str]:
    """A sweep's summary (``Sweep.run``'s result) as the lines `redimo sweep` and `manage.py redimo_sweep` print."""
    verb = "Would delete" if result["dry_run"] else "Deleted"
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(result["deleted_by_kind"].items())) or "nothing"
    return [f"Scanned {result['items_scanned']} items ({result['read_units']} RCU) in {result['seconds']} s.",
            f"{verb} {result['deleted']} unreachable items ({kinds}), {result['deleted_bytes']} bytes"
            f"{'' if result['dry_run'] else ', ' + str(result['write_units']) + ' WCU'}; "
            f"{result['kept_reachable_again']} found unreachable were reachable again and kept."]


KIND_NAMES = {0x00: "expired head", 0x01: "chunk", **{kind: f"{type_} member" for kind, type_ in KIND_TYPES.items()}}


class Sweep:
    """One sweep of a table (or of one namespace): see the module's docstring."""

    def __init__(self, gateway: Gateway, namespace: str | None = None, *, grace: float = GRACE, workers: int = 4,
                 dry_run: bool = False, checkpoint: Path | None = None,
                 progress: Callable[[int], None] = lambda scanned: None) -> None:
        self.gateway, self.workers, self.dry_run = gateway, workers, dry_run
        self.grace = 0.0 if dry_run else grace  # a dry run reports what is unreachable now
        self.prefix = None if namespace is None else namespace.encode() + b"\x00"
        self.checkpoint, self.progress = checkpoint, progress
        self.report = Report()
        self.found: deque[tuple[float, Item]] = deque()  # (when found, item), oldest first
        self.positions: dict[int, Item | None] = self.load_positions()
        self.lock = threading.Lock()

    # -- positions (resuming) -----------------------------------------------------------------------
    def load_positions(self) -> dict[int, Item | None]:
        if self.checkpoint is None or not self.checkpoint.exists():
            return {}
        saved = json.loads(self.checkpoint.read_text())
        if saved.get("workers") != self.workers:
            raise ValueError(f"checkpoint {self.checkpoint} was made with --workers {saved.get('workers')}")
        return {int(segment): None if key is None else {name: {"B": base64.b64decode(value)} for name, value in key.items()}
                for segment, key in saved["positions"].items()}

    def save_positions(self) -> None:
        if self.checkpoint is None:
            return
        positions = {str(segment): None if key is None else {name: base64.b64encode(value["B"]).decode()
                                                              for name, value in key.items()}
                     for segment, key in self.positions.items()}
        self.checkpoint.write_text(json.dumps({"workers": self.workers, "positions": positions}))

    # -- scanning -----------------------------------------------------------------------------------
    def scan_segment(self, segment: int) -> None:
        """Scan one segment, queueing the items that were unreachable when read."""
        if segment in self.positions and self.positions[segment] is None:
            return  # done by the run this one resumes
        start = self.positions.get(segment)
        heads: dict[bytes, Item | None] = {}
        while True:
            before = self.gateway.usage.snapshot()
            page, start = self.gateway.scan_page(start=start, segment=(segment, self.workers), consistent=False,
                                                 filter_expression="begins_with(pk, :prefix)" if self.prefix else None,
                                                 values={":prefix": {"B": self.prefix}} if self.prefix else None)
            now = millis()
            for item in page:  # a key's items come together, its head first
                pk, sk = item["pk"]["B"], item["sk"]["B"]
                if sk == HEAD:
                    heads = {pk: item}
                if sk[:1] == SIDE or pk.split(b"\x00", 1)[0].endswith(PUBSUB):
                    continue  # not a key's: side items, and Pub/Sub's channels (their own TTLs)
                if unreachable(item, heads.get(pk), now):
                    self.found.append((time.monotonic(), item))
            with self.lock:
                self.report.scanned += len(page)
                self.report.read_units += (self.gateway.usage - before).read_units
                self.positions[segment] = start
            self.progress(len(page))
            if start is None:
                return

    # -- judging again and deleting -----------------------------------------------------------------
    def settle(self, items: list[Item]) -> None:
        """Read the heads again; delete the items still unreachable, each as it was judged."""
        self.report.found += len(items)
        keys = {item["pk"]["B"]: {"pk": item["pk"], "sk": {"B": HEAD}} for item in items}
        heads = {head["pk"]["B"]: head for head in self.gateway.batch_get(list(keys.values()), HEAD_PROJECTION)}
        now = millis()
        doomed = [item for item in items if unreachable(item, heads.get(item["pk"]["B"]), now)]
        self.report.kept += len(items) - len(doomed)
        if self.dry_run or not doomed:
            self.count(doomed)  # a dry run counts what it would delete
            return
        statements = []
        for item in doomed:
            extra, parameters = condition(item)
            statements.append({"Statement": self.gateway.delete_statement(extra),
                               "Parameters": [item["pk"], item["sk"], *parameters]})
        responses = self.gateway.batch_execute(statements)
        deleted = [item for item, response in zip(doomed, responses) if "Error" not in response]
        self.report.kept += len(doomed) - len(deleted)
        self.count(deleted)

    def count(self, items: Iterable[Item]) -> None:
        for item in items:
            size = item_size(item)
            self.report.deleted += 1
            self.report.deleted_bytes += size
            self.report.by_kind[KIND_NAMES.get(item["sk"]["B"][0], "other")] += 1

    def drain(self, until_all: bool) -> None:
        """Settle the items found, 100 at a time once the grace of all 100 has passed (a BatchGetItem of
        their heads, then ceil(doomed/25) deletes, so the whole sweep deletes in ceil(n/25) requests);
        the last part of 100 only at the end (``until_all``, waiting for its grace)."""
        while len(self.found) >= 100 or (until_all and self.found):
            batch = [self.found[index] for index in range(min(100, len(self.found)))]
            wait = max(found_at for found_at, _ in batch) + self.grace - time.monotonic()
            if wait > 0:
                if not until_all:
                    return
                time.sleep(wait)
            for _ in batch:
                self.found.popleft()
            self.settle([item for _, item in batch])

    def run(self) -> dict:
        """Sweep: every segment in its own thread; found items settled as their grace passes."""
        started = time.monotonic()
        before = self.gateway.usage.snapshot()
        threads = [threading.Thread(target=self.scan_segment, args=(segment,), daemon=True)
                   for segment in range(self.workers)]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                time.sleep(0.2)
                self.drain(until_all=False)
                self.save_positions()
        except BaseException:
            self.save_positions()
            raise
        self.save_positions()
        self.drain(until_all=True)
        if self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)
        spent = self.gateway.usage - before
        self.report.requests = spent.requests
        self.report.write_units = spent.write_units
        return self.report.summary(time.monotonic() - started, self.dry_run)
