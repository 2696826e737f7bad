// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IGovernanceCouncil
/// @notice M-of-N council of sector governors that holds every admin role in QEAIMS.
/// A proposal stores only the hash of its calls (`callsHash`, as OpenZeppelin's Governor does); the
/// calls themselves are in {ProposalCreated} and are passed back at execution. A proposal that
/// reaches `threshold` approvals is queued and executes no earlier than `delay` seconds later; an
/// emergency execution skips the delay with `emergencyThreshold()` approvals and is logged with its
/// reason; it runs only calls on the council's emergency allowlist (`isEmergencyCall`), which the
/// council itself maintains through delayed proposals (`setEmergencyCall`). Each governor has an
/// ML-DSA-65 key registered here; every approval carries an ML-DSA-65 signature that the contract
/// logs and every audit verifies (see `keys/council_messages.py`).
/// Membership, threshold, delay and the emergency allowlist change only through the council's own
/// proposals (self-calls).
interface IGovernanceCouncil {
    enum ProposalState {
        None,
        Pending, // fewer approvals than threshold
        Succeeded, // enough approvals, but not queued under the current council (call queue)
        Queued, // enough approvals, queued, eta not reached
        Ready, // enough approvals, eta reached: executable
        Executed,
        Cancelled,
        Expired
    }

    /// @notice What the contract stores of a proposal: the hash of its calls, not the calls.
    struct Proposal {
        bytes32 callsHash; // keccak256(abi.encode(targets, values, calldatas, keccak256(bytes(description))))
        address proposer;
        uint64 expiresAt; // last second it may be approved (and executed if never queued)
        bool executed;
        bool cancelled;
        uint64 eta; // 0 = not queued; executable from eta on
        uint64 queuedUnder; // the council configuration (membership/threshold) it was queued under
    }

    error CouncilNotGovernor(address account);
    error CouncilOnlySelf(address caller);
    error CouncilInvalidThreshold(uint256 threshold, uint256 governors);
    error CouncilInvalidDelay(uint64 delay, uint64 min, uint64 max);
    error CouncilGovernorExists(address account);
    error CouncilUnknownGovernor(address account);
    error CouncilZeroAddress();
    error CouncilEmptyProposal();
    error CouncilLengthMismatch(uint256 targets, uint256 values, uint256 calldatas);
    error CouncilUnknownProposal(uint256 proposalId);
    error CouncilStaleProposalId(uint256 expected, uint256 given);
    error CouncilWrongState(uint256 proposalId, ProposalState expected, ProposalState actual);
    error CouncilAlreadyApproved(uint256 proposalId, address governor);
    error CouncilNotApproved(uint256 proposalId, address governor);
    error CouncilCallsMismatch(uint256 proposalId, bytes32 stored, bytes32 given);
    error CouncilCallFailed(uint256 proposalId, uint256 index, bytes returndata);
    error CouncilInvalidPublicKey(uint256 length);
    error CouncilInvalidSignature(uint256 length);
    error CouncilWrongKeyEpoch(address governor, uint32 expected, uint32 given);
    /// @notice Call `index` of an emergency execution is not on the emergency allowlist (`selector` is
    /// 0 for calldata shorter than 4 bytes, which is never allowed).
    error CouncilEmergencyForbiddenCall(uint256 proposalId, uint256 index, address target, bytes4 selector);
    /// @notice Calls to the council itself and grantRole/revokeRole/renounceRole can never be allowlisted.
    error CouncilEmergencyCallNotAllowable(address target, bytes4 selector);
    error CouncilEmptyReason();
    error CouncilInsufficientApprovals(uint256 proposalId, uint256 approvals, uint256 required);

    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        address[] targets,
        uint256[] values,
        bytes[] calldatas,
        string description,
        bytes32 callsHash,
        uint64 expiresAt
    );
    /// @notice `signature` is the governor's ML-DSA-65 signature (3309 bytes) over
    /// `keys/council_messages.approval_message(chainId, council, proposalId, callsHash, governor, keyEpoch)`.
    event ProposalApproved(
        uint256 indexed proposalId, address indexed governor, uint256 approvals, uint32 keyEpoch, bytes signature
    );
    event ApprovalRevoked(uint256 indexed proposalId, address indexed governor, uint256 approvals);
    event ProposalQueued(uint256 indexed proposalId, uint64 eta);
    /// @notice Approvals were revoked below threshold: the proposal left the queue.
    event ProposalUnqueued(uint256 indexed proposalId);
    event ProposalExecuted(uint256 indexed proposalId, address indexed executor);
    /// @notice Executed without waiting for the delay, with `approvals` ≥ `required` (emergencyThreshold).
    event EmergencyExecuted(
        uint256 indexed proposalId, address indexed executor, uint256 approvals, uint256 required, string reason
    );
    /// @notice `selector` on `target` may (`allowed`) or may no longer run on the emergency path.
    event EmergencyCallSet(address indexed target, bytes4 indexed selector, bool allowed);
    event ProposalCancelled(uint256 indexed proposalId, address indexed by);
    /// @notice `proofOfPossession` is an ML-DSA-65 signature by `publicKey` over
    /// `keys/council_messages.governor_key_message(chainId, council, account, keyEpoch, keyHash)`.
    event GovernorAdded(
        address indexed account, uint32 keyEpoch, bytes32 keyHash, bytes publicKey, bytes proofOfPossession
    );
    event GovernorRemoved(address indexed account);
    event ThresholdChanged(uint256 oldThreshold, uint256 newThreshold);
    event DelayChanged(uint64 oldDelay, uint64 newDelay);

    /// @notice Creates proposal `proposalId` (must be `proposalCount() + 1`: the caller signs it
    /// beforehand) and approves it as the caller. Requirements: caller is a governor; at least one
    /// call; equal lengths; `keyEpoch` is the caller's; signature 3309 bytes.
    /// Emits {ProposalCreated}, {ProposalApproved} and, at threshold 1, {ProposalQueued}.
    function propose(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        string calldata description,
        uint32 keyEpoch,
        bytes calldata signature
    ) external returns (uint256);

    /// @notice Requirements: caller is a governor; proposal Pending, Succeeded, Queued or Ready; not
    /// approved by the caller; `callsHash` is the proposal's; `keyEpoch` is the caller's; signature
    /// 3309 bytes. Emits {ProposalApproved}, and {ProposalQueued} when it reaches the threshold.
    function approve(uint256 proposalId, bytes32 callsHash, uint32 keyEpoch, bytes calldata signature) external;

    /// @notice Requirements: caller is a governor who approved; proposal not executed.
    /// Emits {ApprovalRevoked}, and {ProposalUnqueued} when it falls below the threshold.
    function revokeApproval(uint256 proposalId) external;

    /// @notice Queues a proposal that reached the threshold through a change of the council
    /// (threshold lowered, membership changed) rather than an approval. Requirements: caller is a
    /// governor; state Succeeded. Emits {ProposalQueued}.
    function queue(uint256 proposalId) external;

    /// @notice Runs every call of a Ready proposal, in order; reverts whole if one fails.
    /// Requirements: caller is a governor; state Ready; the calls hash to the stored `callsHash`.
    /// Emits {ProposalExecuted}.
    function execute(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash
    ) external payable;

    /// @notice Runs a proposal without the delay. Requirements: caller is a governor; state Pending,
    /// Succeeded, Queued or Ready; non-empty reason; the calls hash to `callsHash`; every call's
    /// (target, selector) is on the emergency allowlist now ({isEmergencyCall}, else
    /// {CouncilEmergencyForbiddenCall}); approvals ≥ emergencyThreshold(). The allowlist never holds
    /// a call to the council or a role change, so membership, threshold, delay, roles and the
    /// allowlist itself always wait out the delay. Emits {EmergencyExecuted}.
    function executeEmergency(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash,
        string calldata reason
    ) external payable;

    /// @notice Cancels a proposal not yet executed. Requirements: caller is its proposer while still
    /// a governor, or the council itself. Emits {ProposalCancelled}.
    function cancel(uint256 proposalId) external;

    /// @notice Requirements: only the council (via a proposal); new non-zero account; 1952-byte key,
    /// 3309-byte proof of possession. Emits {GovernorAdded}.
    function addGovernor(address account, bytes calldata publicKey, bytes calldata proofOfPossession) external;

    /// @notice Requirements: only the council; governor exists; threshold still ≤ governors.
    /// Emits {GovernorRemoved}.
    function removeGovernor(address account) external;

    /// @notice Requirements: only the council; 1 ≤ threshold ≤ governors. Emits {ThresholdChanged}.
    function changeThreshold(uint256 newThreshold) external;

    /// @notice Requirements: only the council; MIN_DELAY ≤ delay ≤ MAX_DELAY. Emits {DelayChanged}.
    /// Proposals already queued keep their eta.
    function setDelay(uint64 newDelay) external;

    /// @notice Puts `selector` on `target` on the emergency allowlist (`allowed`) or takes it off.
    /// Requirements: only the council (via a proposal, so the delay applies); when allowing, `target`
    /// is not zero ({CouncilZeroAddress}), not the council, and `selector` is not
    /// grantRole/revokeRole/renounceRole ({CouncilEmergencyCallNotAllowable}). Emits {EmergencyCallSet}.
    function setEmergencyCall(address target, bytes4 selector, bool allowed) external;

    function hashProposal(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash
    ) external pure returns (bytes32);
    function proposal(uint256 proposalId) external view returns (Proposal memory);
    function proposalState(uint256 proposalId) external view returns (ProposalState);
    /// @notice Approvals from accounts that are governors now (given during their current membership).
    function approvals(uint256 proposalId) external view returns (uint256);
    function hasApproved(uint256 proposalId, address governor) external view returns (bool);
    function governors() external view returns (address[] memory);
    function isGovernor(address account) external view returns (bool);
    /// @notice The governor's ML-DSA key hash and key epoch (the epoch survives removal, so a
    /// re-added governor signs under a new one).
    function governorKey(address account) external view returns (bytes32 keyHash, uint32 keyEpoch);
    function threshold() external view returns (uint256);
    /// @notice min(threshold + 1, governors): approvals an emergency execution needs.
    function emergencyThreshold() external view returns (uint256);
    function delay() external view returns (uint64);
    /// @notice Whether `executeEmergency` may run `selector` on `target`.
    function isEmergencyCall(address target, bytes4 selector) external view returns (bool);
    function proposalCount() external view returns (uint256);
    function proposalLifetime() external view returns (uint64);
}
