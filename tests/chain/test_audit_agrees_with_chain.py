"""Audit/on-chain agreement, as an invariant over a random honest history on a real chain: whatever
sequence of proposals, votes, repairs, overrides, quarantines, reinstatements and key rotations the
oracles and the council go through, the audit's recount finds nothing wrong, and the decisions it
replays from logs are exactly the ones the contract says it executed."""

from __future__ import annotations

import json
import random

from chain.connect import contract_abis
from chain.consortium import NODES, SECTORS
from chain.deploy import controller_keystore, oracle_keystore
from chain.governance import Council
from chain.indexer import Indexer
from chain.quorum import Action, QuorumClient
from chain.quorum_audit import recount_quorum
from chain.registry_history import RegistryHistory
from chain.rotation import rotate_oracle_key
from core.errors import ContractRejected
from keys.ids import to_bytes32
from keys.keystore import load_keystore
from tests.support import governor, oracle

STEPS = 40


def test_the_recount_agrees_with_the_contract_over_a_random_honest_history(fresh_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    rng = random.Random(1313)
    quorum = QuorumClient(chain.client)
    council = Council(chain.client, [governor(chain.settings, s) for s in SECTORS])
    controller = load_keystore(controller_keystore(chain.settings), chain.settings.passphrase)
    sector = "water"
    nodes = [n.node for n in NODES if n.sector == sector]
    outcomes: dict[str, int] = {}

    def ident(i: int):  # type: ignore[no-untyped-def]
        return oracle(chain.settings, sector, i)  # re-read: a rotation moves the keystore's epoch

    def ballot(action: Action, target: bytes, reason: str) -> None:
        """One to four oracles propose-or-vote on the same ballot (some are refused: quarantined, target...)."""
        for i in rng.sample(range(1, 5), rng.randint(1, 4)):
            try:
                quorum.propose(ident(i), action, target, to_bytes32(reason))
            except ContractRejected as exc:
                outcomes[exc.error] = outcomes.get(exc.error, 0) + 1

    for _ in range(STEPS):
        move = rng.choice(("isolate", "isolate", "isolate", "vote", "repair", "repair", "reintegrate",
                           "reintegrate", "quarantine", "reinstate", "override", "rotate"))
        voter = ident(rng.randint(1, 4))
        wanted = {"isolate": "active", "repair": "isolated", "reintegrate": "repairing"}.get(move)
        fitting = [n for n in nodes if wanted is None or quorum.node_status(to_bytes32(n)) == wanted]
        node = to_bytes32(rng.choice(fitting or nodes))
        try:
            if move == "isolate":
                ballot(Action.ISOLATE, node, "fault")
            elif move == "vote":
                latest = int(chain.client.call1("IsolationQuorum", "proposalCount"))
                if latest:
                    quorum.vote(voter, rng.randint(max(1, latest - 3), latest))
            elif move == "repair":
                chain.client.transact(controller.account, "IsolationQuorum", "beginRepair", node)
            elif move == "reintegrate":
                ballot(Action.REINTEGRATE, node, "nominal")
            elif move == "quarantine":
                target = ident(rng.randint(1, 4))
                ballot(Action.QUARANTINE, bytes(12) + bytes.fromhex(target.address[2:]), "suspect")
            elif move == "reinstate":
                target = ident(rng.randint(1, 4))
                if int(chain.client.call1("Registry", "oracle", target.address)[4]) == 2:
                    council.pass_proposal([("Registry", "reinstateOracle", [target.address, to_bytes32("ok")])],
                                          "reinstate")
            elif move == "override":
                status = quorum.node_status(node)
                fn = "forceIsolate" if status == "active" else "forceReintegrate"
                council.pass_proposal([("IsolationQuorum", fn, [node, to_bytes32("council")])], "override")
            elif move == "rotate":
                which = rng.randint(1, 4)
                if int(chain.client.call1("Registry", "oracle", ident(which).address)[4]) == 1:
                    rotate_oracle_key(chain.client, oracle_keystore(chain.settings, sector, which),
                                      chain.settings.passphrase)
            outcomes[move] = outcomes.get(move, 0) + 1
        except ContractRejected:
            outcomes[f"{move}-refused"] = outcomes.get(f"{move}-refused", 0) + 1

    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    problems = recount_quorum(index.db, RegistryHistory.from_db(index.db), chain.client.chain_id,
                              chain.deployment.isolation_quorum)
    logged = {int(json.loads(a)["proposalId"]) for (a,) in index.db.execute(
        "SELECT args FROM logs WHERE contract = 'IsolationQuorum' AND event = 'ProposalExecuted'")}
    index.close()
    count = int(chain.client.call1("IsolationQuorum", "proposalCount"))
    executed = {pid for pid in range(1, count + 1) if quorum.view(pid).state == "executed"}
    assert problems == [], problems
    assert logged == executed, (logged, executed)
    assert len(executed) >= 3, outcomes  # the walk reached decisions, not only refusals
