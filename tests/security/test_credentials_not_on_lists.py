"""Finding 11 of issue #13: pages never decrypt calendar credentials (C7).

The list, the calendar, the export and the activity pages show an activity's calendar account
(A7, A8) without loading its credentials; only the sync engine and the connect flows read them.
Credentials that no key decrypts any more (a key retired before ``rotate_credentials`` ran)
break no page, and put the account into "Needs reconnect" with a message that says why.
"""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from activities.models import Activity, SyncStatus
from calendarsync.actions import do_start_sync
from calendarsync.models import AccountState, CalendarAccount, SyncRun
from calendarsync.sync.runner import RunStatus, run_account_sync
from tests.activities.conftest import berlin, timed
from tests.calendarsync.support import connect_account

pytestmark = pytest.mark.usefixtures("frozen_now")

CREDENTIALS_COLUMN = re.compile(r'"calendarsync_calendaraccount"\."credentials"', re.IGNORECASE)


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    return connect_account(owner, email="owner@gmail.test")


@pytest.fixture
def synced(owner: User, account: CalendarAccount) -> Activity:
    return timed(
        owner,
        berlin(2025, 1, 14, 9, 0),
        subject="Synced call",
        sync_status=SyncStatus.SYNCED,
        calendar_account=account,
    )


def raw_credentials(account: CalendarAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendarsync_calendaraccount WHERE id = %s", [account.pk])
        return str(cursor.fetchone()[0])


def retire_the_key(settings: Settings) -> None:
    """The key the credentials were encrypted with is gone; a new one took its place."""
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


def pages(activity: Activity) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "list": (reverse("activities:list"), {}),
        "calendar-week": (reverse("activities:calendar"), {"view": "week", "date": "2025-01-14"}),
        "calendar-month": (reverse("activities:calendar"), {"view": "month", "date": "2025-01-14"}),
        "csv-export": (reverse("activities:export"), {}),
        "detail": (reverse("activities:detail", args=[activity.pk]), {}),
        "edit-form": (reverse("activities:edit", args=[activity.pk]), {}),
        "create-form": (reverse("activities:create"), {}),
    }


PAGES = ("list", "calendar-week", "calendar-month", "csv-export", "detail", "edit-form", "create-form")


def body(response: object) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return str(raw.decode())


@pytest.mark.parametrize("name", PAGES)
def test_11_activity_pages_never_select_the_credentials(
    owner_client: Client, synced: Activity, name: str
) -> None:
    url, params = pages(synced)[name]
    with CaptureQueriesContext(connection) as queries:
        response = owner_client.get(url, params)
        text = body(response)
    assert response.status_code == 200
    if name not in {"create-form", "edit-form"}:
        assert "owner@gmail.test" in text  # the account is shown, from the row's other columns
    selecting = [
        query["sql"] for query in queries.captured_queries if CREDENTIALS_COLUMN.search(query["sql"])
    ]
    assert selecting == []


@pytest.mark.parametrize("name", PAGES)
def test_11_a_retired_key_breaks_no_activity_page(
    owner_client: Client, synced: Activity, settings: Settings, name: str
) -> None:
    retire_the_key(settings)
    url, params = pages(synced)[name]
    owner_client.raise_request_exception = False
    response = owner_client.get(url, params)
    assert response.status_code == 200
    if name != "create-form":
        assert "Synced call" in body(response)


def test_11_a_retired_key_breaks_no_calendar_sync_page(
    owner_client: Client, account: CalendarAccount, settings: Settings
) -> None:
    retire_the_key(settings)
    owner_client.raise_request_exception = False
    assert owner_client.get(reverse("calendarsync:page")).status_code == 200
    assert owner_client.get(reverse("calendarsync:sync_status", args=[account.pk])).status_code == 200


def test_11_sync_with_credentials_no_key_decrypts_asks_to_reconnect(
    owner: User, account: CalendarAccount, settings: Settings
) -> None:
    do_start_sync(acting_user=owner, account=account)
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    stored = raw_credentials(account)
    retire_the_key(settings)

    outcome = run_account_sync(account.pk)

    assert outcome.status is RunStatus.BLOCKED
    account.refresh_from_db()
    assert account.state == AccountState.NEEDS_RECONNECT
    assert "can no longer read the sign-in" in account.state_detail
    assert "can no longer read the sign-in" in SyncRun.objects.get(account=account).error
    # Nothing is lost: the ciphertext stays, and the old key, put back, reads it again.
    assert raw_credentials(account) == stored
    settings.FIELD_ENCRYPTION_KEYS = [*settings.FIELD_ENCRYPTION_KEYS, *old_keys]
    assert CalendarAccount.objects.get(pk=account.pk).credentials == {
        "access_token": "fake-access",
        "refresh_token": "fake-refresh",
    }


def test_11_saving_an_account_no_key_decrypts_keeps_its_ciphertext(
    account: CalendarAccount, settings: Settings
) -> None:
    stored = raw_credentials(account)
    retire_the_key(settings)
    unreadable = CalendarAccount.objects.get(pk=account.pk)
    assert not unreadable.credentials
    unreadable.state_detail = "touched"
    unreadable.save()
    assert raw_credentials(account) == stored
