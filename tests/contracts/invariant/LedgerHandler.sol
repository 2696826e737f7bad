// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Vm} from "forge-std/Vm.sol";
import {Registry} from "../../../contracts/Registry.sol";
import {EventLedger} from "../../../contracts/EventLedger.sol";
import {IEventLedger} from "../../../contracts/interfaces/IEventLedger.sol";
import {IRegistry} from "../../../contracts/interfaces/IRegistry.sol";

/// @notice Sends fresh, replayed, overlapping, reordered and malformed batches from oracles (and an
/// outsider), large batches that reach the byte bound and the per-block budget, batches with junk
/// appended to their calldata, moves to later blocks, quarantines and reinstates oracles, and
/// predicts each outcome independently. Half the calls go to one oracle, so that its per-block
/// budget is reached within a run. Successful calls are counted per action in `successes`.
contract LedgerHandler is CommonBase, StdCheats, StdUtils {
    uint256 internal constant MAX_BATCH = 512;
    uint256 internal constant MAX_BATCH_BYTES = 131_072;
    uint256 internal constant MAX_BATCHES_PER_BLOCK = 8;
    uint256 internal constant MAX_BYTES_PER_BLOCK = 262_144;

    Registry internal immutable registry;
    EventLedger internal immutable ledger;
    address internal immutable council;
    address internal immutable quorum;
    address[] internal actors;
    bytes internal signature;

    mapping(address oracle => uint64) public ghost_lastSeq;
    /// @dev The ghost's own account of each oracle's usage of the current block.
    mapping(address oracle => uint256) internal ghost_block;
    mapping(address oracle => uint256) internal ghost_blockBatches;
    mapping(address oracle => uint256) internal ghost_blockBytes;
    uint256 public ghost_acceptedBatches;
    uint256 public ghost_acceptedEvents;
    uint256 public ghost_loggedEvents;
    uint256 public ghost_mismatches;
    uint256 public ghost_lastSeqDecreases;
    uint256 public ghost_replaysAttempted;
    uint256 public ghost_maxBatchesInBlock;
    uint256 public ghost_maxBytesInBlock;

    mapping(bytes32 action => uint256 count) public successes;
    bytes32[] internal _actions;

    constructor(
        Registry registry_,
        EventLedger ledger_,
        address council_,
        address quorum_,
        address[] memory actors_,
        bytes memory signature_
    ) {
        (registry, ledger, council, quorum) = (registry_, ledger_, council_, quorum_);
        actors = actors_;
        signature = signature_;
        _actions = [
            bytes32("record"),
            "recordLarge",
            "refusedBatchBytes",
            "refusedRateBatches",
            "refusedRateBytes",
            "refusedJunkCalldata",
            "nextBlock",
            "quarantine",
            "reinstate"
        ];
    }

    /// @param mode 0-3 fresh, 4 replay from an old seq, 5 overlap the last seq, 6 reorder inside the
    /// batch, 7 unknown kind
    function recordBatch(uint256 actorSeed, uint256 mode, uint256 size, uint256 gapSeed) external {
        address actor = _actor(actorSeed);
        size = bound(size, 1, 8);
        mode = mode % 8;
        uint64 last = ledger.lastSeq(actor);
        uint64 start = last + 1 + (gapSeed % 4 == 0 ? uint64(gapSeed % 5) : 0); // mostly contiguous, some gaps
        if (mode == 4) start = last == 0 ? 0 : uint64(bound(gapSeed, 0, last));
        if (mode == 5) start = last;
        if (mode >= 4 && mode <= 5) ++ghost_replaysAttempted;

        IEventLedger.EventInput[] memory events = new IEventLedger.EventInput[](size);
        for (uint256 i; i < size; ++i) {
            events[i] = IEventLedger.EventInput(start + uint64(i), uint8(i % 16), bytes32(i), abi.encode(i));
        }
        if (mode == 6 && size > 1) (events[0].seq, events[size - 1].seq) = (events[size - 1].seq, events[0].seq);
        if (mode == 7) events[size - 1].kind = 24; // one past Notice (23), the last kind
        _send(actor, events, "record");
    }

    /// @notice Contiguous batches of large payloads: many exceed MAX_BATCH_BYTES, and two or three in
    /// one block exceed the oracle's MAX_BYTES_PER_BLOCK.
    function recordLarge(uint256 actorSeed, uint256 count, uint256 length) external {
        address actor = _actor(actorSeed);
        count = bound(count, 1, 60);
        length = bound(length, 1024, 4096);
        uint64 start = ledger.lastSeq(actor) + 1;
        bytes memory payload = new bytes(length);
        IEventLedger.EventInput[] memory events = new IEventLedger.EventInput[](count);
        for (uint256 i; i < count; ++i) {
            events[i] = IEventLedger.EventInput(start + uint64(i), 0, bytes32(0), payload);
        }
        _send(actor, events, "recordLarge");
    }

    /// @notice A legal batch with junk appended to its calldata: always refused, nothing changes.
    function recordWithJunk(uint256 actorSeed, uint256 junk) external {
        address actor = _actor(actorSeed);
        junk = bound(junk, 1, 4096);
        IEventLedger.EventInput[] memory events = new IEventLedger.EventInput[](1);
        events[0] = IEventLedger.EventInput(ledger.lastSeq(actor) + 1, 0, bytes32(0), "x");
        bytes memory data = bytes.concat(abi.encodeCall(ledger.recordBatch, (events, 1, signature)), new bytes(junk));
        uint64 before = ledger.batchCount();
        vm.prank(actor);
        (bool ok,) = address(ledger).call(data);
        if (ok || ledger.batchCount() != before) ++ghost_mismatches;
        else ++successes["refusedJunkCalldata"];
    }

    /// @dev Moves on one to three blocks, one call in four, so that an oracle sends many batches per block.
    function nextBlock(uint256 blocks) external {
        if (blocks % 4 != 0) return;
        vm.roll(block.number + bound(blocks >> 2, 1, 3));
        ++successes["nextBlock"];
    }

    /// @dev One call in three quarantines, so the oracles are mostly active and reach their budgets.
    function quarantine(uint256 actorSeed) external {
        if (actorSeed % 3 != 0) return;
        actorSeed /= 3;
        vm.prank(quorum);
        try registry.quarantineOracle(actors[bound(actorSeed, 0, actors.length - 1)], "fuzz") {
            ++successes["quarantine"];
        } catch {}
    }

    function reinstate(uint256 actorSeed) external {
        vm.prank(council);
        try registry.reinstateOracle(actors[bound(actorSeed, 0, actors.length - 1)], "fuzz") {
            ++successes["reinstate"];
        } catch {}
    }

    function actorList() external view returns (address[] memory) {
        return actors;
    }

    function actions() external view returns (bytes32[] memory) {
        return _actions;
    }

    // ---- internals ------------------------------------------------------------------------------

    /// @dev Half the calls go to the first oracle, the rest spread over every actor.
    function _actor(uint256 seed) private view returns (address) {
        return seed % 2 == 0 ? actors[0] : actors[bound(seed >> 1, 0, actors.length - 1)];
    }

    function _send(address actor, IEventLedger.EventInput[] memory events, bytes32 action) private {
        uint64 last = ledger.lastSeq(actor);
        (bool expected, bytes32 refusal) = _wouldAccept(actor, events);
        vm.recordLogs();
        vm.prank(actor);
        bool accepted;
        bytes4 selector;
        try ledger.recordBatch(events, 1, signature) {
            accepted = true;
        } catch (bytes memory reason) {
            selector = bytes4(reason);
        }
        Vm.Log[] memory logs = vm.getRecordedLogs(); // also holds logs of a reverted call: count accepted only
        if (accepted) _countLogs(logs);

        if (accepted != expected) ++ghost_mismatches;
        if (!accepted && refusal != bytes32(0) && selector != _selectorOf(refusal)) ++ghost_mismatches;
        if (ledger.lastSeq(actor) < last) ++ghost_lastSeqDecreases;
        if (accepted) {
            ghost_lastSeq[actor] = events[events.length - 1].seq;
            ++ghost_acceptedBatches;
            ghost_acceptedEvents += events.length;
            _charge(actor, _size(events));
            ++successes[action];
        } else if (refusal != bytes32(0)) {
            ++successes[refusal];
        }
    }

    /// @dev The ledger's rules restated: active caller, count and bytes within bounds, seqs contiguous
    /// right after lastSeq, known kinds, and the caller's budget for this block. The refusal is named
    /// when it is one of the bounds (checked by the ledger before sequences and kinds).
    function _wouldAccept(address actor, IEventLedger.EventInput[] memory events)
        private
        view
        returns (bool, bytes32 refusal)
    {
        if (registry.oracle(actor).status != IRegistry.OracleStatus.Active) return (false, 0);
        if (events.length > MAX_BATCH) return (false, 0);
        uint256 size = _size(events);
        if (size > MAX_BATCH_BYTES) return (false, "refusedBatchBytes");
        bool sameBlock = ghost_block[actor] == block.number;
        uint256 batches = 1 + (sameBlock ? ghost_blockBatches[actor] : 0);
        uint256 used = size + (sameBlock ? ghost_blockBytes[actor] : 0);
        if (batches > MAX_BATCHES_PER_BLOCK) return (false, "refusedRateBatches");
        if (used > MAX_BYTES_PER_BLOCK) return (false, "refusedRateBytes");
        uint64 previous = ghost_lastSeq[actor];
        for (uint256 i; i < events.length; ++i) {
            if (events[i].seq != previous + 1 || events[i].kind > 16) return (false, 0);
            previous = events[i].seq;
        }
        return (true, 0);
    }

    function _selectorOf(bytes32 refusal) private pure returns (bytes4) {
        if (refusal == "refusedBatchBytes") return IEventLedger.LedgerBatchBytesTooLarge.selector;
        return IEventLedger.LedgerRateLimited.selector;
    }

    function _charge(address actor, uint256 size) private {
        if (ghost_block[actor] != block.number) {
            ghost_block[actor] = block.number;
            ghost_blockBatches[actor] = 0;
            ghost_blockBytes[actor] = 0;
        }
        uint256 batches = ++ghost_blockBatches[actor];
        uint256 used = ghost_blockBytes[actor] += size;
        if (batches > ghost_maxBatchesInBlock) ghost_maxBatchesInBlock = batches;
        if (used > ghost_maxBytesInBlock) ghost_maxBytesInBlock = used;
    }

    function _size(IEventLedger.EventInput[] memory events) private pure returns (uint256 size) {
        for (uint256 i; i < events.length; ++i) {
            size += 192 + (events[i].payload.length + 31) / 32 * 32;
        }
    }

    function _countLogs(Vm.Log[] memory logs) private {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(ledger) && logs[i].topics[0] == IEventLedger.EventRecorded.selector) {
                ++ghost_loggedEvents;
            }
        }
    }
}
