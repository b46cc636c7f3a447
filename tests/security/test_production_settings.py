"""Finding 2 of issue #13: with DEBUG off, the development fallbacks are refused at start-up.

The repository's SECRET_KEY and Fernet key are published, and OAUTHLIB_INSECURE_TRANSPORT lets OAuth
run over plain HTTP: `manage.py check --deploy` reports each as an error naming the variable, the web
application (WSGI) and the Celery worker refuse to start, and `seed_demo` (a superuser with a
published password) refuses to run unless told. `make run` (DEBUG on) keeps its embedded defaults.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from accounts.models import User
from calsync_project.checks import check_development_fallbacks

ROOT = Path(__file__).resolve().parents[2]
FALLBACK_VARIABLES = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "OAUTHLIB_INSECURE_TRANSPORT")
# Set by tests (the browser tests allow the ORM beside Playwright) or a developer's shell; each run
# below starts without them.
UNSET = (
    *FALLBACK_VARIABLES,
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "CACHE_URL",
    "SECURE_PROXY_SSL_HEADER",
)


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A production-like environment with keys of its own (no development fallback)."""
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    env.update(
        CALSYNC_VAR_DIR=str(tmp_path),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="calsync.example.com",
        CSRF_TRUSTED_ORIGINS="https://calsync.example.com",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
        CACHE_URL="redis://127.0.0.1:6379/1",
    )
    env.update(overrides)
    return env


def with_dev_fallbacks(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without its own keys (so settings fall back to the repository's) and with plain-HTTP OAuth."""
    fallback = {name: value for name, value in env.items() if name not in FALLBACK_VARIABLES}
    fallback["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    return fallback


def run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, *argv],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- manage.py check --deploy ---------------------------------------------------------------------


def test_check_deploy_is_clean_with_production_env_and_real_keys(tmp_path: Path) -> None:
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_every_development_fallback(tmp_path: Path) -> None:
    result = run(["manage.py", "check", "--deploy"], with_dev_fallbacks(production_env(tmp_path)))

    assert result.returncode != 0
    for error_id, variable in zip(("E001", "E002", "E003"), FALLBACK_VARIABLES, strict=True):
        assert f"calsync.{error_id}" in result.stderr
        assert variable in result.stderr


def _calsync_errors() -> dict[str, str]:
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    return {message.id or "": message.msg for message in found if (message.id or "").startswith("calsync.")}


@pytest.fixture
def production_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings.DEBUG = False
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    return settings


def test_deploy_check_refuses_the_development_secret_key(production_settings: Settings) -> None:
    production_settings.SECRET_KEY = settings.DEV_SECRET_KEY

    errors = _calsync_errors()

    assert list(errors) == ["calsync.E001"]
    assert "SECRET_KEY" in errors["calsync.E001"]


def test_deploy_check_refuses_the_development_fernet_key_anywhere_in_the_rotation(
    production_settings: Settings,
) -> None:
    production_settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), settings.DEV_FERNET_KEY]

    errors = _calsync_errors()

    assert list(errors) == ["calsync.E002"]
    assert "FIELD_ENCRYPTION_KEYS" in errors["calsync.E002"]


@pytest.mark.parametrize("value", ["1", "0", "true"])
def test_deploy_check_refuses_any_insecure_transport_value(
    production_settings: Settings, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # oauthlib allows plain HTTP for any non-empty value, "0" included.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", value)

    errors = _calsync_errors()

    assert list(errors) == ["calsync.E003"]
    assert "OAUTHLIB_INSECURE_TRANSPORT" in errors["calsync.E003"]


def test_debug_on_keeps_the_development_fallbacks(
    production_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    production_settings.DEBUG = True
    production_settings.SECRET_KEY = settings.DEV_SECRET_KEY
    production_settings.FIELD_ENCRYPTION_KEYS = [settings.DEV_FERNET_KEY]
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")

    assert check_development_fallbacks() == []
    assert _calsync_errors() == {}


# --- start-up of web and worker -------------------------------------------------------------------

IMPORT_WSGI_APPLICATION = ["-c", "from calsync_project.wsgi import application; print('served')"]
# A request to the web app (importing it has no side effect; serving refuses).
CALL_WSGI_APPLICATION = [
    "-c",
    "import wsgiref.util\n"
    "from calsync_project.wsgi import application\n"
    "environ = {}\n"
    "wsgiref.util.setup_testing_defaults(environ)\n"
    "application(environ, lambda *args: None)\n"
    "print('served')",
]
GUNICORN_ON_STARTING = [
    "-c",
    "import runpy; runpy.run_path('gunicorn.conf.py')['on_starting'](None); print('served')",
]


def test_web_application_starts_with_production_env(tmp_path: Path) -> None:
    result = run(IMPORT_WSGI_APPLICATION, production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "served" in result.stdout


@pytest.mark.parametrize("start", [CALL_WSGI_APPLICATION, GUNICORN_ON_STARTING], ids=["request", "gunicorn"])
def test_web_application_refuses_development_fallbacks(tmp_path: Path, start: list[str]) -> None:
    result = run(start, with_dev_fallbacks(production_env(tmp_path)))

    assert result.returncode != 0
    assert "served" not in result.stdout
    assert "ImproperlyConfigured" in result.stderr
    for variable in FALLBACK_VARIABLES:
        assert variable in result.stderr


def test_importing_the_web_application_has_no_side_effect(tmp_path: Path) -> None:
    result = run(IMPORT_WSGI_APPLICATION, with_dev_fallbacks(production_env(tmp_path)))

    assert result.returncode == 0, result.stderr


def test_web_application_refuses_plain_http_oauth_alone(tmp_path: Path) -> None:
    result = run(CALL_WSGI_APPLICATION, production_env(tmp_path, OAUTHLIB_INSECURE_TRANSPORT="1"))

    assert result.returncode != 0
    assert "OAUTHLIB_INSECURE_TRANSPORT" in result.stderr
    assert "SECRET_KEY is" not in result.stderr


def test_make_run_environment_starts_with_the_embedded_defaults(tmp_path: Path) -> None:
    """`make run` sets DEBUG=1 and plain-HTTP OAuth for the emulators, and no keys."""
    make_run = (ROOT / "Makefile").read_text()
    assert "RUN_ENV := DEBUG=1" in make_run
    assert "OAUTHLIB_INSECURE_TRANSPORT=1" in make_run
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    env.update(CALSYNC_VAR_DIR=str(tmp_path), DEBUG="1", OAUTHLIB_INSECURE_TRANSPORT="1")

    result = run(IMPORT_WSGI_APPLICATION, env)

    assert result.returncode == 0, result.stderr


@pytest.mark.worker
def test_celery_worker_refuses_development_fallbacks(tmp_path: Path) -> None:
    env = with_dev_fallbacks(production_env(tmp_path, CELERY_BROKER_URL="filesystem://"))
    for folder in ("queue", "processed", "control"):
        (tmp_path / "broker" / folder).mkdir(parents=True)

    result = run(["-m", "celery", "-A", "calsync_project", "worker", "--pool", "solo", "-l", "WARNING"], env)

    assert result.returncode != 0
    for variable in FALLBACK_VARIABLES:
        assert variable in result.stderr
    assert "ready" not in result.stdout + result.stderr


# --- seed_demo ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_refuses_to_run_with_debug_off() -> None:
    assert not settings.DEBUG

    with pytest.raises(CommandError, match="--allow-without-debug"):
        call_command("seed_demo")

    assert not User.objects.filter(is_superuser=True).exists()


@pytest.mark.django_db
def test_seed_demo_runs_with_debug_off_when_told() -> None:
    call_command("seed_demo", "--allow-without-debug", stdout=StringIO())

    assert User.objects.filter(email="admin@demo.calsync.test", is_superuser=True).exists()


@pytest.mark.django_db
def test_seed_demo_runs_with_debug_on(settings: Settings) -> None:
    settings.DEBUG = True

    call_command("seed_demo", stdout=StringIO())

    assert User.objects.filter(email="admin@demo.calsync.test", is_superuser=True).exists()
