// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Deployed} from "./utils/Deployed.sol";
import {IsolationQuorum} from "../../contracts/IsolationQuorum.sol";
import {IIsolationQuorum} from "../../contracts/interfaces/IIsolationQuorum.sol";
import {IRegistry} from "../../contracts/interfaces/IRegistry.sol";

contract IsolationQuorumTest is Deployed {
    IIsolationQuorum.Action internal constant ISOLATE = IIsolationQuorum.Action.Isolate;
    IIsolationQuorum.Action internal constant REINTEGRATE = IIsolationQuorum.Action.Reintegrate;
    IIsolationQuorum.Action internal constant QUARANTINE = IIsolationQuorum.Action.Quarantine;

    address internal controller = makeAddr("controller");
    address[4] internal w; // water oracles
    bytes32 internal nodeA;
    bytes32 internal nodeB;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 4);
        _seedSector(ELECTRICITY, 5, 8);
        _councilRun(address(quorum), abi.encodeCall(quorum.grantRole, (quorum.REPAIR_ROLE(), controller)));
        for (uint256 i; i < 4; ++i) {
            w[i] = _oracleAt(WATER, i);
        }
        nodeA = _nodeAt(WATER, 0);
        nodeB = _nodeAt(WATER, 1);
    }

    function _propose(address oracle, IIsolationQuorum.Action action, bytes32 target) internal returns (uint256) {
        vm.prank(oracle);
        return quorum.propose(action, target, "anomaly", new bytes32[](0));
    }

    function _vote(address oracle, uint256 id) internal {
        vm.prank(oracle);
        quorum.vote(id);
    }

    function _isolate(bytes32 node) internal returns (uint256 id) {
        id = _propose(w[0], ISOLATE, node);
        _vote(w[1], id);
        _vote(w[2], id);
    }

    function _status(bytes32 node) internal view returns (uint8) {
        return uint8(registry.node(node).status);
    }

    function _target(address oracle) internal pure returns (bytes32) {
        return bytes32(uint256(uint160(oracle)));
    }

    // ---- construction and settings ------------------------------------------------------------

    function test_ConstructorEmitsInitialSettings() public {
        vm.expectEmit();
        emit IIsolationQuorum.VotingWindowChanged(0, 600);
        vm.expectEmit();
        emit IIsolationQuorum.IsolationCapChanged(0, 2500);
        IsolationQuorum q = new IsolationQuorum(registry, address(this), 600, 2500);
        assertEq(q.votingWindow(), 600);
        assertEq(q.isolationCapBps(), 2500);
        assertTrue(q.hasRole(q.GOVERNANCE_ROLE(), address(this)));
        assertEq(q.REPAIR_ROLE(), keccak256("REPAIR_ROLE"));
    }

    function test_RevertWhen_ConstructorSettingsOutOfRange() public {
        vm.expectRevert(
            abi.encodeWithSelector(IIsolationQuorum.QuorumInvalidSetting.selector, bytes32("votingWindow"), 59)
        );
        new IsolationQuorum(registry, address(this), 59, 2500);
        vm.expectRevert(
            abi.encodeWithSelector(IIsolationQuorum.QuorumInvalidSetting.selector, bytes32("isolationCapBps"), 0)
        );
        new IsolationQuorum(registry, address(this), 600, 0);
    }

    function test_SettersThroughCouncil() public {
        uint256 id = _councilReady(address(quorum), abi.encodeCall(quorum.setVotingWindow, (3600)));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.VotingWindowChanged(600, 3600);
        _councilExecute(id);
        id = _councilReady(address(quorum), abi.encodeCall(quorum.setIsolationCap, (5000)));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.IsolationCapChanged(2500, 5000);
        _councilExecute(id);
        assertEq(quorum.votingWindow(), 3600);
        assertEq(quorum.isolationCapBps(), 5000);
    }

    function testFuzz_SetterRanges(uint64 window, uint16 cap) public {
        bool windowOk = window >= 60 && window <= 7 days;
        bool capOk = cap >= 1 && cap <= 10_000;
        vm.startPrank(address(council));
        if (!windowOk) {
            vm.expectRevert(
                abi.encodeWithSelector(IIsolationQuorum.QuorumInvalidSetting.selector, bytes32("votingWindow"), window)
            );
        }
        quorum.setVotingWindow(window);
        if (!capOk) {
            vm.expectRevert(
                abi.encodeWithSelector(IIsolationQuorum.QuorumInvalidSetting.selector, bytes32("isolationCapBps"), cap)
            );
        }
        quorum.setIsolationCap(cap);
        vm.stopPrank();
        assertEq(quorum.votingWindow(), windowOk ? window : 600);
        assertEq(quorum.isolationCapBps(), capOk ? cap : 2500);
    }

    function testFuzz_RevertWhen_NonGovernanceCallsGovernance(address caller) public {
        vm.assume(caller != address(council));
        bytes32 role = quorum.GOVERNANCE_ROLE();
        bytes memory denied =
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
        vm.startPrank(caller);
        vm.expectRevert(denied);
        quorum.setVotingWindow(3600);
        vm.expectRevert(denied);
        quorum.setIsolationCap(5000);
        vm.expectRevert(denied);
        quorum.forceIsolate(nodeA, "x");
        vm.expectRevert(denied);
        quorum.forceReintegrate(nodeA, "x");
        vm.stopPrank();
    }

    /// @dev requiredVotes = 2f+1 with f = (n-1)/3, and n ≥ 3f+1 always holds.
    function testFuzz_RequiredVotesFormula(uint256 n) public {
        n = bound(n, 0, 64);
        vm.mockCall(address(registry), abi.encodeCall(registry.activeOracleCount, (SEWAGE)), abi.encode(n));
        uint256 required = quorum.requiredVotes(SEWAGE);
        if (n == 0) {
            assertEq(required, type(uint256).max);
            return;
        }
        uint256 f = (required - 1) / 2;
        assertEq(required, 2 * f + 1);
        assertGe(n, 3 * f + 1);
        assertLt(n, 3 * (f + 1) + 1);
        assertLe(required, n);
    }

    function test_RequiredVotesDefaults() public view {
        assertEq(quorum.requiredVotes(WATER), 3); // n = 4
        assertEq(quorum.requiredVotes(ELECTRICITY), 3); // n = 5
        assertEq(quorum.requiredVotes(BANKING), type(uint256).max); // n = 0
    }

    // ---- isolation ------------------------------------------------------------------------------

    function test_ProposeCreatesAndCountsProposerVote() public {
        bytes32[] memory evidence = new bytes32[](2);
        evidence[0] = bytes32(uint256(uint160(w[0])) << 64 | 7);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.ProposalCreated(
            1, ISOLATE, WATER, nodeA, w[0], uint64(block.timestamp) + 600, "leak", evidence
        );
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.VoteCast(1, w[0], 1, 3);
        vm.prank(w[0]);
        assertEq(quorum.propose(ISOLATE, nodeA, "leak", evidence), 1);

        IIsolationQuorum.Proposal memory p = quorum.proposal(1);
        assertEq(uint8(p.action), uint8(ISOLATE));
        assertEq(p.sector, WATER);
        assertEq(p.target, nodeA);
        assertEq(p.proposer, w[0]);
        assertEq(p.createdAt, block.timestamp);
        assertEq(p.deadline, block.timestamp + 600);
        assertFalse(p.executed);
        assertEq(p.reason, bytes32("leak"));
        assertEq(uint8(quorum.proposalState(1)), uint8(IIsolationQuorum.ProposalState.Open));
        assertEq(quorum.openProposal(ISOLATE, nodeA), 1);
        assertTrue(quorum.hasVoted(1, w[0]));
        assertEq(quorum.proposalVoters(1).length, 1);
        (uint256 votes, uint256 required) = quorum.tally(1);
        assertEq(votes, 1);
        assertEq(required, 3);
        assertEq(quorum.proposalCount(), 1);
    }

    function test_ThirdVoteIsolatesInSameTransaction() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        _vote(w[1], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.VoteCast(id, w[2], 3, 3);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.ProposalExecuted(id, ISOLATE, nodeA, 3);
        vm.expectEmit(address(registry));
        emit IRegistry.NodeStatusChanged(nodeA, WATER, IRegistry.NodeStatus.Active, IRegistry.NodeStatus.Isolated);
        _vote(w[2], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Isolated));
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Executed));
        assertEq(quorum.openProposal(ISOLATE, nodeA), 0);
        assertEq(registry.sectorIsolatedCount(WATER), 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IIsolationQuorum.QuorumWrongState.selector,
                id,
                IIsolationQuorum.ProposalState.Open,
                IIsolationQuorum.ProposalState.Executed
            )
        );
        _vote(w[3], id);
    }

    function test_RevertWhen_ProposerNotActiveInSector() public {
        address e0 = _oracleAt(ELECTRICITY, 0);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, e0, WATER));
        _propose(e0, ISOLATE, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, address(this), WATER));
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](0));
        vm.prank(address(quorum));
        registry.quarantineOracle(w[0], "q");
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, w[0], WATER));
        _propose(w[0], ISOLATE, nodeA);
    }

    function test_RevertWhen_ProposeInvalidTargetOrEvidence() public {
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, bytes32("ghost"), 1, 0));
        _propose(w[0], ISOLATE, "ghost");
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, nodeA, 3, 1));
        _propose(w[0], REINTEGRATE, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumTooMuchEvidence.selector, 33, 32));
        vm.prank(w[0]);
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](33));
        vm.prank(w[0]);
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](32));
    }

    function test_RevertWhen_ProposalAlreadyOpenButReplaceableAfterExpiry() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumProposalExists.selector, id));
        _propose(w[1], ISOLATE, nodeA);
        _propose(w[1], ISOLATE, nodeB); // other target: fine
        vm.warp(block.timestamp + 600);
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Open)); // deadline inclusive
        vm.warp(block.timestamp + 1);
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Expired));
        assertEq(quorum.openProposal(ISOLATE, nodeA), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IIsolationQuorum.QuorumWrongState.selector,
                id,
                IIsolationQuorum.ProposalState.Open,
                IIsolationQuorum.ProposalState.Expired
            )
        );
        _vote(w[1], id);
        uint256 next = _propose(w[1], ISOLATE, nodeA);
        assertEq(quorum.openProposal(ISOLATE, nodeA), next);
    }

    function test_RevertWhen_VoteTwiceOrUnknownOrOutsider() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumAlreadyVoted.selector, id, w[0]));
        _vote(w[0], id);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumUnknownProposal.selector, 99));
        _vote(w[1], 99);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumUnknownProposal.selector, 0));
        _vote(w[1], 0);
        address e0 = _oracleAt(ELECTRICITY, 0);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, e0, WATER));
        _vote(e0, id);
    }

    /// @dev n = 5 (f = 1, 2f+1 = 3). Two votes, then one voter is removed: its vote stops counting,
    /// so a third vote is not enough; a fourth one is.
    function test_RemovedVoterStopsCounting() public {
        uint256 id = _propose(_oracleAt(ELECTRICITY, 0), ISOLATE, _nodeAt(ELECTRICITY, 0));
        _vote(_oracleAt(ELECTRICITY, 1), id);
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (_oracleAt(ELECTRICITY, 0), "gone")));
        (uint256 votes, uint256 required) = quorum.tally(id);
        assertEq(votes, 1);
        assertEq(required, 3); // n = 4
        _vote(_oracleAt(ELECTRICITY, 2), id);
        assertEq(_status(_nodeAt(ELECTRICITY, 0)), uint8(IRegistry.NodeStatus.Active));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotReached.selector, id, 2, 3));
        quorum.execute(id);
        _vote(_oracleAt(ELECTRICITY, 3), id);
        assertEq(_status(_nodeAt(ELECTRICITY, 0)), uint8(IRegistry.NodeStatus.Isolated));
    }

    /// @dev Any 3 distinct water oracles, in any order, isolate on exactly the third vote.
    function testFuzz_AnyThreeDistinctOraclesIsolate(uint8 skip, uint8 order) public {
        skip = uint8(bound(skip, 0, 3));
        address[] memory voters = new address[](3);
        uint256 k;
        for (uint256 i; i < 4; ++i) {
            if (i != skip) voters[k++] = w[i];
        }
        if (order % 2 == 1) (voters[0], voters[2]) = (voters[2], voters[0]);
        uint256 id = _propose(voters[0], ISOLATE, nodeA);
        _vote(voters[1], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));
        _vote(voters[2], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Isolated));
    }

    // ---- cap, execute ---------------------------------------------------------------------------

    function test_CapBlocksSecondIsolationWithoutRevertingVote() public {
        _isolate(nodeA); // 1 of 4 = 25 % ≤ cap
        uint256 id = _propose(w[0], ISOLATE, nodeB);
        _vote(w[1], id);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.IsolationBlockedByCap(id, WATER, 1, 4);
        _vote(w[2], id);
        assertEq(_status(nodeB), uint8(IRegistry.NodeStatus.Active));
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Open));
        assertTrue(quorum.hasVoted(id, w[2]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumCapReached.selector, WATER, 1, 4, 2500));
        quorum.execute(id);

        _councilRun(address(quorum), abi.encodeCall(quorum.setIsolationCap, (5000)));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.ProposalExecuted(id, ISOLATE, nodeB, 3);
        vm.prank(makeAddr("anyone"));
        quorum.execute(id);
        assertEq(_status(nodeB), uint8(IRegistry.NodeStatus.Isolated));
        assertEq(registry.sectorIsolatedCount(WATER), 2);
    }

    function test_RevertWhen_ExecuteTargetMovedMeanwhile() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        _vote(w[1], id);
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeA, "manual")));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, nodeA, 1, 2));
        _vote(w[2], id);
    }

    // ---- repair and reintegration -------------------------------------------------------------

    function test_RepairAndQuorumReintegration() public {
        _isolate(nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), quorum.REPAIR_ROLE()
            )
        );
        quorum.beginRepair(nodeA);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.RepairStarted(nodeA, controller);
        vm.prank(controller);
        quorum.beginRepair(nodeA);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Repairing));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, nodeA, 2, 3));
        vm.prank(controller);
        quorum.beginRepair(nodeA);

        uint256 id = _propose(w[3], REINTEGRATE, nodeA);
        _vote(w[2], id);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.ProposalExecuted(id, REINTEGRATE, nodeA, 3);
        _vote(w[1], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));
        assertEq(registry.sectorIsolatedCount(WATER), 0);
    }

    function test_ForceIsolateBypassesCapAndIsRecorded() public {
        _isolate(nodeA);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.GovernanceOverride(nodeB, 1, 2, "storm");
        vm.expectEmit(address(registry));
        emit IRegistry.NodeStatusChanged(nodeB, WATER, IRegistry.NodeStatus.Active, IRegistry.NodeStatus.Isolated);
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeB, "storm")));
        assertEq(registry.sectorIsolatedCount(WATER), 2);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, nodeB, 1, 2));
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeB, "again")));
    }

    function test_ForceReintegrateFromIsolatedAndRepairing() public {
        _isolate(nodeA);
        uint256 id = _councilReady(address(quorum), abi.encodeCall(quorum.forceReintegrate, (nodeA, "false alarm")));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.GovernanceOverride(nodeA, 2, 1, "false alarm");
        _councilExecute(id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));

        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeA, "x")));
        vm.prank(controller);
        quorum.beginRepair(nodeA);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.GovernanceOverride(nodeA, 3, 1, "done");
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceReintegrate, (nodeA, "done")));
        assertEq(registry.sectorIsolatedCount(WATER), 0);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, nodeA, 2, 1));
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceReintegrate, (nodeA, "no")));
    }

    // ---- quarantine ---------------------------------------------------------------------------

    function test_QuarantineByQuorum() public {
        bytes32 target = _target(w[3]);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumSelfQuarantineVote.selector, 0, w[3]));
        _propose(w[3], QUARANTINE, target);
        uint256 id = _propose(w[0], QUARANTINE, target);
        assertEq(quorum.proposal(id).sector, WATER);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumSelfQuarantineVote.selector, id, w[3]));
        _vote(w[3], id);
        _vote(w[1], id);
        vm.expectEmit(address(registry));
        emit IRegistry.OracleStatusChanged(
            w[3], IRegistry.OracleStatus.Active, IRegistry.OracleStatus.Quarantined, "anomaly"
        );
        _vote(w[2], id);
        assertEq(uint8(registry.oracle(w[3]).status), uint8(IRegistry.OracleStatus.Quarantined));
        assertEq(registry.activeOracleCount(WATER), 3);
        assertEq(quorum.requiredVotes(WATER), 1); // n = 3 → f = 0
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, target, 1, 2));
        _propose(w[0], QUARANTINE, target);
    }

    function test_RevertWhen_QuarantineTargetNotAnAddress() public {
        bytes32 target = bytes32(uint256(1) << 200 | uint160(w[3]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, target, 1, 0));
        _propose(w[0], QUARANTINE, target);
        vm.expectRevert(
            abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, _target(address(5)), 1, 0)
        );
        _propose(w[0], QUARANTINE, _target(address(5)));
    }

    // ---- bounded voter list -------------------------------------------------------------------

    /// @dev Fills a proposal's voter list with 64 entries, 42 of them no longer active; the next vote
    /// prunes the inactive ones instead of growing the list.
    function test_FullVoterListIsPrunedOfInactiveVoters() public {
        _seedSector(SEWAGE, 64, 1);
        bytes32 node = _nodeAt(SEWAGE, 0);
        uint256 id = _propose(_oracleAt(SEWAGE, 0), ISOLATE, node);
        for (uint256 i = 1; i < 42; ++i) {
            _vote(_oracleAt(SEWAGE, i), id);
        }
        for (uint256 i; i < 42; ++i) {
            _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (_oracleAt(SEWAGE, i), "churn")));
        }
        _addOracles(SEWAGE, 64, 106); // n = 64 again, required 43
        for (uint256 i = 42; i < 64; ++i) {
            _vote(_oracleAt(SEWAGE, i), id);
        }
        assertEq(quorum.proposalVoters(id).length, 64);
        (uint256 votes,) = quorum.tally(id);
        assertEq(votes, 22);
        _vote(_oracleAt(SEWAGE, 64), id);
        assertEq(quorum.proposalVoters(id).length, 23);
        assertTrue(quorum.hasVoted(id, _oracleAt(SEWAGE, 0)));
        (votes,) = quorum.tally(id);
        assertEq(votes, 23);
    }
}
