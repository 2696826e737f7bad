// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IRegistry} from "./interfaces/IRegistry.sol";

/// @title Registry
/// @notice Sectors, operators, oracles (with their ML-DSA-65 key hashes) and infrastructure nodes.
/// @dev Membership changes need GOVERNANCE_ROLE (held by the GovernanceCouncil); node status and
/// oracle quarantine need STATUS_ROLE (held by the IsolationQuorum). Counters used by the quorum
/// (`activeOracleCount`, `sectorNodeCount`, `sectorIsolatedCount`) are kept incrementally so the
/// quorum never loops over a sector.
/// A sector holds at most MAX_ORACLES_PER_SECTOR oracles that are Active or Quarantined; removal frees
/// the slot. The contract makes no external calls, so no function is open to reentrancy.
contract Registry is IRegistry, AccessControl {
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    bytes32 public constant STATUS_ROLE = keccak256("STATUS_ROLE");

    uint256 public constant MAX_ORACLES_PER_SECTOR = 64;
    uint256 public constant MAX_DEPENDENCIES = 16;
    uint256 public constant PQ_PUBLIC_KEY_LENGTH = 1952;
    uint256 public constant PQ_SIGNATURE_LENGTH = 3309;

    mapping(bytes32 sector => bool) private _sectors;
    mapping(bytes32 operator => bytes32 sector) private _operatorSector;
    mapping(address account => Oracle) private _oracles;
    mapping(bytes32 sector => uint256) private _activeOracles;
    mapping(bytes32 sector => uint256) private _oracleSlots;
    mapping(bytes32 nodeId => Node) private _nodes;
    mapping(bytes32 nodeId => bytes32[]) private _dependencies;
    mapping(bytes32 sector => uint256) private _nodeCount;
    mapping(bytes32 sector => uint256) private _outOfService;

    /// @param admin receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (hand them to the council, then renounce)
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _addSector("electricity");
        _addSector("water");
        _addSector("sewage");
        _addSector("healthcare");
        _addSector("transportation");
        _addSector("banking");
    }

    // ---- governance ---------------------------------------------------------------------------

    /// @inheritdoc IRegistry
    function addSector(bytes32 sector) external onlyRole(GOVERNANCE_ROLE) {
        if (sector == bytes32(0)) revert RegistryZeroId();
        if (_sectors[sector]) revert RegistrySectorExists(sector);
        _addSector(sector);
    }

    /// @inheritdoc IRegistry
    function addOperator(bytes32 operator, bytes32 sector) external onlyRole(GOVERNANCE_ROLE) {
        if (operator == bytes32(0)) revert RegistryZeroId();
        if (!_sectors[sector]) revert RegistryUnknownSector(sector);
        if (_operatorSector[operator] != bytes32(0)) revert RegistryOperatorExists(operator);
        _operatorSector[operator] = sector;
        emit OperatorAdded(operator, sector);
    }

    /// @inheritdoc IRegistry
    /// @dev An operator of another sector is reported as {RegistryUnknownOperator}. The proof of
    /// possession is only logged; peers verify it off-chain.
    function registerOracle(
        address account,
        bytes32 sector,
        bytes32 operator,
        bytes calldata pqPublicKey,
        bytes calldata popSignature
    ) external onlyRole(GOVERNANCE_ROLE) {
        if (account == address(0)) revert RegistryZeroId();
        if (!_sectors[sector]) revert RegistryUnknownSector(sector);
        if (operator == bytes32(0) || _operatorSector[operator] != sector) revert RegistryUnknownOperator(operator);
        if (_oracles[account].status != OracleStatus.None) revert RegistryOracleExists(account);
        if (_oracleSlots[sector] >= MAX_ORACLES_PER_SECTOR) {
            revert RegistrySectorFull(sector, MAX_ORACLES_PER_SECTOR);
        }
        if (pqPublicKey.length != PQ_PUBLIC_KEY_LENGTH) revert RegistryInvalidPublicKey(pqPublicKey.length);

        bytes32 keyHash = keccak256(pqPublicKey);
        _oracles[account] =
            Oracle({
            sector: sector,
            operator: operator,
            pqKeyHash: keyHash,
            keyEpoch: 1,
            status: OracleStatus.Active,
            statusEpoch: 1
        });
        ++_oracleSlots[sector];
        ++_activeOracles[sector];
        emit OracleRegistered(account, sector, operator, 1, keyHash, pqPublicKey, popSignature);
    }

    /// @inheritdoc IRegistry
    function removeOracle(address account, bytes32 reason) external onlyRole(GOVERNANCE_ROLE) {
        Oracle storage o = _knownOracle(account);
        OracleStatus from = o.status;
        if (from != OracleStatus.Active && from != OracleStatus.Quarantined) {
            revert RegistryOracleNotActive(account, from);
        }
        if (from == OracleStatus.Active) --_activeOracles[o.sector];
        --_oracleSlots[o.sector];
        o.status = OracleStatus.Removed;
        emit OracleStatusChanged(account, from, OracleStatus.Removed, reason, ++o.statusEpoch);
    }

    /// @inheritdoc IRegistry
    function reinstateOracle(address account, bytes32 reason) external onlyRole(GOVERNANCE_ROLE) {
        Oracle storage o = _knownOracle(account);
        if (o.status != OracleStatus.Quarantined) revert RegistryOracleNotQuarantined(account, o.status);
        o.status = OracleStatus.Active;
        ++_activeOracles[o.sector];
        emit OracleStatusChanged(account, OracleStatus.Quarantined, OracleStatus.Active, reason, ++o.statusEpoch);
    }

    /// @inheritdoc IRegistry
    /// @dev Dependencies may lie in other sectors (cascade analysis reads them); a node cannot depend
    /// on itself because it is not registered yet when its dependencies are checked.
    function addNode(bytes32 nodeId, bytes32 sector, bytes32 kind, uint8 criticality, bytes32[] calldata dependsOn)
        external
        onlyRole(GOVERNANCE_ROLE)
    {
        if (nodeId == bytes32(0)) revert RegistryZeroId();
        if (!_sectors[sector]) revert RegistryUnknownSector(sector);
        if (_nodes[nodeId].status != NodeStatus.None) revert RegistryNodeExists(nodeId);
        if (criticality == 0 || criticality > 5) revert RegistryInvalidCriticality(criticality);
        if (dependsOn.length > MAX_DEPENDENCIES) {
            revert RegistryTooManyDependencies(dependsOn.length, MAX_DEPENDENCIES);
        }
        for (uint256 i; i < dependsOn.length; ++i) {
            if (_nodes[dependsOn[i]].status == NodeStatus.None) revert RegistryUnknownNode(dependsOn[i]);
        }
        _nodes[nodeId] = Node({sector: sector, kind: kind, criticality: criticality, status: NodeStatus.Active, statusEpoch: 1});
        _dependencies[nodeId] = dependsOn;
        ++_nodeCount[sector];
        emit NodeAdded(nodeId, sector, kind, criticality, dependsOn);
    }

    // ---- quorum hooks -------------------------------------------------------------------------

    /// @inheritdoc IRegistry
    /// @dev Legal: Active→Isolated, Isolated→Repairing, Repairing→Active, Isolated→Active (override).
    function setNodeStatus(bytes32 nodeId, NodeStatus status) external onlyRole(STATUS_ROLE) {
        if (nodeId == bytes32(0)) revert RegistryZeroId();
        Node storage n = _nodes[nodeId];
        NodeStatus from = n.status;
        if (from == NodeStatus.None) revert RegistryUnknownNode(nodeId);
        bool legal = (from == NodeStatus.Active && status == NodeStatus.Isolated)
            || (from == NodeStatus.Isolated && (status == NodeStatus.Repairing || status == NodeStatus.Active))
            || (from == NodeStatus.Repairing && status == NodeStatus.Active);
        if (!legal) revert RegistryInvalidStatusTransition(nodeId, from, status);

        n.status = status;
        if (from == NodeStatus.Active) ++_outOfService[n.sector];
        else if (status == NodeStatus.Active) --_outOfService[n.sector];
        emit NodeStatusChanged(nodeId, n.sector, from, status, ++n.statusEpoch);
    }

    /// @inheritdoc IRegistry
    function quarantineOracle(address account, bytes32 reason) external onlyRole(STATUS_ROLE) {
        Oracle storage o = _knownOracle(account);
        if (o.status != OracleStatus.Active) revert RegistryOracleNotActive(account, o.status);
        o.status = OracleStatus.Quarantined;
        --_activeOracles[o.sector];
        emit OracleStatusChanged(account, OracleStatus.Active, OracleStatus.Quarantined, reason, ++o.statusEpoch);
    }

    // ---- the oracle itself --------------------------------------------------------------------

    /// @inheritdoc IRegistry
    /// @dev Both signatures are only logged: peers verify them off-chain against the old and new key.
    function rotateKey(
        uint32 fromEpoch,
        bytes calldata newPublicKey,
        bytes calldata oldKeySignature,
        bytes calldata newKeySignature
    ) external {
        Oracle storage o = _knownOracle(msg.sender);
        if (o.status != OracleStatus.Active) revert RegistryOracleNotActive(msg.sender, o.status);
        if (o.keyEpoch != fromEpoch) revert RegistryKeyEpochMismatch(msg.sender, fromEpoch, o.keyEpoch);
        if (newPublicKey.length != PQ_PUBLIC_KEY_LENGTH) revert RegistryInvalidPublicKey(newPublicKey.length);
        if (oldKeySignature.length != PQ_SIGNATURE_LENGTH) revert RegistryInvalidSignature(oldKeySignature.length);
        if (newKeySignature.length != PQ_SIGNATURE_LENGTH) revert RegistryInvalidSignature(newKeySignature.length);
        uint32 oldEpoch = o.keyEpoch;
        bytes32 keyHash = keccak256(newPublicKey);
        o.keyEpoch = oldEpoch + 1;
        o.pqKeyHash = keyHash;
        emit KeyRotated(msg.sender, oldEpoch, oldEpoch + 1, keyHash, newPublicKey, oldKeySignature, newKeySignature);
    }

    // ---- views --------------------------------------------------------------------------------

    /// @inheritdoc IRegistry
    function oracle(address account) external view returns (Oracle memory) {
        return _oracles[account];
    }

    /// @inheritdoc IRegistry
    function isActiveOracle(address account, bytes32 sector) external view returns (bool) {
        Oracle storage o = _oracles[account];
        return o.status == OracleStatus.Active && o.sector == sector;
    }

    /// @inheritdoc IRegistry
    function activeOracleCount(bytes32 sector) external view returns (uint256) {
        return _activeOracles[sector];
    }

    /// @inheritdoc IRegistry
    /// @dev At most MAX_ORACLES_PER_SECTOR.
    function oracleSlots(bytes32 sector) external view returns (uint256) {
        return _oracleSlots[sector];
    }

    /// @inheritdoc IRegistry
    function node(bytes32 nodeId) external view returns (Node memory) {
        return _nodes[nodeId];
    }

    /// @inheritdoc IRegistry
    function nodeDependencies(bytes32 nodeId) external view returns (bytes32[] memory) {
        return _dependencies[nodeId];
    }

    /// @inheritdoc IRegistry
    function sectorNodeCount(bytes32 sector) external view returns (uint256) {
        return _nodeCount[sector];
    }

    /// @inheritdoc IRegistry
    /// @dev Out of service = Isolated or Repairing.
    function sectorIsolatedCount(bytes32 sector) external view returns (uint256) {
        return _outOfService[sector];
    }

    /// @inheritdoc IRegistry
    function isSector(bytes32 sector) external view returns (bool) {
        return _sectors[sector];
    }

    /// @inheritdoc IRegistry
    function operatorSector(bytes32 operator) external view returns (bytes32) {
        return _operatorSector[operator];
    }

    // ---- internal -----------------------------------------------------------------------------

    function _addSector(bytes32 sector) private {
        _sectors[sector] = true;
        emit SectorAdded(sector);
    }

    function _knownOracle(address account) private view returns (Oracle storage o) {
        o = _oracles[account];
        if (o.status == OracleStatus.None) revert RegistryUnknownOracle(account);
    }
}
