"""links.endpoint: an SAE's key file, its public half, the shared directory, and ensure_endpoints."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from core.errors import ConfigError
from links.endpoint import Directory, EndpointKeys, EndpointPublic, ensure_endpoints


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_save_and_load_round_trip_with_0600_and_no_secret_in_repr(tmp_path: Path) -> None:
    keys = EndpointKeys.generate("twin-water")
    path = tmp_path / "endpoints" / "twin-water.json"
    keys.save(path)
    assert mode_of(path) == 0o600
    loaded = EndpointKeys.load(path)
    assert loaded.public() == keys.public() and loaded.sae_id == "twin-water"
    assert keys.x25519.private_bytes_raw().hex() not in repr(keys) and "twin-water" in repr(keys)
    assert [p.name for p in path.parent.iterdir()] == ["twin-water.json"]  # no temporary left behind
    keys.save(path)  # overwriting keeps 0600
    assert mode_of(path) == 0o600


@pytest.mark.parametrize("text", ["", "{not json", "[]", '{"format": "something-else"}',
                                  '{"format": "qeaims-link-endpoint-v1", "sae_id": "a"}'])
def test_a_corrupt_key_file_is_a_plain_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="damaged"):
        EndpointKeys.load(path)


def test_a_key_file_with_a_bad_seed_or_missing_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    EndpointKeys.generate("a").save(path)
    data = json.loads(path.read_text())
    data["mlkem768_seed"] = data["mlkem768_seed"][:-2]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="damaged"):
        EndpointKeys.load(path)
    with pytest.raises(ConfigError, match="no link keys"):
        EndpointKeys.load(tmp_path / "nope.json")


def test_public_keys_are_checked_and_the_fingerprint_is_canonical() -> None:
    public = EndpointKeys.generate("oracle-water-1").public()
    again = EndpointPublic.model_validate_json(json.dumps(dict(reversed(list(public.model_dump().items())))))
    assert again.fingerprint() == public.fingerprint() and len(public.fingerprint()) == 64
    assert EndpointKeys.generate("oracle-water-1").public().fingerprint() != public.fingerprint()
    with pytest.raises(ValueError, match="bytes"):
        EndpointPublic.model_validate(public.model_dump() | {"x25519": "00" * 31})
    with pytest.raises(ValueError, match="hex"):
        EndpointPublic.model_validate(public.model_dump() | {"ed25519": "zz" * 32})
    with pytest.raises(ValueError, match="SAE id"):
        EndpointPublic.model_validate(public.model_dump() | {"sae_id": "Not An Id"})
    with pytest.raises(ValueError, match="SAE id"):
        EndpointKeys.generate("a/b")


def test_the_directory_round_trips_and_refuses_unknown_or_damaged(tmp_path: Path) -> None:
    a, b = EndpointKeys.generate("a").public(), EndpointKeys.generate("b").public()
    directory = Directory([a])
    directory.add(b)
    directory.save(tmp_path / "directory.json")
    loaded = Directory.load(tmp_path / "directory.json")
    assert loaded.get("a") == a and loaded.get("b") == b and list(loaded) == [a, b]
    with pytest.raises(ConfigError, match="no public keys"):
        loaded.get("z")
    with pytest.raises(ConfigError, match="no link directory"):
        Directory.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="damaged"):
        Directory.load(tmp_path / "bad.json")
    (tmp_path / "swapped.json").write_text(json.dumps({"a": b.model_dump()}))
    with pytest.raises(ConfigError, match="holds 'b'"):
        Directory.load(tmp_path / "swapped.json")


def test_ensure_endpoints_is_idempotent_and_never_regenerates(tmp_path: Path) -> None:
    directory_path, keys_dir = tmp_path / "directory.json", tmp_path / "endpoints"
    first = ensure_endpoints(directory_path, keys_dir, ["a", "b"])
    a_bytes = (keys_dir / "a.json").read_bytes()
    assert mode_of(keys_dir / "a.json") == 0o600 and mode_of(keys_dir / "b.json") == 0o600
    again = ensure_endpoints(directory_path, keys_dir, ["a", "b", "c"])
    assert (keys_dir / "a.json").read_bytes() == a_bytes
    assert again.get("a") == first.get("a") and again.get("b") == first.get("b") and "c" in again
    assert Directory.load(directory_path).get("c").fingerprint() == again.get("c").fingerprint()
    assert EndpointKeys.load(keys_dir / "c.json").public() == again.get("c")
    before = directory_path.read_bytes()
    ensure_endpoints(directory_path, keys_dir, ["a", "b", "c"])
    assert directory_path.read_bytes() == before
    (keys_dir / "b.json").write_text("{damaged")
    with pytest.raises(ConfigError, match="damaged"):  # a damaged key is reported, not silently replaced
        ensure_endpoints(directory_path, keys_dir, ["b"])
    assert (keys_dir / "b.json").read_text() == "{damaged"
    (keys_dir / "d.json").write_bytes(a_bytes)
    with pytest.raises(ConfigError, match="belong to 'a'"):
        ensure_endpoints(directory_path, keys_dir, ["d"])
