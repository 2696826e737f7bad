"""Deployment wiring and membership changes through the council, on a real Anvil."""

from __future__ import annotations

import pytest

from chain.consortium import ORACLES_PER_SECTOR, SECTORS
from chain.deploy import role
from chain.governance import Council
from keys.hybrid import sign_registration
from keys.identity import HybridIdentity
from keys.ids import to_bytes32
from qeaims.errors import ContractRejected
from tests.support import governor


def test_consortium_is_registered_and_council_holds_every_admin_role(chain) -> None:  # type: ignore[no-untyped-def]
    client, deployment = chain.client, chain.deployment
    for sector in SECTORS:
        assert client.call1("Registry", "activeOracleCount", to_bytes32(sector)) == ORACLES_PER_SECTOR
        assert client.call1("IsolationQuorum", "requiredVotes", to_bytes32(sector)) == 3
    for contract in ("Registry", "IsolationQuorum"):
        for name in ("DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE"):
            assert client.call1(contract, "hasRole", role(name), deployment.governance_council)
            assert not client.call1(contract, "hasRole", role(name), deployment.deployer)
    assert client.call1("Registry", "hasRole", role("STATUS_ROLE"), deployment.isolation_quorum)
    assert client.call1("GovernanceCouncil", "threshold") == 4
    assert len(client.call1("GovernanceCouncil", "governors")) == 6


def test_new_oracle_needs_four_of_six_governors(chain) -> None:  # type: ignore[no-untyped-def]
    client, settings = chain.client, chain.settings
    council = Council(client)
    newcomer = HybridIdentity.generate()
    pop = sign_registration(newcomer, chain_id=client.chain_id, registry=chain.deployment.registry,
                            sector=to_bytes32("water"), operator=to_bytes32("city-water"))
    calls = [("Registry", "registerOracle", [newcomer.address, to_bytes32("water"), to_bytes32("city-water"),
                                              newcomer.pq_public_key, pop])]
    governors = [governor(settings, s).account for s in SECTORS]
    proposal = council.propose(governors[0], calls, "register a fifth water oracle")
    for g in governors[1:3]:
        council.approve(g, proposal)
    assert council.state(proposal) == "Pending"
    with pytest.raises(ContractRejected) as rejected:
        council.execute(governors[0], proposal)
    assert rejected.value.error == "CouncilWrongState"
    council.approve(governors[3], proposal)
    assert council.state(proposal) == "Ready"
    council.execute(governors[0], proposal)
    assert council.state(proposal) == "Executed"
    record = client.call1("Registry", "oracle", newcomer.address)
    assert int(record[4]) == 1 and int(record[3]) == 1 and bytes(record[2]) == newcomer.pq_key_hash
    # undo, so other tests see 4 water oracles: removal also goes through the council
    Council(client, governors).pass_proposal([("Registry", "removeOracle", [newcomer.address, to_bytes32("test done")])], "remove")
    assert client.call1("Registry", "activeOracleCount", to_bytes32("water")) == ORACLES_PER_SECTOR


def test_a_governor_alone_cannot_change_registry(chain) -> None:  # type: ignore[no-untyped-def]
    g = governor(chain.settings, "water").account
    with pytest.raises(ContractRejected) as rejected:
        chain.client.transact(g, "Registry", "addSector", to_bytes32("aviation"))
    assert rejected.value.error == "AccessControlUnauthorizedAccount"
