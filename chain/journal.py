"""The development chain's write-ahead journal: every mined block's raw signed transactions.

Why not Anvil's own `--state-interval` dumps: tested here under load, a SIGKILL left dumps whose
account state was ahead of their block list (a contract counter said 66 batches, the logs held
65) and, once, an empty state file that Anvil then refused to load. A chain is a deterministic
function of its genesis and its ordered transactions, so we keep exactly that: one JSON line per
block, appended and fsynced by the keeper process, and on start we replay it into a fresh Anvil
block by block with the original timestamps (`chain.node._replay`).

Format 2 (issue 13): the journal cannot be silently edited.
- The first line is the genesis: ``{"format": 2, "genesis": {chain_id, timestamp, gas_limit}}``.
- Each block line records the block as the chain mined it: ``n``, ``ts``, ``txs`` (raw signed
  transactions), ``hash``, ``parent``, ``stateRoot``, ``txRoot``, ``receiptsRoot``, and ``prev``:
  the sha256 of the previous line's bytes (newline included), so the lines form a hash chain
  from the genesis line on. `verify()` checks that chain, contiguous numbers and parent hashes
  before anything is replayed; the replay then checks each re-mined block against its line.
- Editing a line without fixing the chain breaks the chain; fixing the chain too (say, emptying a
  block's transactions and rewriting every ``prev``) leaves lines whose recorded roots the
  replayed blocks do not reproduce. Anvil 1.7.1 (prague) reproduces a replayed block's *hash*
  exactly (checked: every header field, mixHash/prevrandao included, is the same for automined
  blocks re-mined with ``evm_mine`` at their timestamps; `tests/chain/test_journal_chain.py`), so
  the replay compares the hash and, to say why one differs, the state, transactions and receipts
  roots and the parent hash.
- What it cannot stop: a development chain has no validators, so someone who re-executes an
  altered transaction list in their own Anvil can write a journal whose every line is consistent.
  The chain's integrity in production comes from QBFT validators' signed blocks, not this file;
  this journal is tamper-*evident* against edits that were not re-mined, and an auditor who kept
  a block hash (the audit's index checkpoints) sees a re-mined history as a different chain.
- Format 1 journals (before issue 13: no hashes, no chain) are refused with a plain message, not
  replayed with a warning: accepting them would let anyone strip the chain from a format-2 journal
  and have it replayed unchecked.

A torn last line (a crash mid-write) is cut by `repair()`; whatever the journal missed is
resubmitted by the outboxes. Only the tail is ever cut: an unreadable line *followed by* more
lines is not a torn write, and `verify()` refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ChainError

__all__ = ["FORMAT", "ChainJournal", "JournalBlock", "JournalBroken", "line_hash"]

FORMAT = 2


class JournalBroken(ChainError):
    """The journal is not a chain of lines this code wrote: edited, reordered, or an old format."""


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class JournalBlock:
    number: int
    timestamp: int
    raw_transactions: tuple[str, ...]
    hash: str = ""
    parent_hash: str = ""
    state_root: str = ""
    transactions_root: str = ""
    receipts_root: str = ""

    @classmethod
    def from_rpc(cls, block: dict[str, Any], raw_transactions: tuple[str, ...]) -> JournalBlock:
        """From an `eth_getBlockByNumber` answer."""
        return cls(int(block["number"], 16), int(block["timestamp"], 16), raw_transactions,
                   str(block["hash"]), str(block["parentHash"]), str(block["stateRoot"]),
                   str(block["transactionsRoot"]), str(block["receiptsRoot"]))

    def record(self, prev: str) -> dict[str, Any]:
        return {"n": self.number, "ts": self.timestamp, "txs": list(self.raw_transactions), "hash": self.hash,
                "parent": self.parent_hash, "stateRoot": self.state_root, "txRoot": self.transactions_root,
                "receiptsRoot": self.receipts_root, "prev": prev}

    def differences(self, block: dict[str, Any]) -> list[str]:
        """What a re-mined block (an `eth_getBlockByNumber` answer) does not share with this line."""
        pairs = (("stateRoot", self.state_root), ("transactionsRoot", self.transactions_root),
                 ("receiptsRoot", self.receipts_root), ("parentHash", self.parent_hash), ("hash", self.hash))
        return [f"{name} {str(block.get(name))[:14]}… where the journal says {want[:14]}…"
                for name, want in pairs if str(block.get(name, "")).lower() != want.lower()]


class ChainJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail: str | None = None  # line_hash of the last line, once known

    def genesis(self) -> dict[str, int] | None:
        for record in self._records():
            genesis = record.get("genesis")
            if isinstance(genesis, dict):
                return {str(k): int(v) for k, v in genesis.items()}
            break
        return None

    def format(self) -> int | None:
        """The journal's format (1 for a journal from before hash chaining), None without a journal."""
        for record in self._records():
            return int(record.get("format", 1)) if "genesis" in record else 1
        return None

    def start(self, genesis: dict[str, int]) -> None:
        """Begin a new journal for a chain started with these genesis parameters."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        line = (json.dumps({"format": FORMAT, "genesis": genesis}) + "\n").encode()
        with open(tmp, "wb") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._tail = line_hash(line)

    def append(self, blocks: list[JournalBlock]) -> None:
        if not blocks:
            return
        prev = self._tail if self._tail is not None else self._last_line_hash()
        out = bytearray()
        for block in blocks:
            line = (json.dumps(block.record(prev), separators=(",", ":")) + "\n").encode()
            out += line
            prev = line_hash(line)
        with open(self.path, "ab") as handle:  # buffered write: loops until every byte is written
            handle.write(out)
            handle.flush()
            os.fsync(handle.fileno())
        self._tail = prev

    def truncate_after(self, number: int) -> int:
        """Drop every block line after block `number` (0: keep only the genesis line); returns how many.

        Why: the journal follows the chain when a client reverts it (`evm_revert`), as an indexer follows
        a reorg. Crash-safe: one ftruncate at the byte offset of the first dropped line, then fsync, so a
        kill leaves either the whole journal or its prefix, and a prefix is a journal `verify` accepts."""
        offset = 0
        dropped = 0
        cut: int | None = None
        with open(self.path, "rb") as handle:
            for line in handle:
                if cut is None:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        record = None
                    if isinstance(record, dict) and "n" in record and int(record["n"]) > number:
                        cut = offset
                if cut is not None and line.endswith(b"\n"):
                    dropped += 1
                offset += len(line)
        if cut is None:
            return 0
        with open(self.path, "r+b") as handle:
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
        self._tail = None
        return dropped

    def last(self) -> JournalBlock | None:
        """The journal's last block, None for a journal of its genesis line only (read from the end)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                end = handle.tell()
                step = min(end, 1 << 16)
                while True:
                    handle.seek(end - step)
                    chunk = handle.read(step)
                    cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
                    if cut >= 0 or step == end:
                        break
                    step = min(end, step * 4)
        except FileNotFoundError:
            return None
        try:
            record = json.loads(chunk[cut + 1:])
        except ValueError:
            return None
        return self._block(record) if isinstance(record, dict) and "n" in record else None

    def _last_line_hash(self) -> str:
        """sha256 of the file's last line (read backwards from the end: journals grow large)."""
        with open(self.path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            start, chunk = end, b""
            while start > 0:
                step = min(1 << 20, start)
                start -= step
                handle.seek(start)
                chunk = handle.read(step) + chunk
                if chunk.rfind(b"\n", 0, len(chunk) - 1) >= 0:
                    break
        cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
        return line_hash(chunk[cut + 1:])

    def repair(self) -> int:
        """Cut a torn tail (a crash mid-write) so later appends stay readable: the bytes after the last
        newline, and the last complete line if it does not parse. Never anything before it.

        Returns the number of bytes removed. Must run before anything appends after a crash.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        good = data.rfind(b"\n") + 1
        if good > 0:
            last_start = data.rfind(b"\n", 0, good - 1) + 1
            try:
                json.loads(data[last_start:good])
            except ValueError:
                good = last_start
        self._tail = None
        if good == len(data):
            return 0
        with open(self.path, "r+b") as handle:
            handle.truncate(good)
            handle.flush()
            os.fsync(handle.fileno())
        return len(data) - good

    def verify(self) -> int:
        """Check the whole chain of lines; returns the number of blocks. Raises JournalBroken, naming
        the first line that does not belong, for a format-1 journal, an edited, reordered, inserted
        or removed line, a gap in block numbers or parent hashes that do not link."""
        prev: str | None = None
        previous_block: JournalBlock | None = None
        count = 0
        for number, (raw, record) in enumerate(self._lines(), 1):
            where = f"{self.path}, line {number}"
            if record is None:
                raise JournalBroken(f"the chain journal is damaged at {where}: not a JSON line")
            if prev is None:
                if "genesis" not in record:
                    raise JournalBroken(f"the chain journal {self.path} does not start with its genesis line")
                if int(record.get("format", 1)) != FORMAT:
                    raise JournalBroken(
                        f"the chain journal {self.path} is in format {record.get('format', 1)} (written before "
                        "journals were hash-chained): it cannot be checked, so it is not replayed. Move it aside "
                        "to start a new chain (then `qeaims deploy`), or keep it with the code that wrote it")
                prev = line_hash(raw)
                continue
            try:
                block = self._block(record)
                claimed = str(record["prev"])
            except (KeyError, TypeError, ValueError):
                raise JournalBroken(f"the chain journal is damaged at {where}: not a block line") from None
            if claimed != prev:
                raise JournalBroken(f"the chain journal was edited at or just before block {block.number} ({where}): "
                                    "its line does not chain to the line before it")
            expected = 1 if previous_block is None else previous_block.number + 1
            if block.number != expected:
                raise JournalBroken(f"the chain journal jumps to block {block.number} at {where}; expected {expected}")
            if not all((block.hash, block.parent_hash, block.state_root)):
                raise JournalBroken(f"the chain journal's block {block.number} ({where}) records no block hash or "
                                    "state root")
            if previous_block is not None and block.parent_hash.lower() != previous_block.hash.lower():
                raise JournalBroken(f"the chain journal's block {block.number} ({where}) does not name block "
                                    f"{previous_block.number}'s hash as its parent")
            prev, previous_block = line_hash(raw), block
            count += 1
        return count

    @staticmethod
    def _block(record: dict[str, Any]) -> JournalBlock:
        return JournalBlock(int(record["n"]), int(record["ts"]), tuple(str(t) for t in record["txs"]),
                            str(record.get("hash", "")), str(record.get("parent", "")),
                            str(record.get("stateRoot", "")), str(record.get("txRoot", "")),
                            str(record.get("receiptsRoot", "")))

    def blocks(self) -> Iterator[JournalBlock]:
        for record in self._records():
            if "n" in record:
                yield self._block(record)

    def last_block(self) -> int:
        last = 0
        for block in self.blocks():
            last = block.number
        return last

    def _lines(self) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
        """Every complete line with its parsed record (None if it does not parse); a torn tail ends it."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    return  # torn write at a crash: everything before it is intact
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                yield line, record if isinstance(record, dict) else None

    def _records(self) -> Iterator[dict[str, Any]]:
        for _, record in self._lines():
            if record is None:
                return
            yield record
