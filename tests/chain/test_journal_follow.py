"""The journal follows a reverted chain by cutting its tail (review s38, finding 1): the cut leaves a
journal `verify` accepts, at every point a kill could stop it (one ftruncate at a line boundary)."""

from __future__ import annotations

from pathlib import Path

from chain.journal import ChainJournal, JournalBlock


def _journal(path: Path, count: int) -> ChainJournal:
    journal = ChainJournal(path)
    journal.start({"chain_id": 1, "timestamp": 1, "gas_limit": 30_000_000})
    parent = "0x" + "00" * 32
    blocks = []
    for n in range(1, count + 1):
        block_hash = "0x" + f"{n:064x}"
        blocks.append(JournalBlock(n, 1 + n, (), block_hash, parent, "0x" + "11" * 32))
        parent = block_hash
    journal.append(blocks)
    return journal


def test_cutting_the_tail_leaves_a_journal_that_verifies_and_appends(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.jsonl", 5)
    assert journal.truncate_after(2) == 3
    assert journal.verify() == 2 and journal.last() is not None and journal.last().number == 2  # type: ignore[union-attr]
    assert journal.truncate_after(2) == 0
    journal.append([JournalBlock(3, 9, (), "0x" + "ab" * 32, "0x" + f"{2:064x}", "0x" + "11" * 32)])
    assert journal.verify() == 3
    assert journal.truncate_after(0) == 3 and journal.verify() == 0 and journal.last() is None


def test_every_prefix_at_a_line_boundary_is_a_journal_repair_and_verify_accept(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.jsonl", 4)
    data = journal.path.read_bytes()
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    for end in ends:  # where a cut (or a kill around it) can leave the file
        journal.path.write_bytes(data[:end])
        assert journal.repair() == 0
        assert journal.verify() == ends.index(end)
