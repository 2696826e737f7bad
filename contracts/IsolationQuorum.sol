// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IIsolationQuorum} from "./interfaces/IIsolationQuorum.sol";
import {IRegistry} from "./interfaces/IRegistry.sol";

/// @title IsolationQuorum
/// @notice Isolation, reintegration and quarantine decisions by 2f+1 of a sector's active oracles.
/// @dev Holds STATUS_ROLE on the Registry; the Registry is the only contract it calls and is trusted.
/// Quorum is re-counted on every vote and execution from the voters that are *still* active in the
/// sector, so a removed or quarantined oracle's vote stops counting at once. Every loop is bounded by
/// MAX_VOTERS (= Registry.MAX_ORACLES_PER_SECTOR): once a voter list is full, voters no longer active
/// are pruned from it before the next vote is appended (their `hasVoted` stays true). Since at most
/// MAX_VOTERS oracles of a sector are active at once, a new active voter always finds room.
contract IsolationQuorum is IIsolationQuorum, AccessControl {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant REPAIR_ROLE = keccak256("REPAIR_ROLE");
    uint256 public constant MAX_EVIDENCE = 32;
    uint256 public constant MAX_VOTERS = 64;
    uint64 public constant MIN_VOTING_WINDOW = 60;
    uint64 public constant MAX_VOTING_WINDOW = 7 days;
    uint16 public constant MAX_CAP_BPS = 10_000;

    /// @notice The registry whose oracles vote and whose nodes this contract moves.
    IRegistry public immutable registry;

    uint64 private _votingWindow;
    uint16 private _capBps;
    uint256 private _proposalCount;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => address[]) private _voters;
    mapping(uint256 proposalId => mapping(address oracle => bool)) private _voted;
    mapping(Action action => mapping(bytes32 target => uint256 proposalId)) private _open;

    /// @param registry_ the Registry (grant this contract its STATUS_ROLE after deployment)
    /// @param admin receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE
    /// @param votingWindow_ seconds a proposal stays open, MIN_VOTING_WINDOW..MAX_VOTING_WINDOW
    /// @param isolationCapBps_ max share of a sector's nodes out of service, 1..10000 basis points
    constructor(IRegistry registry_, address admin, uint64 votingWindow_, uint16 isolationCapBps_) {
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setVotingWindow(votingWindow_);
        _setIsolationCap(isolationCapBps_);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev A quarantine target may not propose its own quarantine ({QuorumSelfQuarantineVote} with id 0).
    /// A target with non-zero upper 96 bits, or an oracle not Active, fails {QuorumNodeNotInState}
    /// with Registry.OracleStatus values. Reentrancy: the only calls go to the trusted Registry, and
    /// the proposal, open slot and vote are written before them.
    function propose(Action action, bytes32 target, bytes32 reason, bytes32[] calldata evidence)
        external
        returns (uint256 proposalId)
    {
        if (evidence.length > MAX_EVIDENCE) revert QuorumTooMuchEvidence(evidence.length, MAX_EVIDENCE);
        bytes32 sector = _checkTarget(action, target);
        _checkVoter(0, action, sector, target);
        uint256 existing = _open[action][target];
        if (existing != 0 && proposalState(existing) == ProposalState.Open) revert QuorumProposalExists(existing);

        proposalId = ++_proposalCount;
        uint64 deadline = uint64(block.timestamp) + _votingWindow;
        Proposal storage p = _proposals[proposalId];
        (p.action, p.sector, p.target, p.proposer) = (action, sector, target, msg.sender);
        (p.createdAt, p.deadline, p.reason) = (uint64(block.timestamp), deadline, reason);
        _open[action][target] = proposalId;
        emit ProposalCreated(proposalId, action, sector, target, msg.sender, deadline, reason, evidence);
        _castVote(proposalId, p);
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev Reentrancy: the vote is recorded before any Registry call.
    function vote(uint256 proposalId) external {
        Proposal storage p = _openProposal(proposalId);
        _checkVoter(proposalId, p.action, p.sector, p.target);
        if (_voted[proposalId][msg.sender]) revert QuorumAlreadyVoted(proposalId, msg.sender);
        _castVote(proposalId, p);
    }

    /// @inheritdoc IIsolationQuorum
    function execute(uint256 proposalId) external {
        Proposal storage p = _openProposal(proposalId);
        (uint256 votes, uint256 required) = _tally(proposalId, p.sector);
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
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev None for unknown ids; Open until executed or `block.timestamp > deadline` (then Expired).
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId == 0 || proposalId > _proposalCount) return ProposalState.None;
        Proposal storage p = _proposals[proposalId];
        if (p.executed) return ProposalState.Executed;
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
        return _voted[proposalId][oracle];
    }

    /// @inheritdoc IIsolationQuorum
    function tally(uint256 proposalId) external view returns (uint256 activeVotes, uint256 required) {
        return _tally(proposalId, _proposals[proposalId].sector);
    }

    /// @inheritdoc IIsolationQuorum
    function openProposal(Action action, bytes32 target) external view returns (uint256) {
        uint256 id = _open[action][target];
        return proposalState(id) == ProposalState.Open ? id : 0;
    }

    /// @inheritdoc IIsolationQuorum
    /// @dev 2f+1 with f = (n-1)/3 and n = active oracles of the sector; type(uint256).max when n = 0
    /// (no quorum is reachable).
    function requiredVotes(bytes32 sector) public view returns (uint256) {
        uint256 n = registry.activeOracleCount(sector);
        if (n == 0) return type(uint256).max;
        // slither-disable-next-line divide-before-multiply f = floor((n-1)/3) is meant to round down
        return 2 * ((n - 1) / 3) + 1;
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

    /// @dev Records the caller's vote, re-counts, and executes when quorum is met. Cap-blocked
    /// isolations stay Open (no revert) so the vote itself is never lost.
    function _castVote(uint256 proposalId, Proposal storage p) private {
        if (_voters[proposalId].length >= MAX_VOTERS) _pruneInactive(_voters[proposalId], p.sector);
        _voted[proposalId][msg.sender] = true;
        _voters[proposalId].push(msg.sender);
        (uint256 votes, uint256 required) = _tally(proposalId, p.sector);
        emit VoteCast(proposalId, msg.sender, votes, required);
        if (votes >= required) _execute(proposalId, p, votes, false);
    }

    /// @dev Checks the target's state and the cap, marks the proposal executed and frees its open slot,
    /// then calls the Registry. Reentrancy: all writes and the event precede the only mutating call.
    function _execute(uint256 proposalId, Proposal storage p, uint256 votes, bool strict) private {
        (Action action, bytes32 target, bytes32 sector) = (p.action, p.target, p.sector);
        _checkTarget(action, target);
        if (action == Action.Isolate) {
            uint256 outOfService = registry.sectorIsolatedCount(sector);
            uint256 nodes = registry.sectorNodeCount(sector);
            if ((outOfService + 1) * MAX_CAP_BPS > nodes * _capBps) {
                if (strict) revert QuorumCapReached(sector, outOfService, nodes, _capBps);
                emit IsolationBlockedByCap(proposalId, sector, outOfService, nodes);
                return;
            }
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

    /// @dev Returns the target's sector after checking it is in the state the action starts from.
    function _checkTarget(Action action, bytes32 target) private view returns (bytes32 sector) {
        if (action == Action.Quarantine) {
            if (uint256(target) >> 160 != 0) {
                revert QuorumNodeNotInState(target, uint8(IRegistry.OracleStatus.Active), 0);
            }
            IRegistry.Oracle memory o = registry.oracle(address(uint160(uint256(target))));
            if (o.status != IRegistry.OracleStatus.Active) {
                revert QuorumNodeNotInState(target, uint8(IRegistry.OracleStatus.Active), uint8(o.status));
            }
            return o.sector;
        }
        IRegistry.NodeStatus expected =
            action == Action.Isolate ? IRegistry.NodeStatus.Active : IRegistry.NodeStatus.Repairing;
        return _requireNodeStatus(target, expected);
    }

    function _requireNodeStatus(bytes32 node, IRegistry.NodeStatus expected) private view returns (bytes32 sector) {
        IRegistry.Node memory n = registry.node(node);
        if (n.status != expected) revert QuorumNodeNotInState(node, uint8(expected), uint8(n.status));
        return n.sector;
    }

    function _checkVoter(uint256 proposalId, Action action, bytes32 sector, bytes32 target) private view {
        if (!registry.isActiveOracle(msg.sender, sector)) revert QuorumNotSectorOracle(msg.sender, sector);
        if (action == Action.Quarantine && target == bytes32(uint256(uint160(msg.sender)))) {
            revert QuorumSelfQuarantineVote(proposalId, msg.sender);
        }
    }

    function _openProposal(uint256 proposalId) private view returns (Proposal storage) {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert QuorumUnknownProposal(proposalId);
        if (state != ProposalState.Open) revert QuorumWrongState(proposalId, ProposalState.Open, state);
        return _proposals[proposalId];
    }

    function _tally(uint256 proposalId, bytes32 sector) private view returns (uint256 votes, uint256 required) {
        address[] storage voters = _voters[proposalId];
        uint256 length = voters.length;
        for (uint256 i; i < length; ++i) {
            if (registry.isActiveOracle(voters[i], sector)) ++votes;
        }
        required = requiredVotes(sector);
    }

    function _pruneInactive(address[] storage voters, bytes32 sector) private {
        for (uint256 i; i < voters.length;) {
            if (registry.isActiveOracle(voters[i], sector)) {
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
}
