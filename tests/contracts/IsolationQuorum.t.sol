// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Deployed, PqFixtures} from "./utils/Deployed.sol";
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

    function _sig(address oracle) internal pure returns (bytes memory) {
        return PqFixtures.signature(uint160(oracle));
    }

    /// @dev The ballot `oracle` signs now for (action, target), read before any prank.
    function _ballot(address oracle, IIsolationQuorum.Action action, bytes32 target)
        internal
        view
        returns (IIsolationQuorum.Ballot memory)
    {
        (, uint64 epoch, uint32 round) = quorum.ballot(action, target);
        return IIsolationQuorum.Ballot(epoch, round, registry.oracle(oracle).keyEpoch, _sig(oracle));
    }

    function _propose(address oracle, IIsolationQuorum.Action action, bytes32 target) internal returns (uint256) {
        return _proposeWith(oracle, action, target, new bytes32[](0));
    }

    function _proposeWith(address oracle, IIsolationQuorum.Action action, bytes32 target, bytes32[] memory evidence)
        internal
        returns (uint256)
    {
        IIsolationQuorum.Ballot memory b = _ballot(oracle, action, target);
        vm.prank(oracle);
        return quorum.propose(action, target, "anomaly", evidence, b);
    }

    /// @dev `_propose` expecting `err` (the ballot is read first: expectRevert applies to the next call).
    function _proposeReverts(address oracle, IIsolationQuorum.Action action, bytes32 target, bytes memory err)
        internal
    {
        _proposeWithReverts(oracle, action, target, new bytes32[](0), err);
    }

    function _proposeWithReverts(
        address oracle,
        IIsolationQuorum.Action action,
        bytes32 target,
        bytes32[] memory evidence,
        bytes memory err
    ) internal {
        IIsolationQuorum.Ballot memory b = _ballot(oracle, action, target);
        vm.expectRevert(err);
        vm.prank(oracle);
        quorum.propose(action, target, "anomaly", evidence, b);
    }

    function _voteReverts(address oracle, uint256 id, bytes memory err) internal {
        uint32 keyEpoch = registry.oracle(oracle).keyEpoch;
        vm.expectRevert(err);
        vm.prank(oracle);
        quorum.vote(id, keyEpoch, _sig(oracle));
    }

    function _vote(address oracle, uint256 id) internal {
        uint32 keyEpoch = registry.oracle(oracle).keyEpoch;
        vm.prank(oracle);
        quorum.vote(id, keyEpoch, _sig(oracle));
    }

    function _execute(address oracle, uint256 id) internal {
        vm.prank(oracle);
        quorum.execute(id);
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

    /// @dev q(n) = ⌊(n+f)/2⌋+1: any two quorums of n share ≥ f+1 members (an honest one), f silent
    /// members cannot block (q ≤ n − f), and for n = 3f+1 it is the familiar 2f+1.
    function testFuzz_QuorumSizeIntersectsAndIsLive(uint256 n) public view {
        n = bound(n, 0, 64);
        uint256 q = quorum.quorumSize(n);
        if (n == 0) {
            assertEq(q, type(uint256).max);
            return;
        }
        uint256 f = (n - 1) / 3;
        assertGe(2 * q, n + f + 1, "two quorums need not share an honest member");
        assertLe(q, n - f, "f silent members could block every decision");
        if (n == 3 * f + 1) assertEq(q, 2 * f + 1);
        assertLt(2 * (q - 1), n + f + 1, "a smaller quorum would do");
    }

    function test_QuorumSizes() public view {
        assertEq(quorum.quorumSize(1), 1);
        assertEq(quorum.quorumSize(2), 2);
        assertEq(quorum.quorumSize(3), 2);
        assertEq(quorum.quorumSize(4), 3);
        assertEq(quorum.quorumSize(5), 4); // 2f+1 = 3 would let two quorums share one Byzantine oracle
        assertEq(quorum.quorumSize(6), 4);
        assertEq(quorum.quorumSize(7), 5);
        assertEq(quorum.quorumSize(64), 43);
    }

    function test_RequiredVotesDefaults() public view {
        assertEq(quorum.requiredVotes(WATER), 3); // n = 4
        assertEq(quorum.requiredVotes(ELECTRICITY), 4); // n = 5
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
        emit IIsolationQuorum.ProposalBallot(1, 1, 1, 4, 3);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.VoteCast(1, w[0], 1, 3, 1, _sig(w[0]));
        IIsolationQuorum.Ballot memory b = IIsolationQuorum.Ballot(1, 1, 1, _sig(w[0]));
        vm.prank(w[0]);
        assertEq(quorum.propose(ISOLATE, nodeA, "leak", evidence, b), 1);

        IIsolationQuorum.Proposal memory p = quorum.proposal(1);
        assertEq(uint8(p.action), uint8(ISOLATE));
        assertEq(p.sector, WATER);
        assertEq(p.target, nodeA);
        assertEq(p.proposer, w[0]);
        assertEq(p.createdAt, block.timestamp);
        assertEq(p.deadline, block.timestamp + 600);
        assertFalse(p.executed);
        assertEq(p.reason, bytes32("leak"));
        assertEq(p.statusEpoch, 1);
        assertEq(p.round, 1);
        assertEq(p.membership, 4);
        assertEq(p.required, 3);
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
        emit IIsolationQuorum.VoteCast(id, w[2], 3, 3, 1, _sig(w[2]));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.ProposalExecuted(id, ISOLATE, nodeA, 3);
        vm.expectEmit(address(registry));
        emit IRegistry.NodeStatusChanged(nodeA, WATER, IRegistry.NodeStatus.Active, IRegistry.NodeStatus.Isolated, 2);
        _vote(w[2], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Isolated));
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Executed));
        assertEq(quorum.openProposal(ISOLATE, nodeA), 0);
        assertEq(registry.sectorIsolatedCount(WATER), 1);
        _voteReverts(w[3], id, 
            abi.encodeWithSelector(
                IIsolationQuorum.QuorumWrongState.selector,
                id,
                IIsolationQuorum.ProposalState.Open,
                IIsolationQuorum.ProposalState.Executed
            )
        );
    }

    function test_RevertWhen_ProposerNotActiveInSector() public {
        address e0 = _oracleAt(ELECTRICITY, 0);
        _proposeReverts(e0, ISOLATE, nodeA, abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, e0, WATER));
        IIsolationQuorum.Ballot memory b = _ballot(w[0], ISOLATE, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, address(this), WATER));
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](0), b);
        vm.prank(address(quorum));
        registry.quarantineOracle(w[0], "q");
        _proposeReverts(w[0], ISOLATE, nodeA, abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, w[0], WATER));
    }

    function test_RevertWhen_ProposeInvalidTargetOrEvidence() public {
        _proposeReverts(w[0], ISOLATE, "ghost", abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, bytes32("ghost"), 1, 0));
        _proposeReverts(w[0], REINTEGRATE, nodeA, abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, nodeA, 3, 1));
        _proposeWithReverts(w[0], ISOLATE, nodeA, new bytes32[](33), abi.encodeWithSelector(IIsolationQuorum.QuorumTooMuchEvidence.selector, 33, 32));
        _proposeWith(w[0], ISOLATE, nodeA, new bytes32[](32));
    }

    /// @dev Two oracles race to open the same ballot: the second propose becomes a vote on the first's.
    function test_ProposeOnAnOpenBallotVotesAndAStaleOneReverts() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        IIsolationQuorum.Ballot memory raced = IIsolationQuorum.Ballot(1, 1, 1, _sig(w[1]));
        vm.prank(w[1]);
        assertEq(quorum.propose(ISOLATE, nodeA, "x", new bytes32[](0), raced), id);
        assertTrue(quorum.hasVoted(id, w[1]));
        assertEq(quorum.proposalCount(), 1);
        IIsolationQuorum.Ballot memory nextRound = IIsolationQuorum.Ballot(1, 2, 1, _sig(w[2]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumStaleBallot.selector, id, 1, 1));
        vm.prank(w[2]);
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](0), nextRound);
        _propose(w[1], ISOLATE, nodeB); // other target: fine
    }

    function test_ProposalReplaceableAfterExpiryInTheNextRound() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        vm.warp(block.timestamp + 600);
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Open)); // deadline inclusive
        vm.warp(block.timestamp + 1);
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Expired));
        assertEq(quorum.openProposal(ISOLATE, nodeA), 0);
        _voteReverts(w[1], id, 
            abi.encodeWithSelector(
                IIsolationQuorum.QuorumWrongState.selector,
                id,
                IIsolationQuorum.ProposalState.Open,
                IIsolationQuorum.ProposalState.Expired
            )
        );
        // a signature over the expired round cannot open the next one
        IIsolationQuorum.Ballot memory old = IIsolationQuorum.Ballot(1, 1, 1, _sig(w[1]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumStaleBallot.selector, 0, 1, 2));
        vm.prank(w[1]);
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](0), old);
        uint256 next = _propose(w[1], ISOLATE, nodeA);
        assertEq(quorum.openProposal(ISOLATE, nodeA), next);
        assertEq(quorum.proposal(next).round, 2);
    }

    function test_RevertWhen_VoteTwiceOrUnknownOrOutsider() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        _voteReverts(w[0], id, abi.encodeWithSelector(IIsolationQuorum.QuorumAlreadyVoted.selector, id, w[0]));
        _voteReverts(w[1], 99, abi.encodeWithSelector(IIsolationQuorum.QuorumUnknownProposal.selector, 99));
        _voteReverts(w[1], 0, abi.encodeWithSelector(IIsolationQuorum.QuorumUnknownProposal.selector, 0));
        address e0 = _oracleAt(ELECTRICITY, 0);
        _voteReverts(e0, id, abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, e0, WATER));
    }

    /// @dev n = 5 (f = 1, q = 4). Two votes, then one voter is removed: its vote stops counting, and
    /// the requirement captured at open (4) does not fall with the membership (4 → q 3).
    function test_RemovedVoterStopsCountingAndRequirementHolds() public {
        address[5] memory e;
        for (uint256 i; i < 5; ++i) {
            e[i] = _oracleAt(ELECTRICITY, i);
        }
        bytes32 node = _nodeAt(ELECTRICITY, 0);
        uint256 id = _propose(e[0], ISOLATE, node);
        _vote(e[1], id);
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (e[0], "gone")));
        (uint256 votes, uint256 required) = quorum.tally(id);
        assertEq(votes, 1);
        assertEq(required, 4);
        assertEq(quorum.requiredVotes(ELECTRICITY), 3); // a new proposal would capture n = 4
        _vote(e[2], id);
        _vote(e[3], id);
        assertEq(_status(node), uint8(IRegistry.NodeStatus.Active));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotReached.selector, id, 3, 4));
        _execute(e[1], id);
        _vote(e[4], id);
        assertEq(_status(node), uint8(IRegistry.NodeStatus.Isolated));
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
        _execute(w[0], id);

        _councilRun(address(quorum), abi.encodeCall(quorum.setIsolationCap, (5000)));
        address anyone = makeAddr("anyone");
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, anyone, WATER));
        vm.prank(anyone);
        quorum.execute(id);
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.ProposalExecuted(id, ISOLATE, nodeB, 3);
        _execute(w[3], id);
        assertEq(_status(nodeB), uint8(IRegistry.NodeStatus.Isolated));
        assertEq(registry.sectorIsolatedCount(WATER), 2);
    }

    function test_RevertWhen_VoteAfterTargetMovedMeanwhile() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        _vote(w[1], id);
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeA, "manual")));
        _voteReverts(w[2], id, 
            abi.encodeWithSelector(
                IIsolationQuorum.QuorumWrongState.selector,
                id,
                IIsolationQuorum.ProposalState.Open,
                IIsolationQuorum.ProposalState.Closed
            )
        );
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
        emit IRegistry.NodeStatusChanged(nodeB, WATER, IRegistry.NodeStatus.Active, IRegistry.NodeStatus.Isolated, 2);
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
        _proposeReverts(w[3], QUARANTINE, target, abi.encodeWithSelector(IIsolationQuorum.QuorumSelfQuarantineVote.selector, 0, w[3]));
        uint256 id = _propose(w[0], QUARANTINE, target);
        assertEq(quorum.proposal(id).sector, WATER);
        _voteReverts(w[3], id, abi.encodeWithSelector(IIsolationQuorum.QuorumSelfQuarantineVote.selector, id, w[3]));
        _vote(w[1], id);
        vm.expectEmit(address(registry));
        emit IRegistry.OracleStatusChanged(
            w[3], IRegistry.OracleStatus.Active, IRegistry.OracleStatus.Quarantined, "anomaly", 2
        );
        _vote(w[2], id);
        assertEq(uint8(registry.oracle(w[3]).status), uint8(IRegistry.OracleStatus.Quarantined));
        assertEq(registry.activeOracleCount(WATER), 3);
        assertEq(quorum.requiredVotes(WATER), 3); // membership is still 4: a quarantine never shrinks it
        _proposeReverts(w[0], QUARANTINE, target, abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, target, 1, 2));
    }

    function test_RevertWhen_QuarantineTargetNotAnAddress() public {
        bytes32 target = bytes32(uint256(1) << 200 | uint160(w[3]));
        _proposeReverts(w[0], QUARANTINE, target, abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, target, 1, 0));
        _proposeReverts(w[0], QUARANTINE, _target(address(5)), 
            abi.encodeWithSelector(IIsolationQuorum.QuorumNodeNotInState.selector, _target(address(5)), 1, 0)
        );
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
        _addOracles(SEWAGE, 64, 106); // n = 64 again, q 43 (captured at open: 43)
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

    // ---- the review's attack classes (issue 13) ---------------------------------------------------

    function _closedError(uint256 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(
            IIsolationQuorum.QuorumWrongState.selector,
            id,
            IIsolationQuorum.ProposalState.Open,
            IIsolationQuorum.ProposalState.Closed
        );
    }

    /// Class 1: after one legitimate quarantine in a sector of four, one Byzantine oracle can neither
    /// isolate alone nor quarantine its peers one by one (the requirement stays 3 of the membership 4).
    function test_Attack_OneByzantineCannotCaptureTheQuorumAfterAQuarantine() public {
        uint256 q = _propose(w[0], QUARANTINE, _target(w[3]));
        _vote(w[1], q);
        _vote(w[2], q);
        assertEq(uint8(registry.oracle(w[3]).status), uint8(IRegistry.OracleStatus.Quarantined));
        assertEq(quorum.requiredVotes(WATER), 3);
        _councilRun(address(quorum), abi.encodeCall(quorum.setQuarantineRate, (8, 1 hours))); // rate aside
        address byzantine = w[0];
        uint256 id = _propose(byzantine, ISOLATE, nodeA);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));
        (uint256 votes, uint256 required) = quorum.tally(id);
        assertEq(votes, 1);
        assertEq(required, 3);
        uint256 peer = _propose(byzantine, QUARANTINE, _target(w[1]));
        assertEq(uint8(registry.oracle(w[1]).status), uint8(IRegistry.OracleStatus.Active));
        _voteReverts(w[1], peer, abi.encodeWithSelector(IIsolationQuorum.QuorumSelfQuarantineVote.selector, peer, w[1]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotReached.selector, id, 1, 3));
        _execute(byzantine, id);
    }

    /// Class 1 at a larger n: with five members two "2f+1 = 3" quorums could share only a Byzantine
    /// oracle; q(5) = 4, so {e0..e3} and {e1..e4} share three.
    function test_Attack_TwoQuorumsOfFiveShareMoreThanOneOracle() public {
        address[5] memory e;
        for (uint256 i; i < 5; ++i) {
            e[i] = _oracleAt(ELECTRICITY, i);
        }
        bytes32 node = _nodeAt(ELECTRICITY, 0);
        uint256 id = _propose(e[0], ISOLATE, node);
        _vote(e[1], id);
        _vote(e[2], id);
        assertEq(_status(node), uint8(IRegistry.NodeStatus.Active), "3 of 5 is not a quorum");
        _vote(e[3], id);
        assertEq(_status(node), uint8(IRegistry.NodeStatus.Isolated));
    }

    /// Class 2: oracles removed for maintenance under an open proposal do not make it executable.
    function test_Attack_RemovalUnderAnOpenProposalDoesNotLowerItsRequirement() public {
        _councilRun(address(quorum), abi.encodeCall(quorum.setActiveFloor, (1))); // the floor aside
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        _vote(w[1], id);
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (w[2], "maintenance")));
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (w[3], "maintenance")));
        assertEq(quorum.requiredVotes(WATER), 2); // a new proposal would need 2 of the 2 left
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotReached.selector, id, 2, 3));
        _execute(w[0], id);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));
    }

    /// Class 3: votes cast in one isolate/repair cycle never count in the next.
    function test_Attack_VotesFromAnEarlierCycleNeverCount() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        _vote(w[1], id);
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeA, "manual")));
        vm.prank(controller);
        quorum.beginRepair(nodeA);
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceReintegrate, (nodeA, "repaired")));
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Closed));
        assertEq(quorum.openProposal(ISOLATE, nodeA), 0);
        _voteReverts(w[2], id, _closedError(id));
        (uint256 open, uint64 epoch, uint32 round) = quorum.ballot(ISOLATE, nodeA);
        assertEq(open, 0);
        assertEq(epoch, 4);
        assertEq(round, 2);
        // the old round's ballot cannot be replayed into the new cycle
        IIsolationQuorum.Ballot memory replay = IIsolationQuorum.Ballot(1, 1, 1, _sig(w[2]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumStaleBallot.selector, 0, 4, 2));
        vm.prank(w[2]);
        quorum.propose(ISOLATE, nodeA, "x", new bytes32[](0), replay);
        uint256 next = _propose(w[2], ISOLATE, nodeA);
        (uint256 votes,) = quorum.tally(next);
        assertEq(votes, 1);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active));
    }

    /// Class 3: a proposal blocked by the cap dies with its target's override; it cannot execute later.
    function test_Attack_CapBlockedProposalDoesNotSurviveItsTargetsOverride() public {
        _isolate(nodeA);
        uint256 id = _propose(w[0], ISOLATE, nodeB);
        _vote(w[1], id);
        _vote(w[2], id); // quorum reached, blocked by the cap
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeB, "manual")));
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceReintegrate, (nodeB, "false alarm")));
        _councilRun(address(quorum), abi.encodeCall(quorum.setIsolationCap, (10_000)));
        vm.expectRevert(_closedError(id));
        _execute(w[0], id);
        assertEq(_status(nodeB), uint8(IRegistry.NodeStatus.Active));
    }

    /// Class 3: only the sector's active oracles execute.
    function testFuzz_RevertWhen_ExecuteByAnyoneElse(address caller) public {
        vm.assume(caller != w[0] && caller != w[1] && caller != w[2] && caller != w[3]);
        _isolate(nodeA);
        uint256 id = _propose(w[0], ISOLATE, nodeB);
        _vote(w[1], id);
        _vote(w[2], id);
        _councilRun(address(quorum), abi.encodeCall(quorum.setIsolationCap, (10_000)));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumNotSectorOracle.selector, caller, WATER));
        vm.prank(caller);
        quorum.execute(id);
    }

    /// An oracle target's status change closes proposals about it too.
    function test_RemovingAnOracleClosesItsQuarantineProposal() public {
        uint256 id = _propose(w[0], QUARANTINE, _target(w[3]));
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (w[3], "retired")));
        assertEq(uint8(quorum.proposalState(id)), uint8(IIsolationQuorum.ProposalState.Closed));
    }

    /// Class 6 (on-chain part): a vote names the voter's current key epoch and carries a full-size
    /// ML-DSA-65 signature; after a rotation, ballots signed under the old key are refused.
    function test_VoteNeedsTheCurrentKeyEpochAndASignature() public {
        uint256 id = _propose(w[0], ISOLATE, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumKeyEpochMismatch.selector, w[1], 2, 1));
        vm.prank(w[1]);
        quorum.vote(id, 2, _sig(w[1]));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumInvalidSignatureLength.selector, 0));
        vm.prank(w[1]);
        quorum.vote(id, 1, "");
        vm.prank(w[1]);
        registry.rotateKey(1, PqFixtures.key(42), PqFixtures.signature(1), PqFixtures.signature(2));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumKeyEpochMismatch.selector, w[1], 1, 2));
        vm.prank(w[1]);
        quorum.vote(id, 1, _sig(w[1]));
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.VoteCast(id, w[1], 2, 3, 2, _sig(w[1]));
        vm.prank(w[1]);
        quorum.vote(id, 2, _sig(w[1]));
    }

    /// Below the floor of active oracles a sector cannot act autonomously; governance still can.
    function test_BelowTheFloorTheSectorFallsBackToGovernance() public {
        uint256 q = _propose(w[0], QUARANTINE, _target(w[3]));
        _vote(w[1], q);
        _vote(w[2], q);
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (w[2], "maintenance")));
        _proposeReverts(w[0], ISOLATE, nodeA, abi.encodeWithSelector(IIsolationQuorum.QuorumBelowFloor.selector, WATER, 2, 3));
        _asCouncil(address(quorum), abi.encodeCall(quorum.forceIsolate, (nodeA, "governance")));
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Isolated));
    }

    /// A sector's quorum quarantines at most `quarantineLimit` peers per window; more waits (blocked,
    /// recorded) and executes once the window has passed.
    function test_QuarantineRateBoundsPeerQuarantines() public {
        _seedSector(SEWAGE, 7, 1); // q(7) = 5
        address[7] memory s;
        for (uint256 i; i < 7; ++i) {
            s[i] = _oracleAt(SEWAGE, i);
        }
        uint256 first = _propose(s[0], QUARANTINE, _target(s[6]));
        for (uint256 i = 1; i < 5; ++i) {
            _vote(s[i], first);
        }
        assertEq(uint8(registry.oracle(s[6]).status), uint8(IRegistry.OracleStatus.Quarantined));
        assertEq(quorum.recentQuarantines(SEWAGE), 1);
        uint256 second = _propose(s[0], QUARANTINE, _target(s[5]));
        for (uint256 i = 1; i < 4; ++i) {
            _vote(s[i], second);
        }
        vm.expectEmit(address(quorum));
        emit IIsolationQuorum.QuarantineBlockedByRate(second, SEWAGE, 1, 1);
        _vote(s[4], second);
        assertEq(uint8(registry.oracle(s[5]).status), uint8(IRegistry.OracleStatus.Active));
        vm.expectRevert(abi.encodeWithSelector(IIsolationQuorum.QuorumQuarantineRateReached.selector, SEWAGE, 1, 1));
        _execute(s[0], second);
        _councilRun(address(quorum), abi.encodeCall(quorum.setVotingWindow, (2 days)));
        vm.warp(block.timestamp + 1 days);
        assertEq(uint8(quorum.proposalState(second)), uint8(IIsolationQuorum.ProposalState.Expired));
        uint256 third = _propose(s[0], QUARANTINE, _target(s[5]));
        for (uint256 i = 1; i < 5; ++i) {
            _vote(s[i], third);
        }
        assertEq(uint8(registry.oracle(s[5]).status), uint8(IRegistry.OracleStatus.Quarantined));
    }

    function testFuzz_FloorAndRateSettings(uint32 floor, uint8 limit, uint64 window) public {
        bool floorOk = floor >= 1 && floor <= 64;
        bool rateOk = limit <= 8 && window >= 1 hours && window <= 30 days;
        vm.startPrank(address(council));
        if (!floorOk) {
            vm.expectRevert(
                abi.encodeWithSelector(IIsolationQuorum.QuorumInvalidSetting.selector, bytes32("activeFloor"), floor)
            );
        }
        quorum.setActiveFloor(floor);
        if (!rateOk) vm.expectRevert();
        quorum.setQuarantineRate(limit, window);
        vm.stopPrank();
        assertEq(quorum.activeFloor(), floorOk ? floor : 3);
        assertEq(quorum.quarantineLimit(), rateOk ? limit : 1);
        assertEq(quorum.quarantineWindow(), rateOk ? window : 1 days);
    }

    /// Review finding F3: the forged vote of an oracle quarantined for it does not count again once the
    /// council reinstates the oracle (a vote counts only in the status epoch it was cast in).
    function test_Attack_AReinstatedVotersEarlierVoteStaysDead() public {
        uint256 iso = _propose(w[3], ISOLATE, nodeA); // w3's secp256k1 key is stolen: a forged vote
        uint256 q = _propose(w[0], QUARANTINE, _target(w[3]));
        _vote(w[1], q);
        _vote(w[2], q);
        (uint256 votes,) = quorum.tally(iso);
        assertEq(votes, 0);
        _asCouncil(address(registry), abi.encodeCall(registry.reinstateOracle, (w[3], "cleared")));
        (votes,) = quorum.tally(iso);
        assertEq(votes, 0, "the reinstated oracle's earlier vote counts again");
        _voteReverts(w[3], iso, abi.encodeWithSelector(IIsolationQuorum.QuorumAlreadyVoted.selector, iso, w[3]));
        _vote(w[0], iso);
        _vote(w[1], iso);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Active), "two genuine votes isolated");
        _vote(w[2], iso);
        assertEq(_status(nodeA), uint8(IRegistry.NodeStatus.Isolated));
    }
}
