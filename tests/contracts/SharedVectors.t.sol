// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

/// @notice Solidity and `keys/` agree byte for byte on what gets signed: the event hash, the batch
/// message, and the event ids that isolation proposals cite as evidence. The vectors are written
/// by `tests/keys/test_keys_vectors.py` and read here, so a change on either side fails a test.
contract SharedVectorsTest is Test {
    string internal json;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/tests/vectors/hybrid_signature.json"));
    }

    function _eventHash(uint256 i) internal view returns (bytes32) {
        string memory at = string.concat(".events[", vm.toString(i), "]");
        uint64 seq = uint64(vm.parseJsonUint(json, string.concat(at, ".seq")));
        uint8 kind = uint8(vm.parseJsonUint(json, string.concat(at, ".kind")));
        bytes32 node = vm.parseJsonBytes32(json, string.concat(at, ".node"));
        bytes memory payload = vm.parseJsonBytes(json, string.concat(at, ".payload"));
        return keccak256(abi.encode(seq, kind, node, keccak256(payload)));
    }

    function test_EventHashesMatchKeys() public view {
        uint256 checked;
        for (uint256 i; vm.keyExistsJson(json, string.concat(".events[", vm.toString(i), "]")); ++i) {
            bytes32 expected = vm.parseJsonBytes32(json, string.concat(".events[", vm.toString(i), "].event_hash"));
            assertEq(_eventHash(i), expected);
            ++checked;
        }
        assertGt(checked, 0);
    }

    function test_BatchMessageMatchesKeys() public view {
        uint256[] memory picked = vm.parseJsonUintArray(json, ".batch.events");
        bytes memory hashes;
        for (uint256 i; i < picked.length; ++i) {
            hashes = bytes.concat(hashes, _eventHash(picked[i]));
        }
        bytes memory message = bytes.concat(
            "QEAIMS/v1/event-batch\x00",
            abi.encode(
                vm.parseJsonUint(json, ".inputs.chain_id"),
                vm.parseJsonAddress(json, ".inputs.ledger"),
                vm.parseJsonAddress(json, ".inputs.oracle"),
                uint32(vm.parseJsonUint(json, ".batch.key_epoch")),
                uint64(vm.parseJsonUint(json, ".batch.first_seq")),
                uint64(vm.parseJsonUint(json, ".batch.last_seq")),
                uint32(vm.parseJsonUint(json, ".batch.count")),
                keccak256(hashes)
            )
        );
        assertEq(message, vm.parseJsonBytes(json, ".batch.message"));
        assertEq(keccak256(message), vm.parseJsonBytes32(json, ".batch.message_hash"));
    }

    function test_EventIdsMatchKeys() public view {
        for (uint256 i; vm.keyExistsJson(json, string.concat(".event_ids[", vm.toString(i), "]")); ++i) {
            string memory at = string.concat(".event_ids[", vm.toString(i), "]");
            address oracle = vm.parseJsonAddress(json, string.concat(at, ".oracle"));
            uint64 seq = uint64(vm.parseJsonUint(json, string.concat(at, ".seq")));
            bytes32 id = bytes32((uint256(uint160(oracle)) << 64) | seq);
            assertEq(id, vm.parseJsonBytes32(json, string.concat(at, ".event_id")));
        }
    }
}
