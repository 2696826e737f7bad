// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IGovernanceCouncil
/// @notice M-of-N multisig of sector governors that holds every admin role in QEAIMS.
/// A proposal is a list of calls; it executes once `threshold` current governors approved it.
/// Membership and threshold change only through the council's own proposals (self-calls).
interface IGovernanceCouncil {
    enum ProposalState {
        None,
        Pending, // fewer approvals than threshold
        Ready, // enough approvals, not executed
        Executed,
        Cancelled,
        Expired
    }

    error CouncilNotGovernor(address account);
    error CouncilOnlySelf(address caller);
    error CouncilInvalidThreshold(uint256 threshold, uint256 governors);
    error CouncilGovernorExists(address account);
    error CouncilUnknownGovernor(address account);
    error CouncilZeroAddress();
    error CouncilEmptyProposal();
    error CouncilLengthMismatch(uint256 targets, uint256 values, uint256 calldatas);
    error CouncilUnknownProposal(uint256 proposalId);
    error CouncilWrongState(uint256 proposalId, ProposalState expected, ProposalState actual);
    error CouncilAlreadyApproved(uint256 proposalId, address governor);
    error CouncilNotApproved(uint256 proposalId, address governor);
    error CouncilCallFailed(uint256 proposalId, uint256 index, bytes returndata);

    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        address[] targets,
        uint256[] values,
        bytes[] calldatas,
        string description,
        uint64 expiresAt
    );
    event ProposalApproved(uint256 indexed proposalId, address indexed governor, uint256 approvals);
    event ApprovalRevoked(uint256 indexed proposalId, address indexed governor, uint256 approvals);
    event ProposalExecuted(uint256 indexed proposalId, address indexed executor);
    event ProposalCancelled(uint256 indexed proposalId, address indexed by);
    event GovernorAdded(address indexed account);
    event GovernorRemoved(address indexed account);
    event ThresholdChanged(uint256 oldThreshold, uint256 newThreshold);

    /// @notice Creates a proposal and approves it as the caller. Requirements: caller is a governor;
    /// at least one call; equal lengths. Emits {ProposalCreated} and {ProposalApproved}.
    function propose(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        string calldata description
    ) external returns (uint256 proposalId);

    /// @notice Requirements: caller is a governor; proposal Pending or Ready; not approved by caller.
    /// Emits {ProposalApproved}.
    function approve(uint256 proposalId) external;

    /// @notice Requirements: caller is a governor who approved; proposal not executed.
    /// Emits {ApprovalRevoked}.
    function revokeApproval(uint256 proposalId) external;

    /// @notice Runs every call of a Ready proposal, in order; reverts whole if one fails.
    /// Requirements: caller is a governor; proposal Ready (approvals of current governors ≥ threshold).
    /// Emits {ProposalExecuted}.
    function execute(uint256 proposalId) external payable;

    /// @notice Cancels a proposal not yet executed. Requirements: caller is its proposer, or the
    /// council itself. Emits {ProposalCancelled}.
    function cancel(uint256 proposalId) external;

    /// @notice Requirements: only the council (via a proposal); new non-zero account.
    /// Emits {GovernorAdded}.
    function addGovernor(address account) external;

    /// @notice Requirements: only the council; governor exists; threshold still ≤ governors.
    /// Emits {GovernorRemoved}.
    function removeGovernor(address account) external;

    /// @notice Requirements: only the council; 1 ≤ threshold ≤ governors. Emits {ThresholdChanged}.
    function changeThreshold(uint256 threshold) external;

    function proposalState(uint256 proposalId) external view returns (ProposalState);
    /// @notice Approvals from accounts that are governors now.
    function approvals(uint256 proposalId) external view returns (uint256);
    function hasApproved(uint256 proposalId, address governor) external view returns (bool);
    function governors() external view returns (address[] memory);
    function isGovernor(address account) external view returns (bool);
    function threshold() external view returns (uint256);
    function proposalCount() external view returns (uint256);
    function proposalLifetime() external view returns (uint64);
}
