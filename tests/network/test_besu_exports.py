"""`chain.besu` re-exports its modules' names lazily: each still resolves, to the defining module's object."""

from __future__ import annotations

import importlib

import chain.besu
from chain.besu.compose import DEFAULT_BESU_IMAGE as COMPOSE_IMAGE
from chain.besu.image import DEFAULT_BESU_IMAGE


def test_every_export_resolves_to_its_module_object() -> None:
    assert len(chain.besu.__all__) == len(set(chain.besu.__all__))
    for name in chain.besu.__all__:
        source = chain.besu._SOURCES[name]
        assert getattr(chain.besu, name) is getattr(importlib.import_module(source), name)


def test_the_compose_file_and_the_command_default_name_one_image() -> None:
    assert COMPOSE_IMAGE == DEFAULT_BESU_IMAGE
    assert not DEFAULT_BESU_IMAGE.endswith(":latest")
