// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console} from "forge-std/console.sol";
import {Deployed, PqFixtures} from "./utils/Deployed.sol";
import {EventLedger} from "../../contracts/EventLedger.sol";
import {IEventLedger} from "../../contracts/interfaces/IEventLedger.sol";
import {IRegistry} from "../../contracts/interfaces/IRegistry.sol";

contract EventLedgerTest is Deployed {
    address internal oracleA;
    address internal oracleB;
    bytes internal sig;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 4);
        oracleA = _oracleAt(WATER, 0);
        oracleB = _oracleAt(WATER, 1);
        sig = PqFixtures.signature(1);
    }

    /// @dev Records at key epoch 1 (every oracle's epoch until it rotates). No view call in here:
    /// callers put vm.expectRevert right before it, which must apply to recordBatch itself.
    function _record(address oracle, IEventLedger.EventInput[] memory events) internal returns (uint64) {
        return _recordAt(oracle, events, 1);
    }

    function _recordAt(address oracle, IEventLedger.EventInput[] memory events, uint32 epoch)
        internal
        returns (uint64)
    {
        vm.prank(oracle);
        return ledger.recordBatch(events, epoch, sig);
    }

    function test_Constants() public view {
        assertEq(ledger.MAX_BATCH(), 512);
        assertEq(ledger.MAX_PAYLOAD(), 4096);
        assertEq(ledger.PQ_SIGNATURE_LENGTH(), 3309);
        assertEq(ledger.EVENT_HEAD_BYTES(), 192);
        assertEq(ledger.BATCH_OVERHEAD_BYTES(), 3492);
        assertEq(ledger.MAX_BATCH_BYTES(), 131_072);
        assertEq(ledger.MAX_BATCHES_PER_BLOCK(), 8);
        assertEq(ledger.MAX_BYTES_PER_BLOCK(), 262_144);
        assertEq(address(ledger.registry()), address(registry));
        // the largest single event always fits a batch (the outbox refuses only events over MAX_PAYLOAD)
        assertLe(ledger.EVENT_HEAD_BYTES() + ledger.MAX_PAYLOAD(), ledger.MAX_BATCH_BYTES());
    }

    function test_RecordBatchEmitsEventsThenSignature() public {
        IEventLedger.EventInput[] memory events = _events(1, 3);
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(ledger));
            emit IEventLedger.EventRecorded(
                oracleA, events[i].node, events[i].kind, events[i].seq, 1, events[i].payload
            );
        }
        vm.expectEmit(address(ledger));
        emit IEventLedger.BatchSigned(oracleA, 1, WATER, 1, 1, 3, 3, sig);
        assertEq(_record(oracleA, events), 1);
        assertEq(ledger.lastSeq(oracleA), 3);
        assertEq(ledger.batchCount(), 1);
    }

    function test_BatchIdsAndSequencesPerOracle() public {
        assertEq(_record(oracleA, _events(1, 2)), 1);
        assertEq(_record(oracleB, _events(1, 5)), 2); // sequences are per oracle
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerSequenceGap.selector, oracleA, 10, 3));
        _record(oracleA, _events(10, 1)); // a gap would let a later batch land while an earlier one is lost
        assertEq(_record(oracleA, _events(3, 1)), 3);
        assertEq(ledger.lastSeq(oracleA), 3);
        assertEq(ledger.lastSeq(oracleB), 5);
        assertEq(ledger.lastSeq(address(1)), 0);
        assertEq(ledger.batchCount(), 3);
    }

    function test_BatchSignedCarriesRotatedKeyEpoch() public {
        vm.prank(oracleA);
        registry.rotateKey(1, PqFixtures.key(99), sig, sig);
        vm.expectEmit(address(ledger));
        emit IEventLedger.BatchSigned(oracleA, 1, WATER, 2, 1, 1, 1, sig);
        _recordAt(oracleA, _events(1, 1), 2);
    }

    function test_RevertWhen_SignedWithAnOldKeyEpoch() public {
        vm.prank(oracleA);
        registry.rotateKey(1, PqFixtures.key(99), sig, sig);
        vm.prank(oracleA);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerKeyEpochMismatch.selector, oracleA, 1, 2));
        ledger.recordBatch(_events(1, 1), 1, sig);
        assertEq(ledger.lastSeq(oracleA), 0);
    }

    function test_RevertWhen_CallerNotActiveOracle() public {
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerNotActiveOracle.selector, address(this)));
        ledger.recordBatch(_events(1, 1), 1, sig);

        vm.prank(address(quorum));
        registry.quarantineOracle(oracleA, "intrusion");
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerNotActiveOracle.selector, oracleA));
        _record(oracleA, _events(1, 1));

        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (oracleB, "retired")));
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerNotActiveOracle.selector, oracleB));
        _record(oracleB, _events(1, 1));
    }

    function test_RevertWhen_BatchEmptyOrTooLarge() public {
        vm.expectRevert(IEventLedger.LedgerEmptyBatch.selector);
        _record(oracleA, new IEventLedger.EventInput[](0));
        IEventLedger.EventInput[] memory big = new IEventLedger.EventInput[](513);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerBatchTooLarge.selector, 513, 512));
        _record(oracleA, big);
    }

    /// @dev 512 events of 64-byte payloads are exactly MAX_BATCH events and MAX_BATCH_BYTES bytes.
    function test_MaxBatchAccepted() public {
        IEventLedger.EventInput[] memory events = _events(1, 512);
        assertEq(_size(events), 131_072);
        _record(oracleA, events);
        assertEq(ledger.lastSeq(oracleA), 512);
        (uint64 blockNumber, uint32 batches, uint32 size) = ledger.blockUsage(oracleA);
        assertEq(blockNumber, block.number);
        assertEq(batches, 1);
        assertEq(size, 131_072);
    }

    function testFuzz_RevertWhen_SignatureLengthWrong(uint256 length) public {
        length = bound(length, 0, 5000);
        vm.assume(length != 3309);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerInvalidSignatureLength.selector, length));
        vm.prank(oracleA);
        ledger.recordBatch(_events(1, 1), 1, new bytes(length));
    }

    function testFuzz_RevertWhen_UnknownKind(uint8 kind, uint8 position) public {
        kind = uint8(bound(kind, 24, 255));
        IEventLedger.EventInput[] memory events = _events(1, 4);
        events[position % 4].kind = kind;
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerUnknownKind.selector, kind));
        _record(oracleA, events);
    }

    function test_AllTwentyFourKindsAccepted() public {
        IEventLedger.EventInput[] memory events = _events(1, 24);
        for (uint8 k; k < 24; ++k) {
            events[k].kind = k;
        }
        _record(oracleA, events);
        assertEq(uint8(type(IEventLedger.EventKind).max), 23);
    }

    function test_RevertWhen_PayloadTooLarge() public {
        IEventLedger.EventInput[] memory events = _events(1, 2);
        events[1].payload = new bytes(4097);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerPayloadTooLarge.selector, 4097, 4096));
        _record(oracleA, events);
        events[1].payload = new bytes(4096);
        _record(oracleA, events);
    }

    function test_RevertWhen_ReplayOfRecordedBatch() public {
        IEventLedger.EventInput[] memory events = _events(1, 3);
        _record(oracleA, events);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerSequenceNotIncreasing.selector, oracleA, 1, 3));
        _record(oracleA, events);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerSequenceNotIncreasing.selector, oracleA, 3, 3));
        _record(oracleA, _events(3, 2)); // overlaps the last recorded seq
        assertEq(ledger.lastSeq(oracleA), 3);
        assertEq(ledger.batchCount(), 1);
    }

    function test_RevertWhen_SeqZero() public {
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerSequenceNotIncreasing.selector, oracleA, 0, 0));
        _record(oracleA, _events(0, 1));
    }

    function testFuzz_RevertWhen_SequenceNotIncreasingInBatch(uint8 size, uint8 position) public {
        size = uint8(bound(size, 2, 40));
        position = uint8(bound(position, 1, size - 1));
        IEventLedger.EventInput[] memory events = _events(1, size); // contiguous but for one position
        uint64 previous = events[position - 1].seq;
        events[position].seq = previous - (position % 2 == 0 ? 0 : 1); // repeat or go back
        vm.expectRevert(
            abi.encodeWithSelector(
                IEventLedger.LedgerSequenceNotIncreasing.selector, oracleA, events[position].seq, previous
            )
        );
        _record(oracleA, events);
        assertEq(ledger.lastSeq(oracleA), 0);
    }

    /// @dev Any contiguous run right after lastSeq is accepted; lastSeq becomes its last seq.
    function testFuzz_ContiguousSequencesAccepted(uint8 first, uint8 second) public {
        uint64 a = uint64(bound(first, 1, 60));
        uint64 b = uint64(bound(second, 1, 60));
        _record(oracleA, _events(1, a));
        _record(oracleA, _events(a + 1, b));
        assertEq(ledger.lastSeq(oracleA), a + b);
    }

    /// @dev Any run that starts beyond lastSeq + 1 leaves a gap and is refused.
    function testFuzz_RevertWhen_SequenceGap(uint8 size, uint64 gap) public {
        size = uint8(bound(size, 1, 20));
        gap = uint64(bound(gap, 1, type(uint64).max / 2));
        _record(oracleA, _events(1, 2));
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerSequenceGap.selector, oracleA, 3 + gap, 3));
        _record(oracleA, _events(3 + gap, size));
        assertEq(ledger.lastSeq(oracleA), 2);
    }

    /// @dev Hot-path budget: a batch of 500 events with 64-byte payloads (execution gas only; the
    /// transaction's calldata costs come on top). Guards against per-event storage creeping in.
    function test_GasBatchOf500() public {
        IEventLedger.EventInput[] memory events = _events(1, 500);
        vm.prank(oracleA);
        ledger.recordBatch(events, 1, sig);
        uint256 used = vm.lastCallGas().gasTotalUsed;
        console.log("recordBatch(500 events) gas:", used, "per event:", used / 500);
        assertLt(used / 500, 5_500);
    }

    // ---- size of a batch ------------------------------------------------------------------------

    /// @dev The ledger's size of a batch, restated: 192 bytes per event plus its payload padded to 32.
    function _size(IEventLedger.EventInput[] memory events) internal pure returns (uint256 size) {
        for (uint256 i; i < events.length; ++i) {
            size += 192 + (events[i].payload.length + 31) / 32 * 32;
        }
    }

    function _withPayloads(uint64 firstSeq, uint256 count, uint256 length)
        internal
        pure
        returns (IEventLedger.EventInput[] memory events)
    {
        events = _events(firstSeq, count);
        for (uint256 i; i < count; ++i) {
            events[i].payload = PqFixtures.bytesOf(i + 1, length); // incompressible: the dearest calldata
        }
    }

    /// @dev The size is exactly the calldata a canonical encoder (web3, solc) produces, minus the fixed head.
    function testFuzz_SizeIsCanonicalCalldata(uint8 count, uint16 length) public view {
        IEventLedger.EventInput[] memory events = _withPayloads(1, bound(count, 1, 40), bound(length, 0, 4096));
        bytes memory data = abi.encodeCall(ledger.recordBatch, (events, 1, sig));
        assertEq(data.length, _size(events) + ledger.BATCH_OVERHEAD_BYTES());
    }

    function test_RevertWhen_BatchBytesTooLarge() public {
        // an event of 4096 bytes encodes to 4,288: 30 fit (128,640), 31 do not (132,928)
        IEventLedger.EventInput[] memory events = _withPayloads(1, 31, 4096);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerBatchBytesTooLarge.selector, 132_928, 131_072));
        _record(oracleA, events);
        _record(oracleA, _withPayloads(1, 30, 4096));
        assertEq(ledger.lastSeq(oracleA), 30);
    }

    /// @dev Every batch within MAX_BATCH events and MAX_BATCH_BYTES bytes is accepted, every other refused.
    function testFuzz_BatchBoundByCountAndBytes(uint16 count, uint16 length) public {
        count = uint16(bound(count, 1, 600));
        length = uint16(bound(length, 0, 4096));
        IEventLedger.EventInput[] memory events = new IEventLedger.EventInput[](count);
        bytes memory payload = new bytes(length);
        for (uint256 i; i < count; ++i) {
            events[i] = IEventLedger.EventInput(uint64(i + 1), 0, bytes32(0), payload);
        }
        uint256 size = _size(events);
        if (count > 512) {
            vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerBatchTooLarge.selector, count, 512));
        } else if (size > 131_072) {
            vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerBatchBytesTooLarge.selector, size, 131_072));
        }
        _record(oracleA, events);
        assertEq(ledger.lastSeq(oracleA), count <= 512 && size <= 131_072 ? count : 0);
    }

    /// @dev Attack: bytes appended to a legal batch's calldata would cost block gas the ledger does not count.
    function test_RevertWhen_CalldataLongerThanCanonical() public {
        IEventLedger.EventInput[] memory events = _events(1, 2);
        bytes memory data = bytes.concat(abi.encodeCall(ledger.recordBatch, (events, 1, sig)), new bytes(32));
        uint256 size = _size(events);
        vm.prank(oracleA);
        (bool ok, bytes memory ret) = address(ledger).call(data);
        assertFalse(ok);
        assertEq(
            ret,
            abi.encodeWithSelector(
                IEventLedger.LedgerNonCanonicalBatch.selector, size + 3492 + 32, size + 3492
            )
        );
        assertEq(ledger.lastSeq(oracleA), 0);
    }

    /// @dev Attack: every event's payload offset aliased to one 4096-byte payload, so the calldata is
    /// small while the logs are huge. The size counts decoded payloads, so the bound still holds.
    function test_RevertWhen_AliasedPayloadsExceedBytes() public {
        uint256 count = 40; // 40 * 4288 = 171,520 decoded bytes from ~12 KB of calldata
        bytes memory payload = PqFixtures.bytesOf(5, 4096);
        // head: selector, events offset (0x60), keyEpoch, signature offset
        bytes memory eventsEnc = abi.encode(count);
        uint256 tuplesStart = 32 * count; // offsets are relative to the start of the tuple offsets
        for (uint256 i; i < count; ++i) {
            eventsEnc = bytes.concat(eventsEnc, abi.encode(tuplesStart + 128 * i));
        }
        uint256 payloadAt = 128 * count; // shared payload right after all tuple heads, relative to tuple i
        for (uint256 i; i < count; ++i) {
            // each tuple: seq, kind, node, payload offset relative to the tuple's start
            eventsEnc = bytes.concat(eventsEnc, abi.encode(uint64(i + 1), uint8(0), bytes32(0), payloadAt - 128 * i));
        }
        eventsEnc = bytes.concat(eventsEnc, abi.encode(payload.length), payload);
        bytes memory sigEnc = bytes.concat(abi.encode(sig.length), sig, new bytes(19));
        bytes memory data = bytes.concat(
            IEventLedger.recordBatch.selector, abi.encode(uint256(0x60), uint256(1), uint256(0x60 + eventsEnc.length)),
            eventsEnc, sigEnc
        );
        assertLt(data.length, 20_000);
        vm.prank(oracleA);
        (bool ok, bytes memory ret) = address(ledger).call(data);
        assertFalse(ok);
        assertEq(ret, abi.encodeWithSelector(IEventLedger.LedgerBatchBytesTooLarge.selector, count * 4288, 131_072));
    }

    // ---- per-oracle rate limit ------------------------------------------------------------------

    /// @dev Attack: many small batches in one block. The ninth is refused; the next block takes it.
    function test_RevertWhen_MoreThanEightBatchesInABlock() public {
        for (uint64 i; i < 8; ++i) {
            _record(oracleA, _events(i + 1, 1));
        }
        vm.expectRevert(
            abi.encodeWithSelector(IEventLedger.LedgerRateLimited.selector, oracleA, uint64(block.number), 9, 9 * 256)
        );
        _record(oracleA, _events(9, 1));
        _record(oracleB, _events(1, 1)); // another oracle's budget is its own
        vm.roll(block.number + 1);
        _record(oracleA, _events(9, 1)); // the same sequence numbers are still free
        assertEq(ledger.lastSeq(oracleA), 9);
        (uint64 blockNumber, uint32 batches, uint32 size) = ledger.blockUsage(oracleA);
        assertEq(blockNumber, block.number);
        assertEq(batches, 1);
        assertEq(size, 256);
    }

    /// @dev Two full batches fill the block's byte budget; a third of one event is refused.
    function test_RevertWhen_BytesPerBlockExceeded() public {
        _record(oracleA, _events(1, 512));
        _record(oracleA, _events(513, 512));
        vm.expectRevert(
            abi.encodeWithSelector(IEventLedger.LedgerRateLimited.selector, oracleA, uint64(block.number), 3, 262_400)
        );
        _record(oracleA, _events(1025, 1));
        vm.roll(block.number + 1);
        _record(oracleA, _events(1025, 1));
        assertEq(ledger.lastSeq(oracleA), 1025);
        assertEq(ledger.batchCount(), 3);
    }

    /// @dev A refused batch uses none of the budget: a batch refused for its sequence, kind or size
    /// leaves the oracle's usage of the block as it was.
    function test_RefusedBatchUsesNoBudget() public {
        _record(oracleA, _events(1, 1));
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerSequenceGap.selector, oracleA, 5, 2));
        _record(oracleA, _events(5, 1));
        (, uint32 batches, uint32 size) = ledger.blockUsage(oracleA);
        assertEq(batches, 1);
        assertEq(size, 256);
    }

    /// @dev Whatever mix of batch sizes one oracle sends in one block, the accepted ones stay within the
    /// budget and a refused one is refused for the budget only when it would exceed it.
    function testFuzz_PerBlockBudgetNeverExceeded(uint256 seed) public {
        uint64 next = 1;
        uint256 batches;
        uint256 used;
        for (uint256 k; k < 14; ++k) {
            uint256 count = bound(uint256(keccak256(abi.encode(seed, k))), 1, 512);
            IEventLedger.EventInput[] memory events = _events(next, count);
            uint256 size = _size(events);
            bool fits = batches + 1 <= 8 && used + size <= 262_144;
            if (!fits) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        IEventLedger.LedgerRateLimited.selector, oracleA, uint64(block.number), batches + 1, used + size
                    )
                );
            }
            _record(oracleA, events);
            if (fits) {
                ++batches;
                used += size;
                next += uint64(count);
            }
        }
        (, uint32 b, uint32 s) = ledger.blockUsage(oracleA);
        assertEq(b, batches);
        assertEq(s, used);
        assertLe(used, 262_144);
        assertEq(ledger.lastSeq(oracleA), next - 1);
    }

    // ---- gas: the figures in EventLedger's NatSpec -----------------------------------------------

    /// @dev Gas a transaction pays (Prague): intrinsic 21,000 + EIP-2028 calldata + execution, but at
    /// least EIP-7623's floor of 10 gas per token (zero byte 1 token, non-zero 4).
    function _txGas(bytes memory data, uint256 execution) internal pure returns (uint256) {
        uint256 zeros;
        for (uint256 i; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 nonZeros = data.length - zeros;
        uint256 standard = 21_000 + 4 * zeros + 16 * nonZeros + execution;
        uint256 floor = 21_000 + 10 * (zeros + 4 * nonZeros);
        return standard > floor ? standard : floor;
    }

    function _recordMeasured(address oracle, IEventLedger.EventInput[] memory events) internal returns (uint256) {
        bytes memory data = abi.encodeCall(ledger.recordBatch, (events, 1, sig));
        vm.prank(oracle);
        ledger.recordBatch(events, 1, sig);
        return _txGas(data, vm.lastCallGas().gasTotalUsed);
    }

    /// @dev The largest legal batches, whole-transaction gas: far below EIP-7825's 16,777,216.
    function test_GasLargestLegalBatches() public {
        uint256 big = _recordMeasured(oracleA, _withPayloads(1, 30, 4096)); // 128,640 bytes of 4 KiB payloads
        uint256 many = _recordMeasured(oracleB, _withPayloads(1, 512, 64)); // 512 events, 131,072 bytes
        address oracleC = _oracleAt(WATER, 2);
        uint256 empty = _recordMeasured(oracleC, _withPayloads(1, 512, 0)); // the most events, no payload
        console.log("tx gas: 30 x 4096-byte payloads", big);
        console.log("tx gas: 512 x 64-byte payloads", many);
        console.log("tx gas: 512 empty events", empty);
        uint256 worst = big > many ? big : many;
        worst = worst > empty ? worst : empty;
        assertLt(worst, uint256(16_777_216) / 3); // a third of the per-transaction cap at most
    }

    /// @dev The most one oracle can take of one block: its whole byte budget in two full batches, or
    /// spread over the eight batches it may send (each carrying the fixed signature and head).
    function test_GasMostOneOracleTakesPerBlock() public {
        uint256 two = _recordMeasured(oracleA, _withPayloads(1, 30, 4096)); // (operand order is unspecified)
        two += _recordMeasured(oracleA, _withPayloads(31, 30, 4096));
        uint256 eight;
        for (uint64 k; k < 8; ++k) {
            eight += _recordMeasured(oracleB, _withPayloads(1 + 7 * k, 7, 4096)); // 8 x 30,016 bytes
        }
        (uint64 blockNumber, uint32 batches,) = ledger.blockUsage(oracleB);
        assertEq(blockNumber, block.number);
        assertEq(batches, 8);
        console.log("one oracle, one block: 2 full batches", two);
        console.log("one oracle, one block: 8 batches", eight);
        assertLt(two > eight ? two : eight, 12_000_000); // < 4 % of the dev chain's 300 M-gas block
    }

    function test_RegistryIsImmutableReference() public {
        EventLedger other = new EventLedger(IRegistry(address(0xdead)));
        assertEq(address(other.registry()), address(0xdead));
    }
}
