"""The chain journal cannot be silently edited (issue 13, class 5): its lines are chained by hash,
and replay refuses a journal whose re-mined blocks are not the blocks it recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from chain.journal import ChainJournal, JournalBlock, JournalBroken
from chain.node import start_anvil, stop_anvil
from chain.recorder import canonical_payload
from keys.ids import to_bytes32
from tests.conftest import run_cli
from tests.support import oracle, recorder, wait_journaled

GENESIS = {"chain_id": 31337, "timestamp": 1, "gas_limit": 30_000_000}


def _block(n: int, txs: tuple[str, ...] = ()) -> JournalBlock:
    return JournalBlock(n, n + 1, txs, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", state_root=f"0x{n:064x}")


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _rechain(lines: list[bytes]) -> list[bytes]:
    """What a careful forger does after editing a line: recompute every `prev` after it."""
    out = [lines[0]]
    for line in lines[1:]:
        record = json.loads(line)
        record["prev"] = hashlib.sha256(out[-1]).hexdigest()
        out.append((json.dumps(record, separators=(",", ":")) + "\n").encode())
    return out


def test_each_line_chains_to_the_one_before(tmp_path: Path) -> None:
    journal = ChainJournal(tmp_path / "journal.jsonl")
    journal.start(GENESIS)
    journal.append([_block(1, ("0x01",)), _block(2)])
    ChainJournal(journal.path).append([_block(3, ("0x03",))])  # another keeper process resumes the chain
    assert journal.verify() == 3
    lines = _lines(journal.path)
    assert json.loads(lines[1])["prev"] == hashlib.sha256(lines[0]).hexdigest()
    assert json.loads(lines[3])["prev"] == hashlib.sha256(lines[2]).hexdigest()

    edited = [*lines[:2], lines[2].replace(b'"ts":3', b'"ts":4'), *lines[3:]]
    journal.path.write_bytes(b"".join(edited))
    with pytest.raises(JournalBroken, match="edited at or just before block 3"):
        journal.verify()
    journal.path.write_bytes(b"".join([lines[0], lines[2], lines[1], lines[3]]))  # reordered
    with pytest.raises(JournalBroken, match="block 2"):
        journal.verify()
    journal.path.write_bytes(b"".join(_rechain([lines[0], lines[1], lines[3]])))  # a block removed, chain redone
    with pytest.raises(JournalBroken, match="jumps to block 3"):
        journal.verify()


def test_a_damaged_line_in_the_middle_is_refused_not_cut(tmp_path: Path) -> None:
    """Only a torn *tail* is a crash; cutting at the first bad line would silently drop every block after it."""
    journal = ChainJournal(tmp_path / "journal.jsonl")
    journal.start(GENESIS)
    journal.append([_block(1), _block(2), _block(3)])
    lines = _lines(journal.path)
    journal.path.write_bytes(b"".join([lines[0], b"{not json\n", *lines[2:]]))
    assert journal.repair() == 0
    assert len(_lines(journal.path)) == 4
    with pytest.raises(JournalBroken, match="line 2: not a JSON line"):
        journal.verify()


def test_an_old_unchained_journal_is_refused_with_a_plain_message(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"genesis": GENESIS}) + "\n" + json.dumps({"n": 1, "ts": 2, "txs": []}) + "\n")
    with pytest.raises(JournalBroken, match="format 1 .*cannot be checked"):
        ChainJournal(path).verify()


def _journaled_chain_with_a_batch(chain) -> tuple[Path, int]:  # type: ignore[no-untyped-def]
    """Record events, stop the chain cleanly; returns the journal and the block holding the batch."""
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "water", 2))
    rec.record(1, to_bytes32("pump-1"), canonical_payload({"forged": "no"}))
    receipt_block = int(chain.client.rpc.call("eth_blockNumber"), 16)
    rec.record(1, to_bytes32("pump-1"), canonical_payload({"after": True}))
    wait_journaled(chain.settings)
    stop_anvil(chain.settings)
    return chain.settings.chain_dir / "journal.jsonl", receipt_block


def test_emptying_a_block_and_redoing_the_chain_is_caught_by_the_state_root(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    path, block = _journaled_chain_with_a_batch(chain)
    lines = _lines(path)
    record = json.loads(lines[block])
    assert record["n"] == block and len(record["txs"]) == 1
    record["txs"] = []  # the batch erased
    lines[block] = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    path.write_bytes(b"".join(_rechain(lines)))
    assert ChainJournal(path).verify() > block  # the forged chain of lines is consistent...
    with pytest.raises(JournalBroken, match=f"at block {block} .*stateRoot"):
        start_anvil(chain.settings)  # ...but the replayed block is not the block the journal recorded
    # the command says so in one line, without a traceback, and leaves no chain running
    done = run_cli(["chain", "up"], chain.env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"at block {block}" in done.stderr and "refusing to start" in done.stderr
    assert "Traceback" not in done.stderr


def test_editing_a_line_without_the_chain_is_caught_before_replay(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    path, block = _journaled_chain_with_a_batch(chain)
    lines = _lines(path)
    record = json.loads(lines[block])
    record["txs"] = []
    lines[block] = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    path.write_bytes(b"".join(lines))
    done = run_cli(["chain", "up"], chain.env)
    assert done.returncode == 2 and f"edited at or just before block {block + 1}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_untouched_journal_replays_to_the_same_block_hashes(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    head = int(chain.client.rpc.call("eth_blockNumber"), 16)
    before = chain.client.rpc.call("eth_getBlockByNumber", [hex(head), False])["hash"]
    path, _ = _journaled_chain_with_a_batch(chain)
    start_anvil(chain.settings)
    assert chain.client.rpc.call("eth_getBlockByNumber", [hex(head), False])["hash"] == before
    assert ChainJournal(path).verify() >= head
