// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IIsolationQuorum} from "./interfaces/IIsolationQuorum.sol";
import {IRegistry} from "./interfaces/IRegistry.sol";

/// @title IsolationQuorum
/// @notice Isolation, reintegration and quarantine decisions by a Byzantine quorum of a sector's oracles.
/// @dev Holds STATUS_ROLE on the Registry; the Registry is the only contract it calls and is trusted.
/// The rules (docs/TRUST.md):
/// - the requirement is q(n) = ⌊(n+f)/2⌋+1 over the sector's membership n (Active + Quarantined),
///   captured when the proposal opens and never lowered; a vote counts only while its oracle is Active;
/// - a proposal is bound to its target's status epoch and closes when the target's status changes;
/// - a vote carries the voter's key epoch and ML-DSA-65 signature of the ballot (checked off-chain);
/// - a floor of active oracles, the isolation cap and a quarantine rate bound what the quorum may do.
/// Every loop is bounded by MAX_VOTERS (= Registry.MAX_ORACLES_PER_SECTOR) or by the 8-slot
/// quarantine ring: once a voter list is full, voters no longer active are pruned before the next
/// vote is appended (their `hasVoted` stays true).
contract IsolationQuorum is IIsolationQuorum, AccessControl {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant REPAIR_ROLE = keccak256("REPAIR_ROLE");
    uint256 public constant MAX_EVIDENCE = 32;
    uint256 public constant MAX_VOTERS = 64;
    uint256 public constant PQ_SIGNATURE_LENGTH = 3309;
    uint64 public constant MIN_VOTING_WINDOW = 60;
    uint64 public constant MAX_VOTING_WINDOW = 7 days;
    uint16 public constant MAX_CAP_BPS = 10_000;
    uint8 public constant MAX_QUARANTINE_LIMIT = 8;
    uint64 public constant MIN_QUARANTINE_WINDOW = 1 hours;
    uint64 public constant MAX_QUARANTINE_WINDOW = 30 days;
    uint32 public constant DEFAULT_ACTIVE_FLOOR = 3;

    /// @notice The registry whose oracles vote and whose nodes this contract moves.
    IRegistry public immutable registry;

    uint64 private _votingWindow;
    uint16 private _capBps;
    uint32 private _activeFloor;
    uint8 private _quarantineLimit;
    uint64 private _quarantineWindow;
    uint256 private _proposalCount;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => address[]) private _voters;
    /// @dev The voter's Registry status epoch when it voted (0: not voted). A vote counts only while the
    /// voter's status epoch is unchanged: a voter quarantined and later reinstated does not get back a
    /// vote it cast before (its forged vote may be why it was quarantined).
    mapping(uint256 proposalId => mapping(address oracle => uint64 statusEpoch)) private _votedAt;
    mapping(Action action => mapping(bytes32 target => uint256 proposalId)) private _open;
    mapping(Action action => mapping(bytes32 target => uint32)) private _rounds;
    mapping(bytes32 sector => uint64[8]) private _quarantinedAt;
    mapping(bytes32 sector => uint8) private _quarantineCursor;

    /// @param registry_ the Registry (grant this contract its STATUS_ROLE after deployment)
    /// @param admin receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE
    /// @param votingWindow_ seconds a proposal stays open, MIN_VOTING_WINDOW..MAX_VOTING_WINDOW
    /// @param isolationCapBps_ max share of a sector's nodes out of service, 1..10000 basis points
    /// @dev The floor starts at DEFAULT_ACTIVE_FLOOR and the quarantine rate at 1 per day.
    constructor(IRegistry registry_, address admin, uint64 votingWindow_, uint16 isolationCapBps_) {
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setVotingWindow(votingWindow_);
        _setIsolationCap(isolationCapBps_);
        _setActiveFloor(DEFAULT_ACTIVE_FLOOR);
        _setQuarantineRate(1, 1 days);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev A quarantine target may not propose its own quarantine ({QuorumSelfQuarantineVote} with id 0).
    /// A target with non-zero upper 96 bits, or an oracle not Active, fails {QuorumNodeNotInState}
    /// with Registry.OracleStatus values. Reentrancy: the only calls go to the trusted Registry, and
    /// the proposal, open slot and vote are written before any mutating one.
    function propose(Action action, bytes32 target, bytes32 reason, bytes32[] calldata evidence, Ballot calldata ballot_)
        external
        returns (uint256 proposalId)
    {
        if (evidence.length > MAX_EVIDENCE) revert QuorumTooMuchEvidence(evidence.length, MAX_EVIDENCE);
        (bytes32 sector, uint64 epoch) = _checkTarget(action, target);
        IRegistry.Oracle memory voter = _checkVoter(0, action, sector, target);
        uint256 existing = _open[action][target];
        if (existing != 0 && proposalState(existing) == ProposalState.Open) {
            Proposal storage open = _proposals[existing];
            if (ballot_.statusEpoch != open.statusEpoch || ballot_.round != open.round) {
                revert QuorumStaleBallot(existing, open.statusEpoch, open.round);
            }
            if (_votedAt[existing][msg.sender] != 0) revert QuorumAlreadyVoted(existing, msg.sender);
            _castVote(existing, open, voter, ballot_.keyEpoch, ballot_.pqSignature);
            return existing;
        }
        proposalId = _openProposalFor(action, target, sector, epoch, ballot_);
        Proposal storage p = _proposals[proposalId];
        p.reason = reason;
        _announce(proposalId, p, evidence);
        _castVote(proposalId, p, voter, ballot_.keyEpoch, ballot_.pqSignature);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev Reentrancy: the vote is recorded before any mutating Registry call.
    function vote(uint256 proposalId, uint32 keyEpoch, bytes calldata pqSignature) external {
        Proposal storage p = _openProposal(proposalId);
        IRegistry.Oracle memory voter = _checkVoter(proposalId, p.action, p.sector, p.target);
        if (_votedAt[proposalId][msg.sender] != 0) revert QuorumAlreadyVoted(proposalId, msg.sender);
        _castVote(proposalId, p, voter, keyEpoch, pqSignature);
    }

    /// @inheritdoc IIsolationQuorum
    function execute(uint256 proposalId) external {
        Proposal storage p = _openProposal(proposalId);
        _checkVoter(proposalId, p.action, p.sector, p.target);
        (uint256 votes, uint256 required) = _tally(proposalId, p);
        if (votes < required) revert QuorumNotReached(proposalId, votes, required);
        _execute(proposalId, p, votes, true);
    }

    // ---- controller and governance --------------------------------------------------------------

    /// @inheritdoc IIsolationQuorum
    /// @dev Reentrancy: nothing is written here; the event precedes the single Registry call.
    function beginRepair(bytes32 node) external onlyRole(REPAIR_ROLE) {
        _requireNodeStatus(node, IRegistry.NodeStatus.Isolated);
        emit RepairStarted(node, msg.sender);
        registry.setNodeStatus(node, IRegistry.NodeStatus.Repairing);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev Bypasses quorum and cap; recorded in {GovernanceOverride}. Reentrancy: the Registry call is last.
    function forceIsolate(bytes32 node, bytes32 reason) external onlyRole(GOVERNANCE_ROLE) {
        _requireNodeStatus(node, IRegistry.NodeStatus.Active);
        emit GovernanceOverride(node, uint8(IRegistry.NodeStatus.Active), uint8(IRegistry.NodeStatus.Isolated), reason);
        registry.setNodeStatus(node, IRegistry.NodeStatus.Isolated);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev Otherwise {QuorumNodeNotInState} with `expected` = Isolated. Reentrancy: the Registry call is last.
    function forceReintegrate(bytes32 node, bytes32 reason) external onlyRole(GOVERNANCE_ROLE) {
        IRegistry.NodeStatus from = registry.node(node).status;
        if (from != IRegistry.NodeStatus.Isolated && from != IRegistry.NodeStatus.Repairing) {
            revert QuorumNodeNotInState(node, uint8(IRegistry.NodeStatus.Isolated), uint8(from));
        }
        emit GovernanceOverride(node, uint8(from), uint8(IRegistry.NodeStatus.Active), reason);
        registry.setNodeStatus(node, IRegistry.NodeStatus.Active);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev Applies to proposals created afterwards; open proposals keep their deadline.
    function setVotingWindow(uint64 window) external onlyRole(GOVERNANCE_ROLE) {
        _setVotingWindow(window);
    }

    /// @inheritdoc IIsolationQuorum
    function setIsolationCap(uint16 capBps) external onlyRole(GOVERNANCE_ROLE) {
        _setIsolationCap(capBps);
    }

    /// @inheritdoc IIsolationQuorum
    function setActiveFloor(uint32 floor) external onlyRole(GOVERNANCE_ROLE) {
        _setActiveFloor(floor);
    }

    /// @inheritdoc IIsolationQuorum
    function setQuarantineRate(uint8 limit, uint64 window) external onlyRole(GOVERNANCE_ROLE) {
        _setQuarantineRate(limit, window);
    }

    // ---- views ----------------------------------------------------------------------------------

    /// @inheritdoc IIsolationQuorum
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev None for unknown ids; then Executed; Closed once the target's status epoch differs from
    /// the proposal's; Expired when `block.timestamp > deadline`; otherwise Open.
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId == 0 || proposalId > _proposalCount) return ProposalState.None;
        Proposal storage p = _proposals[proposalId];
        if (p.executed) return ProposalState.Executed;
        if (_targetEpoch(p.action, p.target) != p.statusEpoch) return ProposalState.Closed;
        // forge-lint: disable-next-line(block-timestamp) windows are minutes to days; validator skew is seconds
        if (block.timestamp > p.deadline) return ProposalState.Expired;
        return ProposalState.Open;
    }

    /// @inheritdoc IIsolationQuorum
    function proposalVoters(uint256 proposalId) external view returns (address[] memory) {
        return _voters[proposalId];
    }

    /// @inheritdoc IIsolationQuorum
    function hasVoted(uint256 proposalId, address oracle) external view returns (bool) {
        return _votedAt[proposalId][oracle] != 0;
    }

    /// @inheritdoc IIsolationQuorum
    function tally(uint256 proposalId) external view returns (uint256 activeVotes, uint256 required) {
        return _tally(proposalId, _proposals[proposalId]);
    }

    /// @inheritdoc IIsolationQuorum
    function openProposal(Action action, bytes32 target) public view returns (uint256) {
        uint256 id = _open[action][target];
        return proposalState(id) == ProposalState.Open ? id : 0;
    }

    /// @inheritdoc IIsolationQuorum
    function ballot(Action action, bytes32 target)
        external
        view
        returns (uint256 proposalId, uint64 statusEpoch, uint32 round)
    {
        proposalId = openProposal(action, target);
        if (proposalId != 0) {
            Proposal storage p = _proposals[proposalId];
            return (proposalId, p.statusEpoch, p.round);
        }
        return (0, _targetEpoch(action, target), _rounds[action][target] + 1);
    }

    /// @inheritdoc IIsolationQuorum
    function requiredVotes(bytes32 sector) public view returns (uint256) {
        return quorumSize(registry.oracleSlots(sector));
    }

    /// @notice q(n) = ⌊(n+f)/2⌋+1 with f = ⌊(n−1)/3⌋: the smallest size such that any two quorums
    /// of n members share at least f+1 (2q − n ≥ f+1), and at most n − f so f silent members cannot
    /// block. 3 of 4, 4 of 5, 4 of 6, 5 of 7; type(uint256).max for n = 0 (nothing is reachable).
    function quorumSize(uint256 n) public pure returns (uint256) {
        if (n == 0) return type(uint256).max;
        // slither-disable-next-line divide-before-multiply f = floor((n-1)/3) is meant to round down
        uint256 f = (n - 1) / 3;
        return (n + f) / 2 + 1;
    }

    /// @inheritdoc IIsolationQuorum
    function recentQuarantines(bytes32 sector) public view returns (uint256 recent) {
        uint64[8] storage times = _quarantinedAt[sector];
        for (uint256 i; i < 8; ++i) {
            // forge-lint: disable-next-line(block-timestamp) the window is hours to days
            if (times[i] != 0 && block.timestamp < uint256(times[i]) + _quarantineWindow) ++recent;
        }
    }

    /// @inheritdoc IIsolationQuorum
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IIsolationQuorum
    function votingWindow() external view returns (uint64) {
        return _votingWindow;
    }

    /// @inheritdoc IIsolationQuorum
    function isolationCapBps() external view returns (uint16) {
        return _capBps;
    }

    /// @inheritdoc IIsolationQuorum
    function activeFloor() external view returns (uint32) {
        return _activeFloor;
    }

    /// @inheritdoc IIsolationQuorum
    function quarantineLimit() external view returns (uint8) {
        return _quarantineLimit;
    }

    /// @inheritdoc IIsolationQuorum
    function quarantineWindow() external view returns (uint64) {
        return _quarantineWindow;
    }

    // ---- internal -------------------------------------------------------------------------------

    /// @dev Records the caller's vote, re-counts, and executes when quorum is met. Cap- or
    /// rate-blocked decisions stay Open (no revert) so the vote itself is never lost.
    function _castVote(
        uint256 proposalId,
        Proposal storage p,
        IRegistry.Oracle memory voter,
        uint32 keyEpoch,
        bytes calldata pqSignature
    ) private {
        if (keyEpoch != voter.keyEpoch) revert QuorumKeyEpochMismatch(msg.sender, keyEpoch, voter.keyEpoch);
        if (pqSignature.length != PQ_SIGNATURE_LENGTH) revert QuorumInvalidSignatureLength(pqSignature.length);
        if (_voters[proposalId].length >= MAX_VOTERS) _pruneInactive(proposalId, p.sector);
        _votedAt[proposalId][msg.sender] = voter.statusEpoch;
        _voters[proposalId].push(msg.sender);
        (uint256 votes, uint256 required) = _tally(proposalId, p);
        emit VoteCast(proposalId, msg.sender, votes, required, keyEpoch, pqSignature);
        if (votes >= required) _execute(proposalId, p, votes, false);
    }

    /// @dev Checks the target's state, the cap and the quarantine rate, marks the proposal executed
    /// and frees its open slot, then calls the Registry. Reentrancy: all writes and the event precede
    /// the only mutating call.
    function _execute(uint256 proposalId, Proposal storage p, uint256 votes, bool strict) private {
        (Action action, bytes32 target, bytes32 sector) = (p.action, p.target, p.sector);
        if (action == Action.Isolate) {
            uint256 outOfService = registry.sectorIsolatedCount(sector);
            uint256 nodes = registry.sectorNodeCount(sector);
            if ((outOfService + 1) * MAX_CAP_BPS > nodes * _capBps) {
                if (strict) revert QuorumCapReached(sector, outOfService, nodes, _capBps);
                emit IsolationBlockedByCap(proposalId, sector, outOfService, nodes);
                return;
            }
        } else if (action == Action.Quarantine) {
            uint256 recent = recentQuarantines(sector);
            if (recent >= _quarantineLimit) {
                if (strict) revert QuorumQuarantineRateReached(sector, recent, _quarantineLimit);
                emit QuarantineBlockedByRate(proposalId, sector, recent, _quarantineLimit);
                return;
            }
            uint8 cursor = _quarantineCursor[sector];
            _quarantinedAt[sector][cursor] = uint64(block.timestamp);
            _quarantineCursor[sector] = (cursor + 1) % 8;
        }
        p.executed = true;
        delete _open[action][target];
        emit ProposalExecuted(proposalId, action, target, votes);
        if (action == Action.Isolate) {
            registry.setNodeStatus(target, IRegistry.NodeStatus.Isolated);
        } else if (action == Action.Reintegrate) {
            registry.setNodeStatus(target, IRegistry.NodeStatus.Active);
        } else {
            registry.quarantineOracle(address(uint160(uint256(target))), p.reason);
        }
    }

    /// @dev Checks the ballot names the next round at the target's current epoch, captures the
    /// membership and requirement, and stores the proposal (reason and events are the caller's).
    function _openProposalFor(Action action, bytes32 target, bytes32 sector, uint64 epoch, Ballot calldata ballot_)
        private
        returns (uint256 proposalId)
    {
        uint32 round = _rounds[action][target] + 1;
        if (ballot_.statusEpoch != epoch || ballot_.round != round) revert QuorumStaleBallot(0, epoch, round);
        _rounds[action][target] = round;
        proposalId = ++_proposalCount;
        uint256 membership = registry.oracleSlots(sector); // ≤ MAX_ORACLES_PER_SECTOR
        Proposal storage p = _proposals[proposalId];
        (p.action, p.sector, p.target, p.proposer) = (action, sector, target, msg.sender);
        (p.createdAt, p.deadline) = (uint64(block.timestamp), uint64(block.timestamp) + _votingWindow);
        (p.statusEpoch, p.round) = (epoch, round);
        // casting to 'uint32' is safe because membership <= MAX_ORACLES_PER_SECTOR
        // forge-lint: disable-next-line(unsafe-typecast)
        (p.membership, p.required) = (uint32(membership), uint32(quorumSize(membership)));
        _open[action][target] = proposalId;
    }

    function _announce(uint256 proposalId, Proposal storage p, bytes32[] calldata evidence) private {
        emit ProposalCreated(proposalId, p.action, p.sector, p.target, p.proposer, p.deadline, p.reason, evidence);
        emit ProposalBallot(proposalId, p.statusEpoch, p.round, p.membership, p.required);
    }

    /// @dev Returns the target's sector and status epoch after checking it is in the state the action starts from.
    function _checkTarget(Action action, bytes32 target) private view returns (bytes32 sector, uint64 epoch) {
        if (action == Action.Quarantine) {
            if (uint256(target) >> 160 != 0) {
                revert QuorumNodeNotInState(target, uint8(IRegistry.OracleStatus.Active), 0);
            }
            IRegistry.Oracle memory o = registry.oracle(address(uint160(uint256(target))));
            if (o.status != IRegistry.OracleStatus.Active) {
                revert QuorumNodeNotInState(target, uint8(IRegistry.OracleStatus.Active), uint8(o.status));
            }
            return (o.sector, o.statusEpoch);
        }
        IRegistry.NodeStatus expected =
            action == Action.Isolate ? IRegistry.NodeStatus.Active : IRegistry.NodeStatus.Repairing;
        IRegistry.Node memory n = registry.node(target);
        if (n.status != expected) revert QuorumNodeNotInState(target, uint8(expected), uint8(n.status));
        return (n.sector, n.statusEpoch);
    }

    function _targetEpoch(Action action, bytes32 target) private view returns (uint64) {
        if (action == Action.Quarantine) {
            if (uint256(target) >> 160 != 0) return 0;
            return registry.oracle(address(uint160(uint256(target)))).statusEpoch;
        }
        return registry.node(target).statusEpoch;
    }

    function _requireNodeStatus(bytes32 node, IRegistry.NodeStatus expected) private view {
        IRegistry.NodeStatus status = registry.node(node).status;
        if (status != expected) revert QuorumNodeNotInState(node, uint8(expected), uint8(status));
    }

    /// @dev The caller must be Active in `sector`, not the quarantine target, and the sector at or
    /// above the floor. Returns the caller's registry record.
    function _checkVoter(uint256 proposalId, Action action, bytes32 sector, bytes32 target)
        private
        view
        returns (IRegistry.Oracle memory o)
    {
        o = registry.oracle(msg.sender);
        if (o.status != IRegistry.OracleStatus.Active || o.sector != sector) {
            revert QuorumNotSectorOracle(msg.sender, sector);
        }
        if (action == Action.Quarantine && target == bytes32(uint256(uint160(msg.sender)))) {
            revert QuorumSelfQuarantineVote(proposalId, msg.sender);
        }
        uint256 active = registry.activeOracleCount(sector);
        if (active < _activeFloor) revert QuorumBelowFloor(sector, active, _activeFloor);
    }

    function _openProposal(uint256 proposalId) private view returns (Proposal storage) {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert QuorumUnknownProposal(proposalId);
        if (state != ProposalState.Open) revert QuorumWrongState(proposalId, ProposalState.Open, state);
        return _proposals[proposalId];
    }

    /// @dev Votes of voters still Active in the sector in the status epoch they voted in; the requirement is the captured one or q over
    /// the current membership, whichever is higher (it never falls after the proposal opened).
    function _tally(uint256 proposalId, Proposal storage p) private view returns (uint256 votes, uint256 required) {
        bytes32 sector = p.sector;
        address[] storage voters = _voters[proposalId];
        uint256 length = voters.length;
        for (uint256 i; i < length; ++i) {
            if (_counts(proposalId, voters[i], sector)) ++votes;
        }
        required = requiredVotes(sector);
        if (p.required > required) required = p.required;
    }

    /// @dev Whether `voter`'s vote on `proposalId` counts now: Active in `sector` and in the same
    /// status epoch as when it voted.
    function _counts(uint256 proposalId, address voter, bytes32 sector) private view returns (bool) {
        IRegistry.Oracle memory o = registry.oracle(voter);
        return o.status == IRegistry.OracleStatus.Active && o.sector == sector
            && o.statusEpoch == _votedAt[proposalId][voter];
    }

    function _pruneInactive(uint256 proposalId, bytes32 sector) private {
        address[] storage voters = _voters[proposalId];
        for (uint256 i; i < voters.length;) {
            if (_counts(proposalId, voters[i], sector)) {
                ++i;
                continue;
            }
            voters[i] = voters[voters.length - 1];
            voters.pop();
        }
    }

    function _setVotingWindow(uint64 window) private {
        if (window < MIN_VOTING_WINDOW || window > MAX_VOTING_WINDOW) {
            revert QuorumInvalidSetting("votingWindow", window);
        }
        emit VotingWindowChanged(_votingWindow, window);
        _votingWindow = window;
    }

    function _setIsolationCap(uint16 capBps) private {
        if (capBps == 0 || capBps > MAX_CAP_BPS) revert QuorumInvalidSetting("isolationCapBps", capBps);
        emit IsolationCapChanged(_capBps, capBps);
        _capBps = capBps;
    }

    function _setActiveFloor(uint32 floor) private {
        if (floor == 0 || floor > MAX_VOTERS) revert QuorumInvalidSetting("activeFloor", floor);
        emit ActiveFloorChanged(_activeFloor, floor);
        _activeFloor = floor;
    }

    function _setQuarantineRate(uint8 limit, uint64 window) private {
        if (limit > MAX_QUARANTINE_LIMIT) revert QuorumInvalidSetting("quarantineLimit", limit);
        if (window < MIN_QUARANTINE_WINDOW || window > MAX_QUARANTINE_WINDOW) {
            revert QuorumInvalidSetting("quarantineWindow", window);
        }
        emit QuarantineRateChanged(_quarantineLimit, limit, _quarantineWindow, window);
        (_quarantineLimit, _quarantineWindow) = (limit, window);
    }
}
