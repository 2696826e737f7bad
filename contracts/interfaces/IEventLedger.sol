// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IEventLedger
/// @notice Append-only record of hybrid-signed events from registered, active oracles.
/// @dev One transaction carries a batch of events and ONE ML-DSA-65 signature over the whole batch
/// (the secp256k1 half of the hybrid signature is the transaction itself). The signed message is
/// built off-chain by `keys/` and binds chain id, this contract, the oracle, its key epoch, the
/// sequence range and every event, so neither signature can be lifted into another context.
/// The EVM cannot verify ML-DSA cheaply; peers and auditors verify it from {BatchSigned}.
/// Sequence numbers per oracle are contiguous (1, 2, 3, ...) across batches and within a batch: a
/// replayed or reordered event reverts, and so does a gap, so a batch can never land while an
/// earlier one is missing. Resubmission after a crash is idempotent and nothing can be skipped.
///
/// Bounds. A batch is bounded by its count (`MAX_BATCH` events) AND by its size in bytes
/// (`MAX_BATCH_BYTES` of ABI-encoded events, see `EventLedger`), so the largest legal batch stays
/// far below EIP-7825's 16,777,216-gas cap per transaction whatever its shape. Each oracle may
/// record at most `MAX_BATCHES_PER_BLOCK` batches and `MAX_BYTES_PER_BLOCK` bytes per block, so one
/// oracle, even a compromised one, can take only a small, fixed share of a block and cannot starve
/// the other oracles' quorum votes. A refused batch is refused whole; the sender waits for the next
/// block and sends it again (its sequence numbers are still free).
interface IEventLedger {
    /// @notice Event kinds; the numeric values are part of the signed message and never change.
    enum EventKind {
        TelemetryRoot, // 0  Merkle root of a batch of readings
        Anomaly, // 1
        Fault, // 2
        Intrusion, // 3
        IsolationVote, // 4
        Isolated, // 5
        RepairDispatched, // 6
        Repaired, // 7
        Reintegrated, // 8
        KeyRotation, // 9
        QkdAlarm, // 10
        Override, // 11
        Maintenance, // 12 predicted failure
        CascadeAnalysis, // 13
        ReroutePlan, // 14
        IsolationApplied, // 15
        SensorQuarantine, // 16 a sensor a quorum of its sector's oracles found spoofed, and its lifting
        VaultWrite, // 17 a vault record's salted commitment (docs/cyber.md)
        VaultRead, // 18 a vault read granted or refused: who, which record, a keyed hash of why
        VaultShred, // 19 a vault record's key destroyed (crypto-shredding)
        VaultSeal, // 20 a sector's vault sealed or unsealed
        Indicator, // 21 an indicator of compromise published or withdrawn
        Countermeasure, // 22 a deny entry, device quarantine, key rotation or safe mode, and its lifting
        Notice // 23 a crisis notice's digest, recorded by the control room (api/notices.py)
    }

    struct EventInput {
        uint64 seq;
        uint8 kind; // an EventKind value; checked so a bad value gets a named error
        bytes32 node; // subject node, or zero
        bytes payload; // kind-specific, canonical JSON or ABI bytes; bounded by MAX_PAYLOAD
    }

    error LedgerNotActiveOracle(address account);
    error LedgerEmptyBatch();
    error LedgerBatchTooLarge(uint256 size, uint256 max);
    error LedgerSequenceNotIncreasing(address oracle, uint64 seq, uint64 lastSeq);
    error LedgerSequenceGap(address oracle, uint64 seq, uint64 expected);
    error LedgerUnknownKind(uint8 kind);
    error LedgerPayloadTooLarge(uint256 size, uint256 max);
    error LedgerInvalidSignatureLength(uint256 length);
    error LedgerKeyEpochMismatch(address oracle, uint32 signedEpoch, uint32 currentEpoch);
    /// @notice The batch's events encode to `size` bytes, more than `max` (= MAX_BATCH_BYTES).
    error LedgerBatchBytesTooLarge(uint256 size, uint256 max);
    /// @notice The calldata is longer than the canonical ABI encoding of the batch it carries
    /// (`calldataLength` > `encodedLength`): bytes the ledger would not count are refused.
    error LedgerNonCanonicalBatch(uint256 calldataLength, uint256 encodedLength);
    /// @notice Recording this batch would take `oracle` to `batches` batches or `size` bytes in block
    /// `blockNumber`, beyond MAX_BATCHES_PER_BLOCK or MAX_BYTES_PER_BLOCK. Send it again in a later block.
    error LedgerRateLimited(address oracle, uint64 blockNumber, uint256 batches, uint256 size);

    /// @notice One recorded event. `batchId` ties it to the {BatchSigned} that carries its signature.
    event EventRecorded(
        address indexed oracle, bytes32 indexed node, uint8 indexed kind, uint64 seq, uint64 batchId, bytes payload
    );

    /// @notice The ML-DSA-65 half of the hybrid signature for events `firstSeq..lastSeq` of `oracle`.
    event BatchSigned(
        address indexed oracle,
        uint64 indexed batchId,
        bytes32 indexed sector,
        uint32 keyEpoch,
        uint64 firstSeq,
        uint64 lastSeq,
        uint32 count,
        bytes pqSignature
    );

    /// @notice Records a batch of events signed by the caller.
    /// @param events at least one, at most MAX_BATCH, `seq` = lastSeq + 1, lastSeq + 2, ... (no gaps)
    /// @param keyEpoch the ML-DSA key epoch the batch was signed with; must be the registry's current
    /// one, so a batch signed just before a rotation is refused (and re-signed) rather than recorded
    /// with a signature no auditor could verify against the epoch in force
    /// @param pqSignature ML-DSA-65 signature (3309 bytes) over the batch message built by `keys/`
    /// Requirements: caller is an Active oracle in the registry; kinds known; payloads ≤ MAX_PAYLOAD;
    /// the events' encoded size ≤ MAX_BATCH_BYTES and the calldata no longer than the batch's canonical
    /// encoding; the caller's batches and bytes in this block, this one included, within
    /// MAX_BATCHES_PER_BLOCK and MAX_BYTES_PER_BLOCK.
    /// Emits one {EventRecorded} per event, then {BatchSigned}.
    /// @return batchId the new batch's id (1, 2, ...)
    function recordBatch(EventInput[] calldata events, uint32 keyEpoch, bytes calldata pqSignature)
        external
        returns (uint64 batchId);

    /// @notice Highest sequence number recorded for `oracle` (0 if none).
    function lastSeq(address oracle) external view returns (uint64);

    /// @notice Number of batches recorded so far.
    function batchCount() external view returns (uint64);

    /// @notice What `oracle` recorded in block `blockNumber`, the last block it recorded in: `batches`
    /// batches of `size` encoded bytes in total. In any later block its budget is whole again.
    function blockUsage(address oracle) external view returns (uint64 blockNumber, uint32 batches, uint32 size);
}
