"""Per-user limits on connect attempts that send a password to a server the user names.

A fixed window per user in Django's cache (the configured one: shared by every process when it
is Redis). The counter starts with ``cache.add`` and grows with ``cache.incr``, both atomic in
Django's Redis and local-memory backends:
https://docs.djangoproject.com/en/5.2/topics/cache/#basic-usage
"""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache

EXCHANGE_CONNECT_WINDOW = dt.timedelta(minutes=10)


def _key(kind: str, user_id: int) -> str:
    return f"calsync:connect-attempts:{kind}:{user_id}"


def take_attempt(kind: str, user_id: int, *, limit: int, window: dt.timedelta) -> bool:
    """Count one attempt of ``user_id``; False once more than ``limit`` were made in the window."""
    key = _key(kind, user_id)
    seconds = int(window.total_seconds())
    if cache.add(key, 1, timeout=seconds):
        return limit >= 1
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add and incr: this attempt opens a new one
        cache.add(key, 1, timeout=seconds)
        count = 1
    return count <= limit
