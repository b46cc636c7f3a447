"""Product code imports only what requirements.txt pins (`make run` installs nothing else)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("accounts", "activities", "calendarsync", "calsync_project")
FIRST_PARTY = {*PRODUCT_PACKAGES, "tests", "bench"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_distributions() -> set[str]:
    pinned = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            pinned.add(_normalise(re.split(r"[=<>~!\[ ;]", line, maxsplit=1)[0]))
    return pinned


def _imported_top_level_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    files = [ROOT / "manage.py"] + [p for pkg in PRODUCT_PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def test_product_code_imports_only_runtime_requirements() -> None:
    pinned = _runtime_distributions()
    owners = packages_distributions()
    missing = []
    for module, path in sorted(_imported_top_level_modules().items()):
        if module in FIRST_PARTY or module in sys.stdlib_module_names:
            continue
        distributions = {_normalise(d) for d in owners.get(module, [])}
        if not distributions & pinned:
            missing.append(f"{module} (imported by {path.relative_to(ROOT)}; from {sorted(distributions)})")
    assert not missing, "imported but not pinned in requirements.txt: " + ", ".join(missing)
