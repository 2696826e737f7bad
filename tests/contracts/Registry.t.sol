// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Deployed, PqFixtures} from "./utils/Deployed.sol";
import {Registry} from "../../contracts/Registry.sol";
import {IRegistry} from "../../contracts/interfaces/IRegistry.sol";

contract RegistryTest is Deployed {
    address internal oracleA;
    bytes32 internal nodeA;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 4);
        oracleA = _oracleAt(WATER, 0);
        nodeA = _nodeAt(WATER, 0);
    }

    // ---- deployment -----------------------------------------------------------------------------

    function test_ConstructorAddsSixSectors() public {
        bytes32[6] memory sectors = [ELECTRICITY, WATER, SEWAGE, HEALTHCARE, TRANSPORTATION, BANKING];
        for (uint256 i; i < 6; ++i) {
            vm.expectEmit(address(0xbeef));
            emit IRegistry.SectorAdded(sectors[i]);
        }
        vm.etch(address(0xbeef), "");
        deployCodeTo("Registry.sol:Registry", abi.encode(address(this)), address(0xbeef));
        for (uint256 i; i < 6; ++i) {
            assertTrue(Registry(address(0xbeef)).isSector(sectors[i]));
        }
        assertFalse(registry.isSector("gas"));
    }

    function test_WiringLeavesRolesWithCouncilAndQuorumOnly() public view {
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), address(council)));
        assertTrue(registry.hasRole(registry.GOVERNANCE_ROLE(), address(council)));
        assertTrue(registry.hasRole(registry.STATUS_ROLE(), address(quorum)));
        assertFalse(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), deployer));
        assertFalse(registry.hasRole(registry.GOVERNANCE_ROLE(), deployer));
        assertFalse(registry.hasRole(registry.STATUS_ROLE(), address(council)));
        assertEq(registry.GOVERNANCE_ROLE(), keccak256("GOVERNANCE_ROLE"));
        assertEq(registry.STATUS_ROLE(), keccak256("STATUS_ROLE"));
    }

    // ---- sectors and operators ----------------------------------------------------------------

    function test_AddSectorThroughCouncil() public {
        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.addSector, ("gas")));
        vm.expectEmit(address(registry));
        emit IRegistry.SectorAdded("gas");
        _councilExecute(id);
        assertTrue(registry.isSector("gas"));
    }

    function test_RevertWhen_AddSectorExistsOrZero() public {
        vm.startPrank(address(council));
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistrySectorExists.selector, WATER));
        registry.addSector(WATER);
        vm.expectRevert(IRegistry.RegistryZeroId.selector);
        registry.addSector(bytes32(0));
        vm.stopPrank();
    }

    function testFuzz_RevertWhen_NonGovernanceChangesMembership(address caller) public {
        vm.assume(caller != address(council));
        bytes32 role = registry.GOVERNANCE_ROLE();
        vm.startPrank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        registry.addSector("gas");
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        registry.addOperator("op", WATER);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        registry.removeOracle(oracleA, "x");
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        registry.addNode("n", WATER, "k", 1, new bytes32[](0));
        vm.stopPrank();
    }

    function test_AddOperator() public {
        vm.expectEmit(address(registry));
        emit IRegistry.OperatorAdded("utility-2", WATER);
        _asCouncil(address(registry), abi.encodeCall(registry.addOperator, ("utility-2", WATER)));
        assertEq(registry.operatorSector("utility-2"), WATER);
    }

    function test_RevertWhen_AddOperatorInvalid() public {
        bytes32 op = _operatorOf(WATER);
        vm.startPrank(address(council));
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOperatorExists.selector, op));
        registry.addOperator(op, ELECTRICITY);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownSector.selector, bytes32("gas")));
        registry.addOperator("x", "gas");
        vm.expectRevert(IRegistry.RegistryZeroId.selector);
        registry.addOperator(bytes32(0), WATER);
        vm.stopPrank();
    }

    // ---- oracles ------------------------------------------------------------------------------

    function test_RegisterOracleThroughCouncilStoresHashAndLogsKey() public {
        address account = makeAddr("new-oracle");
        bytes memory key = PqFixtures.key(42);
        bytes memory pop = PqFixtures.signature(42);
        uint256 id = _councilReady(
            address(registry), abi.encodeCall(registry.registerOracle, (account, WATER, _operatorOf(WATER), key, pop))
        );
        vm.expectEmit(address(registry));
        emit IRegistry.OracleRegistered(account, WATER, _operatorOf(WATER), 1, keccak256(key), key, pop);
        _councilExecute(id);
        IRegistry.Oracle memory o = registry.oracle(account);
        assertEq(o.sector, WATER);
        assertEq(o.operator, _operatorOf(WATER));
        assertEq(o.pqKeyHash, keccak256(key));
        assertEq(o.keyEpoch, 1);
        assertEq(uint8(o.status), uint8(IRegistry.OracleStatus.Active));
        assertEq(registry.activeOracleCount(WATER), 5);
        assertEq(registry.oracleSlots(WATER), 5);
        assertTrue(registry.isActiveOracle(account, WATER));
        assertFalse(registry.isActiveOracle(account, ELECTRICITY));
    }

    function test_RevertWhen_RegisterOracleInvalid() public {
        bytes memory key = PqFixtures.key(1);
        bytes32 op = _operatorOf(WATER);
        vm.startPrank(address(council));
        vm.expectRevert(IRegistry.RegistryZeroId.selector);
        registry.registerOracle(address(0), WATER, op, key, "");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownSector.selector, bytes32("gas")));
        registry.registerOracle(address(1), "gas", op, key, "");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownOperator.selector, bytes32("nobody")));
        registry.registerOracle(address(1), WATER, "nobody", key, "");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownOperator.selector, op));
        registry.registerOracle(address(1), ELECTRICITY, op, key, ""); // operator of another sector
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOracleExists.selector, oracleA));
        registry.registerOracle(oracleA, WATER, op, key, "");
        registry.removeOracle(oracleA, "retired");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOracleExists.selector, oracleA));
        registry.registerOracle(oracleA, WATER, op, key, ""); // never re-registered
        vm.stopPrank();
    }

    function testFuzz_RevertWhen_PublicKeyLengthWrong(uint256 length) public {
        length = bound(length, 0, 4000);
        vm.assume(length != PqFixtures.KEY_LENGTH);
        bytes32 op = _operatorOf(WATER);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryInvalidPublicKey.selector, length));
        vm.prank(address(council));
        registry.registerOracle(address(1), WATER, op, new bytes(length), "");
    }

    function test_RevertWhen_SectorFullAndSlotFreedByRemoval() public {
        _addOracles(WATER, 4, 64);
        assertEq(registry.oracleSlots(WATER), 64);
        bytes memory call65 = _registerOracleCall(WATER, 64);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistrySectorFull.selector, WATER, 64));
        _asCouncil(address(registry), call65);
        // quarantine keeps the slot; removal frees it
        vm.prank(address(quorum));
        registry.quarantineOracle(oracleA, "intrusion");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistrySectorFull.selector, WATER, 64));
        _asCouncil(address(registry), call65);
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (oracleA, "retired")));
        _asCouncil(address(registry), call65);
        assertEq(registry.oracleSlots(WATER), 64);
        assertEq(registry.activeOracleCount(WATER), 64);
    }

    function test_RemoveOracleUpdatesCounts() public {
        vm.expectEmit(address(registry));
        emit IRegistry.OracleStatusChanged(
            oracleA, IRegistry.OracleStatus.Active, IRegistry.OracleStatus.Removed, "r", 2
        );
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (oracleA, "r")));
        assertEq(registry.activeOracleCount(WATER), 3);
        assertEq(registry.oracleSlots(WATER), 3);
        address b = _oracleAt(WATER, 1);
        vm.prank(address(quorum));
        registry.quarantineOracle(b, "q");
        assertEq(registry.activeOracleCount(WATER), 2);
        _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (b, "r")));
        assertEq(registry.activeOracleCount(WATER), 2);
        assertEq(registry.oracleSlots(WATER), 2);
    }

    function test_RevertWhen_RemoveOracleUnknownOrRemoved() public {
        vm.startPrank(address(council));
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownOracle.selector, address(7)));
        registry.removeOracle(address(7), "r");
        registry.removeOracle(oracleA, "r");
        vm.expectRevert(
            abi.encodeWithSelector(IRegistry.RegistryOracleNotActive.selector, oracleA, IRegistry.OracleStatus.Removed)
        );
        registry.removeOracle(oracleA, "r");
        vm.stopPrank();
    }

    function test_QuarantineAndReinstate() public {
        vm.expectEmit(address(registry));
        emit IRegistry.OracleStatusChanged(
            oracleA, IRegistry.OracleStatus.Active, IRegistry.OracleStatus.Quarantined, "bad-sig", 2
        );
        vm.prank(address(quorum));
        registry.quarantineOracle(oracleA, "bad-sig");
        assertEq(registry.activeOracleCount(WATER), 3);
        assertFalse(registry.isActiveOracle(oracleA, WATER));

        uint256 id = _councilReady(address(registry), abi.encodeCall(registry.reinstateOracle, (oracleA, "ok")));
        vm.expectEmit(address(registry));
        emit IRegistry.OracleStatusChanged(
            oracleA, IRegistry.OracleStatus.Quarantined, IRegistry.OracleStatus.Active, "ok", 3
        );
        _councilExecute(id);
        assertEq(registry.activeOracleCount(WATER), 4);
        assertEq(registry.oracle(oracleA).statusEpoch, 3);
        assertEq(registry.oracleSlots(WATER), 4); // a quarantine never left the membership
    }

    function test_RevertWhen_QuarantineOrReinstateInvalid() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(council), registry.STATUS_ROLE()
            )
        );
        vm.prank(address(council)); // governance cannot bypass the quorum
        registry.quarantineOracle(oracleA, "q");
        vm.expectRevert(
            abi.encodeWithSelector(
                IRegistry.RegistryOracleNotQuarantined.selector, oracleA, IRegistry.OracleStatus.Active
            )
        );
        vm.prank(address(council));
        registry.reinstateOracle(oracleA, "x");
        vm.startPrank(address(quorum));
        registry.quarantineOracle(oracleA, "q");
        vm.expectRevert(
            abi.encodeWithSelector(
                IRegistry.RegistryOracleNotActive.selector, oracleA, IRegistry.OracleStatus.Quarantined
            )
        );
        registry.quarantineOracle(oracleA, "q");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownOracle.selector, address(9)));
        registry.quarantineOracle(address(9), "q");
        vm.stopPrank();
    }

    function test_RotateKey() public {
        bytes memory key = PqFixtures.key(777);
        bytes memory oldSig = PqFixtures.signature(1);
        bytes memory newSig = PqFixtures.signature(2);
        vm.expectEmit(address(registry));
        emit IRegistry.KeyRotated(oracleA, 1, 2, keccak256(key), key, oldSig, newSig);
        vm.prank(oracleA);
        registry.rotateKey(1, key, oldSig, newSig);
        IRegistry.Oracle memory o = registry.oracle(oracleA);
        assertEq(o.keyEpoch, 2);
        assertEq(o.pqKeyHash, keccak256(key));
        vm.prank(oracleA);
        registry.rotateKey(2, PqFixtures.key(778), oldSig, newSig);
        assertEq(registry.oracle(oracleA).keyEpoch, 3);
    }

    function test_RevertWhen_RotateKeyInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownOracle.selector, address(this)));
        registry.rotateKey(1, PqFixtures.key(1), "", "");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryInvalidPublicKey.selector, 1951));
        vm.prank(oracleA);
        registry.rotateKey(1, new bytes(1951), "", "");
        // the old key's authorisation and the new key's possession proof must at least be ML-DSA-65 sized
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryInvalidSignature.selector, 0));
        vm.prank(oracleA);
        registry.rotateKey(1, PqFixtures.key(1), "", PqFixtures.signature(2));
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryInvalidSignature.selector, 3308));
        vm.prank(oracleA);
        registry.rotateKey(1, PqFixtures.key(1), PqFixtures.signature(1), new bytes(3308));
        vm.prank(address(quorum));
        registry.quarantineOracle(oracleA, "q");
        vm.expectRevert(
            abi.encodeWithSelector(
                IRegistry.RegistryOracleNotActive.selector, oracleA, IRegistry.OracleStatus.Quarantined
            )
        );
        vm.prank(oracleA);
        registry.rotateKey(1, PqFixtures.key(1), "", "");
    }

    function test_RevertWhen_RotateKeyFromAnotherEpoch() public {
        bytes memory key = PqFixtures.key(777);
        bytes memory sig = PqFixtures.signature(1);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyEpochMismatch.selector, oracleA, 2, 1));
        vm.prank(oracleA);
        registry.rotateKey(2, key, sig, sig); // signed for epochs the registry is not at
        vm.prank(oracleA);
        registry.rotateKey(1, key, sig, sig);
        // the same rotation resent (an oracle restarted while it was pending) cannot rotate twice
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyEpochMismatch.selector, oracleA, 1, 2));
        vm.prank(oracleA);
        registry.rotateKey(1, key, sig, sig);
        IRegistry.Oracle memory o = registry.oracle(oracleA);
        assertEq(o.keyEpoch, 2);
        assertEq(o.pqKeyHash, keccak256(key));
    }

    /// @dev Any sequence of rotations, each naming some epoch to rotate from (stale, current or
    /// ahead): the epoch advances by exactly the calls that named the current one, one each.
    function testFuzz_RotateKeyNeverAdvancesPastItsSuccessfulCalls(uint8[16] calldata offsets) public {
        bytes memory sig = PqFixtures.signature(1);
        uint32 succeeded;
        for (uint256 i; i < offsets.length; ++i) {
            uint32 current = registry.oracle(oracleA).keyEpoch;
            // offsets 0..3 name the current epoch (keyEpoch starts at 1), 4 the previous, 5 zero, 6..7 a later one
            uint8 offset = offsets[i] % 8;
            uint32 from = offset < 4 ? current : offset == 4 ? current - 1 : offset == 5 ? 0 : current + (offset - 5);
            vm.prank(oracleA);
            try registry.rotateKey(from, PqFixtures.key(1000 + i), sig, sig) {
                assertEq(from, current);
                ++succeeded;
            } catch (bytes memory reason) {
                assertTrue(from != current);
                assertEq(reason, abi.encodeWithSelector(IRegistry.RegistryKeyEpochMismatch.selector, oracleA, from, current));
            }
            assertEq(registry.oracle(oracleA).keyEpoch, 1 + succeeded);
        }
    }

    // ---- nodes --------------------------------------------------------------------------------

    function test_AddNodeWithDependencies() public {
        bytes32[] memory deps = new bytes32[](2);
        (deps[0], deps[1]) = (nodeA, _nodeAt(WATER, 1));
        vm.expectEmit(address(registry));
        emit IRegistry.NodeAdded("hospital-1", HEALTHCARE, "hospital", 5, deps);
        _asCouncil(address(registry), abi.encodeCall(registry.addNode, ("hospital-1", HEALTHCARE, "hospital", 5, deps)));
        IRegistry.Node memory n = registry.node("hospital-1");
        assertEq(n.sector, HEALTHCARE);
        assertEq(n.kind, bytes32("hospital"));
        assertEq(n.criticality, 5);
        assertEq(uint8(n.status), uint8(IRegistry.NodeStatus.Active));
        assertEq(registry.nodeDependencies("hospital-1"), deps);
        assertEq(registry.sectorNodeCount(HEALTHCARE), 1);
        assertEq(registry.sectorNodeCount(WATER), 4);
    }

    function test_RevertWhen_AddNodeInvalid() public {
        bytes32[] memory none = new bytes32[](0);
        bytes32[] memory unknown = new bytes32[](1);
        unknown[0] = "ghost";
        vm.startPrank(address(council));
        vm.expectRevert(IRegistry.RegistryZeroId.selector);
        registry.addNode(bytes32(0), WATER, "k", 1, none);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownSector.selector, bytes32("gas")));
        registry.addNode("n", "gas", "k", 1, none);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryNodeExists.selector, nodeA));
        registry.addNode(nodeA, WATER, "k", 1, none);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownNode.selector, bytes32("ghost")));
        registry.addNode("n", WATER, "k", 1, unknown);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryTooManyDependencies.selector, 17, 16));
        registry.addNode("n", WATER, "k", 1, new bytes32[](17));
        vm.stopPrank();
    }

    function testFuzz_RevertWhen_CriticalityOutOfRange(uint8 criticality) public {
        vm.assume(criticality == 0 || criticality > 5);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryInvalidCriticality.selector, criticality));
        vm.prank(address(council));
        registry.addNode("n", WATER, "k", criticality, new bytes32[](0));
    }

    function test_NodeLifecycleUpdatesOutOfServiceCount() public {
        vm.startPrank(address(quorum));
        vm.expectEmit(address(registry));
        emit IRegistry.NodeStatusChanged(nodeA, WATER, IRegistry.NodeStatus.Active, IRegistry.NodeStatus.Isolated, 2);
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Isolated);
        assertEq(registry.sectorIsolatedCount(WATER), 1);
        assertEq(registry.node(nodeA).statusEpoch, 2);
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Repairing);
        assertEq(registry.sectorIsolatedCount(WATER), 1);
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Active);
        assertEq(registry.sectorIsolatedCount(WATER), 0);
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Isolated);
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Active); // override path
        assertEq(registry.sectorIsolatedCount(WATER), 0);
        vm.stopPrank();
    }

    function testFuzz_RevertWhen_IllegalStatusTransition(uint8 start, uint8 to) public {
        start = uint8(bound(start, 1, 3));
        to = uint8(bound(to, 0, 3));
        vm.startPrank(address(quorum));
        if (start >= 2) registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Isolated);
        if (start == 3) registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Repairing);
        bool legal = (start == 1 && to == 2) || (start == 2 && (to == 3 || to == 1)) || (start == 3 && to == 1);
        if (!legal) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IRegistry.RegistryInvalidStatusTransition.selector,
                    nodeA,
                    IRegistry.NodeStatus(start),
                    IRegistry.NodeStatus(to)
                )
            );
        }
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus(to));
        vm.stopPrank();
        uint256 expectedOut = legal ? (to == 1 ? 0 : 1) : (start == 1 ? 0 : 1);
        assertEq(registry.sectorIsolatedCount(WATER), expectedOut);
    }

    function test_RevertWhen_SetNodeStatusUnknownOrZero() public {
        vm.startPrank(address(quorum));
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryUnknownNode.selector, bytes32("ghost")));
        registry.setNodeStatus("ghost", IRegistry.NodeStatus.Isolated);
        vm.expectRevert(IRegistry.RegistryZeroId.selector);
        registry.setNodeStatus(bytes32(0), IRegistry.NodeStatus.Isolated);
        vm.stopPrank();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), registry.STATUS_ROLE()
            )
        );
        registry.setNodeStatus(nodeA, IRegistry.NodeStatus.Isolated);
    }

    /// @dev Random quarantine/reinstate/remove steps on four oracles: the incremental active count
    /// always equals a recount of statuses.
    function testFuzz_ActiveCountMatchesRecount(uint8[12] memory ops) public {
        for (uint256 k; k < ops.length; ++k) {
            address who = _oracleAt(WATER, ops[k] % 4);
            IRegistry.OracleStatus s = registry.oracle(who).status;
            uint256 op = (ops[k] / 4) % 3;
            if (op == 0 && s == IRegistry.OracleStatus.Active) {
                vm.prank(address(quorum));
                registry.quarantineOracle(who, "q");
            } else if (op == 1 && s == IRegistry.OracleStatus.Quarantined) {
                _asCouncil(address(registry), abi.encodeCall(registry.reinstateOracle, (who, "r")));
            } else if (op == 2 && s != IRegistry.OracleStatus.Removed) {
                _asCouncil(address(registry), abi.encodeCall(registry.removeOracle, (who, "x")));
            }
            uint256 active;
            uint256 slots;
            for (uint256 i; i < 4; ++i) {
                IRegistry.OracleStatus si = registry.oracle(_oracleAt(WATER, i)).status;
                if (si == IRegistry.OracleStatus.Active) ++active;
                if (si != IRegistry.OracleStatus.Removed) ++slots;
            }
            assertEq(registry.activeOracleCount(WATER), active);
            assertEq(registry.oracleSlots(WATER), slots);
        }
    }
}
