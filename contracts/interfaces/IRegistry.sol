// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IRegistry
/// @notice Who may speak for which sector, and which infrastructure nodes exist.
/// @dev Ids are `bytes32` holding a left-aligned ASCII name (`bytes32("water")`), so logs stay readable
/// and no string handling is needed on-chain. Only GOVERNANCE_ROLE changes membership; only
/// STATUS_ROLE (the isolation quorum contract) moves node status and quarantines oracles.
interface IRegistry {
    enum OracleStatus {
        None,
        Active,
        Quarantined,
        Removed
    }

    enum NodeStatus {
        None,
        Active,
        Isolated,
        Repairing
    }

    struct Oracle {
        bytes32 sector;
        bytes32 operator;
        bytes32 pqKeyHash; // keccak256 of the raw ML-DSA-65 public key (1952 bytes)
        uint32 keyEpoch; // 1 at registration, +1 per rotation
        OracleStatus status;
        uint64 statusEpoch; // 1 at registration, +1 on every status change (binds quorum proposals)
    }

    struct Node {
        bytes32 sector;
        bytes32 kind;
        uint8 criticality; // 1 (low) .. 5 (life-critical)
        NodeStatus status;
        uint64 statusEpoch; // 1 when added, +1 on every status change (binds quorum proposals)
    }

    // ---- errors -------------------------------------------------------------------------------
    error RegistryUnknownSector(bytes32 sector);
    error RegistrySectorExists(bytes32 sector);
    error RegistryUnknownOperator(bytes32 operator);
    error RegistryOperatorExists(bytes32 operator);
    error RegistryOracleExists(address account);
    error RegistryUnknownOracle(address account);
    error RegistryOracleNotActive(address account, OracleStatus status);
    error RegistryOracleNotQuarantined(address account, OracleStatus status);
    error RegistrySectorFull(bytes32 sector, uint256 maxOracles);
    error RegistryInvalidPublicKey(uint256 length);
    error RegistryInvalidSignature(uint256 length);
    /// @notice `rotateKey` named a key epoch to rotate from that is not the oracle's current one: the
    /// rotation it carries was already mined (a resend) or was signed for other epochs.
    error RegistryKeyEpochMismatch(address account, uint32 expected, uint32 actual);
    error RegistryNodeExists(bytes32 node);
    error RegistryUnknownNode(bytes32 node);
    error RegistryInvalidCriticality(uint8 criticality);
    error RegistryTooManyDependencies(uint256 count, uint256 max);
    error RegistryInvalidStatusTransition(bytes32 node, NodeStatus from, NodeStatus to);
    error RegistryZeroId();

    // ---- events -------------------------------------------------------------------------------
    event SectorAdded(bytes32 indexed sector);
    event OperatorAdded(bytes32 indexed operator, bytes32 indexed sector);
    /// @notice The full ML-DSA-65 public key and its proof of possession live in this log, so an
    /// auditor can verify every later signature from chain data alone.
    event OracleRegistered(
        address indexed account,
        bytes32 indexed sector,
        bytes32 indexed operator,
        uint32 keyEpoch,
        bytes32 pqKeyHash,
        bytes pqPublicKey,
        bytes popSignature
    );
    /// @notice `statusEpoch` is the oracle's new status epoch; quorum proposals opened on an earlier one close.
    event OracleStatusChanged(
        address indexed account, OracleStatus from, OracleStatus to, bytes32 reason, uint64 statusEpoch
    );
    /// @notice Rotation is authorised by the old ML-DSA key (`oldKeySignature`) and proves possession
    /// of the new one (`newKeySignature`); both sign the same domain-separated rotation message.
    event KeyRotated(
        address indexed account,
        uint32 oldEpoch,
        uint32 newEpoch,
        bytes32 newKeyHash,
        bytes newPublicKey,
        bytes oldKeySignature,
        bytes newKeySignature
    );
    event NodeAdded(
        bytes32 indexed node, bytes32 indexed sector, bytes32 kind, uint8 criticality, bytes32[] dependsOn
    );
    /// @notice `statusEpoch` is the node's new status epoch; quorum proposals opened on an earlier one close.
    event NodeStatusChanged(
        bytes32 indexed node, bytes32 indexed sector, NodeStatus from, NodeStatus to, uint64 statusEpoch
    );

    // ---- governance ---------------------------------------------------------------------------
    /// @notice Adds a sector beyond the six built in. Requirements: GOVERNANCE_ROLE; new non-zero id.
    /// Emits {SectorAdded}.
    function addSector(bytes32 sector) external;

    /// @notice Adds an operator (a utility, hospital group, bank...) for a sector.
    /// Requirements: GOVERNANCE_ROLE; known sector; new non-zero id. Emits {OperatorAdded}.
    function addOperator(bytes32 operator, bytes32 sector) external;

    /// @notice Registers an oracle account with its ML-DSA-65 public key at epoch 1.
    /// @param account the oracle's secp256k1 account, which sends its transactions
    /// @param pqPublicKey raw ML-DSA-65 public key, exactly 1952 bytes
    /// @param popSignature ML-DSA signature over the registration message (checked off-chain)
    /// Requirements: GOVERNANCE_ROLE; known sector and operator of that sector; account never
    /// registered; sector below MAX_ORACLES_PER_SECTOR. Emits {OracleRegistered}.
    function registerOracle(
        address account,
        bytes32 sector,
        bytes32 operator,
        bytes calldata pqPublicKey,
        bytes calldata popSignature
    ) external;

    /// @notice Removes an oracle for good; its votes stop counting. Requirements: GOVERNANCE_ROLE;
    /// oracle Active or Quarantined. Emits {OracleStatusChanged}.
    function removeOracle(address account, bytes32 reason) external;

    /// @notice Returns a quarantined oracle to service. Requirements: GOVERNANCE_ROLE; oracle
    /// Quarantined. Emits {OracleStatusChanged}.
    function reinstateOracle(address account, bytes32 reason) external;

    /// @notice Adds an infrastructure node. Requirements: GOVERNANCE_ROLE; known sector; new id;
    /// criticality 1..5; every dependency already registered; at most MAX_DEPENDENCIES.
    /// Emits {NodeAdded}.
    function addNode(bytes32 node, bytes32 sector, bytes32 kind, uint8 criticality, bytes32[] calldata dependsOn)
        external;

    // ---- quorum hooks (STATUS_ROLE) -------------------------------------------------------------
    /// @notice Moves a node along active → isolated → repairing → active (and isolated → active on
    /// a governance override). Requirements: STATUS_ROLE; a legal transition.
    /// Emits {NodeStatusChanged}.
    function setNodeStatus(bytes32 node, NodeStatus status) external;

    /// @notice Quarantines an active oracle after its sector's quorum voted so.
    /// Requirements: STATUS_ROLE; oracle Active. Emits {OracleStatusChanged}.
    function quarantineOracle(address account, bytes32 reason) external;

    // ---- the oracle itself ----------------------------------------------------------------------
    /// @notice Rotates the caller's ML-DSA key from epoch `fromEpoch` to `fromEpoch + 1`.
    /// Requirements: caller is an Active oracle; its key epoch is `fromEpoch` (so a resent rotation
    /// can never rotate twice, nor land on epochs its proof was not signed for); key is 1952 bytes;
    /// both signatures 3309 bytes (their ML-DSA validity is checked by every peer and audit: a
    /// rotation the old key did not sign is an intrusion). Emits {KeyRotated}.
    function rotateKey(
        uint32 fromEpoch,
        bytes calldata newPublicKey,
        bytes calldata oldKeySignature,
        bytes calldata newKeySignature
    ) external;

    // ---- views ----------------------------------------------------------------------------------
    function oracle(address account) external view returns (Oracle memory);
    function isActiveOracle(address account, bytes32 sector) external view returns (bool);
    function activeOracleCount(bytes32 sector) external view returns (uint256);
    /// @notice The sector's membership: oracles that hold a slot (Active or Quarantined). Quarantine
    /// never lowers it; only a council removal does. The quorum size is computed over it.
    function oracleSlots(bytes32 sector) external view returns (uint256);
    function node(bytes32 nodeId) external view returns (Node memory);
    function nodeDependencies(bytes32 nodeId) external view returns (bytes32[] memory);
    function sectorNodeCount(bytes32 sector) external view returns (uint256);
    function sectorIsolatedCount(bytes32 sector) external view returns (uint256);
    function isSector(bytes32 sector) external view returns (bool);
    function operatorSector(bytes32 operator) external view returns (bytes32);
}
