// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console} from "forge-std/console.sol";
import {Deployed} from "../utils/Deployed.sol";
import {QuorumHandler} from "./QuorumHandler.sol";
import {IRegistry} from "../../../contracts/interfaces/IRegistry.sol";

/// @notice Invariants of the isolation quorum (DESIGN.md, "Oracles and quorum").
contract QuorumInvariants is Deployed {
    QuorumHandler internal handler;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 8);
        _seedSector(ELECTRICITY, 7, 4);
        address controller = makeAddr("controller");
        _councilRun(address(quorum), abi.encodeCall(quorum.grantRole, (quorum.REPAIR_ROLE(), controller)));

        address[] memory actors = new address[](12);
        for (uint256 i; i < 4; ++i) {
            actors[i] = _oracleAt(WATER, i);
        }
        for (uint256 i; i < 7; ++i) {
            actors[4 + i] = _oracleAt(ELECTRICITY, i);
        }
        actors[11] = makeAddr("outsider");
        bytes32[] memory nodes = new bytes32[](12);
        for (uint256 i; i < 8; ++i) {
            nodes[i] = _nodeAt(WATER, i);
        }
        for (uint256 i; i < 4; ++i) {
            nodes[8 + i] = _nodeAt(ELECTRICITY, i);
        }
        handler = new QuorumHandler(registry, quorum, address(council), controller, actors, nodes);
        targetContract(address(handler));
    }

    /// DESIGN: "a decision needs 2f+1 distinct, active, registered oracles of that sector" — no node
    /// becomes isolated without such a quorum at execution, or a recorded governance override.
    function invariant_isolationNeedsQuorumOrOverride() public view {
        assertEq(handler.ghost_unjustifiedIsolations(), 0);
    }

    /// DESIGN: "an oracle votes at most once per proposal; a removed or quarantined oracle's votes
    /// stop counting" — no vote accepted twice, no duplicate voter, tally = independent recount.
    function invariant_noVoteCountedTwice() public view {
        assertEq(handler.ghost_doubleVotes(), 0);
        uint256 count = quorum.proposalCount();
        for (uint256 id = 1; id <= count; ++id) {
            address[] memory voters = quorum.proposalVoters(id);
            for (uint256 i; i < voters.length; ++i) {
                assertEq(handler.ghost_acceptedVotes(id, voters[i]), 1);
                for (uint256 j = i + 1; j < voters.length; ++j) {
                    assertTrue(voters[i] != voters[j], "duplicate voter");
                }
            }
            (uint256 votes, uint256 required) = quorum.tally(id);
            (uint256 expectedVotes, uint256 expectedRequired) = handler.independentTally(id);
            assertEq(votes, expectedVotes);
            assertEq(required, expectedRequired);
        }
    }

    /// DESIGN: "a sector may not have more than a set fraction of its nodes isolated at once without
    /// governance" — every quorum-driven isolation left its sector within the cap in force.
    function invariant_capHoldsForQuorumIsolations() public view {
        assertEq(handler.ghost_capBreaches(), 0);
    }

    /// Registry bookkeeping the cap relies on: out-of-service counters equal a recount of statuses.
    function invariant_outOfServiceCountersMatchStatuses() public view {
        bytes32[] memory nodes = handler.nodeList();
        uint256 water;
        uint256 electricity;
        for (uint256 i; i < nodes.length; ++i) {
            IRegistry.Node memory n = registry.node(nodes[i]);
            if (n.status == IRegistry.NodeStatus.Isolated || n.status == IRegistry.NodeStatus.Repairing) {
                if (n.sector == WATER) ++water;
                else ++electricity;
            }
        }
        assertEq(registry.sectorIsolatedCount(WATER), water);
        assertEq(registry.sectorIsolatedCount(ELECTRICITY), electricity);
    }

    /// Not a rule: reports how much each path was exercised (`forge test -vv`).
    function afterInvariant() public view {
        console.log("votes accepted", handler.ghost_acceptedVoteCount());
        console.log(
            "isolations: quorum", handler.ghost_quorumIsolations(), "override", handler.ghost_overrideIsolations()
        );
    }
}
