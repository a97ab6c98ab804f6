"""The import contracts in .importlinter cover every module, so a new module cannot slip past them.

`make lint` runs lint-imports on the contracts; this checks the contracts themselves: each domain
module is either an edge (pages, JSON routes) or one of the rule modules that must never reach the
request dependencies or the pages, and every top-level module or package has a layer.
"""

from __future__ import annotations

import configparser
import fnmatch
import pkgutil
from pathlib import Path

import riderwatch

ROOT = Path(__file__).parents[1]
# Pages, JSON routes, and what only they use (reading an upload, rendering Open311 XML/JSON).
EDGES = {"web", "api", "admin_api", "hotspots_api", "osmand_app", "upload", "render"}
NOT_LAYERED = {"migrations", "migrate", "sim", "static", "templates", "locale"}  # sim has a contract of its own


def _contracts() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_every_rule_module_of_a_domain_is_kept_from_the_edges() -> None:
    config = _contracts()
    containers = _lines(config["importlinter:contract:edges"]["containers"])
    patterns = _lines(config["importlinter:contract:rules-not-edges"]["source_modules"])
    assert patterns == _lines(config["importlinter:contract:rules-not-http"]["source_modules"])
    unguarded = []
    for container in containers:
        package = riderwatch.__name__ + container.removeprefix("riderwatch")
        path = Path(riderwatch.__file__).parent / container.removeprefix("riderwatch.")
        for module in pkgutil.iter_modules([str(path)]):
            name = f"{package}.{module.name}"
            if module.name not in EDGES and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                unguarded.append(name)
    assert not unguarded, f"add these to the rules-not-edges and rules-not-http contracts: {unguarded}"


def test_every_top_level_module_has_a_layer() -> None:
    layers = _lines(_contracts()["importlinter:contract:layers"]["layers"])
    layered = {name.strip().removeprefix("riderwatch.") for line in layers for name in line.split("|")}
    package = Path(riderwatch.__file__).parent
    present = {m.name for m in pkgutil.iter_modules([str(package)])}
    missing = present - layered - NOT_LAYERED
    assert not missing, f"give these a layer in .importlinter: {sorted(missing)}"


def test_every_module_says_its_job_in_its_first_line() -> None:
    package = Path(riderwatch.__file__).parent
    silent = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        first = path.read_text(encoding="utf-8").lstrip().splitlines()[:1]
        if not first or not first[0].startswith('"""'):
            silent.append(str(path.relative_to(package)))
    assert not silent, f"give these a docstring whose first line says what the module is for: {silent}"
