"""One oracle at work: readings in, telemetry anchored, verdicts signed, isolations voted, peers checked.

Everything that writes runs on one thread, in this order, once per `run_once`:

1. **Store.** The sink (filled by the MQTT/Modbus threads) is drained into the oracle's
   `TelemetryStore`; a reading counts as taken in once that commit is on disk.
2. **Judge.** Readings stored after the *detection cursor* are replayed from the store through the
   sector's `SectorStream` (rows → model → episodes). Each new episode's verdict is written ahead
   to the outbox as an anomaly/fault/intrusion/maintenance event whose payload carries the episode
   key; a fault on an isolable node also queues an isolation action. The cursor, the stream's state
   and the queued actions are committed together in the oracle's state file.
3. **Anchor and send.** Telemetry batches that are due are sealed and their roots enqueued; the
   recorder sends the outbox (verdicts and roots, in sequence order).
4. **Act.** Queued isolation actions are carried out on the quorum: open the proposal or vote on
   the open one, citing the verdict event as evidence.
5. **Watch peers.** Every `peer_interval_s`, `PeerChecker` re-verifies the peers' ML-DSA batches.

Exactly once, whatever dies when. Readings: the store commit. Verdicts: a crash between the outbox
append (2) and the state commit replays the same readings from the same saved stream state, which
re-derives the same episode keys; keys already in the outbox are not appended again. Roots: the
store's own adoption rule. Votes: the contract refuses a second vote (`QuorumAlreadyVoted`) and a
vote on a node already isolated (`QuorumNodeNotInState`); both mean "done". A chain outage only
delays steps 3–5: they are retried with backoff while readings keep being stored and judged.

The package holds one module per stage; `OracleNode` and every other name importers use stay
importable from `oracles.node`:
- `oracles.node.state`: the state file, options, counters and windows (`state_path`, `NodeOptions`,
  `NodeStats`, `VERDICT_KINDS`, `log_line`);
- `oracles.node.judging`: steps 1–2, store and judge;
- `oracles.node.repairs`: repairs verified, reintegrations voted, settling windows;
- `oracles.node.voting`: step 4, isolations voted;
- `oracles.node.loop`: `OracleNode`, the loop that runs them in order (steps 3 and 5 inline).
"""

from __future__ import annotations

from oracles.node.loop import KeyRotationOwed, OracleNode
from oracles.node.state import LOGGER_NAME, VERDICT_KINDS, NodeOptions, NodeStats, log_line, state_path

__all__ = ["LOGGER_NAME", "VERDICT_KINDS", "KeyRotationOwed", "NodeOptions", "NodeStats", "OracleNode", "log_line",
           "state_path"]
