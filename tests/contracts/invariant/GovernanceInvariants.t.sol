// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console} from "forge-std/console.sol";
import {Deployed, PqFixtures} from "../utils/Deployed.sol";
import {GovernanceHandler} from "./GovernanceHandler.sol";
import {IGovernanceCouncil} from "../../../contracts/interfaces/IGovernanceCouncil.sol";
import {InvariantMetrics} from "../utils/InvariantMetrics.sol";

/// @notice Invariants of configuration and membership (DESIGN.md, "Its users": governors change the
/// system only through multisig proposals on-chain), and of the council's own rules: timelock,
/// emergency threshold, calls bound by hash, approvals bound to membership.
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

    /// DESIGN: "Governors ... change the system only through multisig proposals on-chain" — no direct,
    /// under-approved, swapped-calls or repeated execution ever succeeded.
    function invariant_noUnauthorizedChangeSucceeds() public view {
        assertEq(handler.ghost_unauthorizedChanges(), 0);
    }

    /// The contract never allowed what the model of the rules forbids: execution only when queued under
    /// the current council with threshold approvals and the eta reached; emergency only with
    /// min(threshold + 1, governors) approvals and only for allowlisted calls (never the council's own);
    /// approvals only from current governors on open proposals.
    function invariant_councilFollowsTheModel() public view {
        assertEq(handler.ghost_violations(), 0);
        uint256[] memory ids = handler.proposalIds();
        for (uint256 i; i < ids.length; ++i) {
            assertEq(council.approvals(ids[i]), handler.modelApprovals(ids[i]));
            IGovernanceCouncil.ProposalState state = council.proposalState(ids[i]);
            bool finished = state == IGovernanceCouncil.ProposalState.Executed
                || state == IGovernanceCouncil.ProposalState.Cancelled;
            assertEq(finished, handler.modelDone(ids[i]));
            // a Ready proposal is always past its eta, a Queued one before it
            if (state == IGovernanceCouncil.ProposalState.Ready) {
                assertGe(block.timestamp, council.proposal(ids[i]).eta);
            }
            if (state == IGovernanceCouncil.ProposalState.Queued) {
                assertLt(block.timestamp, council.proposal(ids[i]).eta);
            }
        }
    }

    /// Same rule, state view: settings equal what full council proposals set; membership equals the
    /// model's; registry membership, roles and sectors are unchanged.
    function invariant_configurationOnlyFromGovernance() public view {
        assertEq(quorum.votingWindow(), handler.ghost_window());
        assertEq(quorum.isolationCapBps(), handler.ghost_cap());
        assertEq(council.threshold(), handler.ghost_threshold());
        assertEq(council.delay(), handler.ghost_delay());
        assertEq(council.isEmergencyCall(address(quorum), quorum.setIsolationCap.selector), handler.ghost_capAllowed());
        assertFalse(council.isEmergencyCall(address(council), council.setDelay.selector));
        assertFalse(council.isEmergencyCall(address(quorum), quorum.grantRole.selector));
        assertFalse(council.isEmergencyCall(address(registry), registry.removeOracle.selector));
        address[] memory pool = handler.poolList();
        for (uint256 i; i < pool.length; ++i) {
            assertEq(council.isGovernor(pool[i]), handler.isModelGovernor(pool[i]));
        }
        uint256 n = council.governors().length;
        assertEq(n, handler.modelGovernorCount());
        assertGe(council.threshold(), 1);
        assertLe(council.threshold(), n);
        assertEq(council.emergencyThreshold(), council.threshold() < n ? council.threshold() + 1 : n);
        assertGe(council.delay(), council.MIN_DELAY());
        assertLe(council.delay(), council.MAX_DELAY());
        assertEq(registry.activeOracleCount(WATER), 4);
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

    /// Successful handler calls per action, for the closing note. Each run's handler is new, so the
    /// counts are summed across runs in the process environment (`QEAIMS_GOV_<action>`; all three
    /// invariants of this suite add to the same sums) and printed after every run (`-vv`; the last
    /// line per action is the total).
    /// Not a rule: this run's successful calls per action (summed by scripts/invariant_metrics.py).
    function afterInvariant() external {
        bytes32[] memory names = handler.actions();
        for (uint256 i; i < names.length; ++i) {
            InvariantMetrics.append("governance", InvariantMetrics.name(names[i]), "", handler.successes(names[i]));
        }
    }
}
