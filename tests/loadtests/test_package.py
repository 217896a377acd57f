"""The shape of loadtests/ as a whole: imports form no cycle, and every option has one home.

Both read the source with ``ast`` and import nothing from loadtests/, so a cycle cannot hide
behind an import made inside a function, and an option cannot drift between two copies.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
PACKAGE = "loadtests"
# Run as a file under another tree's PYTHONPATH (loadtests/README.md), to time that tree's code:
# such a module can import nothing from loadtests/, which the other tree may not have, and so
# defines its own options.
STANDALONE = frozenset({"middleware_cost"})


def modules(directory: Path) -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in directory.glob("*.py")}


def imported_modules(tree: ast.Module, names: set[str]) -> set[str]:
    """The package's modules that ``tree`` imports anywhere: at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                package, _, module = alias.name.partition(".")
                if package == PACKAGE and module:
                    found.add(module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:
                package, _, module = node.module.partition(".")
                if package != PACKAGE:
                    continue
            elif node.level == 1:
                module = node.module or ""
            else:
                continue
            if module:
                found.add(module.split(".")[0])
            else:  # from loadtests import bench, flood
                found.update(alias.name for alias in node.names)
    return found & names


def import_graph(directory: Path) -> dict[str, set[str]]:
    trees = modules(directory)
    return {name: imported_modules(tree, set(trees)) - {name} for name, tree in trees.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle through each back edge a depth-first search meets, as a path of modules."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return found


def option_strings(tree: ast.Module) -> Iterator[str]:
    """The option strings (``--mix``, ``-u``) of every ``add_argument`` call in ``tree``."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            for argument in node.args:
                if (
                    isinstance(argument, ast.Constant)
                    and isinstance(argument.value, str)
                    and argument.value.startswith("-")
                ):
                    yield argument.value


def options_in_several_modules(
    directory: Path, standalone: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    owners: dict[str, set[str]] = {}
    for name, tree in modules(directory).items():
        if name in standalone:
            continue
        for option in option_strings(tree):
            owners.setdefault(option, set()).add(name)
    return {option: sorted(names) for option, names in owners.items() if len(names) > 1}


def test_loadtests_modules_import_each_other_without_a_cycle_even_inside_functions() -> None:
    assert cycles(import_graph(LOADTESTS)) == []


def test_no_two_loadtests_modules_define_the_same_option() -> None:
    assert options_in_several_modules(LOADTESTS, STANDALONE) == {}


def test_the_modules_run_under_another_trees_path_import_nothing_from_loadtests() -> None:
    graph = import_graph(LOADTESTS)
    assert {name: graph[name] for name in STANDALONE} == {name: set() for name in STANDALONE}


def test_an_import_inside_a_function_that_closes_a_cycle_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from loadtests.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from loadtests import c\n")
    (tmp_path / "c.py").write_text("def g():\n    if True:\n        import loadtests.a.deep\n")
    (tmp_path / "d.py").write_text("from . import a\nfrom .b import y\nimport os\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "b"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_an_option_defined_by_two_modules_is_found_and_one_shared_definition_is_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "one.py").write_text(
        "def add(parser):\n    parser.add_argument('--mix', default='a')\n"
        "    parser.add_argument('--rate', type=float)\n"
    )
    (tmp_path / "two.py").write_text(
        "def add(sub):\n    sub.add_argument('-m', '--mix')\n    sub.add_argument('name')\n"
    )
    (tmp_path / "three.py").write_text("from loadtests.one import add\nadd(parser)\n")
    assert options_in_several_modules(tmp_path) == {"--mix": ["one", "two"]}
    assert options_in_several_modules(tmp_path, frozenset({"two"})) == {}
