"""Shared fixtures: a company with an owner and a colleague, and an outsider from another company."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from accounts.models import Company, User
from activities.models import Activity, ActivityType

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _block_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to loopback only (our emulators, PostgreSQL, Redis)."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple):
            host = str(address[0])
            if not (host.startswith("127.") or host in {"localhost", "::1"}):
                raise OSError(f"tests may not reach {host}: the network is blocked outside loopback")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


# The emulators listen on loopback, where Exchange connections go only through
# EXCHANGE_ALLOWED_NETWORKS (issue #13). pytest-django reads the settings before this file, so the
# fixture sets them for this process; the variable reaches the worker processes tests start.
TEST_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"
os.environ.setdefault("EXCHANGE_ALLOWED_NETWORKS", TEST_ALLOWED_NETWORKS)


@pytest.fixture(autouse=True)
def _exchange_may_reach_the_emulators(settings: Settings) -> None:
    settings.EXCHANGE_ALLOWED_NETWORKS = [
        ipaddress.ip_network(network) for network in TEST_ALLOWED_NETWORKS.split(",")
    ]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Counters in the cache (attempt limits) start at zero: user ids repeat between tests."""
    cache.clear()


@pytest.fixture
def company(db: None) -> Company:
    return Company.objects.create(name="Acme Sales")


@pytest.fixture
def other_company(db: None) -> Company:
    return Company.objects.create(name="Globex")


def make_user(company: Company | None, email: str, **extra: Any) -> User:
    return User.objects.create_user(
        email=email, password=PASSWORD, company=company, first_name=email.split("@")[0].title(), **extra
    )


@pytest.fixture
def owner(company: Company) -> User:
    return make_user(company, "owner@acme.test", time_zone="Europe/Berlin")


@pytest.fixture
def colleague(company: Company) -> User:
    return make_user(company, "colleague@acme.test", time_zone="America/New_York")


@pytest.fixture
def outsider(other_company: Company) -> User:
    return make_user(other_company, "outsider@globex.test")


@pytest.fixture
def owner_client(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def colleague_client(colleague: User) -> Client:
    client = Client()
    client.force_login(colleague)
    return client


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    client = Client()
    client.force_login(outsider)
    return client


def activity_type(company: Company, name: str = "Meeting") -> ActivityType:
    return ActivityType.objects.get(company=company, name=name)


def make_activity(owner: User, **fields: Any) -> Activity:
    assert owner.company is not None
    start = fields.pop("start_at", timezone.now().replace(microsecond=0) + dt.timedelta(days=1))
    defaults: dict[str, Any] = {
        "company": owner.company,
        "owner": owner,
        "type": fields.pop("type", None) or activity_type(owner.company),
        "subject": "Quarterly review",
        "start_at": start,
        "due_date": fields.pop("due_date", None)
        or (start.astimezone(owner.tzinfo).date() if start else None),
        "duration": dt.timedelta(minutes=30) if start else None,
    }
    defaults.update(fields)
    return Activity.objects.create(**defaults)


@pytest.fixture
def browser_env() -> Iterator[None]:
    """Playwright's sync API runs an event loop in the test thread; Django's ORM must allow it."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
