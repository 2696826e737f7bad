// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IIsolationQuorum
/// @notice The rule that nothing isolates a node (or quarantines an oracle, or brings a node back)
/// without a Byzantine quorum of the node's sector: q(n) = ⌊(n+f)/2⌋+1 distinct oracles that are
/// Active in the sector, where n is the sector's *membership* (Active + Quarantined oracles) captured
/// when the proposal opened and f = ⌊(n−1)/3⌋. Any two quorums of one membership share f+1 oracles,
/// so at least one honest one (docs/TRUST.md). The requirement never falls after a proposal opens.
/// A proposal is bound to its target's status epoch: any status change of the target closes it.
/// Every vote carries an ML-DSA-65 signature over its ballot that peers and auditors verify.
/// A sector may not have more than `isolationCapBps` of its nodes out of service at once, nor
/// quarantine more than `quarantineLimit` of its oracles per `quarantineWindow`, nor act at all with
/// fewer than `activeFloor` active oracles, except through a recorded governance override.
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
        Expired,
        Closed // the target's status epoch moved on: the proposal is about a lifecycle that ended
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
        uint64 statusEpoch; // the target's status epoch when the proposal opened
        uint32 round; // proposals ever opened on (action, target), this one included
        uint32 membership; // the sector's membership n when the proposal opened
        uint32 required; // q(n) captured when the proposal opened; never lowered
    }

    /// @notice What a voter signs with ML-DSA-65 (besides chain id, contract, its account and key
    /// epoch): the proposal's action, target, the target's status epoch and the round.
    struct Ballot {
        uint64 statusEpoch;
        uint32 round;
        uint32 keyEpoch; // the voter's current key epoch in the Registry
        bytes pqSignature; // ML-DSA-65 over the vote message (docs/TRUST.md), 3309 bytes
    }

    error QuorumNotSectorOracle(address account, bytes32 sector);
    error QuorumUnknownProposal(uint256 proposalId);
    error QuorumWrongState(uint256 proposalId, ProposalState expected, ProposalState actual);
    error QuorumAlreadyVoted(uint256 proposalId, address oracle);
    error QuorumSelfQuarantineVote(uint256 proposalId, address oracle);
    error QuorumNodeNotInState(bytes32 node, uint8 expected, uint8 actual);
    error QuorumNotReached(uint256 proposalId, uint256 votes, uint256 required);
    error QuorumCapReached(bytes32 sector, uint256 outOfService, uint256 nodes, uint256 capBps);
    error QuorumInvalidSetting(bytes32 name, uint256 value);
    error QuorumTooMuchEvidence(uint256 count, uint256 max);
    /// @notice The ballot signed is not the one open (or next) for this target: re-read `ballot()`.
    error QuorumStaleBallot(uint256 proposalId, uint64 statusEpoch, uint32 round);
    error QuorumKeyEpochMismatch(address oracle, uint32 given, uint32 current);
    error QuorumInvalidSignatureLength(uint256 length);
    /// @notice Fewer active oracles than the floor: the sector falls back to governance.
    error QuorumBelowFloor(bytes32 sector, uint256 active, uint256 floor);
    error QuorumQuarantineRateReached(bytes32 sector, uint256 recent, uint256 limit);

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
    /// @notice The ballot a proposal is bound to and the requirement it captured when it opened.
    event ProposalBallot(
        uint256 indexed proposalId, uint64 statusEpoch, uint32 round, uint32 membership, uint32 required
    );
    /// @notice `activeVotes` counts only voters still active; `required` is the proposal's requirement
    /// now (never below what it captured). `pqSignature` is the voter's ML-DSA-65 signature of the
    /// ballot under key `keyEpoch`; a vote whose signature does not verify is not a vote.
    event VoteCast(
        uint256 indexed proposalId,
        address indexed oracle,
        uint256 activeVotes,
        uint256 required,
        uint32 keyEpoch,
        bytes pqSignature
    );
    event ProposalExecuted(uint256 indexed proposalId, Action action, bytes32 indexed target, uint256 activeVotes);
    /// @notice Quorum was reached but the sector's isolation cap blocks execution; the proposal stays
    /// open (governance may raise the cap or override).
    event IsolationBlockedByCap(uint256 indexed proposalId, bytes32 indexed sector, uint256 outOfService, uint256 nodes);
    /// @notice Quorum was reached but the sector already quarantined `recent` oracles in the window.
    event QuarantineBlockedByRate(uint256 indexed proposalId, bytes32 indexed sector, uint256 recent, uint256 limit);
    event RepairStarted(bytes32 indexed node, address indexed by);
    /// @notice A governance override that bypassed the quorum; `toStatus` is a Registry.NodeStatus.
    event GovernanceOverride(bytes32 indexed node, uint8 fromStatus, uint8 toStatus, bytes32 reason);
    event VotingWindowChanged(uint64 oldWindow, uint64 newWindow);
    event IsolationCapChanged(uint16 oldCapBps, uint16 newCapBps);
    event ActiveFloorChanged(uint32 oldFloor, uint32 newFloor);
    event QuarantineRateChanged(uint8 oldLimit, uint8 newLimit, uint64 oldWindow, uint64 newWindow);

    /// @notice Opens the proposal for the next round on (action, target) and casts the caller's
    /// vote; or, if the proposal for exactly this ballot is already open (another oracle opened it
    /// first), casts the caller's vote on it. Evidence are event ids
    /// (`bytes32(uint256(uint160(oracle)) << 64 | seq)`). Executes at once if the vote completes the quorum.
    /// Requirements: caller Active in the target's sector and not the quarantine target; the sector
    /// has at least `activeFloor` active oracles; target in the right state; `ballot` equal to
    /// {ballot}(action, target); the caller's current key epoch and a 3309-byte signature; at most
    /// MAX_EVIDENCE ids. Emits {ProposalCreated}, {ProposalBallot}, {VoteCast}, and possibly
    /// {ProposalExecuted}, {IsolationBlockedByCap} or {QuarantineBlockedByRate}.
    function propose(Action action, bytes32 target, bytes32 reason, bytes32[] calldata evidence, Ballot calldata ballot)
        external
        returns (uint256 proposalId);

    /// @notice Votes for an open proposal; executes it when the vote completes the quorum.
    /// Requirements: as {propose}; Open (not executed, expired or closed); not voted before.
    /// Emits {VoteCast}, possibly {ProposalExecuted}/{IsolationBlockedByCap}/{QuarantineBlockedByRate}.
    function vote(uint256 proposalId, uint32 keyEpoch, bytes calldata pqSignature) external;

    /// @notice Executes an open proposal whose quorum is met (e.g. after the cap was raised).
    /// Requirements: caller Active in the proposal's sector (not the quarantine target); Open; quorum
    /// met with currently active voters; floor, cap and quarantine rate allow. Emits {ProposalExecuted}.
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

    /// @notice Requirements: GOVERNANCE_ROLE; 1 ≤ floor ≤ MAX_VOTERS. Emits {ActiveFloorChanged}.
    function setActiveFloor(uint32 floor) external;

    /// @notice Requirements: GOVERNANCE_ROLE; limit ≤ MAX_QUARANTINE_LIMIT (0: only governance
    /// quarantines); MIN_QUARANTINE_WINDOW ≤ window ≤ MAX_QUARANTINE_WINDOW. Emits {QuarantineRateChanged}.
    function setQuarantineRate(uint8 limit, uint64 window) external;

    function proposal(uint256 proposalId) external view returns (Proposal memory);
    function proposalState(uint256 proposalId) external view returns (ProposalState);
    function proposalVoters(uint256 proposalId) external view returns (address[] memory);
    function hasVoted(uint256 proposalId, address oracle) external view returns (bool);
    /// @notice Votes from voters still active, and the proposal's requirement now.
    function tally(uint256 proposalId) external view returns (uint256 activeVotes, uint256 required);
    /// @notice The open proposal for (action, target), or 0.
    function openProposal(Action action, bytes32 target) external view returns (uint256);
    /// @notice The ballot to sign now for (action, target): the open proposal's (with its id), or the
    /// next round at the target's current status epoch (id 0).
    function ballot(Action action, bytes32 target)
        external
        view
        returns (uint256 proposalId, uint64 statusEpoch, uint32 round);
    /// @notice q(n) over the sector's current membership (type(uint256).max when it has none).
    function requiredVotes(bytes32 sector) external view returns (uint256);
    /// @notice Oracles of `sector` quarantined by its quorum within the current quarantine window.
    function recentQuarantines(bytes32 sector) external view returns (uint256);
    function proposalCount() external view returns (uint256);
    function votingWindow() external view returns (uint64);
    function isolationCapBps() external view returns (uint16);
    function activeFloor() external view returns (uint32);
    function quarantineLimit() external view returns (uint8);
    function quarantineWindow() external view returns (uint64);
}
