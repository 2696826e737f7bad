// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Registry} from "../../../contracts/Registry.sol";
import {IsolationQuorum} from "../../../contracts/IsolationQuorum.sol";
import {IIsolationQuorum} from "../../../contracts/interfaces/IIsolationQuorum.sol";
import {IRegistry} from "../../../contracts/interfaces/IRegistry.sol";
import {PqFixtures} from "../utils/Deployed.sol";

/// @notice Drives the quorum into its dangerous states: oracles of two sectors (and an outsider)
/// propose, vote and execute with fresh, stale and wrong ballots; the council churns membership
/// (registers, removes, reinstates), overrides nodes and changes the floor, cap, window and
/// quarantine rate; oracles rotate keys; time passes. After every call it explains every status
/// transition of every node and oracle, and records each executed quorum for the intersection check.
contract QuorumHandler is CommonBase, StdCheats, StdUtils {
    using PqFixtures for uint256;

    Registry internal immutable registry;
    IsolationQuorum internal immutable quorum;
    address internal immutable council;
    address internal immutable controller;

    address[] internal actors; // oracles of both sectors, spares the council may register, one outsider
    bytes32[] internal nodes;
    bytes32 internal immutable sectorA; // the first actor's
    bytes32 internal immutable sectorB; // the last node's
    bytes32 internal immutable spareSector; // starts with no oracles; the council registers spares here
    bytes32 internal immutable spareOperator;

    struct Execution {
        bytes32 sector;
        uint256 membershipVersion;
        uint256 membership;
        address[] counted;
    }

    // ghost state
    mapping(uint256 proposalId => address[]) internal ghost_voters;
    mapping(uint256 proposalId => mapping(address => uint256)) public ghost_acceptedVotes;
    mapping(uint256 proposalId => uint256) public ghost_requiredAtOpen;
    mapping(uint256 proposalId => mapping(address => uint64)) internal ghost_voteEpoch; // voter's status epoch
    mapping(bytes32 sector => uint256) public ghost_membershipVersion;
    mapping(bytes32 sector => uint256[]) internal ghost_quarantineTimes;
    Execution[] internal executions;
    uint256 public ghost_doubleVotes;
    uint256 public ghost_unjustifiedTransitions;
    uint256 public ghost_staleVotes;
    uint256 public ghost_capBreaches;
    uint256 public ghost_rateBreaches;
    uint256 public ghost_floorBreaches;
    uint256 public ghost_wrongCapture;

    string[] internal actionNames;
    mapping(string name => uint256) public calls;
    mapping(string name => uint256) public successes;
    mapping(string name => uint256) public transitions;

    constructor(
        Registry registry_,
        IsolationQuorum quorum_,
        address council_,
        address controller_,
        address[] memory actors_,
        bytes32[] memory nodes_,
        bytes32 spareSector_,
        bytes32 spareOperator_
    ) {
        (registry, quorum, council, controller) = (registry_, quorum_, council_, controller_);
        actors = actors_;
        nodes = nodes_;
        (spareSector, spareOperator) = (spareSector_, spareOperator_);
        sectorA = registry_.oracle(actors_[0]).sector;
        sectorB = registry_.node(nodes_[nodes_.length - 1]).sector;
        actionNames = [
            "propose", "vote", "execute", "beginRepair", "forceIsolate", "forceReintegrate", "removeOracle",
            "reinstateOracle", "registerOracle", "rotateKey", "setCap", "setFloor", "setQuarantineRate",
            "setVotingWindow", "warp"
        ];
    }

    // ---- oracle actions -------------------------------------------------------------------------

    /// @dev Seven times out of eight the target lies in the proposer's sector; one time in eight the
    /// ballot or key epoch is wrong (a stale or replayed signature).
    function propose(uint256 actorSeed, uint256 actionSeed, uint256 targetSeed) external {
        address actor = actors[bound(actorSeed, 0, actors.length - 1)];
        for (uint256 i; i < actors.length && actorSeed % 8 != 0; ++i) { // mostly an active oracle
            address candidate = actors[(actorSeed % actors.length + i) % actors.length];
            if (registry.oracle(candidate).status == IRegistry.OracleStatus.Active) {
                actor = candidate;
                break;
            }
        }
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
        IIsolationQuorum.Ballot memory b = _ballot(action, target, actor, actionSeed / 4);
        uint256 openBefore = quorum.openProposal(action, target);
        uint256 countBefore = quorum.proposalCount();
        Snapshot memory before = _snapshot();
        _called("propose");
        vm.prank(actor);
        try quorum.propose(action, target, "fuzz", new bytes32[](0), b) returns (uint256 id) {
            _succeeded("propose");
            if (id > countBefore) ghost_requiredAtOpen[id] = quorum.quorumSize(before.membership[_sectorIndex(quorum.proposal(id).sector)]);
            else if (id != openBefore) ++ghost_staleVotes;
            _recordVote(id, actor, before);
        } catch {}
        _explain(before, Cause.Quorum, bytes32(0), address(0));
    }

    /// @dev Casts one to three votes on the newest proposal (three times out of four) or on a random one;
    /// each voter is from the proposal's sector seven times out of eight.
    function vote(uint256 actorSeed, uint256 proposalSeed) external {
        uint256 count = quorum.proposalCount();
        if (count == 0) return;
        uint256 id = proposalSeed % 4 == 0 ? bound(proposalSeed, 1, count) : _newestOpen(count);
        uint256 rounds = 1 + (proposalSeed / 4) % 5;
        for (uint256 r; r < rounds; ++r) {
            uint256 seed = uint256(keccak256(abi.encode(actorSeed, r)));
            bytes32 sector = seed % 8 == 0 ? bytes32(0) : quorum.proposal(id).sector;
            address actor = _pickActor(sector, seed / 8);
            uint32 keyEpoch = registry.oracle(actor).keyEpoch;
            if (seed % 16 == 1) ++keyEpoch; // a signature under a key the registry does not hold
            Snapshot memory before = _snapshot();
            bool wasOpen = quorum.proposalState(id) == IIsolationQuorum.ProposalState.Open;
            _called("vote");
            vm.prank(actor);
            try quorum.vote(id, keyEpoch, seed.signature()) {
                _succeeded("vote");
                if (!wasOpen) ++ghost_staleVotes;
                _recordVote(id, actor, before);
            } catch {}
            _explain(before, Cause.Quorum, bytes32(0), address(0));
        }
    }

    function execute(uint256 proposalSeed, uint256 callerSeed) external {
        uint256 count = quorum.proposalCount();
        if (count == 0) return;
        uint256 id = proposalSeed % 4 == 0 ? bound(proposalSeed, 1, count) : _newestReached(count);
        address caller = callerSeed % 8 == 0 ? address(uint160(callerSeed)) : _pickActor(quorum.proposal(id).sector, callerSeed);
        Snapshot memory before = _snapshot();
        _called("execute");
        vm.prank(caller);
        try quorum.execute(id) {
            _succeeded("execute");
        } catch {}
        _explain(before, Cause.Quorum, bytes32(0), address(0));
    }

    /// @dev The oracle rotates its ML-DSA key; ballots signed under the old epoch stop being accepted.
    function rotateKey(uint256 actorSeed) external {
        address actor = actors[bound(actorSeed, 0, actors.length - 1)];
        Snapshot memory before = _snapshot();
        _called("rotateKey");
        // mostly the epoch it is at; one call in four names the previous one (a stale resend), which must revert
        uint32 fromEpoch = registry.oracle(actor).keyEpoch;
        if (actorSeed % 4 == 0 && fromEpoch > 0) --fromEpoch;
        vm.prank(actor);
        try registry.rotateKey(fromEpoch, actorSeed.key(), actorSeed.signature(), (actorSeed ^ 1).signature()) {
            _succeeded("rotateKey");
        } catch {}
        _explain(before, Cause.None, bytes32(0), address(0));
    }

    // ---- controller and governance --------------------------------------------------------------

    function beginRepair(uint256 nodeSeed) external {
        bytes32 node = nodes[bound(nodeSeed, 0, nodes.length - 1)];
        Snapshot memory before = _snapshot();
        _called("beginRepair");
        vm.prank(controller);
        try quorum.beginRepair(node) {
            _succeeded("beginRepair");
        } catch {}
        _explain(before, Cause.Repair, node, address(0));
    }

    /// @dev Acts one time in four, so overrides do not isolate every node before the oracles vote.
    function forceIsolate(uint256 nodeSeed) external {
        if (nodeSeed % 4 != 0) return;
        bytes32 node = nodes[bound(nodeSeed, 0, nodes.length - 1)];
        Snapshot memory before = _snapshot();
        _called("forceIsolate");
        vm.prank(council);
        try quorum.forceIsolate(node, "override") {
            _succeeded("forceIsolate");
        } catch {}
        _explain(before, Cause.Override, node, address(0));
    }

    function forceReintegrate(uint256 nodeSeed) external {
        bytes32 node = nodes[bound(nodeSeed, 0, nodes.length - 1)];
        Snapshot memory before = _snapshot();
        _called("forceReintegrate");
        vm.prank(council);
        try quorum.forceReintegrate(node, "override") {
            _succeeded("forceReintegrate");
        } catch {}
        _explain(before, Cause.Override, node, address(0));
    }

    /// @dev The council removes an oracle (membership shrinks for new proposals, never for open ones).
    function removeOracle(uint256 actorSeed) external {
        if (actorSeed % 4 != 0) return; // one time in four, or sectors drain below the floor at once
        address oracle = actors[bound(actorSeed, 0, actors.length - 1)];
        Snapshot memory before = _snapshot();
        _called("removeOracle");
        vm.prank(council);
        try registry.removeOracle(oracle, "churn") {
            _succeeded("removeOracle");
            ++ghost_membershipVersion[registry.oracle(oracle).sector];
        } catch {}
        _explain(before, Cause.Council, bytes32(0), oracle);
    }

    function reinstateOracle(uint256 actorSeed) external {
        address oracle = actors[bound(actorSeed, 0, actors.length - 1)];
        for (uint256 i; i < actors.length && actorSeed % 4 != 0; ++i) {
            address candidate = actors[(actorSeed % actors.length + i) % actors.length];
            if (registry.oracle(candidate).status == IRegistry.OracleStatus.Quarantined) {
                oracle = candidate;
                break;
            }
        }
        Snapshot memory before = _snapshot();
        _called("reinstateOracle");
        vm.prank(council);
        try registry.reinstateOracle(oracle, "churn") {
            _succeeded("reinstateOracle");
        } catch {}
        _explain(before, Cause.Council, bytes32(0), oracle);
    }

    /// @dev The council registers one of the spare accounts in the spare sector (membership grows).
    function registerOracle(uint256 actorSeed) external {
        address oracle = actors[bound(actorSeed, 0, actors.length - 1)];
        Snapshot memory before = _snapshot();
        _called("registerOracle");
        vm.prank(council);
        try registry.registerOracle(oracle, spareSector, spareOperator, actorSeed.key(), actorSeed.signature()) {
            _succeeded("registerOracle");
            ++ghost_membershipVersion[spareSector];
        } catch {}
        _explain(before, Cause.Council, bytes32(0), oracle);
    }

    function setCap(uint256 capSeed) external {
        _called("setCap");
        vm.prank(council);
        quorum.setIsolationCap(uint16(bound(capSeed, 1, 10_000)));
        _succeeded("setCap");
    }

    function setFloor(uint256 floorSeed) external {
        _called("setFloor");
        vm.prank(council);
        quorum.setActiveFloor(uint32(floorSeed % 8 == 0 ? bound(floorSeed, 1, 8) : bound(floorSeed, 1, 3)));
        _succeeded("setFloor");
    }

    function setQuarantineRate(uint256 limitSeed, uint256 windowSeed) external {
        _called("setQuarantineRate");
        vm.prank(council);
        quorum.setQuarantineRate(uint8(bound(limitSeed, 0, 3)), uint64(bound(windowSeed, 1 hours, 2 days)));
        _succeeded("setQuarantineRate");
    }

    function setVotingWindow(uint256 windowSeed) external {
        _called("setVotingWindow");
        vm.prank(council);
        quorum.setVotingWindow(uint64(bound(windowSeed, 60, 7200)));
        _succeeded("setVotingWindow");
    }

    function warp(uint256 secondsSeed) external {
        _called("warp");
        vm.warp(block.timestamp + bound(secondsSeed, 1, secondsSeed % 8 == 0 ? 2 days : 400));
        _succeeded("warp");
    }

    // ---- views for the invariants -----------------------------------------------------------------

    function ghostVoters(uint256 proposalId) external view returns (address[] memory) {
        return ghost_voters[proposalId];
    }

    function nodeList() external view returns (bytes32[] memory) {
        return nodes;
    }

    function actorList() external view returns (address[] memory) {
        return actors;
    }

    function names() external view returns (string[] memory) {
        return actionNames;
    }

    function executionCount() external view returns (uint256) {
        return executions.length;
    }

    function execution(uint256 i) external view returns (Execution memory) {
        return executions[i];
    }

    /// @notice Distinct ghost voters of `proposalId` still active in its sector in the status epoch they
    /// voted in (a quarantined-then-reinstated voter's vote stays dead), and the requirement
    /// recomputed here: q over the membership captured at open, or now if higher.
    function independentTally(uint256 proposalId) public view returns (uint256 votes, uint256 required) {
        bytes32 sector = quorum.proposal(proposalId).sector;
        address[] storage voters = ghost_voters[proposalId];
        for (uint256 i; i < voters.length; ++i) {
            if (_counts(proposalId, voters[i], sector)) ++votes;
        }
        required = _q(registry.oracleSlots(sector));
        if (ghost_requiredAtOpen[proposalId] > required) required = ghost_requiredAtOpen[proposalId];
    }

    // ---- internal -------------------------------------------------------------------------------

    enum Cause {
        None,
        Quorum,
        Repair,
        Override,
        Council
    }

    struct Snapshot {
        uint8[] nodeStatus;
        uint64[] nodeEpoch;
        uint8[] oracleStatus;
        uint256[] openIsolate;
        uint256[] openReintegrate;
        uint256[] openQuarantine;
        uint256[3] membership; // by _sectorIndex
        uint256[3] active;
        uint256 proposalCount;
    }

    function _counts(uint256 proposalId, address voter, bytes32 sector) private view returns (bool) {
        IRegistry.Oracle memory o = registry.oracle(voter);
        return o.status == IRegistry.OracleStatus.Active && o.sector == sector
            && o.statusEpoch == ghost_voteEpoch[proposalId][voter];
    }

    function _q(uint256 n) private pure returns (uint256) {
        if (n == 0) return type(uint256).max;
        return (n + (n - 1) / 3) / 2 + 1;
    }

    function _called(string memory name) private {
        ++calls[name];
    }

    function _succeeded(string memory name) private {
        ++successes[name];
    }

    function _ballot(IIsolationQuorum.Action action, bytes32 target, address actor, uint256 seed)
        private
        view
        returns (IIsolationQuorum.Ballot memory b)
    {
        (, uint64 epoch, uint32 round) = quorum.ballot(action, target);
        b = IIsolationQuorum.Ballot(epoch, round, registry.oracle(actor).keyEpoch, seed.signature());
        if (seed % 32 == 1) b.statusEpoch = epoch == 0 ? 0 : epoch - 1; // a ballot from the last lifecycle
        if (seed % 32 == 2) b.round = round + 1;
        if (seed % 32 == 3) b.keyEpoch += 1;
    }

    function _recordVote(uint256 id, address actor, Snapshot memory before) private {
        if (++ghost_acceptedVotes[id][actor] > 1) ++ghost_doubleVotes;
        else ghost_voters[id].push(actor);
        ghost_voteEpoch[id][actor] = registry.oracle(actor).statusEpoch;
        uint256 s = _sectorIndex(quorum.proposal(id).sector);
        if (before.active[s] < quorum.activeFloor()) ++ghost_floorBreaches;
    }

    /// @dev The newest Open proposal among the last eight, else the newest.
    function _newestOpen(uint256 count) private view returns (uint256) {
        for (uint256 id = count; id > 0 && id + 8 > count; --id) {
            if (quorum.proposalState(id) == IIsolationQuorum.ProposalState.Open) return id;
        }
        return count;
    }

    /// @dev The newest Open proposal whose quorum is met (blocked by the cap or the quarantine rate).
    function _newestReached(uint256 count) private view returns (uint256) {
        for (uint256 id = count; id > 0 && id + 16 > count; --id) {
            if (quorum.proposalState(id) != IIsolationQuorum.ProposalState.Open) continue;
            (uint256 votes, uint256 required) = quorum.tally(id);
            if (votes >= required) return id;
        }
        return count;
    }

    function _sectorIndex(bytes32 sector) private view returns (uint256) {
        if (sector == sectorA) return 0;
        if (sector == sectorB) return 1;
        return 2;
    }

    function _sectorOf(uint256 index) private view returns (bytes32) {
        return index == 0 ? sectorA : index == 1 ? sectorB : spareSector;
    }

    /// @dev An actor of `sector` (any actor, outsider included, when `sector` is zero).
    function _pickActor(bytes32 sector, uint256 seed) private view returns (address) {
        address[] memory pool = new address[](actors.length);
        uint256 k;
        for (uint256 i; i < actors.length; ++i) {
            if (sector == bytes32(0) || registry.oracle(actors[i]).sector == sector) pool[k++] = actors[i];
        }
        if (k == 0) return actors[seed % actors.length];
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
        if (o > 0) return others[seed % o];
        if (p > 0) return preferred[seed % p];
        return nodes[seed % nodes.length];
    }

    function _snapshot() private view returns (Snapshot memory s) {
        s.nodeStatus = new uint8[](nodes.length);
        s.nodeEpoch = new uint64[](nodes.length);
        s.openIsolate = new uint256[](nodes.length);
        s.openReintegrate = new uint256[](nodes.length);
        for (uint256 i; i < nodes.length; ++i) {
            IRegistry.Node memory n = registry.node(nodes[i]);
            (s.nodeStatus[i], s.nodeEpoch[i]) = (uint8(n.status), n.statusEpoch);
            s.openIsolate[i] = quorum.openProposal(IIsolationQuorum.Action.Isolate, nodes[i]);
            s.openReintegrate[i] = quorum.openProposal(IIsolationQuorum.Action.Reintegrate, nodes[i]);
        }
        s.oracleStatus = new uint8[](actors.length);
        s.openQuarantine = new uint256[](actors.length);
        for (uint256 i; i < actors.length; ++i) {
            s.oracleStatus[i] = uint8(registry.oracle(actors[i]).status);
            s.openQuarantine[i] =
                quorum.openProposal(IIsolationQuorum.Action.Quarantine, bytes32(uint256(uint160(actors[i]))));
        }
        for (uint256 k; k < 3; ++k) {
            s.membership[k] = registry.oracleSlots(_sectorOf(k));
            s.active[k] = registry.activeOracleCount(_sectorOf(k));
        }
        s.proposalCount = quorum.proposalCount();
    }

    /// @dev The proposal that executed `target` in the last call: the one open before, or one
    /// created in the call (proposed and executed at once).
    function _executedFor(uint256 openBefore, IIsolationQuorum.Action action, bytes32 target, uint256 countBefore)
        private
        view
        returns (uint256)
    {
        if (openBefore != 0 && quorum.proposalState(openBefore) == IIsolationQuorum.ProposalState.Executed) {
            return openBefore;
        }
        uint256 latest = quorum.proposalCount();
        if (latest > countBefore) {
            IIsolationQuorum.Proposal memory p = quorum.proposal(latest);
            if (p.action == action && p.target == target && p.executed) return latest;
        }
        return 0;
    }

    /// @dev Every status transition in the last call must be explained by its cause: a quorum
    /// execution whose independent recount meets the requirement (with the target's epoch unchanged
    /// since the proposal opened, the cap, floor and quarantine rate respected), the repair role's
    /// Isolated → Repairing of the named node, a governance override of the named node, or a council
    /// membership change of the named oracle. Anything else counts as unjustified.
    function _explain(Snapshot memory before, Cause cause, bytes32 node, address oracle) private {
        for (uint256 i; i < nodes.length; ++i) {
            IRegistry.Node memory n = registry.node(nodes[i]);
            if (uint8(n.status) == before.nodeStatus[i]) continue;
            ++transitions["node"];
            if (cause == Cause.Quorum) {
                bool isolate = n.status == IRegistry.NodeStatus.Isolated;
                uint256 id = _executedFor(
                    isolate ? before.openIsolate[i] : before.openReintegrate[i],
                    isolate ? IIsolationQuorum.Action.Isolate : IIsolationQuorum.Action.Reintegrate,
                    nodes[i],
                    before.proposalCount
                );
                _checkQuorumExecution(id, before, before.nodeEpoch[i]);
                if (isolate && registry.sectorIsolatedCount(n.sector) * 10_000 > registry.sectorNodeCount(n.sector)
                        * quorum.isolationCapBps()) ++ghost_capBreaches;
            } else if (cause == Cause.Repair) {
                if (nodes[i] != node || n.status != IRegistry.NodeStatus.Repairing) ++ghost_unjustifiedTransitions;
            } else if (cause != Cause.Override || nodes[i] != node) {
                ++ghost_unjustifiedTransitions;
            }
        }
        for (uint256 i; i < actors.length; ++i) {
            IRegistry.Oracle memory o = registry.oracle(actors[i]);
            if (uint8(o.status) == before.oracleStatus[i]) continue;
            ++transitions["oracle"];
            if (cause == Cause.Council && actors[i] == oracle) continue;
            if (cause != Cause.Quorum || o.status != IRegistry.OracleStatus.Quarantined) {
                ++ghost_unjustifiedTransitions;
                continue;
            }
            uint256 id = _executedFor(
                before.openQuarantine[i], IIsolationQuorum.Action.Quarantine, bytes32(uint256(uint160(actors[i]))),
                before.proposalCount
            );
            _checkQuorumExecution(id, before, o.statusEpoch - 1);
            uint256[] storage times = ghost_quarantineTimes[o.sector];
            times.push(block.timestamp);
            uint256 recent;
            for (uint256 k; k < times.length; ++k) {
                if (times[k] + quorum.quarantineWindow() > block.timestamp) ++recent;
            }
            if (recent > quorum.quarantineLimit()) ++ghost_rateBreaches;
        }
    }

    function _checkQuorumExecution(uint256 id, Snapshot memory before, uint64 epochBefore) private {
        if (id == 0) {
            ++ghost_unjustifiedTransitions;
            return;
        }
        IIsolationQuorum.Proposal memory p = quorum.proposal(id);
        (uint256 votes, uint256 required) = independentTally(id);
        if (votes < required) ++ghost_unjustifiedTransitions;
        if (p.statusEpoch != epochBefore) ++ghost_unjustifiedTransitions; // a vote from another lifecycle
        uint256 s = _sectorIndex(p.sector);
        if (before.active[s] < quorum.activeFloor()) ++ghost_floorBreaches;
        if (p.required != ghost_requiredAtOpen[id]) ++ghost_wrongCapture;
        Execution storage e = executions.push();
        (e.sector, e.membershipVersion, e.membership) =
            (p.sector, ghost_membershipVersion[p.sector], registry.oracleSlots(p.sector));
        address[] storage voters = ghost_voters[id];
        for (uint256 k; k < voters.length; ++k) {
            if (_counts(id, voters[k], p.sector)) e.counted.push(voters[k]);
        }
    }
}
