"""A real Celery worker process consumes tasks from the embedded filesystem broker and from Redis."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from calendarsync.models import Heartbeat
from calsync_project.celery import app

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _redis_url() -> str:
    configured = os.environ.get("CELERY_BROKER_URL", "")
    return configured if configured.startswith("redis://") else "redis://127.0.0.1:6379/15"


def _run_worker_until_heartbeat(broker_url: str, var_dir: Path, name: str) -> None:
    transport_options = {}
    if broker_url.startswith("filesystem://"):
        for sub in ("queue", "processed", "control"):
            (var_dir / "broker" / sub).mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(var_dir / "broker" / "queue"),
            "data_folder_out": str(var_dir / "broker" / "queue"),
            "processed_folder": str(var_dir / "broker" / "processed"),
            "control_folder": str(var_dir / "broker" / "control"),
        }
    env = {
        **{name: value for name, value in os.environ.items() if name != "OAUTHLIB_INSECURE_TRANSPORT"},
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CALSYNC_VAR_DIR": str(var_dir),
        # DEBUG is off here: a worker refuses the development keys (tests/security).
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "calsync_project",
            "worker",
            "--pool",
            "solo",
            "-l",
            "WARNING",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        with app.connection_for_write(broker_url, transport_options=transport_options) as conn:
            app.send_task("calendarsync.tasks.heartbeat", args=[name], connection=conn)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Heartbeat.objects.filter(name=name).exists():
                return
            assert worker.poll() is None, "the worker died"
            time.sleep(0.3)
        pytest.fail(f"no heartbeat from a worker on {broker_url.split('://')[0]} within 60 s")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_worker_consumes_from_the_embedded_filesystem_broker(tmp_path: Path) -> None:
    _run_worker_until_heartbeat("filesystem://", tmp_path, "filesystem")
    assert Heartbeat.objects.get(name="filesystem").beat_at is not None


def test_worker_consumes_from_redis(tmp_path: Path) -> None:
    _run_worker_until_heartbeat(_redis_url(), tmp_path, "redis")
    assert Heartbeat.objects.get(name="redis").beat_at is not None


def test_beat_schedule_holds_the_heartbeat() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["heartbeat"]["task"] == "calendarsync.tasks.heartbeat"
