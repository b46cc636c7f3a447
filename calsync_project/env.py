"""Typed readers for environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value
cannot be parsed, so a bad deployment stops at start-up instead of misbehaving.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zoneinfo
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated CIDRs (10.0.0.0/8, fd00::/8); a bare address is a one-address network."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name} must be comma-separated networks such as 10.0.0.0/8 or fd00::/8, got {item!r}"
            ) from exc
    return networks


def env_time_zone(name: str, default: str) -> str:
    value = os.environ.get(name, default)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone such as Europe/Berlin, got {value!r}"
        ) from exc
    return value


def env_database(name: str, default: str) -> dict[str, Any]:
    raw = os.environ.get(name, default)
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(raw, conn_max_age=60))
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from exc
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"{name} names an unsupported database scheme: {raw!r}")
    return config


def env_broker_url(name: str, default: str) -> str:
    value = os.environ.get(name, default)
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in {"filesystem", "redis", "rediss", "amqp", "amqps", "pyamqp", "memory"}:
        raise ImproperlyConfigured(f"{name} must be a redis://, amqp:// or filesystem:// URL, got {value!r}")
    return value


def env_fernet_keys(name: str, default: list[str]) -> list[str]:
    """Comma-separated Fernet keys, newest first (MultiFernet order)."""
    from cryptography.fernet import Fernet

    keys = env_list(name, default)
    if not keys:
        raise ImproperlyConfigured(f"{name} must hold at least one Fernet key")
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"{name} holds a value that is not a Fernet key (32 url-safe base64 bytes)"
            ) from exc
    return keys


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``Header-Name: value`` that a trusted TLS proxy sets on HTTPS requests, as Django's
    SECURE_PROXY_SSL_HEADER (``("HTTP_HEADER_NAME", "value")``); unset or empty means none."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, separator, value = (part.strip() for part in raw.partition(":"))
    if not separator or not value or not _HEADER_NAME.fullmatch(header):
        raise ImproperlyConfigured(
            f"{name} must be a header and the value meaning HTTPS, like 'X-Forwarded-Proto: https', got {raw!r}"
        )
    return "HTTP_" + header.upper().replace("-", "_"), value


_CACHE_BACKENDS = {
    "redis": "django.core.cache.backends.redis.RedisCache",
    "rediss": "django.core.cache.backends.redis.RedisCache",
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
}


def env_cache(name: str, default: str) -> dict[str, Any]:
    """A cache from a URL: ``redis://`` or ``rediss://`` (shared by every process) or ``locmem://``
    (this process only)."""
    raw = os.environ.get(name, default)
    scheme, separator, rest = raw.partition("://")
    scheme = scheme.lower()
    # The message shows the scheme only: the URL may carry the Redis password.
    expected = f"{name} must be a redis://, rediss:// or locmem:// URL"
    if not separator:
        raise ImproperlyConfigured(f"{expected}, got a value without a scheme")
    backend = _CACHE_BACKENDS.get(scheme)
    if backend is None:
        raise ImproperlyConfigured(f"{expected}, got a {scheme[:20]}:// URL")
    return {"BACKEND": backend, "LOCATION": raw if scheme != "locmem" else (rest or "calsync")}
