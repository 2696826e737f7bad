"""Deployment wiring and the governance council on a real Anvil: calls by hash, the timelock, the
emergency path, ML-DSA-signed approvals and the recount an auditor makes from the logs alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain.client import ChainClient
from chain.connect import contract_abis
from chain.consortium import ORACLES_PER_SECTOR, SECTORS
from chain.council_audit import recount_council
from chain.deploy import deploy_contracts, dev_deployer, role
from chain.governance import STORM_OVERRIDES, Call, Council
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.node import start_anvil, stop_anvil
from core.config import Settings, load_settings
from core.errors import ContractRejected
from keys.council_messages import sign_approval
from keys.hybrid import sign_registration
from keys.identity import HybridIdentity
from keys.ids import to_bytes32
from tests.conftest import FAST_SCRYPT_N, free_port, run_cli
from tests.support import governor

EIP7825_CAP = 16_777_216


# ---- the development consortium (session chain) ----------------------------------------------------


def test_consortium_is_registered_and_council_holds_every_admin_role(chain) -> None:  # type: ignore[no-untyped-def]
    client, deployment = chain.client, chain.deployment
    for sector in SECTORS:
        assert client.call1("Registry", "activeOracleCount", to_bytes32(sector)) == ORACLES_PER_SECTOR
    for contract in ("Registry", "IsolationQuorum"):
        for name in ("DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE"):
            assert client.call1(contract, "hasRole", role(name), deployment.governance_council)
            assert not client.call1(contract, "hasRole", role(name), deployment.deployer)
    assert client.call1("Registry", "hasRole", role("STATUS_ROLE"), deployment.isolation_quorum)
    assert client.call1("GovernanceCouncil", "threshold") == 4
    assert client.call1("GovernanceCouncil", "emergencyThreshold") == 5
    assert client.call1("GovernanceCouncil", "delay") == chain.settings.council_delay_s == 1
    assert len(client.call1("GovernanceCouncil", "governors")) == 6
    for sector in SECTORS:  # every governor's ML-DSA key is registered in the council
        g = governor(chain.settings, sector)
        assert client.call("GovernanceCouncil", "governorKey", g.address) == (g.pq_key_hash, 1)


def test_new_oracle_needs_four_of_six_governors(chain) -> None:  # type: ignore[no-untyped-def]
    client, settings = chain.client, chain.settings
    council = Council(client)
    newcomer = HybridIdentity.generate()
    pop = sign_registration(newcomer, chain_id=client.chain_id, registry=chain.deployment.registry,
                            sector=to_bytes32("water"), operator=to_bytes32("city-water"))
    calls: list[Call] = [("Registry", "registerOracle", [newcomer.address, to_bytes32("water"),
                                                         to_bytes32("city-water"), newcomer.pq_public_key, pop])]
    governors = [governor(settings, s) for s in SECTORS]
    proposal = council.propose(governors[0], calls, "register a fifth water oracle")
    for g in governors[1:3]:
        council.approve(g, proposal)
    assert council.state(proposal) == "Pending"
    with pytest.raises(ContractRejected) as rejected:
        council.execute(governors[0], proposal)
    assert rejected.value.error == "CouncilWrongState"
    council.approve(governors[3], proposal)
    assert council.state(proposal) in ("Queued", "Ready")  # queued for the 1 s development delay
    council.execute(governors[0], proposal, wait_s=10)
    assert council.state(proposal) == "Executed"
    record = client.call1("Registry", "oracle", newcomer.address)
    assert int(record[4]) == 1 and int(record[3]) == 1 and bytes(record[2]) == newcomer.pq_key_hash
    # undo, so other tests see 4 water oracles: removal also goes through the council
    Council(client, governors).pass_proposal(
        [("Registry", "removeOracle", [newcomer.address, to_bytes32("test done")])], "remove")
    assert client.call1("Registry", "activeOracleCount", to_bytes32("water")) == ORACLES_PER_SECTOR


def test_a_governor_alone_cannot_change_registry(chain) -> None:  # type: ignore[no-untyped-def]
    g = governor(chain.settings, "water").account
    with pytest.raises(ContractRejected) as rejected:
        chain.client.transact(g, "Registry", "addSector", to_bytes32("aviation"))
    assert rejected.value.error == "AccessControlUnauthorizedAccount"


def test_council_passes_governors_not_accounts(chain) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="HybridIdentity"):
        Council(chain.client, [governor(chain.settings, "water").account])  # type: ignore[list-item]


def test_gov_cli_shows_calls_from_the_log_and_lists_states(chain) -> None:  # type: ignore[no-untyped-def]
    shown = run_cli(["gov", "show", "1", "--json"], chain.env)
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)
    assert row["state"] == "executed" and row["hash_matches"] and row["calls"][0]["target"] == "Registry"
    listed = run_cli(["gov", "list", "--json"], chain.env)
    assert listed.returncode == 0, listed.stderr
    assert {r["state"] for r in json.loads(listed.stdout)} <= {"executed", "pending", "queued", "ready", "cancelled"}


def test_gov_cli_proposes_emergency_allowlist_changes(chain) -> None:  # type: ignore[no-untyped-def]
    for args, message in ((["GovernanceCouncil", "setDelay"], "never the council's own"),
                          (["IsolationQuorum", "noSuchFunction"], "has no function")):
        refused = run_cli(["gov", "propose", "emergency-allow", *args, "--governor", "water"], chain.env)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
    # (no proposal sent from the CLI here: the session's in-process client keeps the governors' nonces)
    listed = json.loads(run_cli(["gov", "list", "--json"], chain.env).stdout)
    [pid] = [p["id"] for p in listed if str(p["description"]).startswith("emergency allowlist:")]
    shown = json.loads(run_cli(["gov", "show", str(pid), "--json"], chain.env).stdout)
    assert shown["state"] == "executed"
    assert [(c["target"], c["emergency_allowed"]) for c in shown["calls"]] == [("GovernanceCouncil", False)] * 3


# ---- a bare deployment of our own: six fresh governors, no consortium -------------------------------


@dataclass
class Bare:
    settings: Settings
    client: ChainClient
    deployment: Deployment
    governors: list[HybridIdentity]
    home: Path

    @property
    def council(self) -> Council:
        return Council(self.client, self.governors)

    def recount(self) -> list[dict[str, Any]]:
        index = Indexer(self.home / "audit-index.sqlite", self.client.rpc, self.deployment, contract_abis())
        try:
            index.sync()
            return recount_council(index.db, self.client.chain_id, self.deployment.governance_council)
        finally:
            index.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bare]:
    home = tmp_path_factory.mktemp("qeaims-council")
    settings = load_settings(home=home, rpc_port=free_port(), scrypt_n=FAST_SCRYPT_N)
    start_anvil(settings)
    try:
        governors = [HybridIdentity.generate() for _ in range(6)]
        deployer = dev_deployer()
        client, deployment = deploy_contracts(settings, deployer, governors)
        for g in governors:
            client.wait(client.send_raw(deployer, to=g.address, value=10**21, gas=21_000))
        yield Bare(settings, client, deployment, governors, home)
    finally:
        stop_anvil(settings)


def _sector_calls(client: ChainClient, registry: str, sector: str, operator: str) -> list[Call]:
    calls: list[Call] = [("Registry", "addOperator", [to_bytes32(operator), to_bytes32(sector)])]
    for _ in range(4):
        oracle = HybridIdentity.generate()
        pop = sign_registration(oracle, chain_id=client.chain_id, registry=registry, sector=to_bytes32(sector),
                                operator=to_bytes32(operator))
        calls.append(("Registry", "registerOracle", [oracle.address, to_bytes32(sector), to_bytes32(operator),
                                                     oracle.pq_public_key, pop]))
    for i in range(4):
        calls.append(("Registry", "addNode", [to_bytes32(f"{sector}-node-{i}"), to_bytes32(sector),
                                              to_bytes32("substation"), 3, []]))
    return calls


def _set_cap(bps: int) -> list[Call]:
    return [("IsolationQuorum", "setIsolationCap", [bps])]


def test_one_sector_registration_fits_eip7825_per_transaction(bare: Bare) -> None:
    """Issue 13: operator + 4 oracles (1952-byte keys, 3309-byte proofs) + 4 nodes, end to end.
    Figures: `pytest tests/chain/test_deploy_and_governance.py -k eip7825 -s`."""
    calls = _sector_calls(bare.client, bare.deployment.registry, "water", "city-water")
    [result] = bare.council.pass_proposals([(calls, "register the water sector: operator, 4 oracles, 4 nodes")])
    figures = [("propose", int(result["propose"]["gasUsed"], 16))]
    figures += [(f"approve {i + 1}", int(r["gasUsed"], 16)) for i, r in enumerate(result["approve"])]
    figures.append(("execute", int(result["execute"]["gasUsed"], 16)))
    print("\none sector's registration through the council on Anvil (receipts' gasUsed):")
    for name, gas in figures:
        print(f"  {name:10s} {gas:>10,d} gas ({100 * gas / EIP7825_CAP:.1f} % of EIP-7825's cap)")
    assert all(gas < EIP7825_CAP for _, gas in figures)
    assert figures[0][1] < 2_000_000  # it was ~16.6M when proposals stored their calls
    assert bare.client.call1("Registry", "activeOracleCount", to_bytes32("water")) == 4


def test_timelock_waits_for_eta_and_revocation_unqueues(bare: Bare) -> None:
    council, g = bare.council, bare.governors
    council.pass_proposal([("GovernanceCouncil", "setDelay", [2])], "a 2 s delay for this test")
    try:
        pid = council.propose(g[0], _set_cap(3000), "cap 30 %")
        for governor_ in g[1:4]:
            council.approve(governor_, pid)
        assert council.state(pid) == "Queued"
        with pytest.raises(ContractRejected) as early:
            council.execute(g[0], pid)
        assert early.value.error == "CouncilWrongState"
        council.revoke(g[3], pid)  # below threshold: leaves the queue
        assert council.state(pid) == "Pending" and council.eta(pid) == 0
        council.approve(g[3], pid)  # back at threshold: a fresh eta
        assert council.state(pid) == "Queued"
        council.execute(g[0], pid, wait_s=15)  # waits out the delay in wall-clock time (no evm_increaseTime)
        assert bare.client.call1("IsolationQuorum", "isolationCapBps") == 3000
    finally:
        restore = council.propose(g[0], [("GovernanceCouncil", "setDelay", [1])], "back to 1 s")
        for governor_ in g[1:4]:
            council.approve(governor_, restore)
        council.execute(g[0], restore, wait_s=15)
    assert bare.client.call1("GovernanceCouncil", "delay") == 1


def test_execute_refuses_calls_other_than_proposed(bare: Bare) -> None:
    council, g = bare.council, bare.governors
    pid = council.propose(g[0], _set_cap(2000), "cap 20 %")
    for governor_ in g[1:4]:
        council.approve(governor_, pid)
    logged = council.proposal(pid)
    swapped = type(logged)(**{**logged.__dict__, "calldatas": [
        bare.client.abi("IsolationQuorum").encode_call("setIsolationCap", [10_000])]})
    with pytest.raises(ContractRejected) as rejected:
        council.execute(g[0], pid, swapped, wait_s=5)
    assert rejected.value.error == "CouncilCallsMismatch"
    council.execute(g[0], pid, logged, wait_s=5)
    assert bare.client.call1("IsolationQuorum", "isolationCapBps") == 2000


def _forge_approval(bare: Bare, forger: HybridIdentity, pid: int, calls_hash: bytes) -> None:
    """`forger` "approves" with its own ML-DSA signature for another proposal id (a replay): the
    contract checks only the length and epoch, so it counts it."""
    client = bare.client
    replayed = sign_approval(forger, chain_id=client.chain_id, council=bare.council.address, proposal_id=pid - 1,
                             calls_hash=calls_hash, key_epoch=1)
    client.transact(forger.account, "GovernanceCouncil", "approve", pid, calls_hash, 1, replayed)


def test_recount_flags_forged_approval_and_execution_without_genuine_quorum(bare: Bare) -> None:
    """Attack: a governor whose ECDSA key is in a quantum adversary's hands approves with a replayed
    ML-DSA signature. The contract cannot tell; the recount can."""
    council, g = bare.council, bare.governors
    pid = council.propose(g[0], _set_cap(2600), "cap 26 %")
    logged = council.proposal(pid)
    for governor_ in g[1:3]:
        council.approve(governor_, pid, logged)
    _forge_approval(bare, g[3], pid, logged.calls_hash)  # the fourth, deciding approval is forged
    council.execute(g[0], pid, logged, wait_s=10)
    problems = [f for f in bare.recount() if not f["ok"]]
    assert {(f["kind"], f["proposal_id"]) for f in problems} == {
        ("bad-approval-signature", pid), ("executed-without-quorum", pid)}
    [unfounded] = [f for f in problems if f["kind"] == "executed-without-quorum"]
    assert unfounded["approvals"] == 3 and unfounded["threshold"] == 4


def test_emergency_needs_threshold_plus_one_and_is_recorded(bare: Bare) -> None:
    council, g = bare.council, bare.governors
    # an hour's delay, kept: the later tests of this module use the emergency path. A bare deployment's
    # emergency allowlist is empty: the same (delayed) proposal allowlists the storm-day overrides.
    assert not council.is_emergency_call("IsolationQuorum", "setIsolationCap")
    council.pass_proposal([("GovernanceCouncil", "setDelay", [3600]), *council.emergency_allow(STORM_OVERRIDES)],
                          "an hour's delay; the storm-day overrides on the emergency allowlist")
    assert all(council.is_emergency_call(c, f) for c, f in STORM_OVERRIDES)
    pid = council.propose(g[0], _set_cap(4000), "storm: cap 40 %")
    for governor_ in g[1:4]:
        council.approve(governor_, pid)
    with pytest.raises(ContractRejected) as short:
        council.execute_emergency(g[0], pid, "storm")
    assert short.value.error == "CouncilInsufficientApprovals"
    council.approve(g[4], pid)
    receipt = council.execute_emergency(g[0], pid, "storm: two feeders down")
    [event] = [e for e in bare.client.decode_logs(receipt) if e.event == "EmergencyExecuted"]
    assert event.args["reason"] == "storm: two feeders down" and event.args["required"] == 5
    assert bare.client.call1("IsolationQuorum", "isolationCapBps") == 4000
    # the emergency path never changes the council itself
    sneak = council.propose(g[0], [("GovernanceCouncil", "setDelay", [1])], "skip the delay")
    for governor_ in g[1:5]:
        council.approve(governor_, sneak)
    with pytest.raises(ContractRejected) as self_call:
        council.execute_emergency(g[0], sneak, "hurry")
    assert self_call.value.error == "CouncilEmergencyForbiddenCall"
    council.cancel(g[0], sneak)
    # nor can a proposal, even a delayed one, put the council's own functions or a role change on the list
    for contract, function in (("GovernanceCouncil", "setDelay"), ("IsolationQuorum", "grantRole")):
        with pytest.raises(ContractRejected) as refused:
            council.simulate(council.emergency_allow([(contract, function)]))
        assert refused.value.error == "CouncilEmergencyCallNotAllowable"
    findings = bare.recount()
    emergencies = [f for f in findings if f["kind"] == "emergency-execution" and f["proposal_id"] == pid]
    assert emergencies and emergencies[0]["ok"] and emergencies[0]["approvals"] == 5

    # attack: a forged fifth approval opens the emergency path; only 4 approvals are genuine
    forged = council.propose(g[0], _set_cap(2500), "cap 25 %")
    logged = council.proposal(forged)
    for governor_ in g[1:4]:
        council.approve(governor_, forged, logged)
    _forge_approval(bare, g[4], forged, logged.calls_hash)
    council.execute_emergency(g[0], forged, "forged fifth approval")
    problems = [f for f in bare.recount() if not f["ok"] and f["proposal_id"] == forged]
    assert {f["kind"] for f in problems} == {"bad-approval-signature", "emergency-execution"}
    [emergency] = [f for f in problems if f["kind"] == "emergency-execution"]
    assert emergency["approvals"] == 4 and emergency["required"] == 5


def _approved_by_five(bare: Bare, calls: list[Call], description: str) -> int:
    council, g = bare.council, bare.governors
    pid = council.propose(g[0], calls, description)
    logged = council.proposal(pid)
    for governor_ in g[1:5]:
        council.approve(governor_, pid, logged)
    return pid


def test_emergency_runs_only_allowlisted_calls(bare: Bare) -> None:
    """F4 (adversarial review): 5 of 6 governors may not use the emergency path to change a sector's
    electorate (remove an honest oracle); a storm-day override (forceIsolate) passes, as an override.
    Runs after the test above, which allowlisted the storm-day overrides and set an hour's delay."""
    council, client = bare.council, bare.client
    register = client.abi("Registry").functions["registerOracle"].selector
    water_oracle = next("0x" + d[16:36].hex() for d in council.proposal(1).calldatas if d[:4] == register)
    assert client.call1("Registry", "isActiveOracle", water_oracle, to_bytes32("water"))
    remove = _approved_by_five(bare, [("Registry", "removeOracle", [water_oracle, to_bytes32("puppet")]),
                                      ("IsolationQuorum", "setActiveFloor", [1])], "storm: drop a water oracle")
    with pytest.raises(ContractRejected) as refused:
        council.execute_emergency(bare.governors[0], remove, "storm: oracle lies")
    assert refused.value.error == "CouncilEmergencyForbiddenCall"
    assert int(refused.value.args_by_name["index"]) == 0
    assert client.call1("Registry", "isActiveOracle", water_oracle, to_bytes32("water"))
    council.cancel(bare.governors[0], remove)

    node = to_bytes32("water-node-0")
    isolate = _approved_by_five(bare, [("IsolationQuorum", "forceIsolate", [node, to_bytes32("storm")])],
                                "storm: isolate water-node-0")
    receipt = council.execute_emergency(bare.governors[0], isolate, "storm: water-node-0 flooding")
    events = {e.event for e in client.decode_logs(receipt)}
    assert {"EmergencyExecuted", "GovernanceOverride"} <= events
    assert client.call1("Registry", "sectorIsolatedCount", to_bytes32("water")) == 1
    assert not [f for f in bare.recount() if not f["ok"] and f["proposal_id"] in (remove, isolate)]


def test_recount_of_the_development_deployment_is_clean(chain) -> None:  # type: ignore[no-untyped-def]
    index = Indexer(chain.settings.home / "council-recount.sqlite", chain.client.rpc, chain.deployment,
                    contract_abis())
    try:
        index.sync()
        findings = recount_council(index.db, chain.client.chain_id, chain.deployment.governance_council)
        allowlist = [json.loads(args) for (args,) in index.db.execute(
            "SELECT args FROM logs WHERE contract = 'GovernanceCouncil' AND event = 'EmergencyCallSet' "
            "ORDER BY block, log_index")]
    finally:
        index.close()
    assert [f for f in findings if not f["ok"]] == []
    # the deployment's emergency allowlist: exactly the storm-day overrides, in one proposal
    council = Council(chain.client)
    quorum = chain.deployment.isolation_quorum.lower()
    assert [(str(e["target"]).lower(), str(e["selector"]), e["allowed"]) for e in allowlist] == [
        (quorum, "0x" + council.selector(c, f).hex(), True) for c, f in STORM_OVERRIDES]
    for contract, function in (("Registry", "removeOracle"), ("Registry", "registerOracle"),
                               ("IsolationQuorum", "setActiveFloor"), ("IsolationQuorum", "setVotingWindow")):
        assert not council.is_emergency_call(contract, function)
