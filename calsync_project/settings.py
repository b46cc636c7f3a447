"""CalSync settings: every deploy-time value comes from the environment (see README)."""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
from celery.schedules import crontab

from calsync_project.env import (
    env_bool,
    env_broker_url,
    env_cache,
    env_database,
    env_fernet_keys,
    env_int,
    env_list,
    env_networks,
    env_proxy_ssl_header,
    env_str,
    env_time_zone,
)

# Lets app code write generic types such as ModelForm[User] and QuerySet[Activity].
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CALSYNC_VAR_DIR", str(BASE_DIR / "var")))

# Development-only fallbacks; `manage.py check --deploy` refuses them (calsync_project.checks).
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdef"  # noqa: S105 (refused by --deploy)
DEV_FERNET_KEY = "ZGV2LW9ubHktZmVybmV0LWtleS1jaGFuZ2UtbWUtISE="

SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
FIELD_ENCRYPTION_KEYS = env_fernet_keys("FIELD_ENCRYPTION_KEYS", [DEV_FERNET_KEY])

INSTALLED_APPS = [
    "accounts.apps.CalSyncAdminConfig",  # Django admin, its login rate-limited with allauth's
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "django_htmx",
    "calsync_project.apps.CalSyncProjectConfig",  # the deploy checks (calsync_project.checks)
    "accounts",
    "activities",
    "calendarsync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.UserTimeZoneMiddleware",
]

ROOT_URLCONF = "calsync_project.urls"
WSGI_APPLICATION = "calsync_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'calsync.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file-backed test database lets subprocesses (Celery worker tests) see test data.
    # One file per test process, so parallel runs never share (and clobber) a test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_calsync_{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# django-allauth: e-mail login; users are created by their company's admin, not by sign-up.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
# Changing one's e-mail (issue #13): the current password first (unless entered in the last 5
# minutes), then the new address waits, unverified, until the link mailed to it is followed, and
# then replaces the old one (which is told). The address the admin set counts as verified
# (accounts/addresses.py). Another user's address is refused with a form error (accounts/forms.py);
# the password reset form keeps hiding whether an address has an account.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_FORMS = {"add_email": "accounts.forms.ChangeEmailForm"}
ACCOUNT_ADAPTER = "accounts.adapters.CompanyAccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "activities:list"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

# E-mail (password resets, verification of a changed address): `make run` (DEBUG=1) prints mails
# on the console, the tests keep them in memory (locmem); production sends through SMTP.
_MAIL_BACKENDS = "django.core.mail.backends"
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    f"{_MAIL_BACKENDS}.console.EmailBackend" if DEBUG else f"{_MAIL_BACKENDS}.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "CalSync <calsync@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise warns at start-up when STATIC_ROOT is missing (before the first collectstatic, e.g.
# `make run` on a fresh clone); an empty folder is the same to it and silences the warning.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the app folders too, so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)

# Behind a TLS load balancer (issue #13): the header it sets on HTTPS requests, e.g.
# "X-Forwarded-Proto: https" (set it only if the proxy overwrites the client's own), HSTS and
# the redirect to HTTPS. TRUSTED_PROXY_COUNT: how many proxies append to X-Forwarded-For, so the
# login rate limits count per client address, not per load balancer.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

# One cache for every process (Redis in production): it holds the login rate limits of both
# the allauth and the admin login. LocMem (this process only) suits `make run` and the tests.
CACHES = {"default": env_cache("CACHE_URL", "locmem://")}

# Content-Security-Policy (django-csp): our own static files (htmx among them), nothing inline,
# no eval. No form-action: Chromium applies it to the redirect to Google's or Microsoft's sign-in.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

# Celery: an embedded filesystem broker by default, so `make run` needs no server.
CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL", "filesystem://")
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "calendarsync.tasks.heartbeat",
        "schedule": crontab(),  # every minute
    },
    # Beat only enqueues the accounts that are due; workers claim and sync them.
    "enqueue-due-syncs": {
        "task": "calendarsync.tasks.enqueue_due_syncs",
        "schedule": crontab(),  # every minute
    },
}

# Calendar sync knobs.
CALSYNC_HTTP_TIMEOUT_SECONDS = env_int("CALSYNC_HTTP_TIMEOUT_SECONDS", 20, minimum=1)
CALSYNC_SYNC_INTERVAL = timedelta(minutes=env_int("CALSYNC_SYNC_INTERVAL_MINUTES", 5, minimum=1))
CALSYNC_RECURRENCE_HORIZON_DAYS = env_int("CALSYNC_RECURRENCE_HORIZON_DAYS", 180, minimum=1)
CALSYNC_SYNC_DEBOUNCE_SECONDS = env_int("CALSYNC_SYNC_DEBOUNCE_SECONDS", 5, minimum=0)
CALSYNC_SYNC_LEASE_SECONDS = env_int("CALSYNC_SYNC_LEASE_SECONDS", 600, minimum=60)
CALSYNC_SYNC_RUN_RETENTION_DAYS = env_int("CALSYNC_SYNC_RUN_RETENTION_DAYS", 14, minimum=1)
CALENDAR_MAX_ITEMS = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # These log whole token requests and responses at DEBUG: credentials never reach logs (C7).
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "msal": {"level": "WARNING"},
        "exchangelib": {"level": "WARNING"},
    },
}

# Google Calendar (C3). Production defaults are Google's own endpoints; `make run` and the
# tests point them at the local emulator (calendarsync/emulators/google.py).
GOOGLE_CLIENT_ID = env_str("GOOGLE_CLIENT_ID", "")
GOOGLE_CLIENT_SECRET = env_str("GOOGLE_CLIENT_SECRET", "")
GOOGLE_AUTH_URI = env_str("GOOGLE_AUTH_URI", "https://accounts.google.com/o/oauth2/auth")
GOOGLE_TOKEN_URI = env_str("GOOGLE_TOKEN_URI", "https://oauth2.googleapis.com/token")
GOOGLE_REVOKE_URI = env_str("GOOGLE_REVOKE_URI", "https://oauth2.googleapis.com/revoke")
GOOGLE_API_BASE_URL = env_str("GOOGLE_API_BASE_URL", "https://www.googleapis.com/")
GOOGLE_BATCH_URI = env_str("GOOGLE_BATCH_URI", "https://www.googleapis.com/batch/calendar/v3")
GOOGLE_CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
GOOGLE_SCOPES = ["openid", "https://www.googleapis.com/auth/userinfo.email", GOOGLE_CALENDAR_SCOPE]

# Microsoft 365 through the Microsoft identity platform (msal) and Microsoft Graph (C2, C3).
# Production defaults are Microsoft's own endpoints; `make run` and the tests point them at the
# local emulator (calendarsync/emulators/microsoft.py). MICROSOFT_CA_BUNDLE: a PEM file of CAs
# to trust for the identity endpoints (the emulator's test CA); empty means the system's CAs.
MICROSOFT_CLIENT_ID = env_str("MICROSOFT_CLIENT_ID", "")
MICROSOFT_CLIENT_SECRET = env_str("MICROSOFT_CLIENT_SECRET", "")
MICROSOFT_AUTHORITY = env_str("MICROSOFT_AUTHORITY", "https://login.microsoftonline.com/common")
MICROSOFT_GRAPH_BASE_URL = env_str("MICROSOFT_GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0/")
MICROSOFT_CA_BUNDLE = env_str("MICROSOFT_CA_BUNDLE", "")
MICROSOFT_CALENDAR_SCOPE = "Calendars.ReadWrite"
# msal adds openid, profile and offline_access itself (and refuses them here).
MICROSOFT_SCOPES = [MICROSOFT_CALENDAR_SCOPE, "User.Read"]

# Microsoft Exchange (EWS, C2/C3/C5). Empty: an empty "Server URL" on the connect form uses
# autodiscover; set it to send such connects to one known EWS endpoint instead.
EXCHANGE_SERVER_URL = env_str("EXCHANGE_SERVER_URL", "")
# CalSync sends the Exchange password only to public addresses (no SSRF); these CIDRs are allowed
# too, for a self-hosted install's on-premises server (`make run` and the tests: loopback).
EXCHANGE_ALLOWED_NETWORKS = env_networks("EXCHANGE_ALLOWED_NETWORKS", [])
# Exchange connect attempts per user per 10 minutes (each sends a password to some server).
EXCHANGE_CONNECT_MAX_ATTEMPTS = env_int("EXCHANGE_CONNECT_MAX_ATTEMPTS", 10, minimum=1)
