// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Deployed} from "../utils/Deployed.sol";
import {InvariantMetrics} from "../utils/InvariantMetrics.sol";
import {QuorumHandler} from "./QuorumHandler.sol";
import {IRegistry} from "../../../contracts/interfaces/IRegistry.sol";
import {IIsolationQuorum} from "../../../contracts/interfaces/IIsolationQuorum.sol";

/// @notice Invariants of the isolation quorum (docs/TRUST.md). The handler reaches the dangerous
/// states: membership churn (register, remove, reinstate), quarantines, key rotations, repairs,
/// reintegrations, overrides, floor/cap/window/rate changes, stale and replayed ballots, time.
/// `FOUNDRY_PROFILE=deep` runs ≥ 100,000 calls per invariant.
contract QuorumInvariants is Deployed {
    QuorumHandler internal handler;

    function setUp() public override {
        super.setUp();
        _seedSectorViaCouncil(WATER, 4, 8);
        _seedSector(ELECTRICITY, 7, 4);
        _seedSector(SEWAGE, 0, 3);
        address controller = makeAddr("controller");
        _councilRun(address(quorum), abi.encodeCall(quorum.grantRole, (quorum.REPAIR_ROLE(), controller)));
        // the quarantine rate at its loosest, so that the handler reaches many quarantines; it varies it
        _asCouncil(address(quorum), abi.encodeCall(quorum.setQuarantineRate, (3, 1 hours)));

        address[] memory actors = new address[](17);
        for (uint256 i; i < 4; ++i) {
            actors[i] = _oracleAt(WATER, i);
        }
        for (uint256 i; i < 7; ++i) {
            actors[4 + i] = _oracleAt(ELECTRICITY, i);
        }
        for (uint256 i; i < 5; ++i) {
            actors[11 + i] = _oracleAt(SEWAGE, i); // spares: not registered yet
        }
        actors[16] = makeAddr("outsider");
        bytes32[] memory nodes = new bytes32[](15);
        for (uint256 i; i < 8; ++i) {
            nodes[i] = _nodeAt(WATER, i);
        }
        for (uint256 i; i < 3; ++i) {
            nodes[8 + i] = _nodeAt(SEWAGE, i);
        }
        for (uint256 i; i < 4; ++i) {
            nodes[11 + i] = _nodeAt(ELECTRICITY, i);
        }
        handler = new QuorumHandler(
            registry, quorum, address(council), controller, actors, nodes, SEWAGE, _operatorOf(SEWAGE)
        );
        targetContract(address(handler));
    }

    /// Every status transition of every node and oracle has a cause that allowed it: a quorum whose
    /// independent recount meets the requirement within the target's lifecycle, the repair role,
    /// a governance override or a council membership change. No vote was accepted on a proposal that
    /// was not Open (closed by its target's status change, expired or executed); nothing executed
    /// below the floor; the isolation cap and the quarantine rate held for every quorum decision.
    /// (One campaign checks all of these: each invariant function costs a whole campaign.)
    function invariant_everyTransitionJustified() public view {
        assertEq(handler.ghost_unjustifiedTransitions(), 0, "a status changed without a cause that allows it");
        assertEq(handler.ghost_staleVotes(), 0, "a vote was accepted on a proposal that was not open");
        assertEq(handler.ghost_floorBreaches(), 0, "a sector acted below its floor");
        assertEq(handler.ghost_capBreaches(), 0, "the isolation cap was exceeded");
        assertEq(handler.ghost_rateBreaches(), 0, "the quarantine rate was exceeded");
    }

    /// Any two quorums that executed in one sector under one membership share at least f+1 oracles,
    /// so at least one honest oracle whenever at most f are Byzantine; and the vote accounting below.
    function invariant_quorumsIntersectAndVotesCountOnce() public view {
        _votesCountedOnceAndRequirementNeverFalls();
        uint256 count = handler.executionCount();
        for (uint256 i; i < count; ++i) {
            QuorumHandler.Execution memory a = handler.execution(i);
            for (uint256 j = i + 1; j < count; ++j) {
                QuorumHandler.Execution memory b = handler.execution(j);
                if (a.sector != b.sector || a.membershipVersion != b.membershipVersion) continue;
                uint256 shared;
                for (uint256 x; x < a.counted.length; ++x) {
                    for (uint256 y; y < b.counted.length; ++y) {
                        if (a.counted[x] == b.counted[y]) ++shared;
                    }
                }
                assertGe(shared, (a.membership - 1) / 3 + 1, "two quorums share no honest oracle");
            }
        }
    }

    /// An oracle votes at most once per proposal; no duplicate voter; the tally equals a recount;
    /// the requirement is q over the membership captured at open and never lower afterwards.
    function _votesCountedOnceAndRequirementNeverFalls() private view {
        assertEq(handler.ghost_doubleVotes(), 0);
        assertEq(handler.ghost_wrongCapture(), 0);
        uint256 count = quorum.proposalCount();
        for (uint256 id = 1; id <= count; ++id) {
            address[] memory voters = quorum.proposalVoters(id);
            for (uint256 i; i < voters.length; ++i) {
                assertEq(handler.ghost_acceptedVotes(id, voters[i]), 1);
                for (uint256 j = i + 1; j < voters.length; ++j) {
                    assertTrue(voters[i] != voters[j], "duplicate voter");
                }
            }
            IIsolationQuorum.Proposal memory p = quorum.proposal(id);
            assertEq(p.required, quorum.quorumSize(p.membership));
            (uint256 votes, uint256 required) = quorum.tally(id);
            assertGe(required, p.required, "requirement fell below its capture");
            (uint256 expectedVotes, uint256 expectedRequired) = handler.independentTally(id);
            assertEq(votes, expectedVotes);
            assertEq(required, expectedRequired);
        }
    }

    /// Registry bookkeeping the quorum relies on: out-of-service, membership and active counters
    /// equal a recount of statuses.
    function invariant_countersMatchStatuses() public view {
        bytes32[] memory nodes = handler.nodeList();
        bytes32[3] memory sectors = [WATER, ELECTRICITY, SEWAGE];
        for (uint256 s; s < 3; ++s) {
            uint256 out;
            for (uint256 i; i < nodes.length; ++i) {
                IRegistry.Node memory n = registry.node(nodes[i]);
                if (n.sector == sectors[s] && n.status != IRegistry.NodeStatus.Active) ++out;
            }
            assertEq(registry.sectorIsolatedCount(sectors[s]), out);
            (uint256 members, uint256 active) = _recountOracles(sectors[s]);
            assertEq(registry.oracleSlots(sectors[s]), members);
            assertEq(registry.activeOracleCount(sectors[s]), active);
        }
    }

    function _recountOracles(bytes32 sector) private view returns (uint256 members, uint256 active) {
        address[] memory actors = handler.actorList();
        for (uint256 i; i < actors.length; ++i) {
            IRegistry.Oracle memory o = registry.oracle(actors[i]);
            if (o.sector != sector) continue;
            if (o.status == IRegistry.OracleStatus.Active) ++active;
            if (o.status == IRegistry.OracleStatus.Active || o.status == IRegistry.OracleStatus.Quarantined) ++members;
        }
    }

    /// Not a rule: this run's calls and successful calls per action, transitions and quorum executions
    /// (summed over a campaign by scripts/invariant_metrics.py).
    function afterInvariant() public {
        string[] memory names = handler.names();
        for (uint256 i; i < names.length; ++i) {
            InvariantMetrics.append(
                "quorum", names[i], vm.toString(handler.calls(names[i])), handler.successes(names[i])
            );
        }
        InvariantMetrics.append("quorum", "transition:node", "", handler.transitions("node"));
        InvariantMetrics.append("quorum", "transition:oracle", "", handler.transitions("oracle"));
        InvariantMetrics.append("quorum", "quorum-execution", "", handler.executionCount());
    }
}
