"""`qeaims qkd keyrate` and `qeaims qkd simulate`, in process through `qeaims.cli.main`."""

from __future__ import annotations

import json

import pytest

from tests.support import run_main


def test_keyrate_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "qkd", "keyrate", "--distances", "0,25,50,75,100,125,140", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"rates", "mu", "max_distance_km", "params"}
    assert set(data["rates"]) == {"0", "25", "50", "75", "100", "125", "140"}
    assert abs(data["max_distance_km"] - 142) < 2
    assert data["rates"]["25"] == pytest.approx(7.54e-4, rel=0.01)


def test_simulate_json_one_block_and_many(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "qkd", "simulate", "--distance", "25", "--pulses", "5000000", "--seed", "1",
                        "--json")
    assert code == 0
    block = json.loads(out)["block"]
    for key in ("qber", "sifted_bits", "final_key_bits", "secure_rate", "attack_detected", "alarms"):
        assert key in block
    assert "analytic" in json.loads(out)
    code, out, _ = run_main(capsys, "qkd", "simulate", "--distance", "25", "--pulses", "5000000", "--seed", "1",
                        "--eve", "intercept-resend", "--fraction", "0.2", "--blocks", "3", "--json")
    data = json.loads(out)
    assert code == 0 and data["blocks_alarmed"] == 3 and data["alarm_rate"] == 1.0


@pytest.mark.parametrize("args", [
    ("simulate", "--distance", "-5"),
    ("simulate", "--pulses", "0"),
    ("simulate", "--eve", "pns", "--fraction", "0"),
    ("simulate", "--eve", "pns", "--fraction", "1.5"),
    ("simulate", "--eve", "tap"),
    ("keyrate", "--distances", "0,abc"),
    ("keyrate", "--distances", "0,-3"),
])
def test_bad_input_is_one_error_line(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    code, out, err = run_main(capsys, "qkd", *args)
    assert code != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in out + err
