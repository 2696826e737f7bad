"""The index follows the chain, including when a restarted dev chain rolled back some blocks."""

from __future__ import annotations

from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.node import start_anvil, stop_anvil
from chain.recorder import canonical_payload
from keys.ids import to_bytes32
from tests.support import oracle, recorder, stop_journaling, wait_journaled


def _events_in_index(index: Indexer) -> list[tuple[str, int]]:
    return [(o, s) for o, s in index.db.execute("SELECT oracle, seq FROM events ORDER BY block, log_index")]


def test_index_is_resumable_and_rewinds_blocks_the_chain_lost(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "electricity", 2))
    for i in range(3):
        rec.record(1, to_bytes32("feeder-2"), canonical_payload({"i": i}))
    wait_journaled(chain.settings)
    index = Indexer(chain.settings.index_path, chain.client.rpc, chain.deployment, contract_abis())
    first = index.sync()
    assert first.rewound_to is None and len(_events_in_index(index)) == 3
    again = index.sync()  # resumable: nothing new, nothing re-read
    assert again.logs == 0 and again.from_block == first.to_block + 1

    # the keeper journals no more, two more events are mined and indexed, then Anvil is killed:
    stop_journaling(chain.settings)
    for i in range(3, 5):
        rec.record(1, to_bytes32("feeder-2"), canonical_payload({"i": i}))
    index.sync()
    assert len(_events_in_index(index)) == 5
    stop_anvil(chain.settings, hard=True)
    start_anvil(chain.settings)  # replays only what was journaled
    chain.reconnect()
    index.rpc = chain.client.rpc
    rolled_back = index.sync()
    assert rolled_back.rewound_to is not None
    assert len(_events_in_index(index)) == 3  # the index never keeps what the chain lost

    rec.client = chain.client
    assert rec.sync() == 2  # the outbox still has them, and sends them again
    rec.flush()
    index.sync()
    address = rec.identity.address.lower()
    assert _events_in_index(index) == [(address, s) for s in range(1, 6)]
    index.close()
