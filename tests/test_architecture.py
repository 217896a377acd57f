"""docs/ARCHITECTURE.md's tree of core is the tree on disk: every module and package it names
exists, and every one that exists is named."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO_ROOT / "docs" / "ARCHITECTURE.md"


def documented_tree() -> set[str]:
    """The paths the fenced tree under "Which module owns what" names, as ``core/x/y.py``."""
    section = ARCHITECTURE.read_text().split("## Which module owns what", 1)[1]
    block = re.search(r"```\n(core/\n.*?)```", section, re.S)
    assert block is not None, "no tree of core/ in the section"
    paths: set[str] = set()
    parents: list[str] = []
    for line in block.group(1).splitlines():
        name = line.strip().split(" ", 1)[0]
        depth = (len(line) - len(line.lstrip(" "))) // 2
        del parents[depth:]
        path = "/".join([*parents, name.rstrip("/")])
        paths.add(path + ("/" if name.endswith("/") else ""))
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
    return paths


def tree_on_disk() -> set[str]:
    """Every core module but the package markers, and every package, as the tree writes them."""
    core = REPO_ROOT / "core"
    modules = {
        str(path.relative_to(REPO_ROOT))
        for path in core.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }
    packages = {
        str(path.parent.relative_to(REPO_ROOT)) + "/"
        for path in core.rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    return modules | packages


def is_data(path: str) -> bool:
    """A file or folder that is no module or package: the catalogues, a template's files."""
    if path.endswith(".py"):
        return False
    return not path.endswith("/") or not (REPO_ROOT / path / "__init__.py").exists()


def test_the_documented_tree_names_every_core_module_and_package_and_only_those() -> None:
    documented = documented_tree()
    others = {path for path in documented if is_data(path)}
    on_disk = tree_on_disk()
    assert {
        "missing from the tree": sorted(on_disk - documented),
        "not on disk": sorted(documented - others - on_disk),
    } == {"missing from the tree": [], "not on disk": []}


def test_the_other_files_the_tree_names_exist() -> None:
    others = {path for path in documented_tree() if is_data(path)}
    assert others
    assert sorted(path for path in others if not (REPO_ROOT / path).exists()) == []
