"""The demo seed (`manage.py seed_demo`): a demo company to click through, safe to re-run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Company, User
from activities.models import Activity, ActivityType, Deal, Organization, Person, Visibility

pytestmark = pytest.mark.django_db

SALESPEOPLE = ("alice@demo.calsync.test", "bob@demo.calsync.test")


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    """Runs must not straddle midnight: the seed plans relative to "today"."""
    with time_machine.travel(dt.datetime(2025, 3, 5, 15, 30, tzinfo=dt.UTC), tick=False):
        yield


def seed() -> str:
    out = StringIO()
    # The tests run with DEBUG off, where the seed refuses unless told (tests/security).
    call_command("seed_demo", "--allow-without-debug", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Company,
            User,
            ActivityType,
            Organization,
            Person,
            Deal,
            Activity,
            Activity.participants.through,
        )
    }


def test_seed_demo_is_idempotent() -> None:
    seed()
    first = counts()

    output = seed()

    assert counts() == first
    assert "created    0" in output


def test_seed_demo_keeps_existing_data_and_edits() -> None:
    seed()
    alice = User.objects.get(email="alice@demo.calsync.test")
    alice.set_password("changed-by-alice-9")
    alice.save()
    activity = Activity.objects.filter(owner=alice).first()
    assert activity is not None
    activity.subject = "Edited by Alice"
    activity.save()

    seed()

    alice.refresh_from_db()
    assert alice.check_password("changed-by-alice-9")
    assert Activity.objects.filter(pk=activity.pk, subject="Edited by Alice").exists()


def test_a2_demo_company_has_the_six_default_types() -> None:
    seed()

    names = set(ActivityType.objects.filter(company__name="Demo Company").values_list("name", flat=True))

    assert names == {"Call", "Meeting", "Task", "Deadline", "Email", "Lunch"}


def test_demo_logins() -> None:
    output = seed()

    admin = User.objects.get(email="admin@demo.calsync.test")
    assert admin.is_staff
    assert admin.is_superuser
    assert admin.role == User.Role.ADMIN
    for email, zone in zip(SALESPEOPLE, ("Europe/Berlin", "America/New_York"), strict=True):
        user = User.objects.get(email=email)
        assert user.role == User.Role.REGULAR
        assert not user.is_staff
        assert user.time_zone == zone
        assert user.check_password("demo-password-1")
        assert email in output
    assert "demo-password-1" in output


@pytest.mark.parametrize("email", SALESPEOPLE)
def test_each_salesperson_has_a_realistic_six_weeks(email: str) -> None:
    seed()
    user = User.objects.get(email=email)
    activities = Activity.objects.filter(owner=user)
    today = timezone.now().astimezone(user.tzinfo).date()

    assert 45 <= activities.count() <= 55
    assert activities.filter(visibility=Visibility.OWNER).exists()
    assert activities.filter(start_at__isnull=True).exists()  # all-day
    assert activities.filter(start_at__isnull=False, duration__isnull=False).exists()
    assert activities.filter(done=True).exists()
    assert activities.filter(deal__isnull=False).exists()
    assert activities.filter(participants__isnull=False).exists()
    assert activities.exclude(guests=[]).exists()
    assert activities.values("type").distinct().count() >= 4
    for activity in activities:
        assert 0 <= (activity.due_date - today).days < 42
        if activity.start_at is not None:
            assert activity.start_at.astimezone(user.tzinfo).date() == activity.due_date


def test_some_deals_are_visible_only_to_their_owner() -> None:
    seed()

    assert Deal.objects.filter(visibility=Visibility.OWNER).exists()
    assert Deal.objects.filter(visibility=Visibility.EVERYONE).exists()


def test_seed_is_reproducible() -> None:
    seed()
    first = list(Activity.objects.order_by("owner__email", "id").values_list("subject", "due_date"))
    Activity.objects.all().delete()

    seed()

    again = list(Activity.objects.order_by("owner__email", "id").values_list("subject", "due_date"))
    assert again == first
