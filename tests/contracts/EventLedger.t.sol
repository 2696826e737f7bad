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
        assertEq(ledger.MAX_BATCH(), 1024);
        assertEq(ledger.MAX_PAYLOAD(), 4096);
        assertEq(ledger.PQ_SIGNATURE_LENGTH(), 3309);
        assertEq(address(ledger.registry()), address(registry));
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
        registry.rotateKey(PqFixtures.key(99), sig, sig);
        vm.expectEmit(address(ledger));
        emit IEventLedger.BatchSigned(oracleA, 1, WATER, 2, 1, 1, 1, sig);
        _recordAt(oracleA, _events(1, 1), 2);
    }

    function test_RevertWhen_SignedWithAnOldKeyEpoch() public {
        vm.prank(oracleA);
        registry.rotateKey(PqFixtures.key(99), sig, sig);
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
        IEventLedger.EventInput[] memory big = new IEventLedger.EventInput[](1025);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerBatchTooLarge.selector, 1025, 1024));
        _record(oracleA, big);
    }

    function test_MaxBatchAccepted() public {
        _record(oracleA, _events(1, 1024));
        assertEq(ledger.lastSeq(oracleA), 1024);
    }

    function testFuzz_RevertWhen_SignatureLengthWrong(uint256 length) public {
        length = bound(length, 0, 5000);
        vm.assume(length != 3309);
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerInvalidSignatureLength.selector, length));
        vm.prank(oracleA);
        ledger.recordBatch(_events(1, 1), 1, new bytes(length));
    }

    function testFuzz_RevertWhen_UnknownKind(uint8 kind, uint8 position) public {
        kind = uint8(bound(kind, 17, 255));
        IEventLedger.EventInput[] memory events = _events(1, 4);
        events[position % 4].kind = kind;
        vm.expectRevert(abi.encodeWithSelector(IEventLedger.LedgerUnknownKind.selector, kind));
        _record(oracleA, events);
    }

    function test_AllSeventeenKindsAccepted() public {
        IEventLedger.EventInput[] memory events = _events(1, 17);
        for (uint8 k; k < 17; ++k) {
            events[k].kind = k;
        }
        _record(oracleA, events);
        assertEq(uint8(type(IEventLedger.EventKind).max), 16);
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

    function test_RegistryIsImmutableReference() public {
        EventLedger other = new EventLedger(IRegistry(address(0xdead)));
        assertEq(address(other.registry()), address(0xdead));
    }
}
