"""`qeaims demo`: the ledger core at work on the embedded chain, step by step.

It is a scripted walk through the rules, not a simulation: the sector twins and the detectors
arrive with the oracle network, and the city scenarios with the controller. Every step is a
real transaction on the running chain, and the closing `audit verify` re-checks all of them
from chain data alone. The demo can run again and again on the same chain: it brings the node
it isolates back to service through the reintegration quorum, as the real lifecycle does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chain.audit import AuditReport, verify_chain_history
from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.consortium import nodes as dev_nodes
from chain.consortium import sectors
from chain.deploy import deploy_dev_consortium, dev_deployer, dev_governors, dev_oracle, oracle_keystore, role
from chain.governance import Council
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.node import start_anvil
from chain.outbox import EventOutbox
from chain.quorum import Action, QuorumClient
from chain.recorder import EventRecorder, canonical_payload
from chain.rotation import rotate_oracle_key
from core.config import Settings
from core.errors import DeploymentMissing
from core.kinds import kind_by_name
from keys.identity import HybridIdentity
from keys.ids import event_id, to_bytes32
from keys.keystore import load_keystore, save_keystore

__all__ = ["DemoStep", "run_ledger_demo"]


@dataclass(frozen=True)
class DemoStep:
    title: str
    detail: str
    seconds: float


@dataclass
class DemoResult:
    steps: list[DemoStep] = field(default_factory=list)
    audit: AuditReport | None = None


class _Demo:
    def __init__(self, settings: Settings, client: ChainClient, deployment: Deployment,
                 report: Callable[[DemoStep], None]) -> None:
        self.settings = settings
        self.client = client
        self.deployment = deployment
        self.report = report
        self.result = DemoResult()
        self.quorum = QuorumClient(client)

    def step(self, title: str, started: float, detail: str) -> None:
        item = DemoStep(title, detail, time.monotonic() - started)
        self.result.steps.append(item)
        self.report(item)

    def oracle(self, sector: str, index: int) -> HybridIdentity:
        return dev_oracle(self.settings, sector, index)

    def recorder(self, identity: HybridIdentity) -> EventRecorder:
        return EventRecorder(self.client, identity, EventOutbox.for_oracle(self.settings.outbox_dir, identity.address,
                                                                     self.deployment.deployment_id))

    def observations(self) -> None:
        t = time.monotonic()
        total = 0
        for sector in sectors():
            nodes = [n.node for n in dev_nodes() if n.sector == sector]
            for index in range(1, 5):
                rec = self.recorder(self.oracle(sector, index))
                for node in nodes:
                    rec.outbox.append(kind_by_name("anomaly"), to_bytes32(node),
                                      canonical_payload({"source": "demo-script", "status": "nominal", "score": 0.0}))
                total += rec.flush().events
        self.step("observations", t, f"{total} hybrid-signed events from 24 oracles, one ML-DSA batch per oracle")

    def isolate(self, node: str) -> tuple[list[HybridIdentity], int]:
        t = time.monotonic()
        water = [self.oracle("water", i) for i in range(1, 5)]
        seq = self.recorder(water[0]).record(kind_by_name("fault"), to_bytes32(node),
                                             canonical_payload({"source": "demo-script", "fault": "pressure collapse"}))
        pid = self.quorum.propose(water[0], Action.ISOLATE, to_bytes32(node), to_bytes32("pressure collapse"),
                                  [event_id(water[0].address, seq)])
        self.quorum.vote(water[1], pid)
        view = self.quorum.view(pid)
        self.step("2 of 4 votes", t, f"proposal {pid} to isolate {node}: {view.active_votes}/{view.required} votes, "
                                     f"{view.state}; node {self.quorum.node_status(to_bytes32(node))}")
        t = time.monotonic()
        self.quorum.vote(water[2], pid)
        view = self.quorum.view(pid)
        self.step("3 of 4 votes", t, f"proposal {pid}: {view.active_votes}/{view.required} votes, {view.state}; "
                                     f"node {self.quorum.node_status(to_bytes32(node))}")
        return water, pid

    def repair_and_reintegrate(self, node: str, water: list[HybridIdentity]) -> None:
        t = time.monotonic()
        crew = self._repair_crew()
        self.client.transact(crew.account, "IsolationQuorum", "beginRepair", to_bytes32(node))
        pid = self.quorum.propose(water[3], Action.REINTEGRATE, to_bytes32(node), to_bytes32("readings nominal"))
        self.quorum.vote(water[1], pid)
        self.quorum.vote(water[2], pid)
        self.step("repair and reintegration", t,
                  f"repair started by the crew account; reintegration proposal {pid} reached "
                  f"{self.quorum.view(pid).active_votes}/3; node {self.quorum.node_status(to_bytes32(node))}")

    def _repair_crew(self) -> HybridIdentity:
        """The repair dispatcher's identity; REPAIR_ROLE is granted once, through the council."""
        path = self.settings.keystore_dir / "controller" / "repair-crew.json"
        if path.exists():
            crew = load_keystore(path, self.settings.passphrase)
        else:
            crew = HybridIdentity.generate()
            save_keystore(crew, path, self.settings.passphrase, label="repair crew", scrypt_n=self.settings.scrypt_n)
        if not self.client.call1("IsolationQuorum", "hasRole", role("REPAIR_ROLE"), crew.address):
            self.client.wait(self.client.send_raw(dev_deployer(), to=crew.address, value=10**20, gas=21_000))
            Council(self.client, dev_governors(self.settings), max_logs_range=self.settings.max_logs_range).pass_proposal(
                [("IsolationQuorum", "grantRole", [role("REPAIR_ROLE"), crew.address])], "grant REPAIR_ROLE to the crew")
        return crew

    def governance(self) -> None:
        t = time.monotonic()
        governors = dev_governors(self.settings)
        council = Council(self.client, governors, max_logs_range=self.settings.max_logs_range)
        window = int(self.client.call1("IsolationQuorum", "votingWindow"))
        pid = council.propose(governors[0], [("IsolationQuorum", "setVotingWindow", [window])],
                              "confirm the isolation voting window")
        for governor in governors[1:3]:
            council.approve(governor, pid)
        before = council.state(pid)
        council.approve(governors[3], pid)
        queued = council.state(pid)
        delay = int(self.client.call1("GovernanceCouncil", "delay"))
        council.execute(governors[0], pid, wait_s=delay + 30.0)
        self.step("governance", t, f"council proposal {pid}: {before} with 3 approvals, {queued} with 4 of 6 "
                                   f"(ML-DSA-signed), {council.state(pid)} after the {delay} s timelock")

    def rotation(self) -> None:
        t = time.monotonic()
        result = rotate_oracle_key(self.client, oracle_keystore(self.settings, "banking", 4), self.settings.passphrase)
        rec = self.recorder(self.oracle("banking", 4))
        rec.record(kind_by_name("key-rotation"), b"\0" * 32,
                   canonical_payload({"old_epoch": result.old_epoch, "new_epoch": result.new_epoch}))
        self.step("key rotation", t, f"banking-4 rotated ML-DSA key epoch {result.old_epoch} → {result.new_epoch} "
                                     "(old key authorises, new key proves possession)")

    def audit(self) -> None:
        t = time.monotonic()
        index = Indexer(self.settings.index_path, self.client.rpc, self.deployment, contract_abis(),
                        max_logs_range=self.settings.max_logs_range)
        try:
            index.sync()
            report = verify_chain_history(index.db, chain_id=self.client.chain_id,
                                          ledger=self.deployment.event_ledger, registry=self.deployment.registry)
        finally:
            index.close()
        self.result.audit = report
        self.step("audit verify", t, f"{report.valid}/{report.events} events valid in {report.batches} batches, "
                                     f"{report.key_epochs} key epochs checked")


def run_ledger_demo(settings: Settings, report: Callable[[DemoStep], None]) -> DemoResult:
    t = time.monotonic()
    start_anvil(settings)
    try:
        client, deployment = connect(settings)
        how = "found an existing deployment"
    except DeploymentMissing:
        client, deployment = deploy_dev_consortium(settings)
        proposals = int(client.call1("GovernanceCouncil", "proposalCount"))
        how = f"deployed the contracts and registered the consortium through {proposals} council proposals"
    demo = _Demo(settings, client, deployment, report)
    demo.step("chain and contracts", t, f"Anvil at {settings.rpc_url}; {how}")
    demo.observations()
    water, _ = demo.isolate("pump-1")
    demo.repair_and_reintegrate("pump-1", water)
    demo.governance()
    demo.rotation()
    demo.audit()
    return demo.result
