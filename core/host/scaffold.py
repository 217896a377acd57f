"""``qatysu new-channel NAME``: a working fourth channel, as a package of its own.

It writes settings, tables, one create and one read route, and their tests, in the layout the
built-in channels share, registered through the ``qatysu`` entry point and using only
``core.sdk``. Install it (``pip install -e qatysu-NAME``) and it is served.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from core.settings import CORE_SECTIONS

if TYPE_CHECKING:
    from pathlib import Path

NAME = re.compile(r"[a-z][a-z0-9_]{1,30}")
# Template file -> where it goes in the package directory ({package} is replaced).
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "__init__.py.tmpl": "{package}/__init__.py",
    "settings.py.tmpl": "{package}/settings.py",
    "state.py.tmpl": "{package}/state.py",
    "tables.py.tmpl": "{package}/tables.py",
    "models.py.tmpl": "{package}/models.py",
    "handlers.py.tmpl": "{package}/handlers.py",
    "test_channel.py.tmpl": "tests/test_{name}.py",
}


class ScaffoldError(ValueError):
    """The channel cannot be generated as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ChannelNames:
    name: str

    @property
    def package(self) -> str:
        return f"qatysu_{self.name}"

    @property
    def dash_name(self) -> str:
        return self.name.replace("_", "-")

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    def fill(self, text: str) -> str:
        for placeholder, value in (
            ("{{name}}", self.name),
            ("{{dash_name}}", self.dash_name),
            ("{{package}}", self.package),
            ("{{Class}}", self.class_name),
        ):
            text = text.replace(placeholder, value)
        return text


def check_name(name: str) -> ChannelNames:
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a channel name: 2 to 31 lower-case letters, digits or _, "
            "starting with a letter"
        )
    if name in CORE_SECTIONS:
        raise ScaffoldError(f"{name!r} is a section of core's settings; choose another name")
    plugins = importlib.metadata.entry_points(group="qatysu")
    installed = {entry_point.name.rpartition(".")[2] for entry_point in plugins}
    if name in installed:
        raise ScaffoldError(f"{name!r} is the name of an installed plugin; choose another name")
    return ChannelNames(name)


def new_channel(name: str, into: Path) -> Path:
    """Write the channel ``name`` as ``into/qatysu-NAME`` and return that directory."""
    names = check_name(name)
    target = into / f"qatysu-{names.dash_name}"
    if target.exists():
        raise ScaffoldError(f"{target} exists already; choose another name or directory")
    template = resources.files("core.host") / "channel_template"
    for source, destination in FILES.items():
        path = target / destination.format(package=names.package, name=names.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(names.fill(template.joinpath(source).read_text(encoding="utf-8")))
    return target
