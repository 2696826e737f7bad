"""A discrete-event model (simpy) of a Besu QBFT validator network carrying QEAIMS's transactions.

Anvil mines every transaction at once; a consortium chain does not. This model answers what Anvil
cannot show: how the block interval and the time to make an isolation final grow with the number of
validators (4, 7, 10) and with one validator down or slow. docs/qbft-model.md gives the sources and
the limits; the rules below follow Besu's code and documentation:

* **Proposer**: round-robin from the previous block's proposer: height h, round r is proposed by
  validator ``(proposer(h-1) + 1 + r) mod N`` (Besu ``ProposerSelector``, ``changeEachBlock``). A down
  validator is therefore skipped once per N-1 heights, not once per N: the block after a round change
  was proposed by its successor.
* **Timers**: when a validator imports the parent, its block timer runs until
  ``parent.timestamp + blockperiodseconds`` (whole seconds), then round 0 starts and its timer runs
  ``requesttimeoutseconds``; round r's timer is ``requesttimeoutseconds * 2**r`` (``RoundTimer``).
  On expiry a validator sends ROUND-CHANGE; the next round's proposer proposes once it holds a quorum
  of them.
* **Phases**: PROPOSAL (the proposer builds the block: executes its transactions), each validator
  validates it (executes again) and sends PREPARE; with the proposal and quorum-1 PREPAREs it sends
  COMMIT; with quorum COMMITs it imports the block (a third execution). Quorum = ceil(2N/3)
  (``BftHelpers.calculateRequiredValidatorQuorum``). Every received message costs ``msg_cpu_s`` in
  a single queue per validator, so more validators mean more messages to wait for and to process.
* **Faults**: a *down* validator never proposes, never votes; a *slow* one sends every message
  ``slow_delay_s`` late.

The message exchange inside a round is computed exactly as its events would unfold for honest
validators (each validator's k-th arrival, behind its message queue), rather than as one simpy event
per message: N=10 exchanges ~200 messages a height, and a simulated hour must run in seconds. simpy
schedules everything else: block and round timers, the transaction pool, the oracles' votes and the
controller's poll, each waiting on the blocks that include its transactions.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import simpy

__all__ = [
    "LEDGER_BATCH_BYTES",
    "LEDGER_BATCH_EVENTS",
    "LEDGER_GAS_PER_EVENT",
    "LOADS",
    "NETWORKS",
    "Load",
    "NetworkProfile",
    "QbftConfig",
    "ScenarioResult",
    "max_faulty",
    "quorum",
    "saturation_tps",
    "simulate",
]


def quorum(validators: int) -> int:
    """Besu's QBFT quorum: ceil(2N/3) (3 of 4, 5 of 7, 7 of 10)."""
    return -(-2 * validators // 3)


def max_faulty(validators: int) -> int:
    """f = floor((N-1)/3): how many validators may be down while blocks are still made."""
    return (validators - 1) // 3


@dataclass(frozen=True)
class NetworkProfile:
    """One-way message delay between two validators: lognormal around `median_s`; each validator
    sends through an uplink of `bytes_per_s` (a proposal carries the whole block, once per peer)."""

    name: str
    median_s: float
    sigma: float
    bytes_per_s: float

    def sample(self, rng: random.Random) -> float:
        return self.median_s * math.exp(self.sigma * rng.gauss(0.0, 1.0))


NETWORKS: dict[str, NetworkProfile] = {
    # one data centre / one campus
    "lan": NetworkProfile("lan", 0.0005, 0.5, 1.25e9),  # 10 Gbit/s
    # operators across one metropolitan area, on leased fibre
    "metro": NetworkProfile("metro", 0.004, 0.5, 125e6),  # 1 Gbit/s
    # operators across a country, over the public internet
    "wan": NetworkProfile("wan", 0.030, 0.6, 12.5e6),  # 100 Mbit/s
}


@dataclass(frozen=True)
class Load:
    """Background transactions: Poisson arrivals at `tx_per_s`, each `gas` gas and `size` bytes."""

    name: str
    tx_per_s: float
    gas: int
    size: int


# Where the figures come from (docs/qbft-model.md, "Load"):
# city: 6 sectors x 4 oracles, each sending its outbox as one ledger batch at least every
#   NodeOptions.max_age_s = 2 s -> 12 tx/s; ~130k gas for a batch of a few events (estimate: 21,000
#   intrinsic + ~80k for the ML-DSA-65 signature's calldata and log + ~7.5k per event).
# bench: `qeaims bench ledger` measured 14,425 events/s in batches of 500 at 7,494 gas/event
#   (issue 13's closing note) -> 28.9 tx/s of ~3.75 M gas: the most our recorders have pushed.
LEDGER_BATCH_EVENTS = 500
LEDGER_GAS_PER_EVENT = 7_494
# a batch's calldata: 500 events of a 64-byte payload and ~100 bytes of fields, and the 3,309-byte
# ML-DSA-65 signature (estimate)
LEDGER_BATCH_BYTES = 500 * 164 + 3_309
LOADS: dict[str, Load] = {
    "idle": Load("idle", 0.0, 0, 0),
    "city": Load("city", 12.0, 130_000, 4_000),
    "bench": Load("bench", 14_425 / LEDGER_BATCH_EVENTS, LEDGER_BATCH_EVENTS * LEDGER_GAS_PER_EVENT,
                  LEDGER_BATCH_BYTES),
}

BLOCK_HEADER_BYTES = 1_000  # header, QBFT extra data with its seals, the proposal's envelope
VOTE_GAS = 225_631  # median vote (forge gas report, issue 13's closing note)
EXECUTING_VOTE_GAS = 693_058  # the vote that executes the isolation (same report)
STEP_GAS = 200_000  # one controller step event: a single-event ledger batch with its plan (estimate)
SIMPLE_TX_GAS = 45_000  # Caliper's "simple" open(): 21,000 intrinsic + one new storage slot (estimate)
SIMPLE_TX_BYTES = 200
VOTE_BYTES = 3_309 + 400  # the ML-DSA-65 vote signature and the call's other arguments, signed envelope
STEP_BYTES = 3_309 + 2_000  # a single-event batch with a plan as its payload (estimate)


@dataclass(frozen=True)
class QbftConfig:
    validators: int = 4
    down: int = 0
    slow: int = 0
    slow_delay_s: float = 1.0
    block_period_s: int = 2
    request_timeout_s: int = 4
    network: NetworkProfile = NETWORKS["metro"]
    load: Load = LOADS["city"]
    block_gas_limit: int = 400_000_000
    # gas executed per second by one validator; calibrated so that 4 validators saturate at the
    # ~750-1,200 tx/s the Besu wiki reports for Caliper's simple contract (`saturation_tps`)
    exec_gas_per_s: float = 135e6
    exec_overhead_s: float = 0.005  # per execution pass: state root, database write
    selection_fraction: float = 0.75  # Besu --poa-block-txs-selection-max-time (percent of the period)
    msg_cpu_s: float = 0.0002  # checking one consensus message (signature recovery, validation)
    # the isolation path
    oracle_votes: int = 3  # IsolationQuorum.quorumSize(4 oracles) = 3
    vote_spread_s: float = 0.2  # the quorum's votes are sent within this window
    controller_poll_s: float = 0.5  # controller.process: run_once every half second
    controller_steps: int = 1  # step transactions, each awaited before the next (plan, cascade, ...)

    def __post_init__(self) -> None:
        if self.validators < 4:
            raise ValueError(f"QBFT needs at least 4 validators to tolerate one fault (f >= 1), not {self.validators}")
        if not 0 <= self.down < self.validators:
            raise ValueError(f"down must be between 0 and {self.validators - 1}, not {self.down}")
        if self.slow < 0 or self.down + self.slow > self.validators:
            raise ValueError(f"{self.down} down and {self.slow} slow do not fit in {self.validators} validators")
        if self.block_period_s < 1 or self.request_timeout_s < 1:
            raise ValueError("blockperiodseconds and requesttimeoutseconds are whole seconds, at least 1")
        if self.controller_steps < 1 or self.oracle_votes < 1:
            raise ValueError("an isolation needs at least one vote and one controller step")

    @property
    def quorum(self) -> int:
        return quorum(self.validators)

    @property
    def stalls(self) -> bool:
        return self.validators - self.down < self.quorum


@dataclass
class ScenarioResult:
    config: QbftConfig
    seconds: float
    blocks: int
    round_changes: int
    intervals: list[float] = field(repr=False)
    consensus: list[float] = field(repr=False)
    quorum_latencies: list[float] = field(repr=False)
    step_latencies: list[float] = field(repr=False)
    isolations: int = 0
    included_tx: int = 0

    @property
    def stalled(self) -> bool:
        return self.blocks == 0

    def summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "validators": c.validators, "quorum": c.quorum, "down": c.down, "slow": c.slow,
            "block_period_s": c.block_period_s, "request_timeout_s": c.request_timeout_s,
            "network": c.network.name, "load": c.load.name, "seconds": self.seconds,
            "blocks": self.blocks, "round_changes": self.round_changes, "stalled": self.stalled,
            "interval_mean_s": _mean(self.intervals), "interval_p95_s": percentile(self.intervals, 0.95),
            "consensus_mean_s": _mean(self.consensus),
            "tx_per_s": self.included_tx / self.seconds if self.seconds else 0.0,
            "isolations": self.isolations, "isolations_final": len(self.step_latencies),
            "quorum_p50_s": percentile(self.quorum_latencies, 0.50),
            "quorum_p95_s": percentile(self.quorum_latencies, 0.95),
            "isolation_p50_s": percentile(self.step_latencies, 0.50),
            "isolation_p95_s": percentile(self.step_latencies, 0.95),
            "isolation_max_s": max(self.step_latencies) if self.step_latencies else None,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --- the transaction pool ------------------------------------------------------------------------


@dataclass
class _Tx:
    gas: int
    size: int
    arrives: float  # in the proposers' pools (sent + one gossip hop)
    final: simpy.Event


class _Pool:
    """Pending transactions in arrival order: background ones as runs of a count, ours one by one.

    Besu's sequenced pool on a zero-gas-price network orders by arrival; a proposer takes from the
    front until the block's gas (or the selection time) runs out."""

    def __init__(self, load: Load, rng: random.Random) -> None:
        self.load = load
        self.rng = rng
        self.queue: deque[list[Any]] = deque()  # ["bg", count] | ["tx", _Tx]
        self.waiting: list[_Tx] = []  # sent, not yet arrived
        self.until = 0.0
        self.next_bg = rng.expovariate(load.tx_per_s) if load.tx_per_s > 0 else math.inf

    def send(self, tx: _Tx) -> None:
        self.waiting.append(tx)

    def _advance(self, now: float) -> None:
        ours = sorted((tx for tx in self.waiting if tx.arrives <= now), key=lambda tx: tx.arrives)
        self.waiting = [tx for tx in self.waiting if tx.arrives > now]
        for tx in ours:
            self._bg_until(tx.arrives)
            self.queue.append(["tx", tx])
        self._bg_until(now)
        self.until = now

    def _bg_until(self, t: float) -> None:
        count = 0
        while self.next_bg <= t:
            count += 1
            self.next_bg += self.rng.expovariate(self.load.tx_per_s)
        if count:
            if self.queue and self.queue[-1][0] == "bg":
                self.queue[-1][1] += count
            else:
                self.queue.append(["bg", count])

    def select(self, now: float, gas_cap: float) -> tuple[int, int, int, list[tuple[int, int]]]:
        """(gas, bytes, transactions, what to take) for a block built at `now`; nothing is removed yet."""
        self._advance(now)
        gas = size = 0
        count = 0
        take: list[tuple[int, int]] = []
        for i, item in enumerate(self.queue):
            if item[0] == "tx":
                tx: _Tx = item[1]
                if gas + tx.gas > gas_cap:
                    break
                gas += tx.gas
                size += tx.size
                count += 1
                take.append((i, 1))
            else:
                fit = int((gas_cap - gas) // self.load.gas) if self.load.gas else item[1]
                n = min(item[1], max(fit, 0))
                gas += n * self.load.gas
                size += n * self.load.size
                count += n
                if n:
                    take.append((i, n))
                if n < item[1]:
                    break
        return gas, size, count, take

    def remove(self, take: list[tuple[int, int]]) -> list[_Tx]:
        """Take the selected transactions out (the block was committed); ours are returned."""
        ours: list[_Tx] = []
        for i, n in take:
            item = self.queue[i]
            if item[0] == "tx":
                ours.append(item[1])
                item[1] = None
            else:
                item[1] -= n
        self.queue = deque(item for item in self.queue if item[1])
        return ours


# --- the validators --------------------------------------------------------------------------------


class _Network:
    def __init__(self, config: QbftConfig, rng: random.Random) -> None:
        self.c = config
        self.rng = rng
        n = config.validators
        # the last `down` validators are down, the ones before them slow (which ones does not matter:
        # every validator proposes in turn)
        self.up = [i < n - config.down for i in range(n)]
        self.slow = [n - config.down - config.slow <= i < n - config.down for i in range(n)]
        self.ups = [i for i in range(n) if self.up[i]]
        # the controller reads the first validator that is up and not slow
        self.reader = next((i for i in self.ups if not self.slow[i]), self.ups[0])

    def delay(self, sender: int) -> float:
        return self.c.network.sample(self.rng) + (self.c.slow_delay_s if self.slow[sender] else 0.0)

    def exec_s(self, gas: float) -> float:
        return self.c.exec_overhead_s + gas / self.c.exec_gas_per_s

    def kth_processed(self, arrivals: list[float], k: int) -> float:
        """When the k-th message is checked, the messages queued in arrival order at one validator."""
        if k <= 0:
            return -math.inf
        if len(arrivals) < k:
            return math.inf
        t = -math.inf
        for i, a in enumerate(sorted(arrivals)):
            t = max(t, a) + self.c.msg_cpu_s
            if i + 1 == k:
                return t
        return math.inf  # pragma: no cover - len(arrivals) >= k

    def run_round(self, proposer: int, propose_at: float, gas: float, size: float,
                  expiry: dict[int, float]) -> dict[int, float] | None:
        """Import time at each up validator if the round commits, else None.

        A validator whose round timer expires before it is prepared sends no COMMIT (it has moved
        to the next round); the round commits if a quorum of COMMITs is still sent."""
        q = self.c.quorum
        sent = propose_at + self.exec_s(gas)
        # the proposer uploads the block to each peer in turn: the k-th peer has it k uploads later
        upload = (BLOCK_HEADER_BYTES + size) / self.c.network.bytes_per_s
        order = [(proposer + k) % self.c.validators for k in range(1, self.c.validators)]
        received = {v: sent + (k + 1) * upload for k, v in enumerate(order)}
        ready = {v: (sent if v == proposer else received[v] + self.delay(proposer) + self.exec_s(gas)) for v in self.ups}
        preparers = [v for v in self.ups if v != proposer]
        prepared: dict[int, float] = {}
        for u in self.ups:
            arrivals = [ready[v] + (0.0 if v == u else self.delay(v)) for v in preparers]
            prepared[u] = max(ready[u], self.kth_processed(arrivals, q - 1))
        committers = [u for u in self.ups if prepared[u] < expiry[u]]
        if len(committers) < q:
            return None
        imported: dict[int, float] = {}
        for w in self.ups:
            arrivals = [prepared[u] + (0.0 if u == w else self.delay(u)) for u in committers]
            imported[w] = max(ready[w], self.kth_processed(arrivals, q)) + self.exec_s(gas)
        return imported


class _Chain:
    """The chain's progress: one simpy process that runs heights and rounds and fires each of our
    transactions' `final` event when the block holding it is imported on the controller's node."""

    def __init__(self, env: simpy.Environment, config: QbftConfig, rng: random.Random, pool: _Pool) -> None:
        self.env = env
        self.c = config
        self.rng = rng
        self.pool = pool
        self.net = _Network(config, rng)
        self.finals: list[float] = []  # import times on the reader's node
        self.consensus: list[float] = []  # from the committed round's proposal to that import
        self.round_changes = 0
        self.included = 0

    def run(self) -> Generator[simpy.Event, Any, None]:
        c, net = self.c, self.net
        n = c.validators
        parent_ts = 0
        imported = {v: 0.0 for v in net.ups}
        prev_proposer = n - 1  # so that validator 0 proposes height 1
        gas_cap = min(c.block_gas_limit, c.selection_fraction * c.block_period_s * c.exec_gas_per_s)
        while True:
            r = 0
            start = {v: max(imported[v], float(parent_ts + c.block_period_s)) for v in net.ups}
            expiry = {v: start[v] + c.request_timeout_s for v in net.ups}
            while True:
                proposer = (prev_proposer + 1 + r) % n
                propose_at = self._proposal_time(r, proposer, start)
                result: dict[int, float] | None = None
                if propose_at < math.inf:
                    yield self.env.timeout(max(0.0, propose_at - self.env.now))
                    gas, size, count, take = self.pool.select(propose_at, gas_cap)
                    result = net.run_round(proposer, propose_at, gas, size, expiry)
                if result is not None:
                    break
                # every up validator times out, sends ROUND-CHANGE and starts round r+1
                r += 1
                start = dict(expiry)
                expiry = {v: start[v] + c.request_timeout_s * 2 ** r for v in net.ups}
                if self.env.now < min(start.values()):
                    yield self.env.timeout(min(start.values()) - self.env.now)
            final = result[net.reader]
            yield self.env.timeout(max(0.0, final - self.env.now))
            for tx in self.pool.remove(take):
                tx.final.succeed(final)
            self.included += count
            self.round_changes += r > 0
            self.finals.append(final)
            self.consensus.append(final - propose_at)
            parent_ts = round(propose_at) if r == 0 else math.floor(propose_at)
            imported = result
            prev_proposer = proposer

    def _proposal_time(self, r: int, proposer: int, start: dict[int, float]) -> float:
        """When `proposer` proposes round r: at its block timer (round 0) or once it holds a quorum
        of ROUND-CHANGE messages (round r > 0, sent when each validator's round r-1 expired)."""
        if not self.net.up[proposer] or len(self.net.ups) < self.c.quorum:
            return math.inf
        if r == 0:
            return start[proposer]
        arrivals = [start[v] + (0.0 if v == proposer else self.net.delay(v)) for v in self.net.ups]
        return max(start[proposer], self.net.kth_processed(arrivals, self.c.quorum))


def _isolation(env: simpy.Environment, c: QbftConfig, rng: random.Random, pool: _Pool,
               quorum_out: list[float], step_out: list[float]) -> Generator[simpy.Event, Any, None]:
    """3 oracles' votes (the last executes the isolation), then the controller's step transactions."""
    first = env.now
    sends = sorted(first + rng.uniform(0.0, c.vote_spread_s) for _ in range(c.oracle_votes))
    sends[0] = first
    votes: list[simpy.Event] = []
    for i, at in enumerate(sends):
        if at > env.now:
            yield env.timeout(at - env.now)
        gas = EXECUTING_VOTE_GAS if i == len(sends) - 1 else VOTE_GAS
        tx = _Tx(gas, VOTE_BYTES, env.now + c.network.sample(rng), env.event())
        pool.send(tx)
        votes.append(tx.final)
    yield simpy.AllOf(env, votes)
    quorum_out.append(env.now - first)
    for _ in range(c.controller_steps):
        yield env.timeout(rng.uniform(0.0, c.controller_poll_s))  # the controller's next poll
        tx = _Tx(STEP_GAS, STEP_BYTES, env.now + c.network.sample(rng), env.event())
        pool.send(tx)
        yield tx.final
    step_out.append(env.now - first)


def simulate(config: QbftConfig, *, seconds: float = 3600.0, isolations: int = 200, seed: int = 0) -> ScenarioResult:
    """Run one scenario for `seconds` of simulated time with `isolations` spread evenly across it."""
    rng = random.Random(seed)
    env = simpy.Environment()
    pool = _Pool(config.load, random.Random(rng.random()))
    chain = _Chain(env, config, random.Random(rng.random()), pool)
    env.process(chain.run())
    quorum_out: list[float] = []
    step_out: list[float] = []
    iso_rng = random.Random(rng.random())
    # leave the last tenth (at least 60 s) for the last isolation to finish
    window = max(seconds - max(60.0, seconds / 10), seconds / 2)
    spacing = window / max(isolations, 1)

    def launcher() -> Generator[simpy.Event, Any, None]:
        for i in range(isolations):
            at = i * spacing + iso_rng.uniform(0.0, spacing)
            yield env.timeout(max(0.0, at - env.now))
            env.process(_isolation(env, config, iso_rng, pool, quorum_out, step_out))

    env.process(launcher())
    env.run(until=seconds)
    finals = chain.finals
    intervals = [b - a for a, b in zip([0.0, *finals], finals, strict=False)]
    return ScenarioResult(config=config, seconds=seconds, blocks=len(finals), round_changes=chain.round_changes,
                          intervals=intervals, consensus=chain.consensus, quorum_latencies=quorum_out, step_latencies=step_out,
                          isolations=isolations, included_tx=chain.included)


def saturation_tps(config: QbftConfig | None = None, *, tx_gas: int = SIMPLE_TX_GAS, tx_bytes: int = SIMPLE_TX_BYTES,
                   offered_tx_per_s: float = 3_000.0, seconds: float = 120.0, seed: int = 0) -> float:
    """Transactions per second a network sustains when offered more than it can take (the Besu wiki's
    "QBFT Performance" measure, with Caliper's simple-contract transaction by default), measured
    after a 20 s warm-up."""
    base = config or QbftConfig()
    saturated = replace(base, load=Load("saturation", offered_tx_per_s, tx_gas, tx_bytes))
    warm = simulate(saturated, seconds=20.0, isolations=0, seed=seed)
    full = simulate(saturated, seconds=20.0 + seconds, isolations=0, seed=seed)
    return (full.included_tx - warm.included_tx) / seconds
