"""Turns an oracle's outbox into signed ledger batches: sign once per batch with ML-DSA-65,
send from the oracle's secp256k1 account, confirm in the outbox when the receipt arrives.

Batches are pipelined up to the client's in-flight window. The ledger demands that each batch
start right after the oracle's last recorded sequence, so if one batch fails, the batches behind
it fail too and are resent in order after `sync()`: nothing is skipped and nothing is recorded twice.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.client import ChainClient, SentTx
from chain.outbox import EventOutbox, OutboxRow
from keys.hybrid import sign_batch
from keys.identity import HybridIdentity
from qeaims.errors import ChainError, ContractRejected, IdentityError

__all__ = ["EventRecorder", "FlushReport", "canonical_payload"]

MAX_BATCH = 500


def canonical_payload(value: dict[str, Any]) -> bytes:
    """Payloads are canonical JSON (sorted keys, no spaces) so the same content hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class FlushReport:
    events: int = 0
    batches: int = 0
    latencies_s: list[float] = field(default_factory=list)
    last_receipt: dict[str, Any] | None = None


class EventRecorder:
    def __init__(self, client: ChainClient, identity: HybridIdentity, outbox: EventOutbox) -> None:
        self.client = client
        self.identity = identity
        self.outbox = outbox
        self._synced = False

    def chain_last_seq(self) -> int:
        return int(self.client.call1("EventLedger", "lastSeq", self.identity.address))

    def sync(self) -> int:
        """Reconcile with the chain; returns the number of events waiting to be sent.

        Also refuses to go on with a key the registry no longer (or not yet) holds: batches signed
        at another epoch would be refused by the ledger.
        """
        record = self.client.call1("Registry", "oracle", self.identity.address)
        epoch = int(record[3])
        if epoch != self.identity.key_epoch:
            raise IdentityError(
                f"oracle {self.identity.address} signs with key epoch {self.identity.key_epoch} but the registry "
                f"holds epoch {epoch}: finish the rotation with `qeaims keys rotate` or load the current keystore"
            )
        waiting = self.outbox.reconcile(self.chain_last_seq())
        self._synced = True
        return waiting

    def record(self, kind: int, node: bytes, payload: bytes) -> int:
        """Write ahead, then flush; returns the event's sequence number."""
        if not self._synced:
            self.sync()
        seq = self.outbox.append(kind, node, payload)
        self.flush()
        return seq

    def flush(
        self,
        *,
        max_batch: int = MAX_BATCH,
        on_confirmed: Callable[[int, float], None] | None = None,
    ) -> FlushReport:
        """Send every pending event in order.

        A sequence refusal means the chain and the outbox disagree (the chain lost blocks, or another
        sender got in between): re-sync and try once more. Any other error is raised after re-syncing.
        """
        try:
            return self._flush_once(max_batch, on_confirmed)
        except ContractRejected as exc:
            if exc.error not in ("LedgerSequenceGap", "LedgerSequenceNotIncreasing"):
                raise
            return self._flush_once(max_batch, on_confirmed)

    def _flush_once(self, max_batch: int, on_confirmed: Callable[[int, float], None] | None) -> FlushReport:
        if not self._synced:
            self.sync()
        report = FlushReport()
        in_flight: deque[tuple[SentTx, list[OutboxRow]]] = deque()
        after = 0
        window = self.client.inflight_per_sender
        try:
            while True:
                while len(in_flight) < window:
                    rows = self.outbox.pending(max_batch, after_seq=after)
                    if not rows:
                        break
                    in_flight.append((self._send(rows), rows))
                    after = rows[-1].seq
                if not in_flight:
                    break
                sent, rows = in_flight.popleft()
                receipt = self.client.wait(sent)
                self.outbox.mark_confirmed([r.seq for r in rows], sent.tx_hash)
                latency = time.monotonic() - sent.sent_at
                report.events += len(rows)
                report.batches += 1
                report.latencies_s.append(latency)
                report.last_receipt = receipt
                if on_confirmed is not None:
                    on_confirmed(len(rows), latency)
        except BaseException:
            # every transaction still in flight is awaited, so its window slot is given back
            for sent, _ in in_flight:
                try:
                    self.client.wait(sent, timeout_s=5.0)
                except ChainError:
                    pass
            self._synced = False
            raise
        return report

    def _send(self, rows: list[OutboxRow]) -> SentTx:
        batch = sign_batch(
            self.identity,
            chain_id=self.client.chain_id,
            ledger=self.client.address("EventLedger"),
            events=[r.to_sign() for r in rows],
        )
        # Gas is computed rather than estimated: estimation would run against the latest block, where
        # the batches still in flight ahead of this one are not yet recorded, and so would revert.
        payload_bytes = sum(len(r.payload) for r in rows)
        gas = 120_000 + 60_000 + len(rows) * 9_000 + payload_bytes * 40 + 3309 * 40
        return self.client.send(
            self.identity.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch,
            batch.pq_signature, gas=gas,
        )
