"""The layout's rule, checked on the source: a capability imports the platform (and the
documented seams of others), never another capability; the platform imports no capability.
Only the product's top-level modules (``service/app.py``, ``capabilities.py``, ``__main__``,
``__init__``) see every capability: they wire them, from the one list of installed ones."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

SERVICE = ROOT / "service"
CAPABILITIES = sorted(
    path.name
    for path in SERVICE.iterdir()
    if path.is_dir() and (path / "__init__.py").exists() and path.name != "platform"
)
#: The documented seams: the only modules of a capability that others may import.
SEAMS = {"service.accounts.auth", "service.accounts.directory", "service.auth_api.bearer"}


def imported_packages(path: Path, *, seams: frozenset[str] = frozenset()) -> set[str]:
    """The ``service`` subpackages that ``path`` imports (relative imports resolved),
    leaving out imports of the ``seams`` modules."""
    module_parts = list(path.relative_to(SERVICE.parent).with_suffix("").parts)
    package = module_parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = [*base, *(node.module.split(".") if node.module else [])]
            else:
                target = (node.module or "").split(".")
            names = [target] if len(target) > 1 else [[*target, a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for parts in names:
            if len(parts) > 1 and parts[0] == "service" and ".".join(parts[:3]) not in seams:
                found.add(parts[1])
    return found


def test_there_is_a_platform_and_at_least_one_capability() -> None:
    assert (SERVICE / "platform" / "__init__.py").exists()
    assert "fanout" in CAPABILITIES


def test_no_capability_imports_another_and_the_platform_imports_none() -> None:
    broken = []
    for path in sorted(SERVICE.rglob("*.py")):
        name = str(path.relative_to(SERVICE.parent))
        parts = path.relative_to(SERVICE).parts
        if len(parts) == 1:
            continue  # the product's own modules: they wire the capabilities
        own = parts[0]
        for package in imported_packages(path, seams=frozenset(SEAMS)) & set(CAPABILITIES):
            if package != own:
                broken.append(f"{name} imports service.{package}")
    assert broken == []


def test_the_checker_sees_relative_and_absolute_imports() -> None:
    source = SERVICE / "fanout" / "capability.py"
    assert "platform" in imported_packages(source)  # `from ..platform.capability import ...`
    assert "fanout" in imported_packages(SERVICE / "__init__.py")  # `from .fanout.gather ...`
    assert "platform" in imported_packages(SERVICE / "fanout" / "routes.py")


def test_a_seam_import_is_allowed_and_others_are_not() -> None:
    routes = SERVICE / "auth_api" / "routes.py"
    assert "accounts" in imported_packages(routes)
    assert "accounts" not in imported_packages(routes, seams=frozenset(SEAMS))


def test_every_package_is_installed_once_and_every_installed_one_is_a_package() -> None:
    from service.capabilities import INSTALLED, installed

    assert sorted(INSTALLED) == [f"service.{name}" for name in CAPABILITIES]
    assert len(set(INSTALLED)) == len(INSTALLED)
    assert [c.name for c in installed()] == [name.rpartition(".")[2] for name in INSTALLED]


def test_every_capability_says_where_its_reference_is() -> None:
    from service.capabilities import installed

    root = SERVICE.parent
    for capability in installed():
        assert (root / capability.docs).is_file(), capability.name


def test_no_test_module_imports_another() -> None:
    tests = SERVICE.parent / "tests"
    broken = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.rpartition(".")[2]
                if last.startswith("test_"):
                    broken.append(f"{path.relative_to(tests)} imports {node.module}")
    assert broken == []
