// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IEventLedger} from "./interfaces/IEventLedger.sol";
import {IRegistry} from "./interfaces/IRegistry.sol";

/// @title EventLedger
/// @notice Append-only, hybrid-signed event log of the QEAIMS oracles.
/// @dev This is the hot path, so it stays lean: per batch one (static) registry call, one SSTORE for
/// the oracle's `lastSeq` and one for `batchCount`; per event only calldata checks and a log. Events
/// live in logs, never in storage; indexers rebuild history from {EventRecorded} and {BatchSigned}.
/// The contract has no owner and no settings: who may write is decided by the Registry.
contract EventLedger is IEventLedger {
    uint256 public constant MAX_BATCH = 1024;
    uint256 public constant MAX_PAYLOAD = 4096;
    uint256 public constant PQ_SIGNATURE_LENGTH = 3309;
    uint8 private constant _MAX_KIND = uint8(type(EventKind).max);

    /// @notice The registry that says which accounts are active oracles.
    IRegistry public immutable registry;

    mapping(address oracle => uint64) private _lastSeq;
    uint64 private _batchCount;

    constructor(IRegistry registry_) {
        registry = registry_;
    }

    /// @inheritdoc IEventLedger
    /// @dev `lastSeq` and `batchCount` are written before the loop that checks and logs each event;
    /// a failing check reverts the whole batch, so the early write never survives a bad batch.
    /// The only external call is a view call to the trusted registry, made before any write.
    function recordBatch(EventInput[] calldata events, uint32 keyEpoch, bytes calldata pqSignature)
        external
        returns (uint64 batchId)
    {
        IRegistry.Oracle memory o = registry.oracle(msg.sender);
        if (o.status != IRegistry.OracleStatus.Active) revert LedgerNotActiveOracle(msg.sender);
        if (keyEpoch != o.keyEpoch) revert LedgerKeyEpochMismatch(msg.sender, keyEpoch, o.keyEpoch);
        uint256 count = events.length;
        if (count == 0) revert LedgerEmptyBatch();
        if (count > MAX_BATCH) revert LedgerBatchTooLarge(count, MAX_BATCH);
        if (pqSignature.length != PQ_SIGNATURE_LENGTH) revert LedgerInvalidSignatureLength(pqSignature.length);

        uint64 previous = _lastSeq[msg.sender];
        uint64 firstSeq = events[0].seq;
        uint64 finalSeq = events[count - 1].seq;
        _lastSeq[msg.sender] = finalSeq;
        batchId = ++_batchCount;

        for (uint256 i; i < count;) {
            EventInput calldata e = events[i];
            uint64 seq = e.seq;
            if (seq <= previous) revert LedgerSequenceNotIncreasing(msg.sender, seq, previous);
            if (seq != previous + 1) revert LedgerSequenceGap(msg.sender, seq, previous + 1);
            if (e.kind > _MAX_KIND) revert LedgerUnknownKind(e.kind);
            if (e.payload.length > MAX_PAYLOAD) revert LedgerPayloadTooLarge(e.payload.length, MAX_PAYLOAD);
            emit EventRecorded(msg.sender, e.node, e.kind, seq, batchId, e.payload);
            previous = seq;
            unchecked {
                ++i;
            }
        }
        // casting to 'uint32' is safe because count <= MAX_BATCH
        // forge-lint: disable-next-line(unsafe-typecast)
        emit BatchSigned(msg.sender, batchId, o.sector, o.keyEpoch, firstSeq, finalSeq, uint32(count), pqSignature);
    }

    /// @inheritdoc IEventLedger
    function lastSeq(address oracle) external view returns (uint64) {
        return _lastSeq[oracle];
    }

    /// @inheritdoc IEventLedger
    function batchCount() external view returns (uint64) {
        return _batchCount;
    }
}
