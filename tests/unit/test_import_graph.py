"""No import circles among the project's own modules: read every module's imports with `ast`
(top-level and function-local ones alike, since a lazy import that closes a circle still runs
half-initialised modules into each other) and fail on any cycle, naming it.

Imports under `if TYPE_CHECKING:` never run and are left out. `from package import name` counts
as importing `package.name` when that is a module of the project, else `package` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("optionspec", "common", "api", "worker", "converter")


def project_modules() -> dict[str, Path]:
    """Module name -> source file; compiled extensions (converter/_accel) are leaves."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if path.suffix not in (".py", ".so", ".pyd") or "__pycache__" in path.parts:
                continue
            parts = path.relative_to(REPO).parts
            stem = parts[-1].split(".")[0]  # _accel.cpython-311-x86_64-linux-gnu.so -> _accel
            parts = parts[:-1] if stem == "__init__" else (*parts[:-1], stem)
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every import statement, except those only a type checker sees."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.If) and _is_type_checking(node) and child in node.body:
                continue
            stack.append(child)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                       else source for alias in node.names]
        for target in targets:
            # `import a.b.c` names the deepest project module it reaches.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) if path.suffix == ".py" else set()
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per circle found by a depth-first search (each circle reported once)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(node: str, path: list[str], on_path: dict[str, int]) -> None:
        on_path[node] = len(path)
        path.append(node)
        for target in sorted(graph[node]):
            if target in on_path:
                circle = path[on_path[target]:] + [target]
                if frozenset(circle) not in seen:
                    seen.add(frozenset(circle))
                    found.append(circle)
            elif target not in done:
                visit(target, path, on_path)
        path.pop()
        del on_path[node]
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [], {})
    return found


def test_the_graph_sees_the_packages_and_their_imports():
    graph = import_graph()
    assert {"common", "api", "worker", "converter"} <= set(graph)
    assert "worker.heartbeat" in graph["worker.app"]
    assert "worker.app" in graph["worker.probe"]  # a function-local import counts
    assert "common.settings" in graph["common.probe"]  # a relative one too
    assert "converter._accel" in graph["converter.parsing"]  # and a compiled extension


def test_no_module_imports_a_module_that_imports_it_back():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_check_catches_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
