"""Read calsync_project/settings.py afresh under a given environment (what a deployment would get)."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "calsync_project" / "settings.py"


def settings_under(monkeypatch: pytest.MonkeyPatch, **environment: str) -> dict[str, Any]:
    """The settings module's values with ``environment`` set (restored after the test)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))
