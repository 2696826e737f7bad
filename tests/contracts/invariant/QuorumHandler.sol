// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Registry} from "../../../contracts/Registry.sol";
import {IsolationQuorum} from "../../../contracts/IsolationQuorum.sol";
import {IIsolationQuorum} from "../../../contracts/interfaces/IIsolationQuorum.sol";
import {IRegistry} from "../../../contracts/interfaces/IRegistry.sol";

/// @notice Drives the quorum with oracles of two sectors (and an outsider), governance overrides,
/// oracle churn, cap changes and time; checks every node that becomes isolated against an
/// independent recount of the proposal's voters.
contract QuorumHandler is CommonBase, StdCheats, StdUtils {
    Registry internal immutable registry;
    IsolationQuorum internal immutable quorum;
    address internal immutable council;
    address internal immutable controller;

    address[] internal actors; // oracles of both sectors plus one outsider
    bytes32[] internal nodes;

    // ghost state
    mapping(uint256 proposalId => address[]) internal ghost_voters;
    mapping(uint256 proposalId => mapping(address => uint256)) public ghost_acceptedVotes;
    uint256 public ghost_doubleVotes;
    uint256 public ghost_quorumIsolations;
    uint256 public ghost_overrideIsolations;
    uint256 public ghost_unjustifiedIsolations;
    uint256 public ghost_capBreaches;
    uint256 public ghost_acceptedVoteCount;

    constructor(
        Registry registry_,
        IsolationQuorum quorum_,
        address council_,
        address controller_,
        address[] memory actors_,
        bytes32[] memory nodes_
    ) {
        (registry, quorum, council, controller) = (registry_, quorum_, council_, controller_);
        actors = actors_;
        nodes = nodes_;
    }

    // ---- oracle actions -------------------------------------------------------------------------

    /// @dev Seven times out of eight the target lies in the proposer's sector (a plausible proposal).
    function propose(uint256 actorSeed, uint256 actionSeed, uint256 targetSeed) external {
        address actor = actors[bound(actorSeed, 0, actors.length - 1)];
        IIsolationQuorum.Action action = IIsolationQuorum.Action(actionSeed % 4 < 2 ? 0 : actionSeed % 4 - 1);
        bytes32 sector = targetSeed % 8 == 0 ? bytes32(0) : registry.oracle(actor).sector;
        bytes32 target;
        if (action == IIsolationQuorum.Action.Quarantine) {
            target = bytes32(uint256(uint160(_pickActor(sector, targetSeed))));
        } else {
            bool isolate = action == IIsolationQuorum.Action.Isolate;
            target =
                _pickNode(sector, isolate ? IRegistry.NodeStatus.Active : IRegistry.NodeStatus.Repairing, targetSeed);
        }
        (uint8[] memory before, uint256[] memory open) = _snapshot();
        vm.prank(actor);
        try quorum.propose(action, target, "fuzz", new bytes32[](0)) returns (uint256 id) {
            _recordVote(id, actor);
        } catch {}
        _checkIsolations(before, open, bytes32(0));
    }

    /// @dev Casts one to three votes on the newest proposal (three times out of four) or on a random one;
    /// each voter is from the proposal's sector seven times out of eight.
    function vote(uint256 actorSeed, uint256 proposalSeed) external {
        uint256 count = quorum.proposalCount();
        if (count == 0) return;
        uint256 id = proposalSeed % 4 == 0 ? bound(proposalSeed, 1, count) : count;
        uint256 rounds = 1 + (proposalSeed / 4) % 3;
        for (uint256 r; r < rounds; ++r) {
            uint256 seed = uint256(keccak256(abi.encode(actorSeed, r)));
            bytes32 sector = seed % 8 == 0 ? bytes32(0) : quorum.proposal(id).sector;
            address actor = _pickActor(sector, seed / 8);
            (uint8[] memory before, uint256[] memory open) = _snapshot();
            vm.prank(actor);
            try quorum.vote(id) {
                _recordVote(id, actor);
            } catch {}
            _checkIsolations(before, open, bytes32(0));
        }
    }

    function execute(uint256 proposalSeed, address caller) external {
        uint256 count = quorum.proposalCount();
        if (count == 0) return;
        (uint8[] memory before, uint256[] memory open) = _snapshot();
        vm.prank(caller);
        try quorum.execute(bound(proposalSeed, 1, count)) {} catch {}
        _checkIsolations(before, open, bytes32(0));
    }

    // ---- controller and governance --------------------------------------------------------------

    function beginRepair(uint256 nodeSeed) external {
        vm.prank(controller);
        try quorum.beginRepair(nodes[bound(nodeSeed, 0, nodes.length - 1)]) {} catch {}
    }

    /// @dev Acts one time in four, so overrides do not isolate every node before the oracles vote.
    function forceIsolate(uint256 nodeSeed) external {
        if (nodeSeed % 4 != 0) return;
        bytes32 node = nodes[bound(nodeSeed, 0, nodes.length - 1)];
        (uint8[] memory before, uint256[] memory open) = _snapshot();
        vm.prank(council);
        try quorum.forceIsolate(node, "override") {} catch {}
        _checkIsolations(before, open, node);
    }

    function forceReintegrate(uint256 nodeSeed) external {
        vm.prank(council);
        try quorum.forceReintegrate(nodes[bound(nodeSeed, 0, nodes.length - 1)], "override") {} catch {}
    }

    /// @dev Removes or reinstates an oracle, keeping at least three active per sector.
    function churnOracle(uint256 actorSeed, bool remove) external {
        address oracle = actors[bound(actorSeed, 0, actors.length - 1)];
        IRegistry.Oracle memory o = registry.oracle(oracle);
        if (o.status == IRegistry.OracleStatus.None) return;
        vm.startPrank(council);
        if (remove && registry.activeOracleCount(o.sector) > 3) {
            try registry.removeOracle(oracle, "churn") {} catch {}
        } else if (!remove) {
            try registry.reinstateOracle(oracle, "churn") {} catch {}
        }
        vm.stopPrank();
    }

    function setCap(uint256 capSeed) external {
        vm.prank(council);
        quorum.setIsolationCap(uint16(bound(capSeed, 1, 10_000)));
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 400));
    }

    // ---- views for the invariants -----------------------------------------------------------------

    function ghostVoters(uint256 proposalId) external view returns (address[] memory) {
        return ghost_voters[proposalId];
    }

    function nodeList() external view returns (bytes32[] memory) {
        return nodes;
    }

    /// @notice Distinct ghost voters of `proposalId` still active in its sector, and 2f+1 recomputed here.
    function independentTally(uint256 proposalId) public view returns (uint256 votes, uint256 required) {
        bytes32 sector = quorum.proposal(proposalId).sector;
        address[] storage voters = ghost_voters[proposalId];
        for (uint256 i; i < voters.length; ++i) {
            if (registry.isActiveOracle(voters[i], sector)) ++votes;
        }
        uint256 n = registry.activeOracleCount(sector);
        required = n == 0 ? type(uint256).max : 2 * ((n - 1) / 3) + 1;
    }

    // ---- internal -------------------------------------------------------------------------------

    function _recordVote(uint256 id, address actor) private {
        if (++ghost_acceptedVotes[id][actor] > 1) ++ghost_doubleVotes;
        else ghost_voters[id].push(actor);
        ++ghost_acceptedVoteCount;
    }

    /// @dev An actor of `sector` (any actor, outsider included, when `sector` is zero).
    function _pickActor(bytes32 sector, uint256 seed) private view returns (address) {
        address[] memory pool = new address[](actors.length);
        uint256 k;
        for (uint256 i; i < actors.length; ++i) {
            if (sector == bytes32(0) || registry.oracle(actors[i]).sector == sector) pool[k++] = actors[i];
        }
        return pool[seed % k];
    }

    /// @dev A node of `sector` (any sector when zero), preferring nodes in `status`.
    function _pickNode(bytes32 sector, IRegistry.NodeStatus status, uint256 seed) private view returns (bytes32) {
        bytes32[] memory preferred = new bytes32[](nodes.length);
        bytes32[] memory others = new bytes32[](nodes.length);
        (uint256 p, uint256 o) = (0, 0);
        for (uint256 i; i < nodes.length; ++i) {
            IRegistry.Node memory n = registry.node(nodes[i]);
            if (sector != bytes32(0) && n.sector != sector) continue;
            if (n.status == status) preferred[p++] = nodes[i];
            else others[o++] = nodes[i];
        }
        if (p > 0 && seed % 8 != 0) return preferred[seed % p];
        return o > 0 ? others[seed % o] : preferred[seed % p];
    }

    function _createdFor(bytes32 node) private view returns (uint256) {
        uint256 latest = quorum.proposalCount();
        if (latest == 0) return 0;
        IIsolationQuorum.Proposal memory p = quorum.proposal(latest);
        return p.action == IIsolationQuorum.Action.Isolate && p.target == node ? latest : 0;
    }

    function _snapshot() private view returns (uint8[] memory status, uint256[] memory open) {
        status = new uint8[](nodes.length);
        open = new uint256[](nodes.length);
        for (uint256 i; i < nodes.length; ++i) {
            status[i] = uint8(registry.node(nodes[i]).status);
            open[i] = quorum.openProposal(IIsolationQuorum.Action.Isolate, nodes[i]);
        }
    }

    /// @dev Every node that went Active → Isolated in the last call must be the override target, or
    /// the target of an Isolate proposal now Executed whose independent tally meets 2f+1 (rule a),
    /// and a quorum-driven isolation must leave the sector within the cap (rule e).
    function _checkIsolations(uint8[] memory before, uint256[] memory open, bytes32 overridden) private {
        for (uint256 i; i < nodes.length; ++i) {
            IRegistry.Node memory n = registry.node(nodes[i]);
            if (before[i] != uint8(IRegistry.NodeStatus.Active) || n.status != IRegistry.NodeStatus.Isolated) continue;
            if (nodes[i] == overridden) {
                ++ghost_overrideIsolations;
                continue;
            }
            uint256 id = open[i];
            if (id == 0) id = _createdFor(nodes[i]); // proposed and executed in the same call (n = 3 → 2f+1 = 1)
            (uint256 votes, uint256 required) = id == 0 ? (0, type(uint256).max) : independentTally(id);
            bool executed = id != 0 && quorum.proposalState(id) == IIsolationQuorum.ProposalState.Executed;
            if (!executed || votes < required) ++ghost_unjustifiedIsolations;
            ++ghost_quorumIsolations;
            uint256 total = registry.sectorNodeCount(n.sector);
            if (registry.sectorIsolatedCount(n.sector) * 10_000 > total * quorum.isolationCapBps()) {
                ++ghost_capBreaches;
            }
        }
    }
}
