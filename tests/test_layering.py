"""Each layer knows only the ones below it: checked on every import statement of the package, and
on what importing a layer actually loads, in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import parallelcc_sdk

PACKAGE_DIR = Path(parallelcc_sdk.__file__).resolve().parent
PACKAGE = "parallelcc_sdk"

ENGINE = ("engine", "attempt", "spend")
RESULTS = ("results", "report", "outputs", "runfolder")

# (modules, what none of them may import)
RULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("the contract is neutral", ("contract",), ("agents", "backends")),
    ("backends know nothing about agents", ("backends",), ("agents",)),
    ("agents know nothing about backends", ("agents",), ("backends",)),
    ("the engine never imports views", ENGINE, ("views",)),
    ("results never import the engine", RESULTS, (*ENGINE, "api", "handle")),
    ("the change collection is backend-neutral", ("collection",), ("agents", "backends")),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> set[str]:
    """The package's modules that ``source``, a module of ``package``, imports."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from . import x` / `from .pkg import mod` may name submodules.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(f"{PACKAGE}.")}


def in_layer(module: str, layers: tuple[str, ...]) -> bool:
    return any(
        module == f"{PACKAGE}.{layer}" or module.startswith(f"{PACKAGE}.{layer}.")
        for layer in layers
    )


ALL_MODULES = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}


@pytest.mark.parametrize(("why", "importers", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_import_statements_respect_the_layers(
    why: str, importers: tuple[str, ...], forbidden: tuple[str, ...]
) -> None:
    checked = [m for m in ALL_MODULES if in_layer(m, importers)]
    assert checked, f"no module matched {importers}"
    offending = {
        module: sorted(n for n in imports_of(ALL_MODULES[module]) if in_layer(n, forbidden))
        for module in checked
    }
    assert {m: names for m, names in offending.items() if names} == {}, why


@pytest.mark.parametrize(
    ("entry", "forbidden"),
    [
        ("parallelcc_sdk.contract", ("agents", "backends", "engine")),
        ("parallelcc_sdk.backends.local", ("agents", "engine", "views")),
        ("parallelcc_sdk.backends.registry", ("agents", "engine", "views")),
        ("parallelcc_sdk.collection", ("agents", "backends", "engine")),
        ("parallelcc_sdk.engine", ("views",)),
        ("parallelcc_sdk.results", ("engine", "attempt", "api", "handle", "backends", "agents")),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(entry: str, forbidden: tuple[str, ...]) -> None:
    # The package's __init__ imports the whole public API: it is replaced by an empty package, so
    # that only what ``entry`` itself needs gets loaded.
    code = (
        "import importlib, json, sys, types\n"
        f"package = types.ModuleType({PACKAGE!r})\n"
        f"package.__path__ = [{str(PACKAGE_DIR)!r}]\n"
        f"sys.modules[{PACKAGE!r}] = package\n"
        f"importlib.import_module({entry!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE_DIR.parent,
    )
    loaded = [m for m in json.loads(done.stdout) if in_layer(m, forbidden)]
    assert loaded == [], f"importing {entry} loaded {loaded}"


def test_the_checker_sees_a_forbidden_import() -> None:
    # The rules above must be able to fail: planted imports are found, relative or absolute,
    # at module level or inside a function.
    source = (
        "from ..agents.base import Agent\n"
        "def f():\n    import parallelcc_sdk.views.html\n    from .. import engine\n"
    )
    found = imports_in(source, "parallelcc_sdk.backends")
    assert {"parallelcc_sdk.agents.base", "parallelcc_sdk.views.html"} <= found
    assert "parallelcc_sdk.engine" in found
    assert in_layer("parallelcc_sdk.agents.base", ("agents",))
    assert not in_layer("parallelcc_sdk.agentsx", ("agents",))
