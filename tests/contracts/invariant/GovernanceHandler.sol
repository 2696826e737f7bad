// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Registry} from "../../../contracts/Registry.sol";
import {IsolationQuorum} from "../../../contracts/IsolationQuorum.sol";
import {GovernanceCouncil} from "../../../contracts/GovernanceCouncil.sol";
import {IGovernanceCouncil} from "../../../contracts/interfaces/IGovernanceCouncil.sol";
import {PqFixtures} from "../utils/Deployed.sol";

/// @notice Drives the council through every path: random non-governance callers try configuration and
/// membership changes directly; governors (current and former) propose, approve, revoke, queue,
/// execute (with the right calls, with swapped calls, before the eta), execute in an emergency and
/// cancel, while time passes and the council churns its own membership, threshold, delay and emergency
/// allowlist (the isolation cap on and off it; the council's own calls can never be put on it).
/// An independent model of the rules (approval tags, threshold, queue and eta, emergency threshold,
/// emergency allowlist) predicts which executions may succeed; any success the model forbids counts
/// as a violation.
/// `fail_on_revert = false`: reverting calls are expected and simply not counted as successes.
contract GovernanceHandler is CommonBase, StdCheats, StdUtils {
    uint64 internal constant LIFETIME = 7 days;
    uint256 internal constant _ALLOW_FORBIDDEN = 2; // Made.arg of an Allow proposal the council must refuse

    enum Kind {
        Cap,
        Threshold,
        AddGovernor,
        RemoveGovernor,
        Delay,
        Allow // setEmergencyCall: the isolation cap (on or off), or a forbidden council/role call
    }

    struct Made {
        Kind kind;
        address target;
        bytes data;
        uint256 arg;
        address proposer;
        uint256 expiresAt;
        uint256 eta; // model: 0 = not queued
        uint256 queuedUnder;
        bool done; // executed or cancelled
        bool executed;
    }

    Registry internal immutable registry;
    IsolationQuorum internal immutable quorum;
    GovernanceCouncil internal immutable council;
    address[] internal callers; // never governance
    address[] internal pool; // every account that is or may become a governor
    address internal immutable oracle;
    bytes32 internal immutable node;
    bytes internal key;

    bytes32[3] internal candidateSectors = [bytes32("gas"), bytes32("heat"), bytes32("district")];

    // ---- the model -------------------------------------------------------------------------------
    mapping(address account => uint64 tag) internal mTag;
    uint64 internal mNonce;
    uint256 internal mConfig;
    mapping(uint256 id => mapping(address governor => uint64 tag)) internal mApproval;
    mapping(uint256 id => Made) internal made;
    uint256[] internal ids;

    // ---- ghosts --------------------------------------------------------------------------------
    uint256 public ghost_unauthorizedChanges; // a direct, under-approved, early, swapped or repeated change succeeded
    uint256 public ghost_violations; // the contract allowed what the model forbids
    uint256 public ghost_attempts;
    uint256 public ghost_governanceChanges;
    uint64 public ghost_window;
    uint16 public ghost_cap;
    uint256 public ghost_threshold;
    uint64 public ghost_delay;
    bool public ghost_capAllowed; // setIsolationCap is on the emergency allowlist

    /// successful calls per action (the closing note reports these, not only how many ran)
    mapping(bytes32 action => uint256 count) public successes;
    bytes32[] internal actionNames;

    constructor(
        Registry registry_,
        IsolationQuorum quorum_,
        GovernanceCouncil council_,
        address[] memory callers_,
        address oracle_,
        bytes32 node_,
        bytes memory key_
    ) {
        (registry, quorum, council, oracle, node, key) = (registry_, quorum_, council_, oracle_, node_, key_);
        callers = callers_;
        address[] memory current = council_.governors();
        for (uint256 i; i < current.length; ++i) {
            pool.push(current[i]);
            mTag[current[i]] = ++mNonce;
        }
        for (uint256 i; i < 4; ++i) {
            pool.push(makeAddr(string.concat("candidate-", vm.toString(i))));
        }
        (ghost_window, ghost_cap) = (quorum_.votingWindow(), quorum_.isolationCapBps());
        (ghost_threshold, ghost_delay) = (council_.threshold(), council_.delay());
        ghost_capAllowed = council_.isEmergencyCall(address(quorum_), quorum_.setIsolationCap.selector);
        actionNames = [
            bytes32("propose"),
            "approve",
            "revoke",
            "queue",
            "execute",
            "executeRefusedEarly",
            "executeRefusedSwapped",
            "emergency",
            "emergencyRefused",
            "cancel",
            "warp",
            "churnAdd",
            "churnRemove",
            "churnThreshold",
            "churnDelay",
            "churnAllow",
            "setCap"
        ];
    }

    // ---- direct attempts by non-governance callers ---------------------------------------------------

    function attemptRegistry(uint256 callerSeed, uint256 which, uint256 arg) external {
        address caller = _caller(callerSeed);
        bytes32 sector = candidateSectors[arg % 3];
        bytes memory data;
        which = which % 8;
        if (which == 0) {
            data = abi.encodeCall(registry.addSector, (sector));
        } else if (which == 1) {
            data = abi.encodeCall(registry.addOperator, (bytes32(arg), "water"));
        } else if (which == 2) {
            data = abi.encodeCall(registry.registerOracle, (caller, "water", "water-utility", key, ""));
        } else if (which == 3) {
            data = abi.encodeCall(registry.removeOracle, (oracle, "x"));
        } else if (which == 4) {
            data = abi.encodeCall(registry.addNode, (bytes32(arg | 1), "water", "k", 1, new bytes32[](0)));
        } else if (which == 5) {
            data = abi.encodeCall(registry.grantRole, (registry.GOVERNANCE_ROLE(), caller));
        } else if (which == 6) {
            data = abi.encodeCall(registry.revokeRole, (registry.GOVERNANCE_ROLE(), address(council)));
        } else {
            data = abi.encodeCall(registry.grantRole, (registry.STATUS_ROLE(), caller));
        }
        _attempt(caller, address(registry), data);
    }

    function attemptQuorum(uint256 callerSeed, uint256 which, uint256 arg) external {
        address caller = _caller(callerSeed);
        bytes memory data;
        which = which % 6;
        if (which == 0) data = abi.encodeCall(quorum.setVotingWindow, (uint64(_bound(arg, 60, 7 days))));
        else if (which == 1) data = abi.encodeCall(quorum.setIsolationCap, (uint16(_bound(arg, 1, 10_000))));
        else if (which == 2) data = abi.encodeCall(quorum.forceIsolate, (node, "x"));
        else if (which == 3) data = abi.encodeCall(quorum.grantRole, (quorum.REPAIR_ROLE(), caller));
        else if (which == 4) data = abi.encodeCall(quorum.grantRole, (quorum.GOVERNANCE_ROLE(), caller));
        else data = abi.encodeCall(quorum.revokeRole, (quorum.DEFAULT_ADMIN_ROLE(), address(council)));
        _attempt(caller, address(quorum), data);
    }

    /// @dev Governors included: a single governor calling the council's self-only functions.
    function attemptCouncil(uint256 callerSeed, uint256 which, uint256 arg) external {
        address caller = callerSeed % 2 == 0 ? _caller(callerSeed) : pool[_bound(callerSeed, 0, pool.length - 1)];
        bytes memory data;
        which = which % 5;
        if (which == 0) {
            data = abi.encodeCall(council.addGovernor, (caller, key, PqFixtures.signature(arg)));
        } else if (which == 1) {
            data = abi.encodeCall(council.removeGovernor, (pool[arg % pool.length]));
        } else if (which == 2) {
            data = abi.encodeCall(council.changeThreshold, (_bound(arg, 1, 6)));
        } else if (which == 3) {
            data = abi.encodeCall(council.setDelay, (uint64(_bound(arg, 1, 30 days))));
        } else {
            data = abi.encodeCall(council.setEmergencyCall, (address(registry), registry.removeOracle.selector, true));
        }
        _attempt(caller, address(council), data);
    }

    // ---- proposals ------------------------------------------------------------------------------------

    function propose(uint256 govSeed, uint256 kindSeed, uint256 arg) external {
        address governor = _member(govSeed);
        if (governor == address(0)) return;
        _propose(governor, Kind(kindSeed % 6), arg);
    }

    function _propose(address governor, Kind kind, uint256 arg) internal returns (uint256 id) {
        (address target, bytes memory data, uint256 value) = _call(kind, arg);
        id = council.proposalCount() + 1;
        made[id] = Made(kind, target, data, value, governor, block.timestamp + LIFETIME, 0, 0, false, false);
        if (!_sendPropose(governor, id, target, data)) {
            delete made[id];
            return 0;
        }
        ids.push(id);
        mApproval[id][governor] = mTag[governor];
        _modelAfterApproval(id);
        ++successes["propose"];
    }

    function _sendPropose(address governor, uint256 id, address target, bytes memory data) internal returns (bool) {
        (, uint32 epoch) = council.governorKey(governor);
        bytes memory sig = _sig(id, governor);
        vm.prank(governor);
        try council.propose(id, _one(target), new uint256[](1), _one(data), "h", epoch, sig) {
            return true;
        } catch {
            return false;
        }
    }

    function approve(uint256 govSeed, uint256 idSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        _approveAs(pool[_bound(govSeed, 0, pool.length - 1)], id);
    }

    /// @dev Several current governors approve one proposal (reaches thresholds and emergency
    /// thresholds far more often than single random approvals).
    function drive(uint256 idSeed, uint256 countSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        uint256 wanted = _bound(countSeed, 1, pool.length);
        for (uint256 i; i < pool.length && wanted > 0; ++i) {
            address governor = pool[i];
            if (mTag[governor] != 0 && mApproval[id][governor] != mTag[governor]) {
                _approveAs(governor, id);
                --wanted;
            }
        }
    }

    /// @dev The whole legitimate path for a council change: propose, approve to threshold, wait out
    /// the delay, execute. Membership, threshold and delay churn through here.
    function churn(uint256 govSeed, uint256 kindSeed, uint256 arg) external {
        address governor = _member(govSeed);
        if (governor == address(0)) return;
        uint256 id = _propose(governor, Kind(kindSeed % 6), arg);
        if (id == 0) return;
        for (uint256 i; i < pool.length && _modelApprovals(id) < ghost_threshold; ++i) {
            if (mTag[pool[i]] != 0 && mApproval[id][pool[i]] != mTag[pool[i]]) _approveAs(pool[i], id);
        }
        vm.warp(block.timestamp + ghost_delay);
        _execute(governor, id, false);
    }

    function _approveAs(address governor, uint256 id) internal {
        bool allowed = mTag[governor] != 0 && _modelOpen(id) && mApproval[id][governor] != mTag[governor];
        (, uint32 epoch) = council.governorKey(governor);
        bytes32 callsHash = council.proposal(id).callsHash;
        vm.prank(governor);
        try council.approve(id, callsHash, epoch, _sig(id, governor)) {
            if (!allowed) ++ghost_violations;
            mApproval[id][governor] = mTag[governor];
            _modelAfterApproval(id);
            ++successes["approve"];
        } catch {}
    }

    function revoke(uint256 govSeed, uint256 idSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        address governor = pool[_bound(govSeed, 0, pool.length - 1)];
        vm.prank(governor);
        try council.revokeApproval(id) {
            if (mTag[governor] == 0 || mApproval[id][governor] != mTag[governor] || made[id].executed) {
                ++ghost_violations;
            }
            delete mApproval[id][governor];
            if (made[id].eta != 0 && _modelApprovals(id) < ghost_threshold) {
                made[id].eta = 0;
                made[id].queuedUnder = 0;
            }
            ++successes["revoke"];
        } catch {}
    }

    function queue(uint256 govSeed, uint256 idSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        address governor = _member(govSeed);
        if (governor == address(0)) return;
        bool allowed = _modelOpen(id) && _modelApprovals(id) >= ghost_threshold && !_modelQueued(id);
        vm.prank(governor);
        try council.queue(id) {
            if (!allowed) ++ghost_violations;
            made[id].eta = block.timestamp + ghost_delay;
            made[id].queuedUnder = mConfig;
            ++successes["queue"];
        } catch {}
    }

    /// @dev One in four executions passes calls other than the proposed ones: it must fail.
    function execute(uint256 govSeed, uint256 idSeed, uint256 swapSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        address governor = _member(govSeed);
        if (governor == address(0)) return;
        _execute(governor, id, swapSeed % 4 == 0);
    }

    function _execute(address governor, uint256 id, bool swap) internal {
        Made storage m = made[id];
        bytes memory data = swap ? abi.encodePacked(m.data, uint8(1)) : m.data;
        bool allowed = _modelExecutable(id);
        ++ghost_attempts;
        vm.prank(governor);
        try council.execute(id, _one(m.target), new uint256[](1), _one(data), keccak256("h")) {
            if (swap) ++ghost_unauthorizedChanges;
            if (!allowed) ++ghost_violations;
            _applyExecuted(id);
            ++successes["execute"];
        } catch {
            if (swap) {
                ++successes["executeRefusedSwapped"];
            } else if (_modelOpen(id) && _modelApprovals(id) >= ghost_threshold && !allowed) {
                ++successes["executeRefusedEarly"];
            }
        }
    }

    /// @dev The storm-day path in full: propose a cap change, approve it up to the emergency threshold,
    /// execute it at once (succeeds only while the cap is on the emergency allowlist).
    function emergencyDrill(uint256 govSeed, uint256 arg) external {
        address governor = _member(govSeed);
        if (governor == address(0)) return;
        uint256 id = _propose(governor, Kind.Cap, arg);
        if (id == 0) return;
        uint256 n = _modelGovernorCount();
        uint256 required = ghost_threshold < n ? ghost_threshold + 1 : n;
        for (uint256 i; i < pool.length && _modelApprovals(id) < required; ++i) {
            if (mTag[pool[i]] != 0 && mApproval[id][pool[i]] != mTag[pool[i]]) _approveAs(pool[i], id);
        }
        _emergency(governor, id);
    }

    function emergency(uint256 govSeed, uint256 idSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        address governor = _member(govSeed);
        if (governor == address(0)) return;
        _emergency(governor, id);
    }

    function _emergency(address governor, uint256 id) internal {
        Made storage m = made[id];
        uint256 n = _modelGovernorCount();
        uint256 required = ghost_threshold < n ? ghost_threshold + 1 : n;
        // the model's allowlist: only the isolation cap can be on it (the council's calls never are)
        bool listed = m.kind == Kind.Cap && ghost_capAllowed;
        bool allowed = _modelOpen(id) && _modelApprovals(id) >= required && listed;
        ++ghost_attempts;
        vm.prank(governor);
        try council.executeEmergency(id, _one(m.target), new uint256[](1), _one(m.data), keccak256("h"), "drill") {
            if (!allowed) ++ghost_violations;
            _applyExecuted(id);
            ++successes["emergency"];
        } catch {
            ++successes["emergencyRefused"];
        }
    }

    function cancel(uint256 idSeed) external {
        (uint256 id, bool any) = _pick(idSeed);
        if (!any) return;
        vm.prank(made[id].proposer);
        try council.cancel(id) {
            if (!_modelOpen(id)) ++ghost_violations;
            made[id].done = true;
            ++successes["cancel"];
        } catch {}
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + _bound(secondsSeed, 0, 3 days));
        ++successes["warp"];
    }

    // ---- views for the invariants --------------------------------------------------------------------

    function callerList() external view returns (address[] memory) {
        return callers;
    }

    function poolList() external view returns (address[] memory) {
        return pool;
    }

    function candidateSector(uint256 i) external view returns (bytes32) {
        return candidateSectors[i];
    }

    function isModelGovernor(address account) external view returns (bool) {
        return mTag[account] != 0;
    }

    function modelGovernorCount() external view returns (uint256) {
        return _modelGovernorCount();
    }

    function proposalIds() external view returns (uint256[] memory) {
        return ids;
    }

    function modelApprovals(uint256 id) external view returns (uint256) {
        return _modelApprovals(id);
    }

    function modelDone(uint256 id) external view returns (bool) {
        return made[id].done;
    }

    function actions() external view returns (bytes32[] memory) {
        return actionNames;
    }

    // ---- the model ---------------------------------------------------------------------------------------

    function _modelGovernorCount() internal view returns (uint256 n) {
        for (uint256 i; i < pool.length; ++i) {
            if (mTag[pool[i]] != 0) ++n;
        }
    }

    function _modelApprovals(uint256 id) internal view returns (uint256 count) {
        for (uint256 i; i < pool.length; ++i) {
            uint64 tag = mTag[pool[i]];
            if (tag != 0 && mApproval[id][pool[i]] == tag) ++count;
        }
    }

    function _modelQueued(uint256 id) internal view returns (bool) {
        return made[id].eta != 0 && made[id].queuedUnder == mConfig;
    }

    function _modelOpen(uint256 id) internal view returns (bool) {
        Made storage m = made[id];
        if (m.done) return false;
        if (_modelApprovals(id) >= ghost_threshold && _modelQueued(id)) {
            return block.timestamp <= m.eta + LIFETIME;
        }
        return block.timestamp <= m.expiresAt;
    }

    function _modelExecutable(uint256 id) internal view returns (bool) {
        return
            _modelOpen(id) && _modelApprovals(id) >= ghost_threshold && _modelQueued(id)
                && block.timestamp >= made[id].eta;
    }

    function _modelAfterApproval(uint256 id) internal {
        if (_modelApprovals(id) >= ghost_threshold && !_modelQueued(id)) {
            made[id].eta = block.timestamp + ghost_delay;
            made[id].queuedUnder = mConfig;
        }
    }

    function _applyExecuted(uint256 id) internal {
        Made storage m = made[id];
        (m.done, m.executed) = (true, true);
        ++ghost_governanceChanges;
        if (m.kind == Kind.Cap) {
            ghost_cap = uint16(m.arg);
            ++successes["setCap"];
        } else if (m.kind == Kind.Threshold) {
            ghost_threshold = m.arg;
            ++mConfig;
            ++successes["churnThreshold"];
        } else if (m.kind == Kind.AddGovernor) {
            mTag[address(uint160(m.arg))] = ++mNonce;
            ++mConfig;
            ++successes["churnAdd"];
        } else if (m.kind == Kind.RemoveGovernor) {
            mTag[address(uint160(m.arg))] = 0;
            ++mConfig;
            ++successes["churnRemove"];
        } else if (m.kind == Kind.Delay) {
            ghost_delay = uint64(m.arg);
            ++successes["churnDelay"];
        } else {
            if (m.arg == _ALLOW_FORBIDDEN) ++ghost_violations; // the contract refuses these
            ghost_capAllowed = m.arg == 1;
            ++successes["churnAllow"];
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    function _call(Kind kind, uint256 arg) internal view returns (address target, bytes memory data, uint256 value) {
        if (kind == Kind.Cap) {
            value = _bound(arg, 1, 10_000);
            return (address(quorum), abi.encodeCall(quorum.setIsolationCap, (uint16(value))), value);
        }
        if (kind == Kind.Threshold) {
            value = _bound(arg, 1, 6);
            return (address(council), abi.encodeCall(council.changeThreshold, (value)), value);
        }
        if (kind == Kind.AddGovernor) {
            address account = pool[_bound(arg, 0, pool.length - 1)];
            data = abi.encodeCall(council.addGovernor, (account, PqFixtures.key(arg), PqFixtures.signature(arg)));
            return (address(council), data, uint160(account));
        }
        if (kind == Kind.RemoveGovernor) {
            address account = pool[_bound(arg, 0, pool.length - 1)];
            return (address(council), abi.encodeCall(council.removeGovernor, (account)), uint160(account));
        }
        if (kind == Kind.Delay) {
            value = _bound(arg, 1, 2 days);
            return (address(council), abi.encodeCall(council.setDelay, (uint64(value))), value);
        }
        // Allow: the isolation cap on (value 1) or off (0), or one in four a forbidden entry (the
        // council's own setDelay, or a grantRole), whose execution must fail
        uint256 choice = arg % 4;
        if (choice == 3) {
            bool own = (arg >> 8) % 2 == 0;
            (address t, bytes4 sel) =
                own ? (address(council), council.setDelay.selector) : (address(quorum), quorum.grantRole.selector);
            return (address(council), abi.encodeCall(council.setEmergencyCall, (t, sel, true)), _ALLOW_FORBIDDEN);
        }
        value = choice == 0 ? 0 : 1;
        data = abi.encodeCall(council.setEmergencyCall, (address(quorum), quorum.setIsolationCap.selector, value == 1));
        return (address(council), data, value);
    }

    /// @dev A current governor (by the model), or zero when the seed lands on none.
    function _member(uint256 seed) internal view returns (address) {
        uint256 start = seed % pool.length;
        for (uint256 i; i < pool.length; ++i) {
            address a = pool[(start + i) % pool.length];
            if (mTag[a] != 0) return a;
        }
        return address(0);
    }

    function _pick(uint256 seed) internal view returns (uint256 id, bool any) {
        if (ids.length == 0) return (0, false);
        return (ids[seed % ids.length], true);
    }

    function _sig(uint256 id, address governor) internal pure returns (bytes memory) {
        return PqFixtures.signature(uint256(keccak256(abi.encode("approval", id, governor))));
    }

    function _one(address a) internal pure returns (address[] memory out) {
        out = new address[](1);
        out[0] = a;
    }

    function _one(bytes memory b) internal pure returns (bytes[] memory out) {
        out = new bytes[](1);
        out[0] = b;
    }

    function _caller(uint256 seed) private view returns (address) {
        return callers[_bound(seed, 0, callers.length - 1)];
    }

    function _attempt(address caller, address target, bytes memory data) private {
        ++ghost_attempts;
        vm.prank(caller);
        (bool ok,) = target.call(data);
        if (ok) ++ghost_unauthorizedChanges;
    }
}
