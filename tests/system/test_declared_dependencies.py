"""Every third-party module the service imports comes from a distribution that
``pyproject.toml`` declares, not from one that merely arrives with another package."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT

SERVICE = ROOT / "service"


def imported_top_level_modules() -> set[str]:
    """The top-level names of every absolute import in ``service/``."""
    found: set[str] = set()
    for path in SERVICE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"service", "__future__"}


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}


def test_every_imported_module_is_a_declared_dependency() -> None:
    providers = packages_distributions()
    declared = declared_distributions()
    undeclared = {
        module: sorted(providers.get(module, ["(not installed)"]))
        for module in sorted(imported_top_level_modules())
        if not declared & {canonicalize_name(d) for d in providers.get(module, [])}
    }
    assert undeclared == {}
