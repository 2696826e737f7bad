"""Starting `qeaims` loads none of the heavy libraries that only some commands use.

Every `qeaims` process (hundreds in a test run, and each component `qeaims up` starts) imports
`qeaims.cli`, which defines every sub-command, and runs the sector discovery before the command. The
detectors (pandas, scikit-learn), the sectors' graphs (networkx), the signers and the chain client
(eth_account, py_ecc) and the STIX export are imported by the commands that use them; loading them
all up front cost about two seconds a process. A fresh interpreter is the only clean `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("pandas", "networkx", "py_ecc", "eth_account", "sklearn", "stix2", "fastapi")
"""Top-level packages a light command must not load (`qeaims ps`, `qeaims --help`, `qeaims chain status`)."""

LIGHT = (["--help"], ["ps", "--help"], ["chain", "status", "--help"], ["detect", "train", "--help"])
"""Run in one interpreter, one after the other: what any of them loads stays in `sys.modules`."""

_PROBE = """
import json, sys
from qeaims.cli import main
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit:
        pass
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def test_light_commands_load_no_heavy_library(tmp_path: Path) -> None:
    env = dict(os.environ, QEAIMS_HOME=str(tmp_path), PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    result = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), json.dumps(LIGHT)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Usage: qeaims detect train" in result.stdout  # the commands ran
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded == [], f"a light command imported {loaded}: import them inside the commands that use them"
