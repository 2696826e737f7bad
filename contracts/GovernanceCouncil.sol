// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IGovernanceCouncil} from "./interfaces/IGovernanceCouncil.sol";

/// @title GovernanceCouncil
/// @notice M-of-N council of sector governors with a timelock; holds the admin and governance roles
/// of QEAIMS.
/// @dev Chosen over Safe 1.4.1: a Safe needs a proxy factory and EIP-712 signature packing for every
/// off-chain signer, while here each governor sends plain propose/approve/execute transactions whose
/// events are exactly the trail our auditors read. Like Safe's OwnerManager, membership and threshold
/// change only through the council's own proposals and keep 1 ≤ threshold ≤ governors.
///
/// Calls by hash. A proposal stores `callsHash = keccak256(abi.encode(targets, values, calldatas,
/// keccak256(bytes(description))))` (OpenZeppelin Governor's `hashProposal`); the calls live only in
/// {ProposalCreated} and come back with `execute`, which refuses any other calls. Storing the calls
/// cost ~16.6M gas for one sector's registration (4 ML-DSA keys and proofs); hashing them keeps every
/// transaction of it far below EIP-7825's 16,777,216-gas cap.
///
/// Timelock. The approval that brings a proposal to `threshold` queues it: `eta = now + delay`, and
/// `execute` works from eta on. Revoking approvals below the threshold un-queues it. A queue belongs to
/// the council configuration it was reached under: any membership or threshold change re-opens every
/// queue (state Succeeded while approvals still suffice; `queue` or a new approval queues it again with
/// a fresh eta), so the delay always runs in full under the council that will count the approvals.
/// Once queued, a proposal stays executable for `proposalLifetime` after eta (a grace period).
/// Delay bounds: MIN_DELAY = 1 s, MAX_DELAY = 30 days; only the council changes it (`setDelay`).
/// Development default: 1 s (`Settings.council_delay_s`). The queueing block and the execution are then
/// never the same second, yet `qeaims deploy` needs no clock manipulation: the execution waits at most
/// one second of wall-clock time (Anvil and Besu stamp blocks with the wall clock). Production:
/// 2 days (172,800 s, Compound's timelock), set at deployment with `QEAIMS_COUNCIL_DELAY`.
///
/// Emergency path. `executeEmergency` skips the delay but needs `emergencyThreshold() =
/// min(threshold + 1, governors)` approvals, runs only calls whose (target, selector) is on the
/// emergency allowlist, and logs {EmergencyExecuted} with its reason. An allowlist rather than a
/// list of forbidden calls: such a list missed that the quorum's electorate and thresholds
/// (Registry.registerOracle/removeOracle/reinstateOracle, IsolationQuorum.setActiveFloor,
/// setQuarantineRate, setVotingWindow…) can be rewritten without delay, so that puppet-oracle
/// isolations look like quorum decisions instead of logged overrides. Only the council changes the
/// allowlist (`setEmergencyCall`, a self-call, so through a delayed proposal), and it refuses ever to
/// allowlist a call to itself or grantRole/revokeRole/renounceRole on any contract: membership,
/// threshold, delay, who holds power and the allowlist itself always wait out the delay. The
/// development deployment allowlists exactly the storm-day overrides (IsolationQuorum.forceIsolate,
/// forceReintegrate, setIsolationCap), each logged as a GovernanceOverride or a setting change.
/// Why threshold + 1 and not all governors: the delay protects the governors who did not approve;
/// one more of them must agree to waive it, so no minimal coalition skips it alone, while a single
/// unreachable or compromised governor cannot block an emergency (a storm at night). When
/// threshold = governors everyone already approved and nobody is left for the delay to protect.
///
/// Post-quantum approvals. Each governor has an ML-DSA-65 key: the full key and its proof of
/// possession are in {GovernorAdded}, the key hash and epoch are stored. Every approval (the
/// proposer's included) carries an ML-DSA-65 signature over a domain-separated message binding
/// (chainId, council, proposalId, callsHash, governor, keyEpoch) — `keys/council_messages.py`. The EVM
/// cannot check ML-DSA cheaply, so the contract checks what it can (key epoch, 3309-byte length, the
/// calls hash) and logs the signature; `chain/council_audit.recount_council` verifies every one from
/// chain data and reports any execution whose valid approvals were below threshold. The key epoch
/// survives removal: a re-added governor signs under a new epoch. Key rotation is a council
/// proposal removing and re-adding the governor with a new key (no self-service rotation).
///
/// An approval is bound to the governor's membership (a tag renewed on every add), so approvals from
/// a removed governor never count again, even if the account is added back later.
/// `governors()` and `approvals()` loop over the governor set, which only the council itself can grow.
contract GovernanceCouncil is IGovernanceCouncil {
    using EnumerableSet for EnumerableSet.AddressSet;

    uint256 public constant PQ_PUBLIC_KEY_LENGTH = 1952;
    uint256 public constant PQ_SIGNATURE_LENGTH = 3309;
    uint64 public constant MIN_DELAY = 1;
    uint64 public constant MAX_DELAY = 30 days;
    bytes4 private constant GRANT_ROLE = bytes4(keccak256("grantRole(bytes32,address)"));
    bytes4 private constant REVOKE_ROLE = bytes4(keccak256("revokeRole(bytes32,address)"));
    bytes4 private constant RENOUNCE_ROLE = bytes4(keccak256("renounceRole(bytes32,address)"));

    struct Member {
        bytes32 keyHash;
        uint64 tag; // 0 when not a governor; renewed on every add
        uint32 keyEpoch; // survives removal
    }

    EnumerableSet.AddressSet private _governors;
    uint256 private _threshold;
    uint64 private immutable _lifetime;
    uint64 private _delay;
    uint64 private _membershipNonce;
    uint64 private _configEpoch; // +1 on every membership or threshold change
    uint256 private _proposalCount;
    mapping(address account => Member) private _members;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(address governor => uint64 tag)) private _approvalTag;
    mapping(address target => mapping(bytes4 selector => bool allowed)) private _emergencyCalls;

    modifier onlyGovernor() {
        if (!_governors.contains(msg.sender)) revert CouncilNotGovernor(msg.sender);
        _;
    }

    modifier onlySelf() {
        if (msg.sender != address(this)) revert CouncilOnlySelf(msg.sender);
        _;
    }

    /// @param governors_ initial governors: non-zero, distinct
    /// @param publicKeys_ their ML-DSA-65 public keys (1952 bytes each)
    /// @param proofs_ each key's proof of possession (3309 bytes), verified off-chain
    /// @param threshold_ approvals needed, 1..governors_.length
    /// @param proposalLifetime_ seconds a proposal stays approvable (and executable after its eta)
    /// @param delay_ timelock seconds, MIN_DELAY..MAX_DELAY
    constructor(
        address[] memory governors_,
        bytes[] memory publicKeys_,
        bytes[] memory proofs_,
        uint256 threshold_,
        uint64 proposalLifetime_,
        uint64 delay_
    ) {
        if (governors_.length != publicKeys_.length || governors_.length != proofs_.length) {
            revert CouncilLengthMismatch(governors_.length, publicKeys_.length, proofs_.length);
        }
        for (uint256 i; i < governors_.length; ++i) {
            _addGovernor(governors_[i], publicKeys_[i], proofs_[i]);
        }
        _lifetime = proposalLifetime_;
        _changeThreshold(threshold_);
        _setDelay(delay_);
    }

    // ---- proposals ------------------------------------------------------------------------------

    /// @inheritdoc IGovernanceCouncil
    function propose(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        string calldata description,
        uint32 keyEpoch,
        bytes calldata signature
    ) external onlyGovernor returns (uint256) {
        if (proposalId != _proposalCount + 1) {
            revert CouncilStaleProposalId(_proposalCount + 1, proposalId);
        }
        if (targets.length == 0) revert CouncilEmptyProposal();
        if (targets.length != values.length || targets.length != calldatas.length) {
            revert CouncilLengthMismatch(targets.length, values.length, calldatas.length);
        }
        _approve(proposalId, _create(proposalId, targets, values, calldatas, description), keyEpoch, signature);
        return proposalId;
    }

    /// @inheritdoc IGovernanceCouncil
    function approve(uint256 proposalId, bytes32 callsHash, uint32 keyEpoch, bytes calldata signature)
        external
        onlyGovernor
    {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (!_isOpen(state)) revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        if (hasApproved(proposalId, msg.sender)) revert CouncilAlreadyApproved(proposalId, msg.sender);
        Proposal storage p = _proposals[proposalId];
        if (callsHash != p.callsHash) revert CouncilCallsMismatch(proposalId, p.callsHash, callsHash);
        _approve(proposalId, p, keyEpoch, signature);
    }

    /// @inheritdoc IGovernanceCouncil
    function revokeApproval(uint256 proposalId) external onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (state == ProposalState.Executed) revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        if (!hasApproved(proposalId, msg.sender)) revert CouncilNotApproved(proposalId, msg.sender);
        delete _approvalTag[proposalId][msg.sender];
        uint256 count = approvals(proposalId);
        emit ApprovalRevoked(proposalId, msg.sender, count);
        Proposal storage p = _proposals[proposalId];
        if (p.eta != 0 && count < _threshold) {
            p.eta = 0;
            p.queuedUnder = 0;
            emit ProposalUnqueued(proposalId);
        }
    }

    /// @inheritdoc IGovernanceCouncil
    function queue(uint256 proposalId) external onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (state != ProposalState.Succeeded) revert CouncilWrongState(proposalId, ProposalState.Succeeded, state);
        _queue(proposalId, _proposals[proposalId]);
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev The inner revert data of a failed call is carried in {CouncilCallFailed}'s `returndata`.
    /// Reentrancy: the proposal is marked executed (and the event emitted) before any call, so a call
    /// that re-enters cannot execute it again; it sees state Executed.
    function execute(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash
    ) external payable onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (state != ProposalState.Ready) revert CouncilWrongState(proposalId, ProposalState.Ready, state);
        Proposal storage p = _checkCalls(proposalId, targets, values, calldatas, descriptionHash);
        p.executed = true;
        emit ProposalExecuted(proposalId, msg.sender);
        _run(proposalId, targets, values, calldatas);
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev Same reentrancy argument as {execute}.
    function executeEmergency(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash,
        string calldata reason
    ) external payable onlyGovernor {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        if (!_isOpen(state)) revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        if (bytes(reason).length == 0) revert CouncilEmptyReason();
        Proposal storage p = _checkCalls(proposalId, targets, values, calldatas, descriptionHash);
        _checkEmergencyCalls(proposalId, targets, calldatas);
        _markEmergency(proposalId, p, reason);
        _run(proposalId, targets, values, calldatas);
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev Also refused once the proposal is cancelled or expired ({CouncilWrongState}, expected
    /// Pending). Any caller other than the proposer (while still a governor) or the council fails
    /// {CouncilOnlySelf}.
    function cancel(uint256 proposalId) external {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert CouncilUnknownProposal(proposalId);
        Proposal storage p = _proposals[proposalId];
        bool proposer = msg.sender == p.proposer && _governors.contains(msg.sender);
        if (!proposer && msg.sender != address(this)) revert CouncilOnlySelf(msg.sender);
        if (!_isOpen(state)) revert CouncilWrongState(proposalId, ProposalState.Pending, state);
        p.cancelled = true;
        emit ProposalCancelled(proposalId, msg.sender);
    }

    // ---- the council's own settings (self-calls only) -------------------------------------------

    /// @inheritdoc IGovernanceCouncil
    function addGovernor(address account, bytes calldata publicKey, bytes calldata proofOfPossession)
        external
        onlySelf
    {
        _addGovernor(account, publicKey, proofOfPossession);
    }

    /// @inheritdoc IGovernanceCouncil
    function removeGovernor(address account) external onlySelf {
        if (!_governors.remove(account)) revert CouncilUnknownGovernor(account);
        uint256 remaining = _governors.length();
        if (_threshold > remaining) revert CouncilInvalidThreshold(_threshold, remaining);
        Member storage m = _members[account];
        m.tag = 0;
        m.keyHash = bytes32(0);
        ++_configEpoch;
        emit GovernorRemoved(account);
    }

    /// @inheritdoc IGovernanceCouncil
    function changeThreshold(uint256 threshold_) external onlySelf {
        _changeThreshold(threshold_);
    }

    /// @inheritdoc IGovernanceCouncil
    function setDelay(uint64 delay_) external onlySelf {
        _setDelay(delay_);
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev Taking a call off the allowlist is always possible, so a mistaken entry is undone by the
    /// same (delayed) path that made it.
    function setEmergencyCall(address target, bytes4 selector, bool allowed) external onlySelf {
        if (allowed) {
            if (target == address(0)) revert CouncilZeroAddress();
            if (target == address(this) || _isRoleAdmin(selector)) {
                revert CouncilEmergencyCallNotAllowable(target, selector);
            }
        }
        _emergencyCalls[target][selector] = allowed;
        emit EmergencyCallSet(target, selector, allowed);
    }

    // ---- views ----------------------------------------------------------------------------------

    /// @inheritdoc IGovernanceCouncil
    function hashProposal(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(targets, values, calldatas, descriptionHash));
    }

    /// @inheritdoc IGovernanceCouncil
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev None for unknown ids; then Executed, Cancelled. A proposal with enough approvals that is
    /// queued under the current configuration is Queued before its eta, Ready from it, Expired after
    /// eta + lifetime. Otherwise Expired after expiresAt, else Succeeded (enough approvals) or Pending.
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId == 0 || proposalId > _proposalCount) return ProposalState.None;
        Proposal storage p = _proposals[proposalId];
        if (p.executed) return ProposalState.Executed;
        if (p.cancelled) return ProposalState.Cancelled;
        bool enough = approvals(proposalId) >= _threshold;
        // forge-lint: disable-start(block-timestamp) delays and lifetimes are seconds to days; validator skew is seconds
        if (enough && _isQueued(p)) {
            if (block.timestamp > uint256(p.eta) + _lifetime) return ProposalState.Expired;
            return block.timestamp < p.eta ? ProposalState.Queued : ProposalState.Ready;
        }
        if (block.timestamp > p.expiresAt) return ProposalState.Expired;
        // forge-lint: disable-end(block-timestamp)
        return enough ? ProposalState.Succeeded : ProposalState.Pending;
    }

    /// @inheritdoc IGovernanceCouncil
    function approvals(uint256 proposalId) public view returns (uint256 count) {
        uint256 length = _governors.length();
        for (uint256 i; i < length; ++i) {
            if (hasApproved(proposalId, _governors.at(i))) ++count;
        }
    }

    /// @inheritdoc IGovernanceCouncil
    /// @dev True only for a current governor whose approval was given during its current membership.
    function hasApproved(uint256 proposalId, address governor) public view returns (bool) {
        uint64 tag = _approvalTag[proposalId][governor];
        return tag != 0 && tag == _members[governor].tag;
    }

    /// @inheritdoc IGovernanceCouncil
    function governors() external view returns (address[] memory) {
        return _governors.values();
    }

    /// @inheritdoc IGovernanceCouncil
    function isGovernor(address account) external view returns (bool) {
        return _governors.contains(account);
    }

    /// @inheritdoc IGovernanceCouncil
    function governorKey(address account) external view returns (bytes32 keyHash, uint32 keyEpoch) {
        Member storage m = _members[account];
        return (m.keyHash, m.keyEpoch);
    }

    /// @inheritdoc IGovernanceCouncil
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IGovernanceCouncil
    function emergencyThreshold() public view returns (uint256) {
        uint256 count = _governors.length();
        return _threshold < count ? _threshold + 1 : count;
    }

    /// @inheritdoc IGovernanceCouncil
    function delay() external view returns (uint64) {
        return _delay;
    }

    /// @inheritdoc IGovernanceCouncil
    function isEmergencyCall(address target, bytes4 selector) external view returns (bool) {
        return _emergencyCalls[target][selector];
    }

    /// @inheritdoc IGovernanceCouncil
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IGovernanceCouncil
    function proposalLifetime() external view returns (uint64) {
        return _lifetime;
    }

    // ---- internals ------------------------------------------------------------------------------

    function _isOpen(ProposalState state) private pure returns (bool) {
        return state == ProposalState.Pending || state == ProposalState.Succeeded || state == ProposalState.Queued
            || state == ProposalState.Ready;
    }

    /// @dev AccessControl's grantRole/revokeRole/renounceRole: who holds power waits out the delay too.
    function _isRoleAdmin(bytes4 selector) private pure returns (bool) {
        return selector == GRANT_ROLE || selector == REVOKE_ROLE || selector == RENOUNCE_ROLE;
    }

    function _isQueued(Proposal storage p) private view returns (bool) {
        return p.eta != 0 && p.queuedUnder == _configEpoch;
    }

    function _approve(uint256 proposalId, Proposal storage p, uint32 keyEpoch, bytes calldata signature) private {
        Member storage m = _members[msg.sender];
        if (keyEpoch != m.keyEpoch) revert CouncilWrongKeyEpoch(msg.sender, m.keyEpoch, keyEpoch);
        if (signature.length != PQ_SIGNATURE_LENGTH) revert CouncilInvalidSignature(signature.length);
        _approvalTag[proposalId][msg.sender] = m.tag;
        uint256 count = approvals(proposalId);
        emit ProposalApproved(proposalId, msg.sender, count, keyEpoch, signature);
        if (count >= _threshold && !_isQueued(p)) _queue(proposalId, p);
    }

    function _create(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        string calldata description
    ) private returns (Proposal storage p) {
        _proposalCount = proposalId;
        bytes32 callsHash = hashProposal(targets, values, calldatas, keccak256(bytes(description)));
        p = _proposals[proposalId];
        uint64 expiresAt = uint64(block.timestamp) + _lifetime;
        (p.callsHash, p.proposer, p.expiresAt) = (callsHash, msg.sender, expiresAt);
        emit ProposalCreated(proposalId, msg.sender, targets, values, calldatas, description, callsHash, expiresAt);
    }

    function _markEmergency(uint256 proposalId, Proposal storage p, string calldata reason) private {
        uint256 count = approvals(proposalId);
        uint256 required = emergencyThreshold();
        if (count < required) revert CouncilInsufficientApprovals(proposalId, count, required);
        p.executed = true;
        emit EmergencyExecuted(proposalId, msg.sender, count, required, reason);
    }

    function _queue(uint256 proposalId, Proposal storage p) private {
        uint64 eta = uint64(block.timestamp) + _delay;
        p.eta = eta;
        p.queuedUnder = _configEpoch;
        emit ProposalQueued(proposalId, eta);
    }

    function _checkCalls(
        uint256 proposalId,
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash
    ) private view returns (Proposal storage p) {
        p = _proposals[proposalId];
        bytes32 given = hashProposal(targets, values, calldatas, descriptionHash);
        if (given != p.callsHash) revert CouncilCallsMismatch(proposalId, p.callsHash, given);
    }

    /// @dev Every call's (target, selector) must be allowlisted now; calldata shorter than a selector
    /// (a plain transfer, a fallback) never is.
    function _checkEmergencyCalls(uint256 proposalId, address[] calldata targets, bytes[] calldata calldatas)
        private
        view
    {
        for (uint256 i; i < targets.length; ++i) {
            bytes calldata data = calldatas[i];
            bytes4 selector = data.length < 4 ? bytes4(0) : bytes4(data[:4]);
            if (data.length < 4 || !_emergencyCalls[targets[i]][selector]) {
                revert CouncilEmergencyForbiddenCall(proposalId, i, targets[i], selector);
            }
        }
    }

    function _run(uint256 proposalId, address[] calldata targets, uint256[] calldata values, bytes[] calldata calldatas)
        private
    {
        for (uint256 i; i < targets.length; ++i) {
            // slither-disable-next-line low-level-calls,arbitrary-send-eth
            (bool ok, bytes memory returndata) = targets[i].call{value: values[i]}(calldatas[i]);
            if (!ok) revert CouncilCallFailed(proposalId, i, returndata);
        }
    }

    function _addGovernor(address account, bytes memory publicKey, bytes memory proofOfPossession) private {
        if (account == address(0)) revert CouncilZeroAddress();
        if (publicKey.length != PQ_PUBLIC_KEY_LENGTH) revert CouncilInvalidPublicKey(publicKey.length);
        if (proofOfPossession.length != PQ_SIGNATURE_LENGTH) revert CouncilInvalidSignature(proofOfPossession.length);
        if (!_governors.add(account)) revert CouncilGovernorExists(account);
        Member storage m = _members[account];
        bytes32 keyHash = keccak256(publicKey);
        uint32 epoch = m.keyEpoch + 1;
        (m.keyHash, m.tag, m.keyEpoch) = (keyHash, ++_membershipNonce, epoch);
        ++_configEpoch;
        emit GovernorAdded(account, epoch, keyHash, publicKey, proofOfPossession);
    }

    function _changeThreshold(uint256 threshold_) private {
        uint256 count = _governors.length();
        if (threshold_ == 0 || threshold_ > count) revert CouncilInvalidThreshold(threshold_, count);
        emit ThresholdChanged(_threshold, threshold_);
        _threshold = threshold_;
        ++_configEpoch;
    }

    function _setDelay(uint64 delay_) private {
        if (delay_ < MIN_DELAY || delay_ > MAX_DELAY) revert CouncilInvalidDelay(delay_, MIN_DELAY, MAX_DELAY);
        emit DelayChanged(_delay, delay_);
        _delay = delay_;
    }
}
