// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IEventLedger} from "./interfaces/IEventLedger.sol";
import {IRegistry} from "./interfaces/IRegistry.sol";

/// @title EventLedger
/// @notice Append-only, hybrid-signed event log of the QEAIMS oracles.
/// @dev This is the hot path, so it stays lean: per batch one (static) registry call and one SSTORE
/// for the oracle's packed state (`lastSeq` and its usage of the current block) and one for
/// `batchCount`; per event only calldata checks and a log. Events live in logs, never in storage;
/// indexers rebuild history from {EventRecorded} and {BatchSigned}. The contract has no owner and
/// no settings: who may write is decided by the Registry.
///
/// Size of a batch. A batch's size is the ABI encoding of its events: `EVENT_HEAD_BYTES` (192: the
/// tuple's offset word, seq, kind, node, payload offset and payload length) plus the payload padded
/// to 32 bytes, per event. A canonical `recordBatch` calldata is exactly `size + BATCH_OVERHEAD_BYTES`
/// (3,492: selector, three head words, array length, signature length and the 3,309-byte signature
/// padded to 3,328), and longer calldata is refused, so the size bounds what the transaction pays
/// for calldata, logs and memory alike. Offsets that alias one payload into many events cannot
/// cheat the bound either: the size counts each event's decoded payload.
///
/// Gas (Prague pricing, intrinsic gas and EIP-7623's calldata floor included). A transaction pays at
/// most 40 gas per calldata byte (the floor for non-zero bytes) and, when execution dominates, about
/// 31 per byte, so the largest legal batch costs at most 21,000 + 40 * (131,072 + 3,492) = 5,403,560
/// gas: 32 % of EIP-7825's 16,777,216 cap. Measured with forge (`test_GasLargestLegalBatches`):
/// 30 incompressible 4,096-byte payloads 5,147,250; 512 events of 64 bytes 3,978,835; 512 empty
/// events 3,183,571.
///
/// Rate limit. Per oracle and block at most MAX_BATCHES_PER_BLOCK batches and MAX_BYTES_PER_BLOCK
/// encoded bytes, so one oracle takes at most 8 * (21,000 + 40 * 3,492) + 40 * 262,144 = 11,771,200
/// gas of a block (measured, `test_GasMostOneOracleTakesPerBlock`: two full batches 10,294,500,
/// eight batches of 30,016 bytes 10,555,280). Block gas limits: the development Anvil runs with
/// 400,000,000 (core/config.py `block_gas_limit`, never below 30,000,000); Besu's QBFT example
/// genesis sets 0x1fffffffffffff. So on the dev chain one oracle takes at most 2.9 % of a block, and
/// all 31 recording accounts of the development city (24 oracles, the controller and the six vaults'
/// recorders) together at most 91 %: a quorum vote always finds room in the next block. On a 30 M-gas chain one oracle takes at
/// most 39 %. What an account SENDS beyond what the ledger accepts (reverted or unrelated
/// transactions pay their calldata all the same) no contract can bound: that is the node's
/// transaction pool and account permissioning (Besu's per-sender pool limits, the allowlist
/// generated from the registry).
contract EventLedger is IEventLedger {
    /// @notice Most events in one batch; with payloads under 64 bytes the count binds before the size.
    uint256 public constant MAX_BATCH = 512;
    uint256 public constant MAX_PAYLOAD = 4096;
    uint256 public constant PQ_SIGNATURE_LENGTH = 3309;
    /// @notice ABI-encoded bytes of one event besides its padded payload (offset, 4 head words, length).
    uint256 public constant EVENT_HEAD_BYTES = 192;
    /// @notice Canonical calldata of `recordBatch` besides its events' encoding.
    uint256 public constant BATCH_OVERHEAD_BYTES = 3492;
    /// @notice Most encoded event bytes in one batch (128 KiB): 500 events of 64-byte payloads fit.
    uint256 public constant MAX_BATCH_BYTES = 131_072;
    /// @notice Most batches one oracle may record in one block.
    uint256 public constant MAX_BATCHES_PER_BLOCK = 8;
    /// @notice Most encoded event bytes one oracle may record in one block (two full batches).
    uint256 public constant MAX_BYTES_PER_BLOCK = 2 * MAX_BATCH_BYTES;
    uint8 private constant _MAX_KIND = uint8(type(EventKind).max);

    /// @notice The registry that says which accounts are active oracles.
    IRegistry public immutable registry;

    /// @dev One slot per oracle: its last sequence number and what it recorded in `blockNumber`.
    struct OracleState {
        uint64 lastSeq;
        uint64 blockNumber;
        uint32 batches;
        uint32 size;
    }

    mapping(address oracle => OracleState) private _state;
    uint64 private _batchCount;

    constructor(IRegistry registry_) {
        registry = registry_;
    }

    /// @inheritdoc IEventLedger
    /// @dev Checks first: the caller, the count, the signature, then a pass over the payload lengths
    /// gives the batch's size, checked against the batch bound, the calldata length and the caller's
    /// budget for this block, before anything is written. Then the oracle's slot and `batchCount` are
    /// written, then the loop that checks each sequence number and kind and logs each event; a failing
    /// check there reverts the whole batch, so the early write never survives a bad batch.
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

        uint256 size = _encodedSize(events);
        if (size > MAX_BATCH_BYTES) revert LedgerBatchBytesTooLarge(size, MAX_BATCH_BYTES);
        if (msg.data.length > size + BATCH_OVERHEAD_BYTES) {
            revert LedgerNonCanonicalBatch(msg.data.length, size + BATCH_OVERHEAD_BYTES);
        }

        uint64 previous = _charge(size, events[count - 1].seq);
        batchId = ++_batchCount;
        _logEvents(events, previous, batchId);
        // casting to 'uint32' is safe because count <= MAX_BATCH
        // forge-lint: disable-next-line(unsafe-typecast)
        emit BatchSigned(
            msg.sender, batchId, o.sector, o.keyEpoch, events[0].seq, events[count - 1].seq, uint32(count), pqSignature
        );
    }

    /// @inheritdoc IEventLedger
    function lastSeq(address oracle) external view returns (uint64) {
        return _state[oracle].lastSeq;
    }

    /// @inheritdoc IEventLedger
    function batchCount() external view returns (uint64) {
        return _batchCount;
    }

    /// @inheritdoc IEventLedger
    function blockUsage(address oracle) external view returns (uint64 blockNumber, uint32 batches, uint32 size) {
        OracleState memory state = _state[oracle];
        return (state.blockNumber, state.batches, state.size);
    }

    /// @dev Checks the caller's budget for this block and writes its slot: `finalSeq` as its last
    /// sequence number (the caller's loop checks the batch leads there, or reverts it) and the block's
    /// usage with this batch. Returns the previous last sequence number.
    function _charge(uint256 size, uint64 finalSeq) private returns (uint64 previous) {
        OracleState memory state = _state[msg.sender];
        // casting to 'uint64' is safe: block numbers stay far below 2**64
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 blockNumber = uint64(block.number);
        uint256 batches = 1;
        uint256 used = size;
        // the slot's block is this one or an earlier one (block numbers only grow): not earlier = same
        if (state.blockNumber >= blockNumber) {
            batches += state.batches;
            used += state.size;
        }
        if (batches > MAX_BATCHES_PER_BLOCK || used > MAX_BYTES_PER_BLOCK) {
            revert LedgerRateLimited(msg.sender, blockNumber, batches, used);
        }
        // casting to 'uint32' is safe because batches <= MAX_BATCHES_PER_BLOCK and used <= MAX_BYTES_PER_BLOCK
        // forge-lint: disable-next-line(unsafe-typecast)
        _state[msg.sender] = OracleState(finalSeq, blockNumber, uint32(batches), uint32(used));
        return state.lastSeq;
    }

    /// @dev Checks that the sequence numbers run on from `previous` without a gap and that each kind
    /// is known, and logs each event.
    function _logEvents(EventInput[] calldata events, uint64 previous, uint64 batchId) private {
        uint256 count = events.length;
        for (uint256 i; i < count;) {
            EventInput calldata e = events[i];
            uint64 seq = e.seq;
            if (seq <= previous) revert LedgerSequenceNotIncreasing(msg.sender, seq, previous);
            if (seq != previous + 1) revert LedgerSequenceGap(msg.sender, seq, previous + 1);
            if (e.kind > _MAX_KIND) revert LedgerUnknownKind(e.kind);
            emit EventRecorded(msg.sender, e.node, e.kind, seq, batchId, e.payload);
            previous = seq;
            unchecked {
                ++i;
            }
        }
    }

    /// @dev The events' ABI-encoded size; refuses a payload over MAX_PAYLOAD on the way. No overflow:
    /// each term is at most 192 + 4,096 and there are at most MAX_BATCH terms.
    function _encodedSize(EventInput[] calldata events) private pure returns (uint256 size) {
        uint256 count = events.length;
        for (uint256 i; i < count;) {
            uint256 length = events[i].payload.length;
            if (length > MAX_PAYLOAD) revert LedgerPayloadTooLarge(length, MAX_PAYLOAD);
            unchecked {
                size += EVENT_HEAD_BYTES + ((length + 31) & ~uint256(31));
                ++i;
            }
        }
    }
}
