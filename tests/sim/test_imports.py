"""The simulator is a client of the server: it may use riderwatch.geo and itself, nothing above."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import riderwatch.sim

ALLOWED = ("riderwatch.sim", "riderwatch.geo")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.append("<relative>")
    return names


def test_sim_modules_import_nothing_of_the_app() -> None:
    package = Path(riderwatch.sim.__file__).parent
    offending = {
        f"{path.name}: {name}"
        for path in package.glob("*.py")
        for name in _imports(path)
        if name == "<relative>"
        or (name.startswith("riderwatch") and name != "riderwatch" and not name.startswith(ALLOWED))
        or name == "riderwatch"
    }
    assert not offending, offending


def test_loading_the_simulator_loads_no_app_module() -> None:
    code = (
        "import sys, riderwatch.sim.run, riderwatch.sim.feed;"
        "print(sorted(m for m in sys.modules if m.startswith('riderwatch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = eval(out)  # noqa: S307  (a list literal this test printed itself)
    assert loaded and all(m == "riderwatch" or m.startswith(ALLOWED) for m in loaded), loaded
