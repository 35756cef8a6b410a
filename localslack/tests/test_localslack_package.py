"""The package stands alone: it imports nothing of the app it hosts, and its modules form no
cycle (the browser client reaches the server through the WorkspaceDriver interface)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import localslack

PACKAGE = Path(localslack.__file__).parent
THIRD_PARTY = {"aiohttp", "multidict", "slack_sdk"}


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(top-level absolute imports, sibling modules imported relatively) of one module."""
    absolute, relative = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.add(node.module or "")
            else:
                absolute.add((node.module or "").split(".")[0])
    return absolute, relative


def test_imports_only_the_standard_library_and_its_dependencies() -> None:
    for path in PACKAGE.glob("*.py"):
        absolute, _ = imports_of(path)
        foreign = absolute - THIRD_PARTY - set(sys.stdlib_module_names) - {"__future__"}
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_modules_form_no_import_cycle() -> None:
    graph = {path.stem: imports_of(path)[1] for path in PACKAGE.glob("*.py")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for module in graph.get(start, ()):
            if module == target or (
                module not in seen and reaches(module, target, seen | {module})
            ):
                return True
        return False

    cyclic = sorted(m for m in graph if m != "__init__" and reaches(m, m, set()))
    assert not cyclic, f"import cycle through {cyclic}"
    assert "server" not in graph["ui"]
