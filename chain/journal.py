"""The development chain's write-ahead journal: every mined block's raw signed transactions.

Why not Anvil's own `--state-interval` dumps: tested here under load, a SIGKILL left dumps whose
account state was ahead of their block list (a contract counter said 66 batches, the logs held
65) and, once, an empty state file that Anvil then refused to load. A chain is a deterministic
function of its genesis and its ordered transactions, so we keep exactly that: one JSON line per
block (number, timestamp, raw transactions), appended and fsynced by the keeper process, and on
start we replay it into a fresh Anvil block by block with the original timestamps. A torn last
line (a crash mid-write) is ignored; whatever the journal missed is resubmitted by the outboxes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChainJournal", "JournalBlock"]


@dataclass(frozen=True)
class JournalBlock:
    number: int
    timestamp: int
    raw_transactions: tuple[str, ...]


class ChainJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def genesis(self) -> dict[str, int] | None:
        for record in self._records():
            genesis = record.get("genesis")
            if isinstance(genesis, dict):
                return {str(k): int(v) for k, v in genesis.items()}
            break
        return None

    def start(self, genesis: dict[str, int]) -> None:
        """Begin a new journal for a chain started with these genesis parameters."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            handle.write(json.dumps({"genesis": genesis}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def append(self, blocks: list[JournalBlock]) -> None:
        if not blocks:
            return
        lines = "".join(
            json.dumps({"n": b.number, "ts": b.timestamp, "txs": list(b.raw_transactions)}) + "\n" for b in blocks
        )
        with open(self.path, "ab") as handle:  # buffered write: loops until every byte is written
            handle.write(lines.encode())
            handle.flush()
            os.fsync(handle.fileno())

    def repair(self) -> int:
        """Cut a torn or unreadable tail (a crash mid-write) so later appends stay readable.

        Returns the number of bytes removed. Must run before anything appends after a crash.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                json.loads(line)
            except ValueError:
                break
            good += len(line)
        if good == len(data):
            return 0
        with open(self.path, "r+b") as handle:
            handle.truncate(good)
            handle.flush()
            os.fsync(handle.fileno())
        return len(data) - good

    def blocks(self) -> Iterator[JournalBlock]:
        for record in self._records():
            if "n" in record:
                yield JournalBlock(int(record["n"]), int(record["ts"]), tuple(str(t) for t in record["txs"]))

    def last_block(self) -> int:
        last = 0
        for block in self.blocks():
            last = block.number
        return last

    def _records(self) -> Iterator[dict[str, Any]]:
        try:
            handle = open(self.path)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                if not line.endswith("\n"):
                    return  # torn write at a crash: everything before it is intact
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    return
