"""Finding 6 of issue #13: one limit on failed logins for /accounts/login/ and /admin/login/.

Both logins count failures against allauth's ``login_failed`` rate limit (5 per e-mail address in
5 minutes, 10 per client address a minute), kept in the configured cache: CACHE_URL, Redis in
production so every web process sees the same count; LocMem by default (`make run`, the tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import Company, User
from tests.conftest import PASSWORD, make_user
from tests.security.env_settings import settings_under

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-1"
PER_ADDRESS_LIMIT = 5  # allauth's default: 5 failures per e-mail address in 5 minutes
TOO_MANY = "Too many failed login attempts"
TEST_REDIS = "redis://127.0.0.1:6379/14"


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(company: Company) -> User:
    return make_user(company, "admin@acme.test", is_staff=True)


def admin_login(client: Client, email: str, password: str) -> Any:
    return client.post(
        reverse("admin:login"), {"username": email, "password": password, "next": reverse("admin:index")}
    )


def allauth_login(client: Client, email: str, password: str) -> Any:
    return client.post(reverse("account_login"), {"login": email, "password": password})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- the configured cache -----------------------------------------------------------------------------


def test_cache_url_selects_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    caches = settings_under(monkeypatch, CACHE_URL="redis://:s3cret@cache.internal:6379/2")["CACHES"]

    assert caches["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://:s3cret@cache.internal:6379/2",
    }


def test_cache_defaults_to_this_process_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHE_URL", raising=False)

    caches = settings_under(monkeypatch)["CACHES"]

    assert caches["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.parametrize("value", ["memcached://:s3cret@cache.internal:11211", "s3cret", ""])
def test_bad_cache_url_names_the_variable_not_the_password(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL") as refused:
        settings_under(monkeypatch, CACHE_URL=value)

    assert "s3cret" not in str(refused.value)


# --- the admin login ------------------------------------------------------------------------------------


def test_admin_login_stops_guessing(staff: User) -> None:
    client = Client()
    for _ in range(PER_ADDRESS_LIMIT):
        assert admin_login(client, staff.email, WRONG).status_code == 200

    response = admin_login(client, staff.email, PASSWORD)

    assert not logged_in(client)
    assert TOO_MANY in response.content.decode()


def test_admin_login_still_works_below_the_limit(staff: User) -> None:
    client = Client()
    for _ in range(PER_ADDRESS_LIMIT - 1):
        admin_login(client, staff.email, WRONG)

    response = admin_login(client, staff.email, PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


def test_admin_login_keeps_refusing_users_who_are_not_staff(owner: User) -> None:
    client = Client()

    response = admin_login(client, owner.email, PASSWORD)

    assert not logged_in(client)
    assert "staff account" in response.content.decode()


# --- one limit for both logins --------------------------------------------------------------------------


def test_failures_on_either_login_count_against_one_limit(staff: User) -> None:
    for _ in range(3):
        admin_login(Client(), staff.email, WRONG)
    for _ in range(PER_ADDRESS_LIMIT - 3):
        allauth_login(Client(), staff.email, WRONG)

    on_allauth, on_admin = Client(), Client()
    refused_there = allauth_login(on_allauth, staff.email, PASSWORD)
    refused_here = admin_login(on_admin, staff.email, PASSWORD)

    assert not logged_in(on_allauth)
    assert not logged_in(on_admin)
    assert TOO_MANY in refused_there.content.decode()
    assert TOO_MANY in refused_here.content.decode()


def test_the_limit_is_per_address_so_others_still_log_in(staff: User, owner: User) -> None:
    for _ in range(PER_ADDRESS_LIMIT):
        admin_login(Client(), staff.email, WRONG)

    client = Client()
    allauth_login(client, owner.email, PASSWORD)

    assert logged_in(client)


@pytest.fixture
def redis_cache(settings: Settings) -> Iterator[redis.Redis]:
    """The default cache on a real Redis (as CACHE_URL=redis://... gives), under a prefix of this test."""
    prefix = f"calsync-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TEST_REDIS,
            "KEY_PREFIX": prefix,
        }
    }
    server = redis.Redis.from_url(TEST_REDIS)
    yield server
    for key in server.scan_iter(f"{prefix}:*"):
        server.delete(key)
    server.close()


def test_failed_logins_are_counted_in_the_shared_cache(redis_cache: redis.Redis, staff: User) -> None:
    for _ in range(PER_ADDRESS_LIMIT):
        admin_login(Client(), staff.email, WRONG)

    # What another web process (sharing only Redis) reads.
    assert list(redis_cache.scan_iter("*:allauth:rl:allauth.account:login_failed:*"))
    client = Client()
    response = allauth_login(client, staff.email, PASSWORD)
    assert not logged_in(client)
    assert TOO_MANY in response.content.decode()
