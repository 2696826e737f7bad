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
/// outsider), quarantines and reinstates oracles, and predicts each outcome independently.
contract LedgerHandler is CommonBase, StdCheats, StdUtils {
    Registry internal immutable registry;
    EventLedger internal immutable ledger;
    address internal immutable council;
    address internal immutable quorum;
    address[] internal actors;
    bytes internal signature;

    mapping(address oracle => uint64) public ghost_lastSeq;
    uint256 public ghost_acceptedBatches;
    uint256 public ghost_acceptedEvents;
    uint256 public ghost_loggedEvents;
    uint256 public ghost_mismatches;
    uint256 public ghost_lastSeqDecreases;
    uint256 public ghost_replaysAttempted;

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
    }

    /// @param mode 0-3 fresh, 4 replay from an old seq, 5 overlap the last seq, 6 reorder inside the
    /// batch, 7 unknown kind
    function recordBatch(uint256 actorSeed, uint256 mode, uint256 size, uint256 gapSeed) external {
        address actor = actors[bound(actorSeed, 0, actors.length - 1)];
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
        if (mode == 7) events[size - 1].kind = 17;

        bool expected = _wouldAccept(actor, events);
        vm.recordLogs();
        vm.prank(actor);
        bool accepted;
        try ledger.recordBatch(events, 1, signature) {
            accepted = true;
        } catch {}
        Vm.Log[] memory logs = vm.getRecordedLogs(); // also holds logs of a reverted call: count accepted only
        if (accepted) _countLogs(logs);

        if (accepted != expected) ++ghost_mismatches;
        uint64 now_ = ledger.lastSeq(actor);
        if (now_ < last) ++ghost_lastSeqDecreases;
        if (accepted) {
            ghost_lastSeq[actor] = events[size - 1].seq;
            ++ghost_acceptedBatches;
            ghost_acceptedEvents += size;
        }
    }

    function quarantine(uint256 actorSeed) external {
        vm.prank(quorum);
        try registry.quarantineOracle(actors[bound(actorSeed, 0, actors.length - 1)], "fuzz") {} catch {}
    }

    function reinstate(uint256 actorSeed) external {
        vm.prank(council);
        try registry.reinstateOracle(actors[bound(actorSeed, 0, actors.length - 1)], "fuzz") {} catch {}
    }

    function actorList() external view returns (address[] memory) {
        return actors;
    }

    /// @dev The ledger's rules restated: active caller, seqs contiguous right after lastSeq,
    /// known kinds (size and payload are always within bounds here).
    function _wouldAccept(address actor, IEventLedger.EventInput[] memory events) private view returns (bool) {
        if (registry.oracle(actor).status != IRegistry.OracleStatus.Active) return false;
        uint64 previous = ghost_lastSeq[actor];
        for (uint256 i; i < events.length; ++i) {
            if (events[i].seq != previous + 1 || events[i].kind > 16) return false;
            previous = events[i].seq;
        }
        return true;
    }

    function _countLogs(Vm.Log[] memory logs) private {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(ledger) && logs[i].topics[0] == IEventLedger.EventRecorded.selector) {
                ++ghost_loggedEvents;
            }
        }
    }
}
