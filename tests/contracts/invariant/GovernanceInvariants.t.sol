// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Deployed, PqFixtures} from "../utils/Deployed.sol";
import {GovernanceHandler} from "./GovernanceHandler.sol";

/// @notice Invariants of configuration and membership (DESIGN.md, "Its users": governors change the
/// system only through multisig proposals on-chain).
contract GovernanceInvariants is Deployed {
    GovernanceHandler internal handler;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 4);
        address[] memory callers = new address[](11);
        callers[0] = deployer;
        for (uint256 i; i < 6; ++i) {
            callers[1 + i] = governors[i];
        }
        (callers[7], callers[8]) = (_oracleAt(WATER, 0), address(ledger));
        (callers[9], callers[10]) = (makeAddr("attacker"), address(registry));
        handler = new GovernanceHandler(
            registry, quorum, council, callers, _oracleAt(WATER, 1), _nodeAt(WATER, 0), PqFixtures.key(5)
        );
        targetContract(address(handler));
    }

    /// DESIGN: "Governors ... change the system only through multisig proposals on-chain" — no direct
    /// or under-approved attempt by a non-governance caller ever succeeded.
    function invariant_noUnauthorizedChangeSucceeds() public view {
        assertEq(handler.ghost_unauthorizedChanges(), 0);
    }

    /// Same rule, state view: settings equal what full council proposals set; membership, roles and
    /// the council itself are unchanged.
    function invariant_configurationOnlyFromGovernance() public view {
        assertEq(quorum.votingWindow(), handler.ghost_window());
        assertEq(quorum.isolationCapBps(), handler.ghost_cap());
        assertEq(council.threshold(), THRESHOLD);
        assertEq(council.governors(), governors);
        assertEq(registry.activeOracleCount(WATER), 4);
        assertEq(registry.oracleSlots(WATER), 4);
        assertEq(registry.sectorNodeCount(WATER), 4);
        assertEq(registry.sectorIsolatedCount(WATER), 0);
        for (uint256 i; i < 3; ++i) {
            assertFalse(registry.isSector(handler.candidateSector(i)));
        }
        assertTrue(registry.hasRole(registry.GOVERNANCE_ROLE(), address(council)));
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), address(council)));
        assertTrue(quorum.hasRole(quorum.DEFAULT_ADMIN_ROLE(), address(council)));
        address[] memory callers = handler.callerList();
        for (uint256 i; i < callers.length; ++i) {
            assertFalse(registry.hasRole(registry.GOVERNANCE_ROLE(), callers[i]));
            assertFalse(registry.hasRole(registry.STATUS_ROLE(), callers[i]));
            assertFalse(quorum.hasRole(quorum.GOVERNANCE_ROLE(), callers[i]));
            assertFalse(quorum.hasRole(quorum.REPAIR_ROLE(), callers[i]));
            assertFalse(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), callers[i]));
        }
    }
}
