// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console} from "forge-std/console.sol";
import {InvariantMetrics} from "../utils/InvariantMetrics.sol";
import {Deployed, PqFixtures} from "../utils/Deployed.sol";
import {LedgerHandler} from "./LedgerHandler.sol";

/// @notice Invariants of the event ledger (DESIGN.md, "Signatures and keys").
contract LedgerInvariants is Deployed {
    LedgerHandler internal handler;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 3, 1);
        _seedSector(BANKING, 2, 1);
        address[] memory actors = new address[](6);
        for (uint256 i; i < 3; ++i) {
            actors[i] = _oracleAt(WATER, i);
        }
        (actors[3], actors[4]) = (_oracleAt(BANKING, 0), _oracleAt(BANKING, 1));
        actors[5] = makeAddr("outsider");
        handler =
            new LedgerHandler(registry, ledger, address(council), address(quorum), actors, PqFixtures.signature(7));
        targetContract(address(handler));
    }

    /// DESIGN: signed messages bind "its sequence number ... so the two signatures cannot be separated
    /// or replayed" — a replayed or non-increasing sequence is never accepted: every outcome matches
    /// the independent prediction and lastSeq never goes down.
    function invariant_replayNeverAccepted() public view {
        assertEq(handler.ghost_mismatches(), 0);
        assertEq(handler.ghost_lastSeqDecreases(), 0);
    }

    /// Same rule, state view: lastSeq of every oracle equals the last seq of its accepted batches.
    function invariant_lastSeqEqualsGhost() public view {
        address[] memory actors = handler.actorList();
        for (uint256 i; i < actors.length; ++i) {
            assertEq(ledger.lastSeq(actors[i]), handler.ghost_lastSeq(actors[i]));
        }
    }

    /// Same rule, log view: batches and logged events equal what the ghost expected to be accepted.
    function invariant_acceptedEventsEqualExpected() public view {
        assertEq(ledger.batchCount(), handler.ghost_acceptedBatches());
        assertEq(handler.ghost_loggedEvents(), handler.ghost_acceptedEvents());
    }

    /// Issue 13: one oracle never takes more of a block than its budget (MAX_BATCHES_PER_BLOCK batches,
    /// MAX_BYTES_PER_BLOCK bytes), whatever it sends; the ledger's own account agrees with the ghost's.
    function invariant_perBlockBudgetNeverExceeded() public view {
        assertLe(handler.ghost_maxBatchesInBlock(), ledger.MAX_BATCHES_PER_BLOCK());
        assertLe(handler.ghost_maxBytesInBlock(), ledger.MAX_BYTES_PER_BLOCK());
        address[] memory actors = handler.actorList();
        for (uint256 i; i < actors.length; ++i) {
            (, uint32 batches, uint32 size) = ledger.blockUsage(actors[i]);
            assertLe(batches, ledger.MAX_BATCHES_PER_BLOCK());
            assertLe(size, ledger.MAX_BYTES_PER_BLOCK());
        }
    }

    /// Successful handler calls per action (refusals by the bounds are counted as what they are), and
    /// the most one oracle reached in one block, printed after each run (`-vv`), for the closing note.
    /// Not a rule: this run's successful calls per action (summed by scripts/invariant_metrics.py).
    function afterInvariant() external {
        bytes32[] memory names = handler.actions();
        for (uint256 i; i < names.length; ++i) {
            InvariantMetrics.append("ledger", InvariantMetrics.name(names[i]), "", handler.successes(names[i]));
        }
        console.log("ledger: most batches / bytes one oracle recorded in one block",
            handler.ghost_maxBatchesInBlock(), handler.ghost_maxBytesInBlock());
    }
}
