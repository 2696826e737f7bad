// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IGovernanceCouncil} from "./interfaces/IGovernanceCouncil.sol";

/// @title GovernanceCouncil
/// @notice M-of-N council of sector governors; holds the admin and governance roles of QEAIMS.
/// @dev Chosen over Safe 1.4.1: a Safe needs a proxy factory and EIP-712 signature packing for every
/// off-chain signer, while here each governor sends plain propose/approve/execute transactions whose
/// events are exactly the trail our auditors read. Like Safe's OwnerManager, membership and threshold
/// change only through the council's own proposals and keep 1 ≤ threshold ≤ governors.
/// An approval is bound to the governor's membership (a tag renewed on every add), so approvals from
/// a removed governor never count again, even if the account is added back later.
/// `governors()` and `approvals()` loop over the governor set, which only the council itself can grow.
contract GovernanceCouncil is IGovernanceCouncil {
    using EnumerableSet for EnumerableSet.AddressSet;

    struct CouncilProposal {
        address proposer;
        uint64 expiresAt;
        bool executed;
        bool cancelled;
        address[] targets;
        uint256[] values;
        bytes[] calldatas;
    }

    EnumerableSet.AddressSet private _governors;
    uint256 private _threshold;
    uint64 private immutable _lifetime;
    uint256 private _proposalCount;
    uint256 private _membershipNonce;
    mapping(address account => uint256 tag) private _memberTag;
    mapping(uint256 proposalId => CouncilProposal) private _proposals;
    mapping(uint256 proposalId => mapping(address governor => uint256 tag)) private _approvalTag;

    modifier onlyGovernor() {
        if (!_governors.contains(msg.sender)) revert CouncilNotGovernor(msg.sender);
        _;
    }

    modifier onlySelf() {
        if (msg.sender != address(this)) revert CouncilOnlySelf(msg.sender);
        _;
    }

    /// @param governors_ initial governors: non-zero, distinct
    /// @param threshold_ approvals needed, 1..governors_.length
    /// @param proposalLifetime_ seconds a proposal stays approvable and executable
    constructor(address[] memory governors_, uint256 threshold_, uint64 proposalLifetime_) {
        for (uint256 i; i < governors_.length; ++i) {
            _addGovernor(governors_[i]);
        }
        _lifetime = proposalLifetime_;
        _changeThreshold(threshold_);
    }

    /// @inheritdoc IGovernanceCouncil
    function propose(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        string calldata description
    ) external onlyGovernor returns (uint256 proposalId) {
        if (targets.length == 0) revert CouncilEmptyProposal();
        if (targets.length != values.length || targets.length != calldatas.length) {
            revert CouncilLengthMismatch(targets.length, values.length, calldatas.length);
        }
        proposalId = ++_proposalCount;
        CouncilProposal storage p = _proposals[proposalId];
        p.proposer = msg.sender;
        p.expiresAt = uint64(block.timestamp) + _lifetime;
        p.targets = targets;
        p.values = values;
        for (uint256 i; i < calldatas.length; ++i) {
            p.calldatas.push(calldatas[i]);
        }
        emit ProposalCreated(proposalId, msg.sender, targets, values, calldatas, description, p.expiresAt);
        _approve(proposalId);
    }

    /// @inheritdoc IGovernanceCouncil
    function approve(uint256 proposalId) external onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (state != ProposalState.Pending && state != ProposalState.Ready) {
            revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        }
        if (hasApproved(proposalId, msg.sender)) revert CouncilAlreadyApproved(proposalId, msg.sender);
        _approve(proposalId);
    }

    /// @inheritdoc IGovernanceCouncil
    function revokeApproval(uint256 proposalId) external onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (state == ProposalState.Executed) revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        if (!hasApproved(proposalId, msg.sender)) revert CouncilNotApproved(proposalId, msg.sender);
        delete _approvalTag[proposalId][msg.sender];
        emit ApprovalRevoked(proposalId, msg.sender, approvals(proposalId));
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev The inner revert data of a failed call is carried in {CouncilCallFailed}'s `returndata`.
    /// Reentrancy: the proposal is marked executed (and the event emitted) before any call, so a call
    /// that re-enters cannot execute it again; it sees state Executed.
    function execute(uint256 proposalId) external payable onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (state != ProposalState.Ready) revert CouncilWrongState(proposalId, ProposalState.Ready, state);
        CouncilProposal storage p = _proposals[proposalId];
        p.executed = true;
        emit ProposalExecuted(proposalId, msg.sender);
        uint256 count = p.targets.length;
        for (uint256 i; i < count; ++i) {
            // slither-disable-next-line low-level-calls
            (bool ok, bytes memory returndata) = p.targets[i].call{value: p.values[i]}(p.calldatas[i]);
            if (!ok) revert CouncilCallFailed(proposalId, i, returndata);
        }
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev Also refused once the proposal is cancelled or expired ({CouncilWrongState}, expected
    /// Pending). Any caller other than the proposer or the council fails {CouncilOnlySelf}.
    function cancel(uint256 proposalId) external {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        CouncilProposal storage p = _proposals[proposalId];
        if (msg.sender != p.proposer && msg.sender != address(this)) revert CouncilOnlySelf(msg.sender);
        if (state != ProposalState.Pending && state != ProposalState.Ready) {
            revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        }
        p.cancelled = true;
        emit ProposalCancelled(proposalId, msg.sender);
    }

    /// @inheritdoc IGovernanceCouncil
    function addGovernor(address account) external onlySelf {
        _addGovernor(account);
    }

    /// @inheritdoc IGovernanceCouncil
    function removeGovernor(address account) external onlySelf {
        if (!_governors.remove(account)) revert CouncilUnknownGovernor(account);
        uint256 remaining = _governors.length();
        if (_threshold > remaining) revert CouncilInvalidThreshold(_threshold, remaining);
        delete _memberTag[account];
        emit GovernorRemoved(account);
    }

    /// @inheritdoc IGovernanceCouncil
    function changeThreshold(uint256 threshold_) external onlySelf {
        _changeThreshold(threshold_);
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev None for unknown ids; then Executed, Cancelled, Expired (`block.timestamp > expiresAt`),
    /// Ready (approvals of current governors ≥ threshold) or Pending, in that order.
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId == 0 || proposalId > _proposalCount) return ProposalState.None;
        CouncilProposal storage p = _proposals[proposalId];
        if (p.executed) return ProposalState.Executed;
        if (p.cancelled) return ProposalState.Cancelled;
        // forge-lint: disable-next-line(block-timestamp) windows are minutes to days; validator skew is seconds
        if (block.timestamp > p.expiresAt) return ProposalState.Expired;
        return approvals(proposalId) >= _threshold ? ProposalState.Ready : ProposalState.Pending;
    }

    /// @inheritdoc IGovernanceCouncil
    function approvals(uint256 proposalId) public view returns (uint256 count) {
        uint256 length = _governors.length();
        for (uint256 i; i < length; ++i) {
            if (hasApproved(proposalId, _governors.at(i))) ++count;
        }
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev True only for a current governor whose approval was given during its current membership.
    function hasApproved(uint256 proposalId, address governor) public view returns (bool) {
        uint256 tag = _approvalTag[proposalId][governor];
        return tag != 0 && tag == _memberTag[governor];
    }

    /// @inheritdoc IGovernanceCouncil
    function governors() external view returns (address[] memory) {
        return _governors.values();
    }

    /// @inheritdoc IGovernanceCouncil
    function isGovernor(address account) external view returns (bool) {
        return _governors.contains(account);
    }

    /// @inheritdoc IGovernanceCouncil
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IGovernanceCouncil
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IGovernanceCouncil
    function proposalLifetime() external view returns (uint64) {
        return _lifetime;
    }

    /// @notice The calls of a proposal, its proposer and expiry (for dashboards and auditors).
    function proposalCalls(uint256 proposalId)
        external
        view
        returns (
            address proposer,
            uint64 expiresAt,
            address[] memory targets,
            uint256[] memory values,
            bytes[] memory calldatas
        )
    {
        CouncilProposal storage p = _proposals[proposalId];
        return (p.proposer, p.expiresAt, p.targets, p.values, p.calldatas);
    }

    function _approve(uint256 proposalId) private {
        _approvalTag[proposalId][msg.sender] = _memberTag[msg.sender];
        emit ProposalApproved(proposalId, msg.sender, approvals(proposalId));
    }

    function _addGovernor(address account) private {
        if (account == address(0)) revert CouncilZeroAddress();
        if (!_governors.add(account)) revert CouncilGovernorExists(account);
        _memberTag[account] = ++_membershipNonce;
        emit GovernorAdded(account);
    }

    function _changeThreshold(uint256 threshold_) private {
        uint256 count = _governors.length();
        if (threshold_ == 0 || threshold_ > count) revert CouncilInvalidThreshold(threshold_, count);
        emit ThresholdChanged(_threshold, threshold_);
        _threshold = threshold_;
    }
}
