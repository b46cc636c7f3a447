"""Django admin for calendar accounts: company scoping (A1) and credentials kept out of pages (C7)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Company, User
from calendarsync.models import AuditEvent, CalendarAccount, Heartbeat, Provider, RemoteCalendar
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
            # The read-only preferences and audit-trail inlines still post their management forms.
            "preferences-TOTAL_FORMS": "0",
            "preferences-INITIAL_FORMS": "0",
            "preferences-MIN_NUM_FORMS": "0",
            "preferences-MAX_NUM_FORMS": "1",
            "audit_events-TOTAL_FORMS": "0",
            "audit_events-INITIAL_FORMS": "0",
            "audit_events-MIN_NUM_FORMS": "0",
            "audit_events-MAX_NUM_FORMS": "1000",
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


def run_action(client: Client, action: str, account: CalendarAccount) -> str:
    response = client.post(
        reverse("admin:calendarsync_calendaraccount_changelist"),
        {"action": action, "_selected_action": [account.pk]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_force_full_resync_makes_the_account_due_for_a_full_listing(
    superuser_client: Client,
    account: CalendarAccount,
) -> None:
    CalendarAccount.objects.filter(pk=account.pk).update(sync_cursor="cursor-1", next_sync_at=None)
    html = run_action(superuser_client, "force_full_resync", account)
    account.refresh_from_db()
    assert "A full resync was scheduled for 1 account." in html
    assert account.full_sync_at is None
    assert account.next_sync_at is not None
    assert AuditEvent.objects.filter(account=account, action="full_resync_requested").exists()


def test_disconnect_removes_credentials_and_keeps_the_account_record(
    superuser_client: Client,
    account: CalendarAccount,
) -> None:
    html = run_action(superuser_client, "disconnect", account)
    account.refresh_from_db()
    assert "Disconnected 1 account." in html
    assert account.stopped_at is not None
    assert account.credentials is None
    assert AuditEvent.objects.filter(account=account, action="sync_stopped").exists()


def test_change_page_shows_preferences_and_audit_trail_but_no_credentials(
    superuser_client: Client,
    account: CalendarAccount,
) -> None:
    from calendarsync.actions import ensure_preferences

    ensure_preferences(account)
    AuditEvent.objects.create(account=account, action="preferences_updated", detail={"sync_type": "one_way"})
    html = superuser_client.get(
        reverse("admin:calendarsync_calendaraccount_change", args=[account.pk])
    ).content.decode()
    assert "Sync type" in html
    assert "preferences_updated" in html
    assert SECRET not in html
    audit_html = superuser_client.get(reverse("admin:calendarsync_auditevent_changelist")).content.decode()
    assert "preferences_updated" in audit_html
