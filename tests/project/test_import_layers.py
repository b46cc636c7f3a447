"""The layout's import rules (README architecture map): no cycle is dodged with a function-level import.

The layer contracts themselves are import-linter's (pyproject.toml, run by `make lint`); this test
runs them too, so `make test` alone also catches an upward import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("accounts", "activities", "calendarsync", "calsync_project")


def _function_level_first_party_imports() -> list[str]:
    found = []
    for package in FIRST_PARTY:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if function.name == "ready" and path.name == "apps.py":
                    continue  # Django's documented place to connect an app's signal receivers
                for node in ast.walk(function):
                    if isinstance(node, ast.ImportFrom):
                        module = node.module or ""
                    elif isinstance(node, ast.Import):
                        module = node.names[0].name
                    else:
                        continue
                    if module.split(".")[0] in FIRST_PARTY:
                        found.append(
                            f"{path.relative_to(ROOT)}:{node.lineno} imports {module} in {function.name}()"
                        )
    return found


def test_no_function_level_imports_of_our_own_modules() -> None:
    assert _function_level_first_party_imports() == []


def test_import_layer_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(  # noqa: S603 (our own venv's tool, fixed arguments)
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
