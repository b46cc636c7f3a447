"""The preference actions: defaults on connect, update, start, stop, reconnect; each audited (O1-O10, C6)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Company, User
from activities.models import ActivityType
from calendarsync.actions import (
    CannotStartSync,
    InvalidPreferences,
    do_start_sync,
    do_stop_sync,
    do_update_preferences,
)
from calendarsync.models import (
    AccountState,
    AuditEvent,
    CalendarAccount,
    ExternalVisibility,
    PrivateEvents,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.base import RemoteCalendarInfo
from tests.calendarsync.support import connect_account
from tests.conftest import activity_type

pytestmark = pytest.mark.django_db


def test_o1_o7_new_account_gets_the_defaults_a_new_user_expects(owner: User, company: Company) -> None:
    account = connect_account(owner)
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.calendar is not None
    assert preferences.calendar.name == "My calendar"
    assert preferences.sync_type == SyncType.TWO_WAY
    assert preferences.incoming_type == activity_type(company, "Meeting")
    assert set(preferences.outgoing_types.values_list("name", flat=True)) == {"Meeting", "Call"}
    assert preferences.external_visibility == ExternalVisibility.EVERYONE
    assert preferences.private_events == PrivateEvents.ONLY_ME
    assert preferences.include_details is True
    assert preferences.sync_started_at is None


def test_o1_default_calendar_skips_a_read_only_primary(owner: User) -> None:
    account = connect_account(
        owner,
        calendars=[
            RemoteCalendarInfo("primary", "Primary (read-only)", is_primary=True, can_write=False),
            RemoteCalendarInfo("work", "Work", is_primary=False, can_write=True),
        ],
    )
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.calendar is not None
    assert preferences.calendar.name == "Work"


def test_connect_is_audited_without_credentials(owner: User) -> None:
    account = connect_account(owner)
    event = AuditEvent.objects.get(account=account)
    assert event.action == "connected"
    assert event.actor == owner
    assert "fake-refresh" not in str(event.detail)
    assert "fake-access" not in str(event.detail)


def test_reconnecting_the_same_account_keeps_its_preferences(owner: User, company: Company) -> None:
    account = connect_account(owner)
    call = activity_type(company, "Call")
    do_update_preferences(
        acting_user=owner, account=account, changes={"sync_type": SyncType.ONE_WAY, "incoming_type": call}
    )
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    again = connect_account(owner)
    assert again.pk == account.pk
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.sync_type == SyncType.ONE_WAY
    assert preferences.incoming_type == call
    assert SyncPreferences.objects.filter(account=account).count() == 1
    assert AuditEvent.objects.filter(account=account, action="reconnected").exists()


def test_c4_sign_in_without_calendar_access_keeps_the_chosen_calendar(owner: User) -> None:
    account = connect_account(owner)
    team = account.calendars.get(name="Team calendar")
    do_update_preferences(acting_user=owner, account=account, changes={"calendar": team})
    connect_account(owner, calendars=[], state=AccountState.INSUFFICIENT_PERMISSIONS)
    assert SyncPreferences.objects.get(account=account).calendar == team


def test_c4_first_connect_without_access_gets_the_primary_once_access_is_granted(owner: User) -> None:
    account = connect_account(owner, calendars=[], state=AccountState.INSUFFICIENT_PERMISSIONS)
    assert SyncPreferences.objects.get(account=account).calendar is None
    connect_account(owner)
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.calendar is not None
    assert preferences.calendar.is_primary


def test_o8_update_records_what_changed_and_by_whom(owner: User, company: Company) -> None:
    account = connect_account(owner)
    lunch = activity_type(company, "Lunch")
    made = do_update_preferences(
        acting_user=owner,
        account=account,
        changes={"outgoing_types": [lunch], "private_events": PrivateEvents.SKIP, "include_details": True},
    )
    assert set(made) == {"outgoing_types", "private_events"}  # include_details was already on
    event = AuditEvent.objects.filter(action="preferences_updated").get()
    assert event.actor == owner
    assert event.detail["changes"]["private_events"] == {"from": "only_me", "to": "skip"}
    assert event.detail["changes"]["outgoing_types"]["to"] == [{"id": lunch.pk, "name": "Lunch"}]
    preferences = SyncPreferences.objects.get(account=account)
    assert list(preferences.outgoing_types.all()) == [lunch]


def test_o8_an_unchanged_value_writes_no_audit_event(owner: User) -> None:
    account = connect_account(owner)
    assert do_update_preferences(acting_user=owner, account=account, changes={"sync_type": "two_way"}) == {}
    assert not AuditEvent.objects.filter(action="preferences_updated").exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"sync_type": "three_way"},
        {"favourite_colour": "blue"},
        {"include_details": "yes"},
        {"calendar": None},
    ],
)
def test_o8_action_refuses_what_no_form_sends(owner: User, bad: dict[str, object]) -> None:
    account = connect_account(owner)
    with pytest.raises(InvalidPreferences):
        do_update_preferences(acting_user=owner, account=account, changes=bad)


def test_o8_action_refuses_foreign_and_inactive_types_and_foreign_calendars(
    owner: User, outsider: User, other_company: Company, company: Company
) -> None:
    account = connect_account(owner)
    foreign_type = activity_type(other_company, "Meeting")
    inactive = ActivityType.objects.create(company=company, name="Old", is_active=False)
    foreign_calendar = connect_account(outsider).calendars.get(is_primary=True)
    for changes in (
        {"incoming_type": foreign_type},
        {"outgoing_types": [inactive]},
        {"calendar": foreign_calendar},
        {"calendar": account.calendars.get(can_write=False)},
    ):
        with pytest.raises(InvalidPreferences):
            do_update_preferences(acting_user=owner, account=account, changes=changes)
    assert not AuditEvent.objects.filter(action="preferences_updated").exists()


def test_o9_start_sync_sets_started_clears_stopped_and_activates(owner: User) -> None:
    account = connect_account(owner)
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.ERROR, state_detail="boom")
    SyncPreferences.objects.filter(account=account).update(sync_stopped_at=timezone.now())
    do_start_sync(acting_user=owner, account=account)
    account.refresh_from_db()
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.sync_started_at is not None
    assert preferences.sync_stopped_at is None
    assert account.state == AccountState.ACTIVE
    assert account.state_detail == ""
    assert AuditEvent.objects.filter(account=account, action="sync_started", actor=owner).exists()


@pytest.mark.parametrize("state", [AccountState.NEEDS_RECONNECT, AccountState.INSUFFICIENT_PERMISSIONS])
def test_o9_start_is_refused_while_the_provider_refuses_calsync(owner: User, state: AccountState) -> None:
    account = connect_account(owner, state=state)
    with pytest.raises(CannotStartSync, match="reconnect it first"):
        do_start_sync(acting_user=owner, account=account)
    assert SyncPreferences.objects.get(account=account).sync_started_at is None


def test_o9_start_needs_a_calendar(owner: User) -> None:
    account = connect_account(owner, calendars=[])
    with pytest.raises(CannotStartSync, match="Choose a calendar"):
        do_start_sync(acting_user=owner, account=account)


def test_c6_stop_removes_credentials_keeps_preferences_and_is_audited(owner: User) -> None:
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    do_stop_sync(acting_user=owner, account=account)
    account.refresh_from_db()
    assert account.credentials is None
    assert account.stopped_at is not None
    assert SyncPreferences.objects.get(account=account).sync_stopped_at is not None
    assert AuditEvent.objects.filter(account=account, action="sync_stopped", actor=owner).exists()


def test_c6_after_stop_a_new_connection_starts_with_defaults(owner: User, company: Company) -> None:
    account = connect_account(owner)
    do_update_preferences(acting_user=owner, account=account, changes={"sync_type": SyncType.ONE_WAY})
    do_stop_sync(acting_user=owner, account=account)
    again = connect_account(owner)
    assert again.pk != account.pk
    assert SyncPreferences.objects.get(account=again).sync_type == SyncType.TWO_WAY
