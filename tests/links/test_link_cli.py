"""`qeaims link setup` and `qeaims link status`, in process through `qeaims.cli.main`, against a real KME."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from links.files import LinkFiles
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import LinkPlan
from tests.conftest import free_port
from tests.support import run_main


def test_setup_then_status_shows_every_link_without_key_material(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path)
    code, _, err = run_main(capsys, "--home", home, "link", "status")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "plaintext" in err
    code, _, err = run_main(capsys, "--home", home, "link", "setup", "--sectors", "gas")
    assert code == 2 and err.startswith("error: unknown sector 'gas'")
    port = free_port()
    code, out, _ = run_main(capsys, "--home", home, "link", "setup", "--sectors", "water", "--oracles", "2",
                        "--kme-port", str(port))
    assert code == 0 and "5 links" in out  # 2 oracles, the controller, the operations desk, the dashboard
    files = LinkFiles.of(tmp_path)
    plan = LinkPlan.load(files.plan)
    assert stat.S_IMODE(files.endpoint_keys("twin-water").stat().st_mode) == 0o600
    code, out, _ = run_main(capsys, "--home", home, "link", "status", "--json")  # the KME is not running: said so
    data = json.loads(out)
    assert code == 0 and data["kme_error"] and {r["qkd_state"] for r in data["links"]} == {"unknown"}
    with KmeServer(plan, DevPki(files.pki), port=port, state_path=files.kme_state) as kme:
        for link in plan.links:
            kme.supply.run_block(link.link_id)
        code, out, _ = run_main(capsys, "--home", home, "link", "status", "--json")
        data = json.loads(out)
        assert code == 0 and not data["kme_error"]
        assert {r["link"] for r in data["links"]} == {link.link_id for link in plan.links}
        assert {r["qkd_state"] for r in data["links"]} == {"secure"}
        assert all(0.0 < r["qber"] < 0.06 and r["keys_available"] > 0 for r in data["links"])
        code, out, _ = run_main(capsys, "--home", home, "link", "status")
        assert code == 0 and "Secure links" in out and "refused: by reason" in out
    secrets = [json.loads(p.read_text()) for p in files.endpoints.glob("*.json")]
    for endpoint in secrets:  # no private key of any SAE in what status printed
        for value in endpoint.values():
            if isinstance(value, str) and len(value) >= 64:
                assert value not in out
