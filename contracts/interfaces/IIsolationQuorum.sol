// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IIsolationQuorum
/// @notice The rule that nothing isolates a node (or quarantines an oracle, or brings a node back)
/// without 2f+1 distinct, active oracles of the node's sector voting within the proposal's window.
/// n = active oracles of the sector at execution time, f = ⌊(n−1)/3⌋. Votes of oracles that are
/// no longer active stop counting. A sector may not have more than `isolationCapBps` of its nodes
/// out of service at once except through a governance override, which is recorded as such.
interface IIsolationQuorum {
    enum Action {
        Isolate, // target = node id; node Active → Isolated
        Reintegrate, // target = node id; node Repairing → Active
        Quarantine // target = bytes32(uint256(uint160(oracle))); oracle Active → Quarantined
    }

    enum ProposalState {
        None,
        Open,
        Executed,
        Expired
    }

    struct Proposal {
        Action action;
        bytes32 sector;
        bytes32 target;
        address proposer;
        uint64 createdAt;
        uint64 deadline;
        bool executed;
        bytes32 reason;
    }

    error QuorumNotSectorOracle(address account, bytes32 sector);
    error QuorumProposalExists(uint256 proposalId);
    error QuorumUnknownProposal(uint256 proposalId);
    error QuorumWrongState(uint256 proposalId, ProposalState expected, ProposalState actual);
    error QuorumAlreadyVoted(uint256 proposalId, address oracle);
    error QuorumSelfQuarantineVote(uint256 proposalId, address oracle);
    error QuorumNodeNotInState(bytes32 node, uint8 expected, uint8 actual);
    error QuorumNotReached(uint256 proposalId, uint256 votes, uint256 required);
    error QuorumCapReached(bytes32 sector, uint256 outOfService, uint256 nodes, uint256 capBps);
    error QuorumInvalidSetting(bytes32 name, uint256 value);
    error QuorumTooMuchEvidence(uint256 count, uint256 max);

    event ProposalCreated(
        uint256 indexed proposalId,
        Action action,
        bytes32 indexed sector,
        bytes32 indexed target,
        address proposer,
        uint64 deadline,
        bytes32 reason,
        bytes32[] evidence
    );
    /// @notice `activeVotes` counts only voters still active; `required` is 2f+1 at this moment.
    event VoteCast(uint256 indexed proposalId, address indexed oracle, uint256 activeVotes, uint256 required);
    event ProposalExecuted(uint256 indexed proposalId, Action action, bytes32 indexed target, uint256 activeVotes);
    /// @notice Quorum was reached but the sector's isolation cap blocks execution; the proposal stays
    /// open (governance may raise the cap or override).
    event IsolationBlockedByCap(uint256 indexed proposalId, bytes32 indexed sector, uint256 outOfService, uint256 nodes);
    event RepairStarted(bytes32 indexed node, address indexed by);
    /// @notice A governance override that bypassed the quorum; `toStatus` is a Registry.NodeStatus.
    event GovernanceOverride(bytes32 indexed node, uint8 fromStatus, uint8 toStatus, bytes32 reason);
    event VotingWindowChanged(uint64 oldWindow, uint64 newWindow);
    event IsolationCapChanged(uint16 oldCapBps, uint16 newCapBps);

    /// @notice Opens a proposal and casts the proposer's vote. Evidence are event ids
    /// (`bytes32(uint256(uint160(oracle)) << 64 | seq)`). Executes at once if that vote reaches quorum.
    /// Requirements: caller Active in the target's sector; target in the right state; no open
    /// proposal for the same action and target; at most MAX_EVIDENCE ids.
    /// Emits {ProposalCreated}, {VoteCast}, and possibly {ProposalExecuted} or {IsolationBlockedByCap}.
    function propose(Action action, bytes32 target, bytes32 reason, bytes32[] calldata evidence)
        external
        returns (uint256 proposalId);

    /// @notice Votes for an open proposal; executes it when the vote completes the quorum.
    /// Requirements: caller Active in the proposal's sector; not voted before; before the deadline;
    /// not the target of a quarantine. Emits {VoteCast}, possibly {ProposalExecuted}/{IsolationBlockedByCap}.
    function vote(uint256 proposalId) external;

    /// @notice Executes an open proposal whose quorum is met (e.g. after the cap was raised).
    /// Requirements: Open; quorum met with currently active voters; cap allows. Emits {ProposalExecuted}.
    function execute(uint256 proposalId) external;

    /// @notice Marks an isolated node as under repair. Requirements: REPAIR_ROLE; node Isolated.
    /// Emits {RepairStarted}.
    function beginRepair(bytes32 node) external;

    /// @notice Governance override: isolate (bypassing quorum and cap). Requirements: GOVERNANCE_ROLE;
    /// node Active. Emits {GovernanceOverride}.
    function forceIsolate(bytes32 node, bytes32 reason) external;

    /// @notice Governance override: return an isolated or repairing node to service.
    /// Requirements: GOVERNANCE_ROLE; node Isolated or Repairing. Emits {GovernanceOverride}.
    function forceReintegrate(bytes32 node, bytes32 reason) external;

    /// @notice Requirements: GOVERNANCE_ROLE; 60 s ≤ window ≤ 7 days. Emits {VotingWindowChanged}.
    function setVotingWindow(uint64 window) external;

    /// @notice Requirements: GOVERNANCE_ROLE; 1 ≤ capBps ≤ 10000. Emits {IsolationCapChanged}.
    function setIsolationCap(uint16 capBps) external;

    function proposal(uint256 proposalId) external view returns (Proposal memory);
    function proposalState(uint256 proposalId) external view returns (ProposalState);
    function proposalVoters(uint256 proposalId) external view returns (address[] memory);
    function hasVoted(uint256 proposalId, address oracle) external view returns (bool);
    /// @notice Votes from voters still active, and 2f+1 for the sector right now.
    function tally(uint256 proposalId) external view returns (uint256 activeVotes, uint256 required);
    /// @notice The open proposal for (action, target), or 0.
    function openProposal(Action action, bytes32 target) external view returns (uint256);
    function requiredVotes(bytes32 sector) external view returns (uint256);
    function proposalCount() external view returns (uint256);
    function votingWindow() external view returns (uint64);
    function isolationCapBps() external view returns (uint16);
}
