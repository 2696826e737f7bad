"""Link endpoints whose long-term keys a quorum's indicator names are found from the chain (`intel.link_keys`);
one oracle's word, or a withdrawn indicator, names none. Its own chain: it leaves indicators in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.indicators import indicator_records
from intel.link_keys import named_endpoints
from links.endpoint import Directory, EndpointKeys
from tests.chain.test_indicators import _publish, _verdicts, _withdraw

pytestmark = pytest.mark.chain


def test_a_quorums_indicator_names_a_link_endpoint_and_nothing_else_does(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    stolen, lone, cleared, clean = (EndpointKeys.generate(f"gw-{n}").public() for n in ("a", "b", "c", "d"))
    directory = Directory([stolen, lone, cleared, clean])
    _publish(chain, _verdicts(chain, "water", (1, 2, 3), "key-fingerprint", stolen.fingerprint()),
             "key-fingerprint", stolen.fingerprint())
    _publish(chain, _verdicts(chain, "water", (1,), "key-fingerprint", lone.fingerprint()),
             "key-fingerprint", lone.fingerprint())
    _publish(chain, _verdicts(chain, "water", (2, 3, 4), "key-fingerprint", cleared.fingerprint()),
             "key-fingerprint", cleared.fingerprint())
    _withdraw(chain, "key-fingerprint", cleared.fingerprint())
    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        named = named_endpoints(directory, indicator_records(index.db))
    finally:
        index.close()
    assert sorted(named) == ["gw-a"]
    assert named["gw-a"].body["value"] == stolen.fingerprint()
