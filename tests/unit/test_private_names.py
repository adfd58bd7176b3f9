"""A leading underscore means "this module's own": no other module of ours imports it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("dialer", "scheduler", "tasks", "models")


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGES):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    sources = [path for package in PACKAGES for path in (REPO / package).rglob("*.py")]
    assert len(sources) > 50
    offenders = [found for path in sources for found in _private_imports(path)]
    assert offenders == []
