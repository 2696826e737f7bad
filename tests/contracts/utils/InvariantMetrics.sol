// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

/// @notice How much of each handler action an invariant campaign exercised. forge resets state between
/// runs and prints only the last run's logs, so each run's afterInvariant appends its counts to
/// build/invariant-metrics/<suite>.csv (`action,calls,successes`; calls empty where a handler does
/// not count them), and scripts/invariant_metrics.py sums a whole campaign.
library InvariantMetrics {
    Vm private constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    string private constant DIR = "build/invariant-metrics";

    function append(string memory suite, string memory action, string memory calls, uint256 successes) internal {
        VM.createDir(DIR, true); // a fresh clone has no build/ yet
        VM.writeLine(string.concat(DIR, "/", suite, ".csv"),
            string.concat(action, ",", calls, ",", VM.toString(successes)));
    }

    /// @notice A left-aligned ASCII bytes32 as a string.
    function name(bytes32 raw) internal pure returns (string memory) {
        uint256 length;
        while (length < 32 && raw[length] != 0) {
            ++length;
        }
        bytes memory out = new bytes(length);
        for (uint256 i; i < length; ++i) {
            out[i] = raw[i];
        }
        return string(out);
    }
}
