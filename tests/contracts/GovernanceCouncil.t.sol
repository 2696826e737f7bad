// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console} from "forge-std/console.sol";
import {Deployed, PqFixtures} from "./utils/Deployed.sol";
import {GovernanceCouncil} from "../../contracts/GovernanceCouncil.sol";
import {IGovernanceCouncil} from "../../contracts/interfaces/IGovernanceCouncil.sol";
import {IRegistry} from "../../contracts/interfaces/IRegistry.sol";

/// @dev A governor contract whose proposal call re-enters the council.
contract Reenterer {
    GovernanceCouncil internal immutable council;
    uint256 public proposalId;
    address[] internal targets;
    bytes[] internal calldatas;
    bytes32 internal descriptionHash;

    constructor(GovernanceCouncil council_) {
        council = council_;
    }

    function setProposal(uint256 id, address[] memory targets_, bytes[] memory calldatas_, bytes32 descHash) external {
        (proposalId, targets, descriptionHash) = (id, targets_, descHash);
        delete calldatas;
        for (uint256 i; i < calldatas_.length; ++i) {
            calldatas.push(calldatas_[i]);
        }
    }

    function poke() external {
        council.execute(proposalId, targets, new uint256[](targets.length), calldatas, descriptionHash);
    }

    function pokeEmergency() external {
        council.executeEmergency(
            proposalId, targets, new uint256[](targets.length), calldatas, descriptionHash, "again"
        );
    }

    function pokeRevoke() external {
        council.revokeApproval(proposalId);
    }
}

/// @dev Accepts any call and counts them (a stand-in for an allowlisted target with any selector).
contract Sink {
    uint256 public calls;

    fallback() external {
        ++calls;
    }
}

contract GovernanceCouncilTest is Deployed {
    IGovernanceCouncil.ProposalState internal constant PENDING = IGovernanceCouncil.ProposalState.Pending;
    IGovernanceCouncil.ProposalState internal constant SUCCEEDED = IGovernanceCouncil.ProposalState.Succeeded;
    IGovernanceCouncil.ProposalState internal constant QUEUED = IGovernanceCouncil.ProposalState.Queued;
    IGovernanceCouncil.ProposalState internal constant READY = IGovernanceCouncil.ProposalState.Ready;
    IGovernanceCouncil.ProposalState internal constant EXECUTED = IGovernanceCouncil.ProposalState.Executed;
    IGovernanceCouncil.ProposalState internal constant CANCELLED = IGovernanceCouncil.ProposalState.Cancelled;
    IGovernanceCouncil.ProposalState internal constant EXPIRED = IGovernanceCouncil.ProposalState.Expired;
    uint256 internal constant GAS_CAP = 16_777_216; // EIP-7825

    function _proposeAddSector(address governor, bytes32 sector) internal returns (uint256) {
        return _councilPropose(
            governor,
            _one(address(registry)),
            new uint256[](1),
            _one(abi.encodeCall(registry.addSector, (sector))),
            "add sector"
        );
    }

    /// @dev An approval expected to revert with `err` (the helper's view calls come before the expectation).
    function _approveReverts(address governor, uint256 id, bytes memory err) internal {
        bytes32 callsHash = council.proposal(id).callsHash;
        uint32 epoch = _keyEpoch(governor);
        bytes memory sig = _approvalSig(id, governor);
        vm.expectRevert(err);
        vm.prank(governor);
        council.approve(id, callsHash, epoch, sig);
    }

    function _state(uint256 id) internal view returns (uint8) {
        return uint8(council.proposalState(id));
    }

    function _wrongState(uint256 id, IGovernanceCouncil.ProposalState expected, IGovernanceCouncil.ProposalState actual)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(IGovernanceCouncil.CouncilWrongState.selector, id, expected, actual);
    }

    function _execute(address governor, uint256 id) internal {
        vm.prank(governor);
        council.execute(
            id, _proposalTargets[id], _proposalValues[id], _proposalCalldatas[id], _proposalDescriptionHash[id]
        );
    }

    function _emergency(address governor, uint256 id, string memory reason) internal {
        vm.prank(governor);
        council.executeEmergency(
            id, _proposalTargets[id], _proposalValues[id], _proposalCalldatas[id], _proposalDescriptionHash[id], reason
        );
    }

    function _forbidden(uint256 id, uint256 index, address target, bytes4 selector)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(
            IGovernanceCouncil.CouncilEmergencyForbiddenCall.selector, id, index, target, selector
        );
    }

    function _notAllowable(address target, bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IGovernanceCouncil.CouncilEmergencyCallNotAllowable.selector, target, selector);
    }

    /// @dev Proposal approved by governors 0..count-1 (not warped).
    function _approvedBy(uint256 count, address target, bytes memory data) internal returns (uint256 id) {
        id = _councilPropose(governors[0], _one(target), new uint256[](1), _one(data), "test");
        for (uint256 i = 1; i < count; ++i) {
            _councilApprove(governors[i], id);
        }
    }

    // ---- construction -------------------------------------------------------------------------

    function test_ConstructorConfig() public {
        assertEq(council.governors(), governors);
        assertEq(council.threshold(), 4);
        assertEq(council.emergencyThreshold(), 5);
        assertEq(council.delay(), COUNCIL_DELAY);
        assertEq(council.proposalLifetime(), 7 days);
        assertEq(council.proposalCount(), 0);
        assertTrue(council.isGovernor(governors[5]));
        assertFalse(council.isGovernor(deployer));
        (bytes32 keyHash, uint32 epoch) = council.governorKey(governors[2]);
        assertEq(keyHash, keccak256(_governorKey(2)));
        assertEq(epoch, 1);

        address[] memory two = new address[](2);
        (two[0], two[1]) = (address(1), address(2));
        bytes[] memory keys = new bytes[](2);
        bytes[] memory pops = new bytes[](2);
        (keys[0], keys[1], pops[0], pops[1]) =
        (PqFixtures.key(1), PqFixtures.key(2), PqFixtures.signature(1), PqFixtures.signature(2));
        vm.expectEmit();
        emit IGovernanceCouncil.GovernorAdded(address(1), 1, keccak256(keys[0]), keys[0], pops[0]);
        vm.expectEmit();
        emit IGovernanceCouncil.GovernorAdded(address(2), 1, keccak256(keys[1]), keys[1], pops[1]);
        vm.expectEmit();
        emit IGovernanceCouncil.ThresholdChanged(0, 2);
        vm.expectEmit();
        emit IGovernanceCouncil.DelayChanged(0, 2 days);
        new GovernanceCouncil(two, keys, pops, 2, 1 days, 2 days);
    }

    function test_RevertWhen_ConstructorInvalid() public {
        (bytes[] memory keys, bytes[] memory pops) = _councilKeys();
        address[] memory dup = new address[](2);
        (dup[0], dup[1]) = (address(1), address(1));
        bytes[] memory k2 = new bytes[](2);
        bytes[] memory p2 = new bytes[](2);
        (k2[0], k2[1], p2[0], p2[1]) = (keys[0], keys[1], pops[0], pops[1]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilGovernorExists.selector, address(1)));
        new GovernanceCouncil(dup, k2, p2, 1, 1 days, 1);
        address[] memory zero = new address[](1);
        vm.expectRevert(IGovernanceCouncil.CouncilZeroAddress.selector);
        new GovernanceCouncil(zero, _one(keys[0]), _one(pops[0]), 1, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 7, 6));
        new GovernanceCouncil(governors, keys, pops, 7, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 0, 6));
        new GovernanceCouncil(governors, keys, pops, 0, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilLengthMismatch.selector, 6, 2, 2));
        new GovernanceCouncil(governors, k2, p2, 4, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidPublicKey.selector, 32));
        new GovernanceCouncil(_one(address(1)), _one(new bytes(32)), _one(pops[0]), 1, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidSignature.selector, 3308));
        new GovernanceCouncil(_one(address(1)), _one(keys[0]), _one(new bytes(3308)), 1, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidDelay.selector, 0, 1, 30 days));
        new GovernanceCouncil(governors, keys, pops, 4, 1 days, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidDelay.selector, 30 days + 1, 1, 30 days)
        );
        new GovernanceCouncil(governors, keys, pops, 4, 1 days, 30 days + 1);
    }

    // ---- lifecycle ----------------------------------------------------------------------------

    function test_ProposeApproveQueueExecute() public {
        vm.prank(address(council));
        council.setDelay(1 hours);
        address[] memory targets = _one(address(registry));
        bytes[] memory calldatas = _one(abi.encodeCall(registry.addSector, ("gas")));
        bytes32 callsHash = keccak256(abi.encode(targets, new uint256[](1), calldatas, keccak256("add gas")));
        bytes memory sig0 = _approvalSig(1, governors[0]);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalCreated(
            1,
            governors[0],
            targets,
            new uint256[](1),
            calldatas,
            "add gas",
            callsHash,
            uint64(block.timestamp + 7 days)
        );
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalApproved(1, governors[0], 1, 1, sig0);
        uint256 id = _councilPropose(governors[0], targets, new uint256[](1), calldatas, "add gas");
        assertEq(id, 1);
        assertEq(_state(id), uint8(PENDING));
        assertTrue(council.hasApproved(id, governors[0]));
        IGovernanceCouncil.Proposal memory p = council.proposal(id);
        assertEq(p.callsHash, callsHash, "only the hash of the calls is stored");
        assertEq(p.callsHash, council.hashProposal(targets, new uint256[](1), calldatas, keccak256("add gas")));
        assertEq(p.proposer, governors[0]);
        assertEq(p.eta, 0);

        _councilApprove(governors[1], id);
        _councilApprove(governors[2], id);
        vm.prank(governors[3]);
        vm.expectRevert(_wrongState(id, READY, PENDING));
        council.execute(id, targets, new uint256[](1), calldatas, keccak256("add gas"));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalApproved(id, governors[3], 4, 1, _approvalSig(id, governors[3]));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalQueued(id, uint64(block.timestamp + 1 hours));
        _councilApprove(governors[3], id);
        assertEq(_state(id), uint8(QUEUED));
        assertEq(council.approvals(id), 4);
        assertEq(council.proposal(id).eta, block.timestamp + 1 hours);

        vm.warp(block.timestamp + 1 hours - 1);
        vm.expectRevert(_wrongState(id, READY, QUEUED));
        _execute(governors[5], id);
        vm.warp(block.timestamp + 1);
        assertEq(_state(id), uint8(READY));

        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalExecuted(id, governors[5]);
        vm.expectEmit(address(registry));
        emit IRegistry.SectorAdded("gas");
        _execute(governors[5], id); // any governor may execute
        assertEq(_state(id), uint8(EXECUTED));
        assertTrue(registry.isSector("gas"));

        vm.expectRevert(_wrongState(id, READY, EXECUTED));
        _execute(governors[0], id);
        _approveReverts(governors[4], id, _wrongState(id, PENDING, EXECUTED));
    }

    function test_RevertWhen_ProposeInvalid() public {
        bytes memory sig = _approvalSig(1, governors[0]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.propose(1, _one(address(registry)), new uint256[](1), new bytes[](1), "", 1, sig);
        vm.startPrank(governors[0]);
        vm.expectRevert(IGovernanceCouncil.CouncilEmptyProposal.selector);
        council.propose(1, new address[](0), new uint256[](0), new bytes[](0), "", 1, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilLengthMismatch.selector, 1, 2, 1));
        council.propose(1, _one(address(registry)), new uint256[](2), new bytes[](1), "", 1, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilLengthMismatch.selector, 1, 1, 0));
        council.propose(1, _one(address(registry)), new uint256[](1), new bytes[](0), "", 1, sig);
        // the proposer signs the id it expects: a raced (stale) id is refused, not renumbered
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilStaleProposalId.selector, 1, 2));
        council.propose(2, _one(address(registry)), new uint256[](1), new bytes[](1), "", 1, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilWrongKeyEpoch.selector, governors[0], 1, 2));
        council.propose(1, _one(address(registry)), new uint256[](1), new bytes[](1), "", 2, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidSignature.selector, 64));
        council.propose(1, _one(address(registry)), new uint256[](1), new bytes[](1), "", 1, new bytes(64));
        vm.stopPrank();
    }

    function test_RevertWhen_ApproveInvalid() public {
        uint256 id = _proposeAddSector(governors[0], "gas");
        bytes32 callsHash = council.proposal(id).callsHash;
        bytes memory sig = _approvalSig(id, governors[1]);
        _approveReverts(
            governors[0],
            id,
            abi.encodeWithSelector(IGovernanceCouncil.CouncilAlreadyApproved.selector, id, governors[0])
        );
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.approve(id, callsHash, 1, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilUnknownProposal.selector, 2));
        vm.prank(governors[1]);
        council.approve(2, callsHash, 1, sig);
        vm.startPrank(governors[1]);
        vm.expectRevert(
            abi.encodeWithSelector(IGovernanceCouncil.CouncilCallsMismatch.selector, id, callsHash, bytes32("other"))
        );
        council.approve(id, "other", 1, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilWrongKeyEpoch.selector, governors[1], 1, 0));
        council.approve(id, callsHash, 0, sig);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidSignature.selector, 0));
        council.approve(id, callsHash, 1, "");
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.execute(id, _proposalTargets[id], _proposalValues[id], _proposalCalldatas[id], bytes32(0));
        vm.prank(governors[0]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilUnknownProposal.selector, 0));
        council.execute(0, _proposalTargets[id], _proposalValues[id], _proposalCalldatas[id], bytes32(0));
    }

    // ---- calls passed back at execution ---------------------------------------------------------

    /// @dev Attack: the executor swaps the target, the value, the calldata or the description.
    function test_RevertWhen_ExecuteWithOtherCalls() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        bytes32 stored = council.proposal(id).callsHash;
        address[] memory targets = _proposalTargets[id];
        bytes[] memory calldatas = _proposalCalldatas[id];
        bytes32 desc = _proposalDescriptionHash[id];

        bytes[] memory swapped = _one(abi.encodeCall(registry.addSector, ("evil")));
        _expectMismatch(id, stored, targets, new uint256[](1), swapped, desc);
        _expectMismatch(id, stored, _one(address(quorum)), new uint256[](1), calldatas, desc);
        uint256[] memory value = new uint256[](1);
        value[0] = 1;
        _expectMismatch(id, stored, targets, value, calldatas, desc);
        _expectMismatch(id, stored, targets, new uint256[](1), calldatas, keccak256("other"));
        // an extra call appended
        address[] memory two = new address[](2);
        bytes[] memory twoData = new bytes[](2);
        (two[0], two[1], twoData[0], twoData[1]) = (targets[0], address(quorum), calldatas[0], "");
        _expectMismatch(id, stored, two, new uint256[](2), twoData, desc);

        _councilExecute(id);
        assertTrue(registry.isSector("gas"));
        assertFalse(registry.isSector("evil"));
    }

    function _expectMismatch(
        uint256 id,
        bytes32 stored,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 desc
    ) internal {
        bytes32 given = keccak256(abi.encode(targets, values, calldatas, desc));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallsMismatch.selector, id, stored, given));
        vm.prank(governors[0]);
        council.execute(id, targets, values, calldatas, desc);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallsMismatch.selector, id, stored, given));
        vm.prank(governors[0]);
        council.executeEmergency(id, targets, values, calldatas, desc, "swap");
    }

    /// @dev Any calls other than the proposed ones are refused, however they differ.
    function testFuzz_RevertWhen_ExecuteWithOtherCalldata(bytes memory data, uint96 value, bytes32 desc) public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        uint256[] memory values = new uint256[](1);
        values[0] = value;
        vm.assume(
            keccak256(data) != keccak256(_proposalCalldatas[id][0]) || value != 0
                || desc != _proposalDescriptionHash[id]
        );
        vm.expectPartialRevert(IGovernanceCouncil.CouncilCallsMismatch.selector);
        vm.prank(governors[0]);
        council.execute(id, _proposalTargets[id], values, _one(data), desc);
        assertEq(_state(id), uint8(READY));
    }

    // ---- timelock -------------------------------------------------------------------------------

    function test_RevokeBelowThresholdUnqueues() public {
        uint256 id = _approvedBy(4, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        uint64 firstEta = council.proposal(id).eta;
        assertEq(_state(id), uint8(QUEUED));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ApprovalRevoked(id, governors[1], 3);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalUnqueued(id);
        vm.prank(governors[1]);
        council.revokeApproval(id);
        assertEq(_state(id), uint8(PENDING));
        assertEq(council.proposal(id).eta, 0);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(_wrongState(id, READY, PENDING));
        _execute(governors[0], id);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotApproved.selector, id, governors[1]));
        vm.prank(governors[1]);
        council.revokeApproval(id);
        // approving again queues afresh: the old eta, long past, does not carry over
        _councilApprove(governors[1], id);
        assertEq(_state(id), uint8(QUEUED));
        assertEq(council.proposal(id).eta, block.timestamp + COUNCIL_DELAY);
        assertGt(council.proposal(id).eta, firstEta);
        vm.warp(block.timestamp + COUNCIL_DELAY);
        _execute(governors[0], id);
        vm.expectRevert(_wrongState(id, PENDING, EXECUTED));
        vm.prank(governors[1]);
        council.revokeApproval(id);
    }

    /// @dev A revocation that leaves the proposal at or above threshold keeps its place in the queue.
    function test_RevokeAboveThresholdKeepsQueue() public {
        uint256 id = _approvedBy(5, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        uint64 eta = council.proposal(id).eta;
        vm.prank(governors[4]);
        council.revokeApproval(id);
        assertEq(_state(id), uint8(QUEUED));
        assertEq(council.proposal(id).eta, eta);
    }

    /// @dev Attack: raise the threshold under a queued proposal, then top it up once its eta passed.
    /// The approval that reaches the new threshold starts a new delay.
    function test_ThresholdRaisedUnderQueuedProposalRequeues() public {
        uint256 id = _approvedBy(4, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.prank(address(council));
        council.changeThreshold(5);
        assertEq(_state(id), uint8(PENDING));
        vm.warp(block.timestamp + 1 days);
        _councilApprove(governors[4], id);
        assertEq(_state(id), uint8(QUEUED));
        assertEq(council.proposal(id).eta, block.timestamp + COUNCIL_DELAY);
        vm.expectRevert(_wrongState(id, READY, QUEUED));
        _execute(governors[0], id);
        vm.warp(block.timestamp + COUNCIL_DELAY);
        _execute(governors[0], id);
    }

    /// @dev A threshold lowered under a pending proposal does not make it executable: it must be queued
    /// and wait the full delay.
    function test_ThresholdLoweredNeedsQueueAndDelay() public {
        vm.prank(address(council));
        council.setDelay(1 hours);
        uint256 id = _approvedBy(3, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.prank(address(council));
        council.changeThreshold(3);
        assertEq(_state(id), uint8(SUCCEEDED));
        vm.expectRevert(_wrongState(id, READY, SUCCEEDED));
        _execute(governors[0], id);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.queue(id);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalQueued(id, uint64(block.timestamp + 1 hours));
        vm.prank(governors[5]);
        council.queue(id);
        assertEq(_state(id), uint8(QUEUED));
        vm.expectRevert(_wrongState(id, SUCCEEDED, QUEUED));
        vm.prank(governors[5]);
        council.queue(id);
        vm.warp(block.timestamp + 1 hours);
        _execute(governors[0], id);
    }

    /// @dev Membership churn under a queued proposal re-opens the queue: the delay runs again under
    /// the council that counts the approvals.
    function test_MembershipChangeRequeues() public {
        uint256 id = _approvedBy(4, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.warp(block.timestamp + COUNCIL_DELAY);
        assertEq(_state(id), uint8(READY));
        vm.prank(address(council));
        council.addGovernor(makeAddr("regulator"), PqFixtures.key(77), PqFixtures.signature(77));
        assertEq(_state(id), uint8(SUCCEEDED));
        vm.expectRevert(_wrongState(id, READY, SUCCEEDED));
        _execute(governors[0], id);
        vm.prank(governors[2]);
        council.queue(id);
        vm.warp(block.timestamp + COUNCIL_DELAY);
        _execute(governors[0], id);
    }

    function test_SetDelayThroughCouncilAndBounds() public {
        uint256 id = _councilReady(address(council), abi.encodeCall(council.setDelay, (2 days)));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.DelayChanged(COUNCIL_DELAY, 2 days);
        _councilExecute(id);
        assertEq(council.delay(), 2 days);
        vm.startPrank(address(council));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidDelay.selector, 0, 1, 30 days));
        council.setDelay(0);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidDelay.selector, 31 days, 1, 30 days));
        council.setDelay(31 days);
        vm.stopPrank();
        // a proposal queued now waits the new delay
        id = _approvedBy(4, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        assertEq(council.proposal(id).eta, block.timestamp + 2 days);
    }

    function test_ExpiryAndGracePeriod() public {
        uint256 pending = _proposeAddSector(governors[0], "heat");
        uint256 id = _approvedBy(4, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.warp(block.timestamp + 7 days);
        assertEq(_state(pending), uint8(PENDING));
        vm.warp(block.timestamp + 1);
        assertEq(_state(pending), uint8(EXPIRED));
        _approveReverts(governors[4], pending, _wrongState(pending, PENDING, EXPIRED));
        // a queued proposal stays executable for the lifetime after its eta
        assertEq(_state(id), uint8(READY));
        vm.warp(council.proposal(id).eta + 7 days + 1);
        assertEq(_state(id), uint8(EXPIRED));
        vm.expectRevert(_wrongState(id, READY, EXPIRED));
        _execute(governors[0], id);
    }

    // ---- emergency ------------------------------------------------------------------------------

    function test_EmergencySkipsDelayWithThresholdPlusOne() public {
        vm.prank(address(council));
        council.setDelay(2 days);
        uint256 id = _approvedBy(5, address(quorum), abi.encodeCall(quorum.setIsolationCap, (5000)));
        assertEq(_state(id), uint8(QUEUED));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.EmergencyExecuted(id, governors[3], 5, 5, "storm: isolate the feeder now");
        _emergency(governors[3], id, "storm: isolate the feeder now");
        assertEq(_state(id), uint8(EXECUTED));
        assertEq(quorum.isolationCapBps(), 5000);
        vm.expectRevert(_wrongState(id, READY, EXECUTED));
        _execute(governors[0], id);
        vm.expectRevert(_wrongState(id, PENDING, EXECUTED));
        _emergency(governors[0], id, "again");
    }

    /// @dev Attack: a coalition of exactly `threshold` governors tries to skip the delay.
    function test_RevertWhen_EmergencyWithThresholdApprovalsOnly() public {
        vm.prank(address(council));
        council.setDelay(2 days);
        uint256 id = _approvedBy(4, address(quorum), abi.encodeCall(quorum.setIsolationCap, (5000)));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInsufficientApprovals.selector, id, 4, 5));
        _emergency(governors[0], id, "hurry");
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.executeEmergency(
            id, _proposalTargets[id], _proposalValues[id], _proposalCalldatas[id], _proposalDescriptionHash[id], "x"
        );
        vm.expectRevert(IGovernanceCouncil.CouncilEmptyReason.selector);
        _emergency(governors[0], id, "");
        assertEq(_state(id), uint8(QUEUED));
    }

    /// @dev Attack: the emergency path used to change the council itself (membership, threshold,
    /// delay) without the delay.
    function test_RevertWhen_EmergencyTargetsCouncil() public {
        address[] memory targets = new address[](2);
        bytes[] memory calldatas = new bytes[](2);
        (targets[0], calldatas[0]) = (address(quorum), abi.encodeCall(quorum.setIsolationCap, (5000)));
        (targets[1], calldatas[1]) = (address(council), abi.encodeCall(council.setDelay, (1)));
        uint256 id = _councilPropose(governors[0], targets, new uint256[](2), calldatas, "sneak");
        for (uint256 i = 1; i < 6; ++i) {
            _councilApprove(governors[i], id);
        }
        vm.expectRevert(_forbidden(id, 1, address(council), council.setDelay.selector));
        _emergency(governors[0], id, "urgent");
    }

    /// @dev Attack: the emergency path used to hand a role (admin, governance, repair) to someone
    /// without the delay.
    function test_RevertWhen_EmergencyChangesRoles() public {
        bytes32 adminRole = registry.DEFAULT_ADMIN_ROLE();
        bytes[3] memory calls = [
            abi.encodeCall(registry.grantRole, (adminRole, makeAddr("attacker"))),
            abi.encodeCall(registry.revokeRole, (adminRole, address(council))),
            abi.encodeCall(registry.renounceRole, (adminRole, address(council)))
        ];
        for (uint256 k; k < 3; ++k) {
            uint256 id = _approvedBy(5, address(registry), calls[k]);
            vm.expectRevert(_forbidden(id, 0, address(registry), bytes4(calls[k])));
            _emergency(governors[0], id, "urgent");
        }
        // through the timelock a role change is fine
        uint256 ok =
            _approvedBy(4, address(quorum), abi.encodeCall(quorum.grantRole, (quorum.REPAIR_ROLE(), address(7))));
        vm.warp(block.timestamp + COUNCIL_DELAY);
        _execute(governors[0], ok);
        assertTrue(quorum.hasRole(quorum.REPAIR_ROLE(), address(7)));
    }

    /// @dev A proposer removed from the council can no longer cancel its proposal.
    function test_RevertWhen_RemovedProposerCancels() public {
        uint256 id = _proposeAddSector(governors[2], "gas");
        vm.prank(address(council));
        council.removeGovernor(governors[2]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilOnlySelf.selector, governors[2]));
        vm.prank(governors[2]);
        council.cancel(id);
    }

    function test_EmergencyThresholdCappedAtGovernorCount() public {
        vm.startPrank(address(council));
        council.changeThreshold(6);
        assertEq(council.emergencyThreshold(), 6);
        council.changeThreshold(1);
        assertEq(council.emergencyThreshold(), 2);
        vm.stopPrank();
    }

    function test_RevertWhen_EmergencyOnCancelledOrExpired() public {
        uint256 id = _approvedBy(5, address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.prank(governors[0]);
        council.cancel(id);
        vm.expectRevert(_wrongState(id, PENDING, CANCELLED));
        _emergency(governors[0], id, "x");
        uint256 other = _proposeAddSector(governors[0], "heat");
        for (uint256 i = 1; i < 5; ++i) {
            _councilApprove(governors[i], other);
        }
        vm.warp(block.timestamp + 30 days); // past eta + lifetime
        vm.expectRevert(_wrongState(other, PENDING, EXPIRED));
        _emergency(governors[0], other, "x");
    }

    // ---- the emergency allowlist ------------------------------------------------------------------

    /// @dev The deployment's allowlist: exactly the storm-day overrides, nothing that touches the
    /// quorum's electorate or thresholds.
    function test_DeploymentAllowlistsOnlyStormOverrides() public view {
        assertTrue(council.isEmergencyCall(address(quorum), quorum.forceIsolate.selector));
        assertTrue(council.isEmergencyCall(address(quorum), quorum.forceReintegrate.selector));
        assertTrue(council.isEmergencyCall(address(quorum), quorum.setIsolationCap.selector));
        bytes4[4] memory quorumSettings = [
            quorum.setActiveFloor.selector,
            quorum.setQuarantineRate.selector,
            quorum.setVotingWindow.selector,
            quorum.grantRole.selector
        ];
        for (uint256 i; i < quorumSettings.length; ++i) {
            assertFalse(council.isEmergencyCall(address(quorum), quorumSettings[i]));
        }
        bytes4[5] memory registryCalls = [
            registry.registerOracle.selector,
            registry.removeOracle.selector,
            registry.reinstateOracle.selector,
            registry.addNode.selector,
            registry.addSector.selector
        ];
        for (uint256 i; i < registryCalls.length; ++i) {
            assertFalse(council.isEmergencyCall(address(registry), registryCalls[i]));
        }
        // the selector is bound to its target: forceIsolate's selector elsewhere is not allowed
        assertFalse(council.isEmergencyCall(address(registry), quorum.forceIsolate.selector));
    }

    /// @notice F4 (adversarial review): 5 of 6 governors use the emergency path to rewrite the
    /// quorum's electorate and floor — remove an honest oracle and lower the active floor — so that
    /// later isolations look like quorum decisions. Refused, with every governor approving; the same
    /// calls go through the timelock.
    function test_RevertWhen_EmergencyRewritesTheElectorate() public {
        _seedSectorViaCouncil(WATER, 4, 4);
        address w0 = _oracleAt(WATER, 0);
        address[] memory targets = new address[](2);
        bytes[] memory calldatas = new bytes[](2);
        (targets[0], calldatas[0]) = (address(registry), abi.encodeCall(registry.removeOracle, (w0, "puppet")));
        (targets[1], calldatas[1]) = (address(quorum), abi.encodeCall(quorum.setActiveFloor, (1)));
        uint256 id = _councilPropose(governors[0], targets, new uint256[](2), calldatas, "storm");
        for (uint256 i = 1; i < 6; ++i) {
            _councilApprove(governors[i], id);
        }
        vm.expectRevert(_forbidden(id, 0, address(registry), registry.removeOracle.selector));
        _emergency(governors[0], id, "storm: oracle w0 is lying");
        assertEq(registry.activeOracleCount(WATER), 4);
        // each call alone is refused too
        uint256 floorOnly = _approvedBy(5, address(quorum), calldatas[1]);
        vm.expectRevert(_forbidden(floorOnly, 0, address(quorum), quorum.setActiveFloor.selector));
        _emergency(governors[0], floorOnly, "storm");
        // and so are the other electorate and threshold changes
        bytes[5] memory others = [
            _registerOracleCall(WATER, 7),
            abi.encodeCall(registry.reinstateOracle, (w0, "x")),
            _addNodeCall(WATER, 9),
            abi.encodeCall(quorum.setQuarantineRate, (8, 1)),
            abi.encodeCall(quorum.setVotingWindow, (60))
        ];
        for (uint256 k; k < others.length; ++k) {
            address target = k < 3 ? address(registry) : address(quorum);
            uint256 other = _approvedBy(5, target, others[k]);
            vm.expectRevert(_forbidden(other, 0, target, bytes4(others[k])));
            _emergency(governors[0], other, "storm");
        }
        // the timelock is the way for them
        vm.warp(block.timestamp + COUNCIL_DELAY);
        _execute(governors[0], id);
        assertEq(registry.activeOracleCount(WATER), 3);
        assertEq(quorum.activeFloor(), 1);
    }

    /// @dev The storm-day overrides pass on the emergency path, logged as overrides.
    function test_EmergencyForceIsolateAndReintegrate() public {
        _seedSector(WATER, 4, 4);
        bytes32 node = _nodeAt(WATER, 0);
        uint256 id = _approvedBy(5, address(quorum), abi.encodeCall(quorum.forceIsolate, (node, "storm")));
        _emergency(governors[0], id, "storm: feeder on fire");
        assertEq(_state(id), uint8(EXECUTED));
        assertEq(registry.sectorIsolatedCount(WATER), 1);
        id = _approvedBy(5, address(quorum), abi.encodeCall(quorum.forceReintegrate, (node, "repaired")));
        _emergency(governors[0], id, "storm over");
        assertEq(registry.sectorIsolatedCount(WATER), 0);
    }

    /// @dev The allowlist changes only through the council (delayed), both ways, with an event.
    function test_EmergencyAllowlistThroughCouncil() public {
        bytes memory addGas = abi.encodeCall(registry.addSector, ("gas"));
        uint256 id = _approvedBy(5, address(registry), addGas);
        vm.expectRevert(_forbidden(id, 0, address(registry), registry.addSector.selector));
        _emergency(governors[0], id, "storm");

        uint256 allow = _councilReady(
            address(council), abi.encodeCall(council.setEmergencyCall, (address(registry), bytes4(addGas), true))
        );
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.EmergencyCallSet(address(registry), registry.addSector.selector, true);
        _councilExecute(allow);
        assertTrue(council.isEmergencyCall(address(registry), registry.addSector.selector));
        _emergency(governors[0], id, "storm");
        assertTrue(registry.isSector("gas"));

        uint256 disallow = _councilReady(
            address(council), abi.encodeCall(council.setEmergencyCall, (address(registry), bytes4(addGas), false))
        );
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.EmergencyCallSet(address(registry), registry.addSector.selector, false);
        _councilExecute(disallow);
        assertFalse(council.isEmergencyCall(address(registry), registry.addSector.selector));
        // checked at execution: a proposal approved while the call was allowed is refused now
        uint256 late = _approvedBy(5, address(registry), abi.encodeCall(registry.addSector, ("heat")));
        vm.expectRevert(_forbidden(late, 0, address(registry), registry.addSector.selector));
        _emergency(governors[0], late, "storm");
    }

    /// @dev Attack: allowlist the council's own functions or a role change, so that a later emergency
    /// rewrites membership, threshold, delay, roles or the allowlist without delay. Refused even
    /// through a full, delayed proposal.
    function test_RevertWhen_AllowlistingCouncilOrRoleCalls() public {
        bytes4[5] memory own = [
            council.setDelay.selector,
            council.changeThreshold.selector,
            council.addGovernor.selector,
            council.removeGovernor.selector,
            council.setEmergencyCall.selector
        ];
        for (uint256 i; i < own.length; ++i) {
            _expectAllowRefused(address(council), own[i], _notAllowable(address(council), own[i]));
        }
        bytes4[3] memory roles =
            [registry.grantRole.selector, registry.revokeRole.selector, registry.renounceRole.selector];
        for (uint256 i; i < roles.length; ++i) {
            _expectAllowRefused(address(registry), roles[i], _notAllowable(address(registry), roles[i]));
            _expectAllowRefused(address(quorum), roles[i], _notAllowable(address(quorum), roles[i]));
        }
        _expectAllowRefused(
            address(0), bytes4(0x12345678), abi.encodeWithSelector(IGovernanceCouncil.CouncilZeroAddress.selector)
        );
        // taking them off is always fine (a no-op here)
        _councilRun(address(council), abi.encodeCall(council.setEmergencyCall, (address(council), own[0], false)));
        assertFalse(council.isEmergencyCall(address(council), own[0]));
    }

    function _expectAllowRefused(address target, bytes4 selector, bytes memory inner) internal {
        uint256 id = _councilReady(address(council), abi.encodeCall(council.setEmergencyCall, (target, selector, true)));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallFailed.selector, id, 0, inner));
        _councilExecute(id);
        assertFalse(council.isEmergencyCall(target, selector));
    }

    /// @dev Whatever the selector, the council itself can never be allowlisted, and a role change on
    /// any target neither.
    function testFuzz_RevertWhen_AllowlistingForbidden(address target, bytes4 selector, uint8 which) public {
        bytes4[3] memory roles =
            [registry.grantRole.selector, registry.revokeRole.selector, registry.renounceRole.selector];
        vm.assume(target != address(0));
        vm.startPrank(address(council));
        vm.expectRevert(_notAllowable(address(council), selector));
        council.setEmergencyCall(address(council), selector, true);
        bytes4 role = roles[which % 3];
        vm.expectRevert(_notAllowable(target, role));
        council.setEmergencyCall(target, role, true);
        vm.stopPrank();
        assertFalse(council.isEmergencyCall(address(council), selector));
        assertFalse(council.isEmergencyCall(target, role));
    }

    /// @dev Every call whose (target, selector) is not allowlisted is refused on the emergency path,
    /// with all six governors approving; the same proposal still runs through the timelock's checks.
    function testFuzz_RevertWhen_EmergencyCallNotAllowlisted(uint8 targetSeed, address other, bytes memory data)
        public
    {
        address[5] memory targets = [address(registry), address(quorum), address(ledger), address(council), other];
        address target = targets[targetSeed % 5];
        bytes4 selector = data.length < 4 ? bytes4(0) : bytes4(data);
        vm.assume(data.length < 4 || !council.isEmergencyCall(target, selector));
        uint256 id = _approvedBy(6, target, data);
        vm.expectRevert(_forbidden(id, 0, target, selector));
        _emergency(governors[0], id, "storm");
        assertEq(_state(id), uint8(QUEUED));
    }

    /// @dev Any allowlisted (target, selector) passes, whatever follows the selector; calldata shorter
    /// than a selector never does, even with selector 0 allowlisted.
    function testFuzz_EmergencyRunsAllowlistedCalls(bytes4 selector, bytes memory tail) public {
        vm.assume(selector != bytes4(keccak256("calls()")));
        vm.assume(
            selector != registry.grantRole.selector && selector != registry.revokeRole.selector
                && selector != registry.renounceRole.selector
        );
        Sink sink = new Sink();
        vm.prank(address(council));
        council.setEmergencyCall(address(sink), selector, true);
        uint256 id = _approvedBy(5, address(sink), abi.encodePacked(selector, tail));
        _emergency(governors[0], id, "storm");
        assertEq(sink.calls(), 1);
        assertEq(_state(id), uint8(EXECUTED));

        vm.prank(address(council));
        council.setEmergencyCall(address(sink), bytes4(0), true);
        bytes memory short = tail.length < 4 ? tail : new bytes(3);
        uint256 shortId = _approvedBy(5, address(sink), short);
        vm.expectRevert(_forbidden(shortId, 0, address(sink), bytes4(0)));
        _emergency(governors[0], shortId, "storm");
    }

    // ---- cancel, failure, value, reentrancy -------------------------------------------------------

    function test_CancelByProposerOrCouncil() public {
        uint256 id = _proposeAddSector(governors[2], "gas");
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilOnlySelf.selector, governors[0]));
        vm.prank(governors[0]);
        council.cancel(id);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalCancelled(id, governors[2]);
        vm.prank(governors[2]);
        council.cancel(id);
        assertEq(_state(id), uint8(CANCELLED));
        _approveReverts(governors[1], id, _wrongState(id, PENDING, CANCELLED));
        vm.expectRevert(_wrongState(id, PENDING, CANCELLED));
        vm.prank(governors[2]);
        council.cancel(id);

        uint256 other = _proposeAddSector(governors[2], "heat");
        _councilRun(address(council), abi.encodeCall(council.cancel, (other)));
        assertEq(_state(other), uint8(CANCELLED));
    }

    function test_RevertWhen_CallFailsBubblingInnerError() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, (WATER)));
        bytes memory inner = abi.encodeWithSelector(IRegistry.RegistrySectorExists.selector, WATER);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallFailed.selector, id, 0, inner));
        _councilExecute(id);
        assertEq(_state(id), uint8(READY)); // the whole execution reverted
    }

    function test_ExecuteForwardsValue() public {
        address payable recipient = payable(makeAddr("recipient"));
        uint256[] memory values = new uint256[](1);
        values[0] = 1 ether;
        uint256 id = _councilPropose(governors[0], _one(recipient), values, _one(""), "pay");
        for (uint256 i = 1; i < 4; ++i) {
            _councilApprove(governors[i], id);
        }
        vm.warp(block.timestamp + COUNCIL_DELAY);
        vm.deal(governors[0], 1 ether);
        vm.prank(governors[0]);
        council.execute{value: 1 ether}(id, _one(recipient), values, _one(""), keccak256("pay"));
        assertEq(recipient.balance, 1 ether);
    }

    function _reentrantProposal(bytes memory poke) internal returns (Reenterer r, uint256 id) {
        r = new Reenterer(council);
        _councilRun(
            address(council),
            abi.encodeCall(council.addGovernor, (address(r), PqFixtures.key(9), PqFixtures.signature(9)))
        );
        id = _approvedBy(5, address(r), poke);
        vm.warp(block.timestamp + COUNCIL_DELAY);
        r.setProposal(id, _proposalTargets[id], _proposalCalldatas[id], _proposalDescriptionHash[id]);
    }

    function test_ReentrantExecuteFails() public {
        (Reenterer r, uint256 id) = _reentrantProposal(abi.encodeCall(Reenterer.poke, ()));
        bytes memory inner = _wrongState(id, READY, EXECUTED);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallFailed.selector, id, 0, inner));
        _councilExecute(id);
        assertEq(r.proposalId(), id);
    }

    function test_ReentrantEmergencyOrRevokeFails() public {
        (, uint256 id) = _reentrantProposal(abi.encodeCall(Reenterer.pokeEmergency, ()));
        bytes memory inner = _wrongState(id, PENDING, EXECUTED);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallFailed.selector, id, 0, inner));
        _councilExecute(id);
        (Reenterer r2, uint256 id2) = _reentrantProposal(abi.encodeCall(Reenterer.pokeRevoke, ()));
        vm.prank(address(council));
        council.setEmergencyCall(address(r2), Reenterer.pokeRevoke.selector, true);
        inner = _wrongState(id2, PENDING, EXECUTED);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallFailed.selector, id2, 0, inner));
        _emergency(governors[0], id2, "reenter");
    }

    // ---- membership -----------------------------------------------------------------------------

    function testFuzz_RevertWhen_SelfOnlyCalledDirectly(address caller) public {
        vm.assume(caller != address(council));
        bytes memory err = abi.encodeWithSelector(IGovernanceCouncil.CouncilOnlySelf.selector, caller);
        vm.startPrank(caller);
        vm.expectRevert(err);
        council.addGovernor(caller, PqFixtures.key(1), PqFixtures.signature(1));
        vm.expectRevert(err);
        council.removeGovernor(governors[0]);
        vm.expectRevert(err);
        council.changeThreshold(1);
        vm.expectRevert(err);
        council.setDelay(1);
        vm.expectRevert(err);
        council.setEmergencyCall(address(registry), registry.removeOracle.selector, true);
        vm.stopPrank();
    }

    function test_MembershipThroughProposals() public {
        address newcomer = makeAddr("regulator");
        bytes memory key = PqFixtures.key(8);
        bytes memory pop = PqFixtures.signature(8);
        uint256 id = _councilReady(address(council), abi.encodeCall(council.addGovernor, (newcomer, key, pop)));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.GovernorAdded(newcomer, 1, keccak256(key), key, pop);
        _councilExecute(id);
        assertTrue(council.isGovernor(newcomer));

        id = _councilReady(address(council), abi.encodeCall(council.changeThreshold, (5)));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ThresholdChanged(4, 5);
        _councilExecute(id);

        id = _councilReady(address(council), abi.encodeCall(council.removeGovernor, (governors[5])));
        _councilApprove(newcomer, id);
        vm.warp(block.timestamp + COUNCIL_DELAY);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.GovernorRemoved(governors[5]);
        _councilExecute(id);
        assertFalse(council.isGovernor(governors[5]));
        assertEq(council.governors().length, 6);
        (bytes32 keyHash, uint32 epoch) = council.governorKey(governors[5]);
        assertEq(keyHash, bytes32(0));
        assertEq(epoch, 1);
    }

    function test_RevertWhen_MembershipChangeInvalid() public {
        vm.startPrank(address(council));
        council.changeThreshold(6);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 6, 5));
        council.removeGovernor(governors[0]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 7, 6));
        council.changeThreshold(7);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 0, 6));
        council.changeThreshold(0);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilUnknownGovernor.selector, address(9)));
        council.removeGovernor(address(9));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilGovernorExists.selector, governors[1]));
        council.addGovernor(governors[1], PqFixtures.key(1), PqFixtures.signature(1));
        vm.expectRevert(IGovernanceCouncil.CouncilZeroAddress.selector);
        council.addGovernor(address(0), PqFixtures.key(1), PqFixtures.signature(1));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidPublicKey.selector, 1951));
        council.addGovernor(address(9), new bytes(1951), PqFixtures.signature(1));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidSignature.selector, 3310));
        council.addGovernor(address(9), PqFixtures.key(1), new bytes(3310));
        vm.stopPrank();
    }

    /// @dev Attack: a removed governor's approval. It stops counting, does not revive if the account
    /// is added back, and the re-added governor signs under a new key epoch (old signatures are stale).
    function test_RemovedGovernorApprovalStopsCounting() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        assertEq(_state(id), uint8(READY));
        vm.startPrank(address(council));
        council.removeGovernor(governors[3]);
        assertEq(council.approvals(id), 3);
        assertEq(_state(id), uint8(PENDING));
        council.addGovernor(governors[3], PqFixtures.key(33), PqFixtures.signature(33));
        vm.stopPrank();
        assertEq(council.approvals(id), 3);
        assertFalse(council.hasApproved(id, governors[3]));
        (bytes32 keyHash, uint32 epoch) = council.governorKey(governors[3]);
        assertEq(epoch, 2);
        assertEq(keyHash, keccak256(PqFixtures.key(33)));
        bytes32 callsHash = council.proposal(id).callsHash;
        bytes memory sig = _approvalSig(id, governors[3]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilWrongKeyEpoch.selector, governors[3], 2, 1));
        vm.prank(governors[3]);
        council.approve(id, callsHash, 1, sig);
        _councilApprove(governors[3], id);
        assertEq(_state(id), uint8(QUEUED));
        vm.warp(block.timestamp + COUNCIL_DELAY);
        _councilExecute(id);
    }

    /// @dev approvals() equals the number of distinct current governors in a random approving subset,
    /// and the proposal is queued exactly when that reaches the threshold.
    function testFuzz_ApprovalsCountDistinctGovernors(uint8 mask, uint8 threshold) public {
        threshold = uint8(bound(threshold, 1, 6));
        vm.prank(address(council));
        council.changeThreshold(threshold);
        uint256 id = _proposeAddSector(governors[0], "gas");
        uint256 expected = 1;
        for (uint256 i = 1; i < 6; ++i) {
            if (mask & (1 << i) != 0) {
                _councilApprove(governors[i], id);
                ++expected;
            }
        }
        assertEq(council.approvals(id), expected);
        assertEq(_state(id), uint8(expected >= threshold ? QUEUED : PENDING));
        vm.warp(block.timestamp + COUNCIL_DELAY);
        assertEq(_state(id), uint8(expected >= threshold ? READY : PENDING));
    }

    // ---- gas: one sector's registration end to end ------------------------------------------------

    /// @dev Gas a transaction with this calldata would use (Prague: EIP-2028 calldata, EIP-7623 floor).
    function _txGas(bytes memory data, uint256 execution) internal pure returns (uint256) {
        uint256 zeros;
        for (uint256 i; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 tokens = zeros + 4 * (data.length - zeros);
        uint256 standard = 21_000 + 4 * tokens + execution;
        uint256 floor = 21_000 + 10 * tokens;
        return standard > floor ? standard : floor;
    }

    /// @notice Issue 13: registering one sector (operator, 4 oracles with 1952-byte keys and 3309-byte
    /// proofs, 4 nodes) is one proposal whose every transaction stays under EIP-7825's cap.
    /// Figures: `forge test --match-test test_Gas_RegisterOneSector -vv` (the Python deployment's
    /// receipts give the same figures on Anvil: tests/chain/test_deploy_and_governance.py).
    function test_Gas_RegisterOneSectorEndToEnd() public {
        bytes32 sector = ELECTRICITY;
        uint256 calls = 9;
        address[] memory targets = new address[](calls);
        bytes[] memory calldatas = new bytes[](calls);
        for (uint256 i; i < calls; ++i) {
            targets[i] = address(registry);
        }
        calldatas[0] = abi.encodeCall(registry.addOperator, (_operatorOf(sector), sector));
        for (uint256 i; i < 4; ++i) {
            calldatas[1 + i] = _registerOracleCall(sector, i);
            calldatas[5 + i] = _addNodeCall(sector, i);
        }
        uint256[] memory values = new uint256[](calls);
        string memory description = "register the electricity sector: operator, 4 oracles, 4 nodes";

        bytes memory sig = _approvalSig(1, governors[0]);
        bytes memory data = abi.encodeCall(council.propose, (1, targets, values, calldatas, description, 1, sig));
        vm.prank(governors[0]);
        uint256 before = gasleft();
        council.propose(1, targets, values, calldatas, description, 1, sig);
        uint256 gas = _txGas(data, before - gasleft());
        console.log("propose (calldata bytes %d): gas %d", data.length, gas);
        assertLt(gas, GAS_CAP);
        _proposalTargets[1] = targets;
        _proposalValues[1] = values;
        for (uint256 i; i < calls; ++i) {
            _proposalCalldatas[1].push(calldatas[i]);
        }
        _proposalDescriptionHash[1] = keccak256(bytes(description));

        bytes32 callsHash = council.proposal(1).callsHash;
        for (uint256 i = 1; i < THRESHOLD; ++i) {
            sig = _approvalSig(1, governors[i]);
            data = abi.encodeCall(council.approve, (1, callsHash, 1, sig));
            vm.prank(governors[i]);
            before = gasleft();
            council.approve(1, callsHash, 1, sig);
            gas = _txGas(data, before - gasleft());
            console.log("approve %d: gas %d", i, gas);
            assertLt(gas, GAS_CAP);
        }
        vm.warp(block.timestamp + COUNCIL_DELAY);
        data = abi.encodeCall(council.execute, (1, targets, values, calldatas, keccak256(bytes(description))));
        vm.prank(governors[0]);
        before = gasleft();
        council.execute(1, targets, values, calldatas, keccak256(bytes(description)));
        gas = _txGas(data, before - gasleft());
        console.log("execute (calldata bytes %d): gas %d", data.length, gas);
        assertLt(gas, GAS_CAP);
        assertEq(registry.activeOracleCount(sector), 4);
        assertEq(registry.sectorNodeCount(sector), 4);
    }
}
