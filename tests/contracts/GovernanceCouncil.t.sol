// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Deployed} from "./utils/Deployed.sol";
import {GovernanceCouncil} from "../../contracts/GovernanceCouncil.sol";
import {IGovernanceCouncil} from "../../contracts/interfaces/IGovernanceCouncil.sol";
import {IRegistry} from "../../contracts/interfaces/IRegistry.sol";

/// @dev A governor contract whose proposal call tries to execute the same proposal again.
contract Reenterer {
    GovernanceCouncil internal immutable council;
    uint256 public proposalId;

    constructor(GovernanceCouncil council_) {
        council = council_;
    }

    function setProposal(uint256 id) external {
        proposalId = id;
    }

    function poke() external {
        council.execute(proposalId);
    }
}

contract GovernanceCouncilTest is Deployed {
    IGovernanceCouncil.ProposalState internal constant PENDING = IGovernanceCouncil.ProposalState.Pending;
    IGovernanceCouncil.ProposalState internal constant READY = IGovernanceCouncil.ProposalState.Ready;
    IGovernanceCouncil.ProposalState internal constant EXECUTED = IGovernanceCouncil.ProposalState.Executed;
    IGovernanceCouncil.ProposalState internal constant CANCELLED = IGovernanceCouncil.ProposalState.Cancelled;
    IGovernanceCouncil.ProposalState internal constant EXPIRED = IGovernanceCouncil.ProposalState.Expired;

    function _proposeAddSector(address governor, bytes32 sector) internal returns (uint256) {
        vm.prank(governor);
        return council.propose(
            _one(address(registry)), new uint256[](1), _one(abi.encodeCall(registry.addSector, (sector))), "add sector"
        );
    }

    function _approve(address governor, uint256 id) internal {
        vm.prank(governor);
        council.approve(id);
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

    // ---- construction -------------------------------------------------------------------------

    function test_ConstructorConfig() public {
        assertEq(council.governors(), governors);
        assertEq(council.threshold(), 4);
        assertEq(council.proposalLifetime(), 7 days);
        assertEq(council.proposalCount(), 0);
        assertTrue(council.isGovernor(governors[5]));
        assertFalse(council.isGovernor(deployer));

        address[] memory two = new address[](2);
        (two[0], two[1]) = (address(1), address(2));
        vm.expectEmit();
        emit IGovernanceCouncil.GovernorAdded(address(1));
        vm.expectEmit();
        emit IGovernanceCouncil.GovernorAdded(address(2));
        vm.expectEmit();
        emit IGovernanceCouncil.ThresholdChanged(0, 2);
        new GovernanceCouncil(two, 2, 1 days);
    }

    function test_RevertWhen_ConstructorInvalid() public {
        address[] memory dup = new address[](2);
        (dup[0], dup[1]) = (address(1), address(1));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilGovernorExists.selector, address(1)));
        new GovernanceCouncil(dup, 1, 1 days);
        address[] memory zero = new address[](1);
        vm.expectRevert(IGovernanceCouncil.CouncilZeroAddress.selector);
        new GovernanceCouncil(zero, 1, 1 days);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 7, 6));
        new GovernanceCouncil(governors, 7, 1 days);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilInvalidThreshold.selector, 0, 6));
        new GovernanceCouncil(governors, 0, 1 days);
    }

    // ---- lifecycle ----------------------------------------------------------------------------

    function test_ProposeApproveExecute() public {
        bytes[] memory calldatas = _one(abi.encodeCall(registry.addSector, ("gas")));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalCreated(
            1,
            governors[0],
            _one(address(registry)),
            new uint256[](1),
            calldatas,
            "add gas",
            uint64(block.timestamp + 7 days)
        );
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalApproved(1, governors[0], 1);
        vm.prank(governors[0]);
        uint256 id = council.propose(_one(address(registry)), new uint256[](1), calldatas, "add gas");
        assertEq(id, 1);
        assertEq(_state(id), uint8(PENDING));
        assertTrue(council.hasApproved(id, governors[0]));

        _approve(governors[1], id);
        _approve(governors[2], id);
        vm.prank(governors[3]);
        vm.expectRevert(_wrongState(id, READY, PENDING));
        council.execute(id);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalApproved(id, governors[3], 4);
        _approve(governors[3], id);
        assertEq(_state(id), uint8(READY));
        assertEq(council.approvals(id), 4);

        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ProposalExecuted(id, governors[5]);
        vm.expectEmit(address(registry));
        emit IRegistry.SectorAdded("gas");
        vm.prank(governors[5]); // any governor may execute
        council.execute(id);
        assertEq(_state(id), uint8(EXECUTED));
        assertTrue(registry.isSector("gas"));

        vm.prank(governors[0]);
        vm.expectRevert(_wrongState(id, READY, EXECUTED));
        council.execute(id);
        vm.expectRevert(_wrongState(id, PENDING, EXECUTED));
        _approve(governors[4], id);
    }

    function test_RevertWhen_ProposeInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.propose(_one(address(registry)), new uint256[](1), new bytes[](1), "");
        vm.startPrank(governors[0]);
        vm.expectRevert(IGovernanceCouncil.CouncilEmptyProposal.selector);
        council.propose(new address[](0), new uint256[](0), new bytes[](0), "");
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilLengthMismatch.selector, 1, 2, 1));
        council.propose(_one(address(registry)), new uint256[](2), new bytes[](1), "");
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilLengthMismatch.selector, 1, 1, 0));
        council.propose(_one(address(registry)), new uint256[](1), new bytes[](0), "");
        vm.stopPrank();
    }

    function test_RevertWhen_ApproveOrExecuteInvalid() public {
        uint256 id = _proposeAddSector(governors[0], "gas");
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilAlreadyApproved.selector, id, governors[0]));
        _approve(governors[0], id);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.approve(id);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilUnknownProposal.selector, 2));
        _approve(governors[1], 2);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotGovernor.selector, address(this)));
        council.execute(id);
        vm.prank(governors[0]);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilUnknownProposal.selector, 0));
        council.execute(0);
    }

    function test_ExpiredProposalCannotBeApprovedOrExecuted() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.warp(block.timestamp + 7 days);
        assertEq(_state(id), uint8(READY));
        vm.warp(block.timestamp + 1);
        assertEq(_state(id), uint8(EXPIRED));
        vm.expectRevert(_wrongState(id, PENDING, EXPIRED));
        _approve(governors[4], id);
        vm.prank(governors[0]);
        vm.expectRevert(_wrongState(id, READY, EXPIRED));
        council.execute(id);
    }

    function test_RevokeApproval() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ApprovalRevoked(id, governors[1], 3);
        vm.prank(governors[1]);
        council.revokeApproval(id);
        assertEq(_state(id), uint8(PENDING));
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilNotApproved.selector, id, governors[1]));
        vm.prank(governors[1]);
        council.revokeApproval(id);
        _approve(governors[1], id); // may approve again
        _councilExecute(id);
        vm.expectRevert(_wrongState(id, PENDING, EXECUTED));
        vm.prank(governors[1]);
        council.revokeApproval(id);
    }

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
        vm.expectRevert(_wrongState(id, PENDING, CANCELLED));
        _approve(governors[1], id);
        vm.expectRevert(_wrongState(id, PENDING, CANCELLED));
        vm.prank(governors[2]);
        council.cancel(id);

        uint256 other = _proposeAddSector(governors[2], "heat");
        _councilRun(address(council), abi.encodeCall(council.cancel, (other)));
        assertEq(_state(other), uint8(CANCELLED));
    }

    // ---- failure, value, reentrancy -----------------------------------------------------------

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
        vm.prank(governors[0]);
        uint256 id = council.propose(_one(recipient), values, _one(""), "pay");
        for (uint256 i = 1; i < 4; ++i) {
            _approve(governors[i], id);
        }
        vm.deal(governors[0], 1 ether);
        vm.prank(governors[0]);
        council.execute{value: 1 ether}(id);
        assertEq(recipient.balance, 1 ether);
    }

    function test_ReentrantExecuteFails() public {
        Reenterer r = new Reenterer(council);
        _councilRun(address(council), abi.encodeCall(council.addGovernor, (address(r))));
        uint256 id = _councilReady(address(r), abi.encodeCall(r.poke, ()));
        r.setProposal(id);
        bytes memory inner = _wrongState(id, READY, EXECUTED);
        vm.expectRevert(abi.encodeWithSelector(IGovernanceCouncil.CouncilCallFailed.selector, id, 0, inner));
        _councilExecute(id);
    }

    // ---- membership -----------------------------------------------------------------------------

    function testFuzz_RevertWhen_SelfOnlyCalledDirectly(address caller) public {
        vm.assume(caller != address(council));
        bytes memory err = abi.encodeWithSelector(IGovernanceCouncil.CouncilOnlySelf.selector, caller);
        vm.startPrank(caller);
        vm.expectRevert(err);
        council.addGovernor(caller);
        vm.expectRevert(err);
        council.removeGovernor(governors[0]);
        vm.expectRevert(err);
        council.changeThreshold(1);
        vm.stopPrank();
    }

    function test_MembershipThroughProposals() public {
        address newcomer = makeAddr("regulator");
        uint256 id = _councilReady(address(council), abi.encodeCall(council.addGovernor, (newcomer)));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.GovernorAdded(newcomer);
        _councilExecute(id);
        assertTrue(council.isGovernor(newcomer));

        id = _councilReady(address(council), abi.encodeCall(council.changeThreshold, (5)));
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.ThresholdChanged(4, 5);
        _councilExecute(id);

        id = _councilReady(address(council), abi.encodeCall(council.removeGovernor, (governors[5])));
        _approve(newcomer, id);
        vm.expectEmit(address(council));
        emit IGovernanceCouncil.GovernorRemoved(governors[5]);
        _councilExecute(id);
        assertFalse(council.isGovernor(governors[5]));
        assertEq(council.governors().length, 6);
    }

    function test_RevertWhen_MembershipChangeBreaksThreshold() public {
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
        council.addGovernor(governors[1]);
        vm.expectRevert(IGovernanceCouncil.CouncilZeroAddress.selector);
        council.addGovernor(address(0));
        vm.stopPrank();
    }

    /// @dev A removed governor's approval stops counting and does not revive if it is added back.
    function test_RemovedGovernorApprovalStopsCounting() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        assertEq(_state(id), uint8(READY));
        vm.startPrank(address(council));
        council.removeGovernor(governors[3]);
        assertEq(council.approvals(id), 3);
        assertEq(_state(id), uint8(PENDING));
        council.addGovernor(governors[3]);
        vm.stopPrank();
        assertEq(council.approvals(id), 3);
        assertFalse(council.hasApproved(id, governors[3]));
        _approve(governors[3], id);
        assertEq(_state(id), uint8(READY));
    }

    /// @dev approvals() equals the number of distinct current governors in a random approving subset.
    function testFuzz_ApprovalsCountDistinctGovernors(uint8 mask, uint8 threshold) public {
        threshold = uint8(bound(threshold, 1, 6));
        vm.prank(address(council));
        council.changeThreshold(threshold);
        uint256 id = _proposeAddSector(governors[0], "gas");
        uint256 expected = 1;
        for (uint256 i = 1; i < 6; ++i) {
            if (mask & (1 << i) != 0) {
                _approve(governors[i], id);
                ++expected;
            }
        }
        assertEq(council.approvals(id), expected);
        assertEq(_state(id), uint8(expected >= threshold ? READY : PENDING));
    }
}
