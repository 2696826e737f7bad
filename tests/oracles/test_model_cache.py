"""The machine's model cache: a fresh home reuses a model the same code trained, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

import oracles.model_cache as cache
from core.messages import Sector
from oracles.model_store import model_path, save_model, sidecar_path
from oracles.training import load_model, train_sector


@pytest.fixture
def machine_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("QEAIMS_MODEL_CACHE", str(root))
    return root


def test_a_fresh_home_gets_the_model_another_home_trained(machine_cache: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert not cache.fetch(first, Sector.BANKING)  # nothing cached yet
    save_model(train_sector(Sector.BANKING, rows=60), model_path(first, Sector.BANKING))
    cache.store(first, Sector.BANKING)
    assert cache.fetch(second, Sector.BANKING)
    assert model_path(second, Sector.BANKING).read_bytes() == model_path(first, Sector.BANKING).read_bytes()
    assert load_model(model_path(second, Sector.BANKING), sector=Sector.BANKING).n_rows == 60
    assert not cache.fetch(second, Sector.WATER)  # another sector's model is not this one


def test_a_tampered_or_foreign_cache_entry_is_not_used(machine_cache: Path, tmp_path: Path) -> None:
    home = tmp_path / "one"
    save_model(train_sector(Sector.BANKING, rows=60), model_path(home, Sector.BANKING))
    cache.store(home, Sector.BANKING)
    entry = machine_cache / cache.fingerprint(Sector.BANKING) / "banking.joblib"
    entry.write_bytes(entry.read_bytes() + b"tampered")  # the sidecar's sha256 no longer matches
    assert not cache.fetch(tmp_path / "two", Sector.BANKING)
    assert not model_path(tmp_path / "two", Sector.BANKING).exists()
    sidecar_path(entry).unlink()
    assert not cache.fetch(tmp_path / "two", Sector.BANKING)


def test_the_fingerprint_follows_the_code_that_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache.fingerprint(Sector.WATER) == cache.fingerprint(Sector.WATER)
    assert cache.fingerprint(Sector.WATER) != cache.fingerprint(Sector.BANKING)  # each sector its own plug-in
    real = cache._files(Sector.WATER)
    copy = tmp_path / "plugin.py"
    copy.write_bytes(real[0].read_bytes())
    monkeypatch.setattr(cache, "_files", lambda sector: [copy, *real[1:]])
    same = cache.fingerprint(Sector.WATER)
    copy.write_bytes(real[0].read_bytes() + b"\n# an edit\n")
    assert cache.fingerprint(Sector.WATER) != same  # one byte of training code more: another model


def test_the_cache_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QEAIMS_MODEL_CACHE", "off")
    assert cache.cache_dir() is None
    assert not cache.fetch(tmp_path, Sector.BANKING)
    cache.store(tmp_path, Sector.BANKING)  # nothing to do, no error
