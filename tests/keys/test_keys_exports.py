"""``__all__`` stays in step with each module, and error messages stay one line."""

from __future__ import annotations

import importlib
import inspect

import pytest

import keys
import keys.errors

MODULES = ["keys.errors", "keys.identity", "keys.ids", "keys.messages", "keys.hybrid", "keys.keystore", "keys.rotating"]


@pytest.mark.parametrize("name", MODULES)
def test_module_all_lists_its_public_definitions(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert all(hasattr(module, item) for item in exported)
    defined = {
        item
        for item, value in vars(module).items()
        if not item.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    }
    assert defined <= exported, f"{name} defines but does not export {sorted(defined - exported)}"


def test_package_exports_resolve() -> None:
    assert len(keys.__all__) == len(set(keys.__all__))
    assert all(hasattr(keys, item) for item in keys.__all__)
    for item in keys.errors.__all__:
        assert item in keys.__all__


def test_every_error_is_a_keys_error() -> None:
    for item in keys.errors.__all__:
        assert issubclass(getattr(keys.errors, item), keys.errors.KeysError)
