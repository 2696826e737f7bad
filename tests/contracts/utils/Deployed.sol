// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Registry} from "../../../contracts/Registry.sol";
import {EventLedger} from "../../../contracts/EventLedger.sol";
import {IsolationQuorum} from "../../../contracts/IsolationQuorum.sol";
import {GovernanceCouncil} from "../../../contracts/GovernanceCouncil.sol";
import {IEventLedger} from "../../../contracts/interfaces/IEventLedger.sol";

/// @notice Deterministic stand-ins for ML-DSA-65 material with the real sizes.
library PqFixtures {
    uint256 internal constant KEY_LENGTH = 1952;
    uint256 internal constant SIGNATURE_LENGTH = 3309;

    function bytesOf(uint256 seed, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 offset; offset < length; offset += 32) {
            bytes32 word = keccak256(abi.encode(seed, offset));
            assembly ("memory-safe") {
                mstore(add(add(out, 32), offset), word) // stays inside the 32-byte-rounded allocation
            }
        }
    }

    function key(uint256 seed) internal pure returns (bytes memory) {
        return bytesOf(uint256(keccak256(abi.encode("key", seed))), KEY_LENGTH);
    }

    function signature(uint256 seed) internal pure returns (bytes memory) {
        return bytesOf(uint256(keccak256(abi.encode("sig", seed))), SIGNATURE_LENGTH);
    }
}

/// @notice The deployment the Python side performs (chain/), replayed for every forge test:
/// Registry(deployer), EventLedger(registry), IsolationQuorum(registry, deployer, 600, 2500),
/// GovernanceCouncil(6 governors with ML-DSA keys, 4, 7 days, delay 1 s); STATUS_ROLE → quorum; DEFAULT_ADMIN_ROLE and
/// GOVERNANCE_ROLE on registry and quorum → council; the deployer renounces everything; the council's
/// emergency allowlist holds exactly the storm-day overrides (IsolationQuorum.forceIsolate,
/// forceReintegrate, setIsolationCap), which the Python deployment allowlists by council proposal.
abstract contract Deployed is Test {
    bytes32 internal constant ELECTRICITY = "electricity";
    bytes32 internal constant WATER = "water";
    bytes32 internal constant SEWAGE = "sewage";
    bytes32 internal constant HEALTHCARE = "healthcare";
    bytes32 internal constant TRANSPORTATION = "transportation";
    bytes32 internal constant BANKING = "banking";
    uint64 internal constant VOTING_WINDOW = 600;
    uint16 internal constant CAP_BPS = 2500;
    uint256 internal constant THRESHOLD = 4;
    uint64 internal constant LIFETIME = 7 days;
    uint64 internal constant COUNCIL_DELAY = 1; // the development default (GovernanceCouncil NatSpec)

    Registry internal registry;
    EventLedger internal ledger;
    IsolationQuorum internal quorum;
    GovernanceCouncil internal council;
    address internal deployer = makeAddr("deployer");
    address[] internal governors;

    function setUp() public virtual {
        _deploy();
    }

    function _deploy() internal {
        for (uint256 i; i < 6; ++i) {
            governors.push(makeAddr(string.concat("governor-", vm.toString(i))));
        }
        vm.startPrank(deployer);
        registry = new Registry(deployer);
        ledger = new EventLedger(registry);
        quorum = new IsolationQuorum(registry, deployer, VOTING_WINDOW, CAP_BPS);
        (bytes[] memory keys, bytes[] memory proofs) = _councilKeys();
        council = new GovernanceCouncil(governors, keys, proofs, THRESHOLD, LIFETIME, COUNCIL_DELAY);
        registry.grantRole(registry.STATUS_ROLE(), address(quorum));
        registry.grantRole(registry.DEFAULT_ADMIN_ROLE(), address(council));
        registry.grantRole(registry.GOVERNANCE_ROLE(), address(council));
        quorum.grantRole(quorum.DEFAULT_ADMIN_ROLE(), address(council));
        quorum.grantRole(quorum.GOVERNANCE_ROLE(), address(council));
        registry.renounceRole(registry.GOVERNANCE_ROLE(), deployer);
        registry.renounceRole(registry.DEFAULT_ADMIN_ROLE(), deployer);
        quorum.renounceRole(quorum.GOVERNANCE_ROLE(), deployer);
        quorum.renounceRole(quorum.DEFAULT_ADMIN_ROLE(), deployer);
        vm.stopPrank();
        vm.startPrank(address(council)); // the deployment's proposal, without the ceremony
        council.setEmergencyCall(address(quorum), quorum.forceIsolate.selector, true);
        council.setEmergencyCall(address(quorum), quorum.forceReintegrate.selector, true);
        council.setEmergencyCall(address(quorum), quorum.setIsolationCap.selector, true);
        vm.stopPrank();
    }

    // ---- governance ---------------------------------------------------------------------------------

    /// @dev The calls of every proposal made through these helpers (the contract keeps only their hash).
    mapping(uint256 id => address[]) internal _proposalTargets;
    mapping(uint256 id => uint256[]) internal _proposalValues;
    mapping(uint256 id => bytes[]) internal _proposalCalldatas;
    mapping(uint256 id => bytes32) internal _proposalDescriptionHash;

    function _councilKeys() internal pure returns (bytes[] memory keys, bytes[] memory proofs) {
        keys = new bytes[](6);
        proofs = new bytes[](6);
        for (uint256 i; i < 6; ++i) {
            (keys[i], proofs[i]) = (_governorKey(i), PqFixtures.signature(1000 + i));
        }
    }

    function _governorKey(uint256 i) internal pure returns (bytes memory) {
        return PqFixtures.key(1000 + i);
    }

    /// @dev A stand-in ML-DSA approval signature (the contract checks only its length; audits verify).
    function _approvalSig(uint256 id, address governor) internal pure returns (bytes memory) {
        return PqFixtures.signature(uint256(keccak256(abi.encode("approval", id, governor))));
    }

    function _keyEpoch(address governor) internal view returns (uint32 epoch) {
        (, epoch) = council.governorKey(governor);
    }

    /// @dev `governor` proposes `calls` (it approves them too); the helpers remember the calls.
    function _councilPropose(
        address governor,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description
    ) internal returns (uint256 id) {
        id = council.proposalCount() + 1;
        uint32 epoch = _keyEpoch(governor);
        bytes memory sig = _approvalSig(id, governor);
        vm.prank(governor);
        council.propose(id, targets, values, calldatas, description, epoch, sig);
        _proposalTargets[id] = targets;
        _proposalValues[id] = values;
        delete _proposalCalldatas[id];
        for (uint256 i; i < calldatas.length; ++i) {
            _proposalCalldatas[id].push(calldatas[i]);
        }
        _proposalDescriptionHash[id] = keccak256(bytes(description));
    }

    function _councilApprove(address governor, uint256 id) internal {
        bytes32 callsHash = council.proposal(id).callsHash;
        uint32 epoch = _keyEpoch(governor);
        bytes memory sig = _approvalSig(id, governor);
        vm.prank(governor);
        council.approve(id, callsHash, epoch, sig);
    }

    /// @dev A real council proposal: governor 0 proposes, governors 1..3 approve, the delay passes,
    /// governor 0 executes.
    function _councilRun(address[] memory targets, bytes[] memory calldatas) internal returns (uint256 id) {
        id = _councilReady(targets, calldatas);
        _councilExecute(id);
    }

    function _councilRun(address target, bytes memory data) internal returns (uint256) {
        return _councilRun(_one(target), _one(data));
    }

    /// @dev Proposes, collects THRESHOLD approvals (which queue it) and lets the delay pass: the
    /// proposal is Ready, not executed.
    function _councilReady(address[] memory targets, bytes[] memory calldatas) internal returns (uint256 id) {
        id = _councilPropose(governors[0], targets, new uint256[](targets.length), calldatas, "test");
        for (uint256 i = 1; i < THRESHOLD; ++i) {
            _councilApprove(governors[i], id);
        }
        vm.warp(block.timestamp + COUNCIL_DELAY);
    }

    function _councilReady(address target, bytes memory data) internal returns (uint256) {
        return _councilReady(_one(target), _one(data));
    }

    /// @dev Executes with the calls the proposal was made with. Makes no other call first, so a
    /// `vm.expectEmit` placed before it applies to the execution.
    function _councilExecute(uint256 id) internal {
        vm.prank(governors[0]);
        council.execute(
            id, _proposalTargets[id], _proposalValues[id], _proposalCalldatas[id], _proposalDescriptionHash[id]
        );
    }

    function _one(address a) internal pure returns (address[] memory out) {
        out = new address[](1);
        out[0] = a;
    }

    function _one(bytes memory b) internal pure returns (bytes[] memory out) {
        out = new bytes[](1);
        out[0] = b;
    }

    /// @dev Shortcut for fixtures: acts as the council without the four-approval ceremony.
    function _asCouncil(address target, bytes memory data) internal {
        vm.prank(address(council));
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    // ---- fixtures -------------------------------------------------------------------------------

    function _operatorOf(bytes32 sector) internal pure returns (bytes32) {
        return keccak256(abi.encode("operator", sector));
    }

    function _oracleAt(bytes32 sector, uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("oracle", sector, i)))));
    }

    function _nodeAt(bytes32 sector, uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("node", sector, i));
    }

    function _registerOracleCall(bytes32 sector, uint256 i) internal view returns (bytes memory) {
        address account = _oracleAt(sector, i);
        return abi.encodeCall(
            registry.registerOracle,
            (account, sector, _operatorOf(sector), PqFixtures.key(uint160(account)), PqFixtures.signature(i))
        );
    }

    function _addNodeCall(bytes32 sector, uint256 i) internal view returns (bytes memory) {
        return abi.encodeCall(registry.addNode, (_nodeAt(sector, i), sector, "substation", 3, new bytes32[](0)));
    }

    /// @dev Adds an operator, `oracles` oracles and `nodes` nodes to `sector` in ONE real council proposal.
    function _seedSectorViaCouncil(bytes32 sector, uint256 oracles, uint256 nodes) internal {
        uint256 calls = 1 + oracles + nodes;
        address[] memory targets = new address[](calls);
        bytes[] memory calldatas = new bytes[](calls);
        for (uint256 i; i < calls; ++i) {
            targets[i] = address(registry);
        }
        calldatas[0] = abi.encodeCall(registry.addOperator, (_operatorOf(sector), sector));
        for (uint256 i; i < oracles; ++i) {
            calldatas[1 + i] = _registerOracleCall(sector, i);
        }
        for (uint256 i; i < nodes; ++i) {
            calldatas[1 + oracles + i] = _addNodeCall(sector, i);
        }
        _councilRun(targets, calldatas);
    }

    /// @dev Same result as {_seedSectorViaCouncil} through the {_asCouncil} shortcut (cheaper for fuzzing).
    function _seedSector(bytes32 sector, uint256 oracles, uint256 nodes) internal {
        _asCouncil(address(registry), abi.encodeCall(registry.addOperator, (_operatorOf(sector), sector)));
        _addOracles(sector, 0, oracles);
        for (uint256 i; i < nodes; ++i) {
            _asCouncil(address(registry), _addNodeCall(sector, i));
        }
    }

    function _addOracles(bytes32 sector, uint256 from, uint256 to) internal {
        for (uint256 i = from; i < to; ++i) {
            _asCouncil(address(registry), _registerOracleCall(sector, i));
        }
    }

    /// @dev `count` events with consecutive seqs from `firstSeq`, kinds cycling 0..15, 64-byte payloads.
    function _events(uint64 firstSeq, uint256 count) internal pure returns (IEventLedger.EventInput[] memory events) {
        events = new IEventLedger.EventInput[](count);
        for (uint256 i; i < count; ++i) {
            events[i] = IEventLedger.EventInput({
                seq: firstSeq + uint64(i),
                kind: uint8(i % 16),
                node: keccak256(abi.encode(i)),
                payload: abi.encode(keccak256(abi.encode("reading", i)), i)
            });
        }
    }
}
