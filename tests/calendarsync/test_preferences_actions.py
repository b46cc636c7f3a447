"""The preference actions: defaults on connect, update, start, stop, reconnect; each audited (O1-O10, C6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Company, User
from activities.models import ActivityType
from calendarsync.actions import (
    AnotherAccountConnected,
    CannotStartSync,
    InvalidPreferences,
    SignedInAsSomeoneElse,
    do_connect_account,
    do_start_sync,
    do_stop_sync,
    do_update_preferences,
)
from calendarsync.models import (
    AccountState,
    AuditEvent,
    CalendarAccount,
    EventLink,
    ExternalVisibility,
    LinkOrigin,
    PrivateEvents,
    Provider,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.base import RemoteCalendarInfo
from tests.calendarsync.support import DEFAULT_CALENDARS, connect_account
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


def test_c6_after_stop_another_identity_starts_with_defaults(owner: User, company: Company) -> None:
    account = connect_account(owner)
    do_update_preferences(acting_user=owner, account=account, changes={"sync_type": SyncType.ONE_WAY})
    do_stop_sync(acting_user=owner, account=account)
    again = connect_account(owner, email="someone.else@example.com")
    assert again.pk != account.pk
    assert SyncPreferences.objects.get(account=again).sync_type == SyncType.TWO_WAY
    assert not AuditEvent.objects.filter(action="preferences_restored").exists()


def test_c6_o1_o7_re_adding_the_same_identity_restores_its_previous_options(
    owner: User, company: Company
) -> None:
    account = connect_account(owner)
    team = account.calendars.get(name="Team calendar")
    call, task = activity_type(company, "Call"), activity_type(company, "Task")
    changes = {
        "calendar": team,
        "sync_type": SyncType.ONE_WAY,
        "incoming_type": call,
        "outgoing_types": [task],
        "external_visibility": ExternalVisibility.ONLY_ME,
        "private_events": PrivateEvents.SKIP,
        "include_details": False,
    }
    do_update_preferences(acting_user=owner, account=account, changes=changes)
    do_start_sync(acting_user=owner, account=account)
    do_stop_sync(acting_user=owner, account=account)
    # The same provider and address, typed in another case: the same identity.
    again = connect_account(owner, email=account.email.upper())
    assert again.pk != account.pk
    restored = SyncPreferences.objects.get(account=again)
    assert restored.calendar is not None
    assert restored.calendar.account == again  # the new account's row for the same calendar
    assert restored.calendar.external_id == team.external_id
    assert restored.sync_type == SyncType.ONE_WAY
    assert restored.incoming_type == call
    assert list(restored.outgoing_types.all()) == [task]
    assert restored.external_visibility == ExternalVisibility.ONLY_ME
    assert restored.private_events == PrivateEvents.SKIP
    assert restored.include_details is False
    # Offered, not started: the user reviews them and presses Start sync (O9).
    assert (restored.sync_started_at, restored.sync_stopped_at) == (None, None)
    event = AuditEvent.objects.get(account=again, action="preferences_restored")
    assert event.detail == {"from_account": account.pk}
    # The stopped account keeps its own options untouched.
    assert SyncPreferences.objects.get(account=account).sync_stopped_at is not None


def test_c6_re_adding_restores_the_most_recently_stopped_options(owner: User) -> None:
    first = connect_account(owner)
    do_update_preferences(acting_user=owner, account=first, changes={"include_details": False})
    do_stop_sync(acting_user=owner, account=first)
    second = connect_account(owner)
    do_update_preferences(acting_user=owner, account=second, changes={"include_details": True})
    do_stop_sync(acting_user=owner, account=second)
    third = connect_account(owner)
    assert SyncPreferences.objects.get(account=third).include_details is True


def test_c6_only_the_same_provider_counts_as_the_same_identity(owner: User) -> None:
    account = connect_account(owner, provider=Provider.GOOGLE, email="owner@example.com")
    do_update_preferences(acting_user=owner, account=account, changes={"sync_type": SyncType.ONE_WAY})
    do_stop_sync(acting_user=owner, account=account)
    again = connect_account(owner, provider=Provider.MICROSOFT, email="owner@example.com")
    assert SyncPreferences.objects.get(account=again).sync_type == SyncType.TWO_WAY


def test_c6_restored_options_fall_back_where_they_no_longer_apply(owner: User, company: Company) -> None:
    account = connect_account(owner)
    team = account.calendars.get(name="Team calendar")
    site_visit = ActivityType.objects.create(company=company, name="Site visit")
    call = activity_type(company, "Call")
    do_update_preferences(
        acting_user=owner,
        account=account,
        changes={"calendar": team, "incoming_type": site_visit, "outgoing_types": [site_visit, call]},
    )
    do_stop_sync(acting_user=owner, account=account)
    ActivityType.objects.filter(pk=site_visit.pk).update(is_active=False)
    # The team calendar is gone (or read-only) at the provider now.
    again = connect_account(
        owner,
        calendars=[RemoteCalendarInfo("primary@example.com", "My calendar", is_primary=True, can_write=True)],
    )
    restored = SyncPreferences.objects.get(account=again)
    assert restored.calendar is not None
    assert restored.calendar.name == "My calendar"
    assert restored.incoming_type == activity_type(company, "Meeting")
    assert list(restored.outgoing_types.all()) == [call]


def test_r10_reconnect_keeps_the_row_links_and_options_clears_the_state_and_resumes(
    owner: User, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("calendarsync.tasks._send_requested", queued.append)
    account = connect_account(owner)
    do_update_preferences(acting_user=owner, account=account, changes={"include_details": False})
    do_start_sync(acting_user=owner, account=account)
    link = EventLink.objects.create(
        account=account, calendar_external_id="primary", external_id="evt-1", origin=LinkOrigin.CRM
    )
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.NEEDS_RECONNECT,
        state_detail="Access to your calendar was revoked",
        last_sync_error="revoked",
        sync_failures=3,
        sync_requested_at=None,
    )
    with django_capture_on_commit_callbacks(execute=True):
        again = do_connect_account(
            acting_user=owner,
            provider=Provider.GOOGLE,
            email=account.email,
            credentials={"access_token": "new-access", "refresh_token": "new-refresh"},
            calendars=list(DEFAULT_CALENDARS),
        )
    assert again.pk == account.pk
    account.refresh_from_db()
    assert account.credentials is not None
    assert account.credentials["refresh_token"] == "new-refresh"
    assert (account.state, account.state_detail) == (AccountState.ACTIVE, "")
    assert (account.last_sync_error, account.sync_failures) == ("", 0)
    assert EventLink.objects.get(pk=link.pk).account_id == account.pk
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.include_details is False
    assert preferences.sync_started_at is not None
    assert queued == [account.pk]  # the paused sync carries on at once


def test_r10_reconnect_queues_a_sync_even_when_a_request_was_left_from_the_blocked_time(
    owner: User, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CRM save while the account needed reconnecting marked a request no worker could honour;
    reconnecting must still queue the run at once, not wait for that mark to go stale."""
    queued: list[int] = []
    monkeypatch.setattr("calendarsync.tasks._send_requested", queued.append)
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.NEEDS_RECONNECT, sync_requested_at=timezone.now() - dt.timedelta(seconds=8)
    )
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        do_connect_account(
            acting_user=owner,
            provider=Provider.GOOGLE,
            email=account.email,
            credentials={"access_token": "new-access", "refresh_token": "new-refresh"},
            calendars=list(DEFAULT_CALENDARS),
        )
    assert queued == [account.pk]


def test_r10_a_reconnect_signed_in_as_someone_else_is_refused_and_changes_nothing(owner: User) -> None:
    account = connect_account(owner)
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    with pytest.raises(SignedInAsSomeoneElse) as refused:
        connect_account(owner, email="intruder@example.com")
    assert refused.value.account == account
    assert refused.value.signed_in_email == "intruder@example.com"
    account.refresh_from_db()
    assert account.state == AccountState.NEEDS_RECONNECT
    assert account.credentials is not None
    assert account.credentials["refresh_token"] == "fake-refresh"
    assert list(CalendarAccount.objects.filter(user=owner)) == [account]


def test_c6_another_provider_while_connected_is_still_refused_as_another_account(owner: User) -> None:
    account = connect_account(owner, provider=Provider.GOOGLE)
    with pytest.raises(AnotherAccountConnected) as refused:
        connect_account(owner, provider=Provider.EXCHANGE, email=account.email)
    assert not isinstance(refused.value, SignedInAsSomeoneElse)
