"""Settings read the environment through typed helpers; a bad value names its variable (issue: Foundation)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from calsync_project import env


@pytest.mark.parametrize(
    ("reader", "name", "value", "default"),
    [
        (env.env_bool, "DEBUG", "maybe", False),
        (env.env_int, "CALSYNC_HTTP_TIMEOUT_SECONDS", "ten", 20),
        (env.env_time_zone, "TIME_ZONE", "Mars/Olympus", "UTC"),
        (env.env_database, "DATABASE_URL", "nosuchdb://x/y", "sqlite:///x"),
        (env.env_broker_url, "CELERY_BROKER_URL", "kafka://localhost", "filesystem://"),
        (env.env_fernet_keys, "FIELD_ENCRYPTION_KEYS", "not-a-key", []),
    ],
)
def test_bad_value_raises_improperly_configured_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, reader, name: str, value: str, default
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        reader(name, default)


def test_good_values_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_LIST", "a.example, b.example ,")
    monkeypatch.setenv("X_DB", "postgres://postgres@127.0.0.1:5432/calsync")
    assert env.env_bool("X_BOOL", False) is True
    assert env.env_list("X_LIST", []) == ["a.example", "b.example"]
    assert env.env_database("X_DB", "")["NAME"] == "calsync"
    assert env.env_database("X_UNSET_DB", "sqlite:///var/x.sqlite3")["ENGINE"].endswith("sqlite3")


def test_start_up_stops_on_a_bad_value() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**os.environ, "DEBUG": "perhaps"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DEBUG" in result.stderr
