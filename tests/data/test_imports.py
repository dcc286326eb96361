"""Every `dlab.data` module imports on its own in a fresh interpreter; the import graph inside
the package has no cycle; `sources` stays free of numpy and torch; nothing imports config/runs."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import dlab.data

PACKAGE = Path(dlab.data.__file__).parent
MODULES = sorted(f"dlab.data.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)]))


def imported_in_fresh_interpreter(module: str) -> set[str]:
    """The `sys.modules` keys after `import module` in a new interpreter."""
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone_without_config_or_runs(module):
    loaded = imported_in_fresh_interpreter(module)
    assert module in loaded
    assert not {"dlab.config", "dlab.runs"} & loaded, module
    if module != "dlab.data.augment":  # the one module of dlab.data that is allowed torch
        assert "torch" not in loaded, module


def test_sources_pulls_in_neither_numpy_nor_torch():
    loaded = imported_in_fresh_interpreter("dlab.data.sources")
    assert "numpy" not in loaded and "torch" not in loaded


def _internal_imports(path: Path) -> set[str]:
    """The `dlab.data.*` modules a file imports at its top level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "dlab.data":
                out |= {f"dlab.data.{a.name}" for a in node.names if f"dlab.data.{a.name}" in MODULES}
                out.add("dlab.data")
            elif node.module.startswith("dlab.data."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("dlab.data")}
    return out


def test_no_import_cycle_inside_the_package():
    graph = {f"dlab.data.{p.stem}": _internal_imports(p) for p in PACKAGE.glob("*.py")
             if p.stem != "__init__"}
    for module, deps in graph.items():
        # A submodule may import a sibling through `from dlab.data import x`, never the
        # package's own names (that would need dlab.data/__init__ first: a cycle).
        graph[module] = deps - {"dlab.data"}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail + [module]))
        if state.get(module) == 2:
            return
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            visit(dep, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])
    assert "dlab.data.store" not in graph["dlab.data.cache"]  # the cycle of the design review
