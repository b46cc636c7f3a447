"""Fixtures for the activity UI tests: a fixed clock and CRM items with owners and visibilities."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from accounts.models import User
from activities.models import Activity, ActivityType, Deal, Organization, Person, Visibility
from calendarsync.models import CalendarAccount, Provider
from tests.conftest import make_activity

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# Monday 13 January 2025, 10:00 in Berlin (04:00 in New York): both zones on standard time.
NOW = dt.datetime(2025, 1, 13, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen_now() -> Iterator[dt.datetime]:
    with time_machine.travel(NOW, tick=False):
        yield NOW


def berlin(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def make_deal(owner: User, title: str = "Big deal", visibility: str = Visibility.EVERYONE) -> Deal:
    assert owner.company is not None
    return Deal.objects.create(company=owner.company, owner=owner, title=title, visibility=visibility)


def make_person(owner: User, name: str = "Pat Buyer", visibility: str = Visibility.EVERYONE) -> Person:
    assert owner.company is not None
    return Person.objects.create(company=owner.company, owner=owner, name=name, visibility=visibility)


def make_org(owner: User, name: str = "Initech", visibility: str = Visibility.EVERYONE) -> Organization:
    assert owner.company is not None
    return Organization.objects.create(company=owner.company, owner=owner, name=name, visibility=visibility)


def timed(owner: User, when: dt.datetime, **fields: Any) -> Activity:
    return make_activity(owner, start_at=when, **fields)


def all_day(owner: User, day: dt.date, **fields: Any) -> Activity:
    return make_activity(owner, start_at=None, due_date=day, duration=None, **fields)


@pytest.fixture
def hidden_deal(owner: User) -> Deal:
    """A deal only its owner may see (A5)."""
    return make_deal(owner, title="Hush-hush acquisition", visibility=Visibility.OWNER)


@pytest.fixture
def private_activity(owner: User, frozen_now: dt.datetime) -> Activity:
    """A6: only its owner sees the details."""
    return timed(
        owner,
        berlin(2025, 1, 14, 15, 0),
        subject="Secret merger talk",
        note="Bring the term sheet",
        location="Hotel Adlon",
        visibility=Visibility.OWNER,
        deal=make_deal(owner, title="Merger deal"),
        person=make_person(owner, name="Hidden Harry"),
        organization=make_org(owner, name="Initrode"),
    )


def make_account(user: User, email: str | None = None) -> CalendarAccount:
    return CalendarAccount.objects.create(
        user=user, provider=Provider.GOOGLE, email=email or user.email.replace("@", ".cal@")
    )


def bulk_timed(owner: User, starts: list[dt.datetime], **fields: Any) -> list[Activity]:
    """Many activities in one query, for query-count and cap tests."""
    assert owner.company is not None
    activity_type = fields.pop("type", None) or ActivityType.objects.get(company=owner.company, name="Call")
    return Activity.objects.bulk_create(
        Activity(
            company=owner.company,
            owner=owner,
            type=activity_type,
            subject=fields.get("subject", f"Bulk call {index}"),
            start_at=start,
            due_date=start.astimezone(owner.tzinfo).date(),
            duration=dt.timedelta(minutes=15),
            **{key: value for key, value in fields.items() if key != "subject"},
        )
        for index, start in enumerate(starts)
    )
