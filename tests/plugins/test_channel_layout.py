"""Every built-in channel has the one layout the channel template generates, so that a reader
who knows one channel finds their way in the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.host.scaffold import FILES

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
CHANNELS = ("petitions", "information", "consultations")
# What the template writes, and what every built-in channel has besides: the status machine,
# the queries, and the demonstration data.
TEMPLATE = {Path(path).name for path in FILES.values() if path.startswith("{package}/")}
SHARED = TEMPLATE | {"lifecycle.py", "store.py", "demo.py"}


def test_the_template_writes_the_shared_core_of_the_layout() -> None:
    assert {
        "__init__.py",
        "settings.py",
        "state.py",
        "tables.py",
        "models.py",
        "handlers.py",
    } == TEMPLATE


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_built_in_channel_has_every_module_of_the_layout(channel: str) -> None:
    modules = {path.name for path in (PLUGINS / channel).glob("*.py")}
    assert sorted(SHARED - modules) == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_built_in_channel_splits_no_layout_module_by_resource(channel: str) -> None:
    modules = {path.stem for path in (PLUGINS / channel).glob("*.py")}
    split = {
        name
        for name in modules
        for part in ("handlers", "store", "tables", "models", "migrations", "policies")
        if name != part and (name.endswith("_" + part) or (name == part and part not in SHARED))
    }
    assert sorted(split) == []
