// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Registry} from "../../../contracts/Registry.sol";
import {IsolationQuorum} from "../../../contracts/IsolationQuorum.sol";
import {GovernanceCouncil} from "../../../contracts/GovernanceCouncil.sol";

/// @notice Random non-governance callers (the deployer, individual governors, an oracle, the ledger,
/// arbitrary addresses) try every configuration and membership change directly; governors also try
/// proposals with too few approvals. Only full council proposals may change settings, and those are
/// mirrored in ghost variables.
contract GovernanceHandler is CommonBase, StdCheats, StdUtils {
    Registry internal immutable registry;
    IsolationQuorum internal immutable quorum;
    GovernanceCouncil internal immutable council;
    address[] internal callers;
    address[] internal governors;
    address internal immutable oracle;
    bytes32 internal immutable node;
    bytes internal key;

    bytes32[3] internal candidateSectors = [bytes32("gas"), bytes32("heat"), bytes32("district")];

    uint256 public ghost_unauthorizedChanges;
    uint256 public ghost_attempts;
    uint256 public ghost_governanceChanges;
    uint64 public ghost_window;
    uint16 public ghost_cap;

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
        governors = council_.governors();
        (ghost_window, ghost_cap) = (quorum_.votingWindow(), quorum_.isolationCapBps());
    }

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
        if (which == 0) data = abi.encodeCall(quorum.setVotingWindow, (uint64(bound(arg, 60, 7 days))));
        else if (which == 1) data = abi.encodeCall(quorum.setIsolationCap, (uint16(bound(arg, 1, 10_000))));
        else if (which == 2) data = abi.encodeCall(quorum.forceIsolate, (node, "x"));
        else if (which == 3) data = abi.encodeCall(quorum.grantRole, (quorum.REPAIR_ROLE(), caller));
        else if (which == 4) data = abi.encodeCall(quorum.grantRole, (quorum.GOVERNANCE_ROLE(), caller));
        else data = abi.encodeCall(quorum.revokeRole, (quorum.DEFAULT_ADMIN_ROLE(), address(council)));
        _attempt(caller, address(quorum), data);
    }

    function attemptCouncil(uint256 callerSeed, uint256 which, uint256 arg) external {
        address caller = _caller(callerSeed);
        bytes memory data;
        which = which % 3;
        if (which == 0) data = abi.encodeCall(council.addGovernor, (caller));
        else if (which == 1) data = abi.encodeCall(council.removeGovernor, (governors[arg % governors.length]));
        else data = abi.encodeCall(council.changeThreshold, (bound(arg, 1, 6)));
        _attempt(caller, address(council), data);
    }

    /// @dev A governor proposes a cap change, gets fewer than `threshold` approvals, and tries to execute.
    function underApproved(uint256 capSeed, uint256 approvalsSeed) external {
        uint256 approvals = bound(approvalsSeed, 1, council.threshold() - 1);
        uint256 id = _propose(uint16(bound(capSeed, 1, 10_000)));
        for (uint256 i = 1; i < approvals; ++i) {
            vm.prank(governors[i]);
            council.approve(id);
        }
        ++ghost_attempts;
        vm.prank(governors[0]);
        try council.execute(id) {
            ++ghost_unauthorizedChanges;
        } catch {}
    }

    /// @dev The legitimate path: a full council proposal; the ghost follows it.
    function governanceSetsCap(uint256 capSeed) external {
        uint16 cap = uint16(bound(capSeed, 1, 10_000));
        uint256 id = _propose(cap);
        for (uint256 i = 1; i < council.threshold(); ++i) {
            vm.prank(governors[i]);
            council.approve(id);
        }
        vm.prank(governors[0]);
        council.execute(id);
        ghost_cap = cap;
        ++ghost_governanceChanges;
    }

    function callerList() external view returns (address[] memory) {
        return callers;
    }

    function candidateSector(uint256 i) external view returns (bytes32) {
        return candidateSectors[i];
    }

    function _propose(uint16 cap) private returns (uint256 id) {
        address[] memory targets = new address[](1);
        bytes[] memory calldatas = new bytes[](1);
        (targets[0], calldatas[0]) = (address(quorum), abi.encodeCall(quorum.setIsolationCap, (cap)));
        vm.prank(governors[0]);
        id = council.propose(targets, new uint256[](1), calldatas, "cap");
    }

    function _caller(uint256 seed) private view returns (address) {
        return callers[bound(seed, 0, callers.length - 1)];
    }

    function _attempt(address caller, address target, bytes memory data) private {
        ++ghost_attempts;
        vm.prank(caller);
        (bool ok,) = target.call(data);
        if (ok) ++ghost_unauthorizedChanges;
    }
}
