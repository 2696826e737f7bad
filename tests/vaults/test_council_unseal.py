"""A vault unsealed by the governors' council: only a proposal the council really executed, naming the
seal in force, unseals; a governor alone, a proposal not executed, a proposal of another shape, a
proposal made against an older seal and a council contract of one's own all fail.

Each test runs on a chain of its own (`fresh_chain`): it leaves council proposals and seals in force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.client import ChainClient
from chain.deploy import _create, create_address, dev_controller, dev_governors
from chain.governance import Call, Council
from core.errors import ContractRejected
from keys.council_messages import sign_governor_key
from keys.ids import to_bytes32
from tests.conftest import run_cli
from tests.support import recorder
from tests.vaults.test_service_chain import _service, _verify
from vaults.council_unseal import parse_unseal, unseal_description
from vaults.onchain import VAULT_SEAL, SealState, SealWatch, seal_payload
from vaults.reader_keys import ReaderKey
from vaults.service import VaultDenied, VaultService

pytestmark = pytest.mark.chain

NOOP: list[Call] = [("GovernanceCouncil", "proposalCount", [])]


def _people(service: VaultService) -> dict[str, ReaderKey]:
    people = {role: ReaderKey.generate(service.vault, f"{role}-1", role) for role in ("custodian", "reader", "writer")}
    service.create(people["custodian"])
    for role in ("reader", "writer"):
        service.grant(people["custodian"], people[role])
    return people


def _approve_to_threshold(council: Council, pid: int) -> None:
    threshold = int(council.client.call1("GovernanceCouncil", "threshold"))
    logged = council.proposal(pid)
    for g in council.governors[1:threshold]:
        council.approve(g, pid, logged)


def test_only_an_executed_council_unseal_naming_the_seal_in_force_unseals_and_queued_writes_land(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "healthcare")
    people = _people(service)
    service.write(people["writer"], "adm-1", b"admitted: ward 3")
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    node = to_bytes32("healthcare")
    controller.record(VAULT_SEAL, node, seal_payload("healthcare", True, "quorum: sensor quarantine of icu-gw"))
    watch = SealWatch(chain.client, "healthcare")
    seal = watch.state()
    assert seal.sealed and seal.position[0] > 0
    assert service.write(people["writer"], "adm-2", b"admitted: ward 5").status == "queued"

    governors = dev_governors(chain.settings)
    council = Council(chain.client, governors)

    # 1. a governor alone: proposes (its approval is 1 of 4), cannot execute; the vault stays sealed
    pid = council.propose(governors[0], NOOP, unseal_description("healthcare", seal.position, "icu-gw re-imaged"))
    with pytest.raises(ContractRejected, match="CouncilWrongState"):
        council.execute(governors[0], pid)
    assert watch.state().sealed

    # 2. another shape: the right description with a second call, or a description that is not canonical,
    #    executed by the full council: not an unseal
    other = council.pass_proposal([*NOOP, *NOOP], unseal_description("healthcare", seal.position, "two calls"))
    block, index = seal.position
    spaced = council.pass_proposal(
        NOOP, f'vault-unseal {{"reason": "spaces", "seal": [{block}, {index}], "vault": "healthcare"}}')
    assert council.state(other) == council.state(spaced) == "Executed"
    assert watch.state().sealed
    with pytest.raises(VaultDenied, match="sealed"):
        service.read(people["reader"], "adm-1", "ward round")

    # 3. a council of one's own (same contract, a governor its only member, its own key and proof): its logs
    #    are not the council's
    me = governors[5]  # an account the session's client never sends from (its own nonces stay in step)
    rogue_address = create_address(me.address, int(chain.client.rpc.call(
        "eth_getTransactionCount", [me.address, "pending"]), 16))
    rogue_client = ChainClient(chain.client.rpc, chain_id=chain.client.chain_id, contracts={
        **{n: (chain.client.address(n), chain.client.abi(n)) for n in ("EventLedger", "Registry", "IsolationQuorum")},
        "GovernanceCouncil": (rogue_address, chain.client.abi("GovernanceCouncil"))})
    proof = sign_governor_key(me, chain_id=chain.client.chain_id, council=rogue_address, key_epoch=1)
    assert _create(rogue_client, me.account, "GovernanceCouncil",
                   [[me.address], [me.pq_public_key], [proof], 1, 3600, 1]) == rogue_address
    rogue = Council(rogue_client, [me])
    rogue_pid = rogue.pass_proposal(NOOP, unseal_description("healthcare", seal.position, "my own council"))
    assert rogue.state(rogue_pid) == "Executed"
    assert watch.state().sealed

    # 4. the proposal of step 1, approved to the threshold but not yet executed: still sealed
    _approve_to_threshold(council, pid)
    assert council.state(pid) in ("Queued", "Ready")
    assert watch.state().sealed
    council.execute(governors[0], pid, wait_s=10)
    state = watch.state()
    assert (state.sealed, state.proposal, state.by, state.reason) == (False, pid, f"council:{pid}", "icu-gw re-imaged")
    assert SealWatch(chain.client, "healthcare").state() == state  # a fresh watch reads the same from the chain

    # queued writes land after the council unseal as after any unseal; reads work; the audit passes
    assert service.apply_pending() == 1
    assert service.read(people["reader"], "adm-2", "ward round").content == b"admitted: ward 5"
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert [s["by"] for s in report.seals] == [controller.identity.address.lower(), f"council:{pid}"]
    assert report.reads_while_sealed == [] and report.records == 2


def test_a_council_unseal_made_against_an_older_seal_lifts_nothing(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    node = to_bytes32("banking")
    watch = SealWatch(chain.client, "banking")
    controller.record(VAULT_SEAL, node, seal_payload("banking", True, "quorum: sensor quarantine of atm-gw"))
    first = watch.state()
    governors = dev_governors(chain.settings)
    council = Council(chain.client, governors)
    pid = council.propose(governors[0], NOOP, unseal_description("banking", first.position, "atm-gw cleaned"))
    _approve_to_threshold(council, pid)
    # meanwhile the controller lifts that seal and a new compromise seals the vault again
    controller.record(VAULT_SEAL, node, seal_payload("banking", False, "quorum: every quarantine lifted"))
    controller.record(VAULT_SEAL, node, seal_payload("banking", True, "quorum: sensor quarantine of core-gw"))
    second = watch.state()
    assert second.sealed and second.position != first.position
    council.execute(governors[0], pid, wait_s=10)
    assert council.state(pid) == "Executed"
    assert watch.state() == second  # the old decision does not lift the new seal
    assert [f.proposal for f in watch.stale] == [pid]


def test_the_cli_proposes_a_council_unseal_and_refuses_bad_input(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    not_sealed = run_cli(["gov", "propose", "vault-unseal", "--sector", "water", "--reason", "x", "--governor",
                          "water"], chain.env)
    assert not_sealed.returncode != 0
    assert not_sealed.stderr.strip().splitlines() == [
        "error: vault water is not sealed: there is nothing for the council to unseal"]
    unknown = run_cli(["gov", "propose", "vault-unseal", "--sector", "mars", "--reason", "x", "--governor", "water"],
                      chain.env)
    assert unknown.returncode != 0 and len(unknown.stderr.strip().splitlines()) == 1
    assert unknown.stderr.startswith("error: no vault 'mars'")
    before = int(chain.client.call1("GovernanceCouncil", "proposalCount"))
    assert before == int(chain.client.call1("GovernanceCouncil", "proposalCount"))

    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    controller.record(VAULT_SEAL, to_bytes32("water"), seal_payload("water", True, "control room order"))
    made = run_cli(["gov", "propose", "vault-unseal", "--sector", "water", "--reason", "scada host rebuilt",
                    "--governor", "water"], chain.env)
    assert made.returncode == 0, made.stderr
    pid = before + 1
    logged = Council(chain.client).proposal(pid)
    unseal = parse_unseal(Council(chain.client).address, logged.targets, logged.values, logged.calldatas,
                          logged.description, logged.calls_hash)
    assert unseal is not None and unseal.vault == "water" and unseal.reason == "scada host rebuilt"
    shown = json.loads(run_cli(["vault", "status", "water", "--json"], chain.env).stdout)
    assert (shown["sealed"], shown["reason"]) == (True, "control room order")
    assert [(p["proposal"], p["state"], p["names_current_seal"]) for p in shown["council_proposals"]] == [
        (pid, "pending", True)]
    for sector in ("electricity", "healthcare", "banking"):
        assert run_cli(["gov", "approve", str(pid), "--governor", sector], chain.env).returncode == 0
    assert SealWatch(chain.client, "water").state().sealed
    done = run_cli(["gov", "execute", str(pid), "--governor", "water"], chain.env)
    assert done.returncode == 0, done.stderr
    assert "vault water unsealed by the council" in done.stdout
    assert not SealWatch(chain.client, "water").state().sealed
    shown = json.loads(run_cli(["vault", "status", "water", "--json"], chain.env).stdout)
    assert (shown["sealed"], shown["by"], shown["reason"]) == (False, f"council:{pid}", "scada host rebuilt")
    assert shown["council_proposals"][0]["state"] == "executed"
    assert json.loads(run_cli(["gov", "show", str(pid), "--json"], chain.env).stdout)["state"] == "executed"


def test_the_audit_lists_a_read_recorded_as_granted_after_a_seal_landed(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A seal racing a read: the service checked before the seal landed, the read's event lands after it. The
    service's second check releases nothing; the audit lists the read (not a failure: nothing left)."""
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "transportation")
    people = _people(service)
    service.write(people["writer"], "pass-1", b"season ticket 4411")
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    controller.record(VAULT_SEAL, to_bytes32("transportation"), seal_payload("transportation", True, "control room"))
    watch = SealWatch(chain.client, "transportation")
    answers = iter([SealState(False)])  # the first look predates the seal; every later one asks the chain
    service.seal_state = lambda: next(answers, None) or watch.state()
    with pytest.raises(VaultDenied, match="was sealed while the read was recorded"):
        service.read(people["reader"], "pass-1", "ticket check")
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert [(r["reader"], r["log_seq"]) for r in report.reads_while_sealed] == [("reader-1", 1)]
    assert report.seals[-1]["sealed"] is True


def test_ecdsa_keys_of_a_threshold_of_governors_without_their_ml_dsa_keys_do_not_unseal(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path) -> None:
    """The contract checks only an approval's length; the watch and the audit check its ML-DSA-65 signature.
    Three governors approve with signatures that are not theirs: the council executes, nothing unseals."""
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "banking")
    people = _people(service)
    service.write(people["writer"], "tx-1", b"EUR 9,000 to CY17...")
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    controller.record(VAULT_SEAL, to_bytes32("banking"), seal_payload("banking", True, "quorum: atm-gw"))
    seal = SealWatch(chain.client, "banking").state()
    governors = dev_governors(chain.settings)
    council = Council(chain.client, governors)
    pid = council.propose(governors[0], NOOP, unseal_description("banking", seal.position, "trust us"))
    digest = council.proposal(pid).recomputed_hash()
    for g in governors[1:4]:
        chain.client.transact(g.account, "GovernanceCouncil", "approve", pid, digest, council.key_epoch(g.address),
                              bytes([7]) * 3309)
    council.execute(governors[0], pid, wait_s=10)
    assert council.state(pid) == "Executed"
    assert SealWatch(chain.client, "banking").state() == seal
    with pytest.raises(VaultDenied, match="sealed"):
        service.read(people["reader"], "tx-1", "fraud check")
    report = _verify(chain, service, tmp_path)
    assert any(f"council unseal of proposal {pid}" in p and "does not recount" in p for p in report.problems), \
        report.lines()
    assert [s["sealed"] for s in report.seals] == [True]
