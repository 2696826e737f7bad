// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

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
}
