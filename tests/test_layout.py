"""The test tree's rules: fixtures come from conftest, shared values from tests/support, and no
test module (or conftest) is imported by another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [
        name
        for name in names
        if name == "tests" or (name.startswith("tests.") and not name.startswith("tests.support"))
    ]


def test_no_test_module_imports_another_or_a_conftest() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    assert len(modules) > 100
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in modules
        if (imported := imported_test_modules(path))
    }
    assert offenders == {}
