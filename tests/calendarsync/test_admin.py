"""Django admin for calendar accounts: company scoping (A1) and credentials kept out of pages (C7)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Company, User
from calendarsync.models import CalendarAccount, Heartbeat, Provider, RemoteCalendar
from tests.activities.test_admin import DOESNT_EXIST, grant_admin_permissions, logged_in
from tests.conftest import PASSWORD, make_user

SECRET = "SECRET-REFRESH-123"


@pytest.fixture
def superuser_client(db: None) -> Client:
    return logged_in(User.objects.create_superuser(email="root@calsync.test", password=PASSWORD))


@pytest.fixture
def company_admin_client(company: Company) -> Client:
    return logged_in(grant_admin_permissions(make_user(company, "boss@acme.test")))


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    account = CalendarAccount.objects.create(
        user=owner,
        provider=Provider.GOOGLE,
        email="owner@gmail.test",
        # The stubs see a TextField; EncryptedJSONField takes a dict.
        credentials={"refresh_token": SECRET, "access_token": "ya29.SECRET-ACCESS"},
        last_synced_at=timezone.now(),
    )
    RemoteCalendar.objects.create(
        account=account, external_id="primary", name="Owner's calendar", is_primary=True
    )
    return account


@pytest.fixture
def foreign_account(outsider: User) -> CalendarAccount:
    return CalendarAccount.objects.create(
        user=outsider,
        provider=Provider.MICROSOFT,
        email="outsider@globex.test",
        credentials={"refresh_token": "x"},
    )


def pages(client: Client, account: CalendarAccount) -> dict[str, str]:
    urls = {
        "changelist": reverse("admin:calendarsync_calendaraccount_changelist"),
        "search": reverse("admin:calendarsync_calendaraccount_changelist") + "?q=owner",
        "change": reverse("admin:calendarsync_calendaraccount_change", args=[account.pk]),
        "history": reverse("admin:calendarsync_calendaraccount_history", args=[account.pk]),
        "delete": reverse("admin:calendarsync_calendaraccount_delete", args=[account.pk]),
    }
    contents = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, name
        contents[name] = response.content.decode()
    return contents


def test_c7_credentials_never_appear_in_admin_pages(
    superuser_client: Client, account: CalendarAccount
) -> None:
    for name, html in pages(superuser_client, account).items():
        assert SECRET not in html, name
        assert "SECRET-ACCESS" not in html, name
        assert "refresh_token" not in html, name


def test_c7_credentials_never_appear_for_a_company_admin(
    company_admin_client: Client, account: CalendarAccount
) -> None:
    for name, html in pages(company_admin_client, account).items():
        assert SECRET not in html, name


def test_c7_saving_the_change_form_keeps_the_credentials(
    superuser_client: Client, account: CalendarAccount
) -> None:
    response = superuser_client.post(
        reverse("admin:calendarsync_calendaraccount_change", args=[account.pk]),
        {
            "state": "needs_reconnect",
            "state_detail": "Revoked by the admin",
            "stopped_at_0": "",
            "stopped_at_1": "",
            "calendars-TOTAL_FORMS": "1",
            "calendars-INITIAL_FORMS": "1",
            "calendars-MIN_NUM_FORMS": "0",
            "calendars-MAX_NUM_FORMS": "1000",
            "calendars-0-id": str(account.calendars.get().pk),
            "calendars-0-account": str(account.pk),
            "calendars-0-name": "Owner's calendar",
            "calendars-0-is_primary": "on",
            "calendars-0-can_write": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert account.state == "needs_reconnect"
    assert account.credentials is not None
    assert account.credentials["refresh_token"] == SECRET


def test_changelist_lists_provider_email_user_state_and_last_sync(
    superuser_client: Client, account: CalendarAccount
) -> None:
    html = superuser_client.get(reverse("admin:calendarsync_calendaraccount_changelist")).content.decode()

    assert "owner@gmail.test" in html
    assert "Google" in html
    assert "Active" in html
    assert "Last synced at" in html


def test_a1_superuser_sees_every_companys_accounts(
    superuser_client: Client, account: CalendarAccount, foreign_account: CalendarAccount
) -> None:
    html = superuser_client.get(reverse("admin:calendarsync_calendaraccount_changelist")).content.decode()

    assert "owner@gmail.test" in html
    assert "outsider@globex.test" in html


def test_a1_company_admin_sees_only_their_companys_accounts(
    company_admin_client: Client, account: CalendarAccount, foreign_account: CalendarAccount
) -> None:
    html = company_admin_client.get(reverse("admin:calendarsync_calendaraccount_changelist")).content.decode()
    foreign = company_admin_client.get(
        reverse("admin:calendarsync_calendaraccount_change", args=[foreign_account.pk]), follow=True
    ).content.decode()

    assert "owner@gmail.test" in html
    assert "outsider@globex.test" not in html
    assert DOESNT_EXIST in foreign


def test_remote_calendars_show_inline(superuser_client: Client, account: CalendarAccount) -> None:
    html = superuser_client.get(
        reverse("admin:calendarsync_calendaraccount_change", args=[account.pk])
    ).content.decode()

    assert "Owner&#x27;s calendar" in html


def test_heartbeat_admin_is_read_only(superuser_client: Client) -> None:
    beat = Heartbeat.objects.create(name="celery", beat_at=timezone.now())

    listing = superuser_client.get(reverse("admin:calendarsync_heartbeat_changelist"))
    change = superuser_client.post(
        reverse("admin:calendarsync_heartbeat_change", args=[beat.pk]),
        {"name": "x", "beat_at_0": "", "beat_at_1": ""},
    )
    add = superuser_client.get(reverse("admin:calendarsync_heartbeat_add"))

    assert "celery" in listing.content.decode()
    assert change.status_code == 403
    assert add.status_code == 403
    beat.refresh_from_db()
    assert beat.name == "celery"
