// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Deployed, PqFixtures} from "./utils/Deployed.sol";
import {IRegistry} from "../../contracts/interfaces/IRegistry.sol";

/// Review s38b (adversarial, rotation resend). Tests named `..._CurrentBehaviour` assert the bug as it is:
/// they pass while the bug is there; invert them when it is fixed.
contract ReviewS38bTest is Deployed {
    address internal oracleA;
    address internal oracleB;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 4);
        oracleA = _oracleAt(WATER, 0);
        oracleB = _oracleAt(WATER, 1);
    }

    // review s38b finding 3: passes while the bug is there; invert when fixed.
    // rotateKey accepts the key the registry already holds: the epoch advances and a KeyRotated is logged
    // (which clears chain.rotation.rotation_owed after a reinstatement) while the possibly-stolen key stays.
    function test_RotateToTheSameKeyIsAccepted_CurrentBehaviour() public {
        bytes memory key = PqFixtures.key(777);
        vm.prank(oracleA);
        registry.rotateKey(1, key, PqFixtures.signature(1), PqFixtures.signature(2));
        bytes32 held = registry.oracle(oracleA).pqKeyHash;
        vm.prank(oracleA);
        registry.rotateKey(2, key, PqFixtures.signature(3), PqFixtures.signature(4)); // wanted: a revert
        assertEq(registry.oracle(oracleA).keyEpoch, 3);
        assertEq(registry.oracle(oracleA).pqKeyHash, held);
    }

    // review s38b finding 3 (same root): passes while the bug is there; invert when fixed.
    // Another oracle may take the key oracleA holds (copied from its KeyRotated log or from the mempool).
    function test_RotateToAnotherOraclesKeyIsAccepted_CurrentBehaviour() public {
        bytes memory key = PqFixtures.key(777);
        vm.prank(oracleA);
        registry.rotateKey(1, key, PqFixtures.signature(1), PqFixtures.signature(2));
        uint32 epochB = registry.oracle(oracleB).keyEpoch;
        vm.prank(oracleB);
        registry.rotateKey(epochB, key, PqFixtures.signature(3), PqFixtures.signature(4)); // wanted: a revert
        assertEq(registry.oracle(oracleB).pqKeyHash, registry.oracle(oracleA).pqKeyHash);
    }

    // What held: nobody rotates an oracle's key but the oracle's own account, and only while Active.
    function test_NobodyElseRotatesAnOraclesKey() public {
        uint32 epoch = registry.oracle(oracleA).keyEpoch;
        address[3] memory others = [oracleB, address(this), address(0xdead)];
        for (uint256 i; i < others.length; ++i) {
            vm.prank(others[i]);
            try registry.rotateKey(epoch, PqFixtures.key(900 + i), PqFixtures.signature(1), PqFixtures.signature(2)) {}
                catch {}
        }
        assertEq(registry.oracle(oracleA).keyEpoch, epoch); // oracleB may rotate its own, never A's
    }
}
