// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @notice Telemetry leaves and proofs made by `oracles/merkle.py` verify with OpenZeppelin's
/// `MerkleProof`. The vectors are written by `tests/oracles/test_merkle_vectors.py` and read here:
/// each leaf is rebuilt from the reading's stored bytes (scheme `qeaims-telemetry-leaf-v1`):
/// `keccak256(bytes.concat(keccak256(abi.encode(bytes32 assetId, uint64 timestampMs, keccak256(body)))))`.
contract MerkleVectorsTest is Test {
    string internal json;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/tests/vectors/merkle.json"));
    }

    function _at(uint256 t, uint256 l, string memory key) internal pure returns (string memory) {
        return string.concat(".trees[", vm.toString(t), "].leaves[", vm.toString(l), "].", key);
    }

    function _leafFromBody(uint256 t, uint256 l) internal view returns (bytes32) {
        bytes memory body = vm.parseJsonBytes(json, _at(t, l, "body"));
        bytes32 digest = keccak256(body);
        assertEq(digest, vm.parseJsonBytes32(json, _at(t, l, "digest")));
        bytes32 assetId = vm.parseJsonBytes32(json, _at(t, l, "asset_id"));
        uint64 timestampMs = uint64(vm.parseJsonUint(json, _at(t, l, "timestamp_ms")));
        return keccak256(bytes.concat(keccak256(abi.encode(assetId, timestampMs, digest))));
    }

    function _proof(uint256 t, uint256 l) internal view returns (bytes32[] memory) {
        return vm.parseJsonBytes32Array(json, _at(t, l, "proof"));
    }

    function test_EveryLeafIsRebuiltFromItsReadingAndVerifies() public view {
        assertEq(vm.parseJsonString(json, ".scheme"), "qeaims-telemetry-leaf-v1");
        uint256 checked;
        for (uint256 t; vm.keyExistsJson(json, string.concat(".trees[", vm.toString(t), "]")); ++t) {
            bytes32 root = vm.parseJsonBytes32(json, string.concat(".trees[", vm.toString(t), "].root"));
            uint256 size = vm.parseJsonUint(json, string.concat(".trees[", vm.toString(t), "].size"));
            for (uint256 l; l < size; ++l) {
                bytes32 leaf = _leafFromBody(t, l);
                assertEq(leaf, vm.parseJsonBytes32(json, _at(t, l, "leaf")));
                bytes32[] memory proof = _proof(t, l);
                assertTrue(MerkleProof.verify(proof, root, leaf));
                assertEq(MerkleProof.processProof(proof, leaf), root);
                ++checked;
            }
        }
        assertEq(checked, 1 + 2 + 3 + 7);
    }

    function test_TamperedReadingOrBorrowedProofFails() public view {
        // tree 3 holds 7 leaves: change one byte of a reading, or borrow another leaf's proof
        bytes32 root = vm.parseJsonBytes32(json, ".trees[3].root");
        bytes memory body = vm.parseJsonBytes(json, _at(3, 4, "body"));
        body[body.length - 3] = bytes1(uint8(body[body.length - 3]) ^ 0x01);
        bytes32 tampered = keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        vm.parseJsonBytes32(json, _at(3, 4, "asset_id")),
                        uint64(vm.parseJsonUint(json, _at(3, 4, "timestamp_ms"))),
                        keccak256(body)
                    )
                )
            )
        );
        assertFalse(MerkleProof.verify(_proof(3, 4), root, tampered));
        assertFalse(MerkleProof.verify(_proof(3, 5), root, _leafFromBody(3, 4)));
        // the inner (single-hashed) value is not a leaf: double hashing keeps it out of the tree
        bytes32 inner = keccak256(
            abi.encode(
                vm.parseJsonBytes32(json, _at(3, 4, "asset_id")),
                uint64(vm.parseJsonUint(json, _at(3, 4, "timestamp_ms"))),
                vm.parseJsonBytes32(json, _at(3, 4, "digest"))
            )
        );
        assertFalse(MerkleProof.verify(_proof(3, 4), root, inner));
    }
}
