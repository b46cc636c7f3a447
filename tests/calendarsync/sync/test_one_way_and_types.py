"""One-way sync and activity-type mapping end to end (O2, O4, R4, R5, R6, O10)."""

from __future__ import annotations

import datetime as dt

import pytest

from activities.models import Activity, SyncStatus, Visibility
from calendarsync.models import (
    CalendarAccount,
    EventLink,
    ExternalVisibility,
    RemoteCalendar,
    SyncPreferences,
    SyncType,
)
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db


def test_o2_r4_one_way_does_not_import_calendar_events(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(sync_type=SyncType.ONE_WAY)
    sync_env.start()
    sync_env.control.create_event("Private errand", soon(2, 10), soon(2, 11))
    activity = sync_env.activity(subject="Client call", start_at=soon(2, 14))
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.created == 0
    assert not Activity.objects.filter(subject="Private errand").exists()
    assert sync_env.event_of(activity) is not None  # O2: CRM -> calendar still works


def test_r4_one_way_pulls_edits_of_crm_events(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(sync_type=SyncType.ONE_WAY)
    sync_env.start()
    activity = sync_env.activity(subject="Client call", start_at=soon(2, 14))
    sync_env.sync()
    sync_env.control.update_event(
        sync_env.link_of(activity).external_id, start=soon(4, 16), end=soon(4, 17), location="Their office"
    )
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.start_at == soon(4, 16)
    assert activity.duration == dt.timedelta(hours=1)
    assert activity.location == "Their office"


def test_r4_one_way_event_deleted_in_the_calendar_keeps_the_activity(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(sync_type=SyncType.ONE_WAY)
    sync_env.start()
    activity = sync_env.activity(subject="Client call", start_at=soon(2, 14))
    sync_env.sync()
    sync_env.control.delete_event(sync_env.link_of(activity).external_id)
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.sync_status == SyncStatus.SKIPPED
    assert sync_env.control.events() == []
    # Changed again in the CRM: it is sent again, as one new event.
    activity.subject = "Client call (rescheduled)"
    activity.save()
    sync_env.sync()
    sync_env.sync()
    assert [e.subject for e in sync_env.control.events()] == ["Client call (rescheduled)"]


def test_r4_r10_one_way_crm_edit_seen_with_the_calendar_deletion_is_sent_again(sync_env: SyncEnv) -> None:
    """Deleted in the calendar, then edited in the CRM before a run sees the deletion: the edit is
    not dropped; it goes out in one new event (R4, R10)."""
    sync_env.set_preferences(sync_type=SyncType.ONE_WAY)
    sync_env.start()
    activity = sync_env.activity(subject="Client call", start_at=soon(2, 14))
    sync_env.sync()
    first = sync_env.link_of(activity).external_id
    sync_env.control.delete_event(first)
    activity.subject = "Client call (rescheduled)"
    activity.save()
    sync_env.sync()
    sync_env.sync()
    [event] = sync_env.control.events()
    assert event.subject == "Client call (rescheduled)"
    assert event.external_id != first
    assert sync_env.link_of(activity).external_id == event.external_id
    activity.refresh_from_db()
    assert activity.sync_status == SyncStatus.SYNCED


def test_o4_one_way_sends_only_the_selected_types(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(sync_type=SyncType.ONE_WAY, outgoing_types=["Lunch"])
    sync_env.start()
    sync_env.activity(subject="Call", start_at=soon(2, 9), type=sync_env.activity_type("Call"))
    sync_env.activity(subject="Lunch", start_at=soon(2, 12), type=sync_env.activity_type("Lunch"))
    sync_env.sync()
    assert [e.subject for e in sync_env.control.events()] == ["Lunch"]


def test_r5_changing_the_incoming_type_does_not_retype_synced_items(sync_env: SyncEnv) -> None:
    sync_env.start()
    first_id = sync_env.control.create_event("First", soon(2, 9), soon(2, 10))
    sync_env.sync()
    sync_env.set_preferences(incoming_type=sync_env.activity_type("Call"))
    sync_env.control.update_event(first_id, subject="First (edited)")
    second_id = sync_env.control.create_event("Second", soon(2, 11), soon(2, 12))
    sync_env.sync()
    first = sync_env.imported(first_id)
    assert (first.subject, first.type.name) == ("First (edited)", "Meeting")
    assert sync_env.imported(second_id).type.name == "Call"
    assert sync_env.link_of(first).activity_type == sync_env.activity_type("Meeting")


def test_r5_reconnect_keeps_links_types_and_makes_no_duplicates(sync_env: SyncEnv) -> None:
    sync_env.start()
    imported_id = sync_env.control.create_event("From calendar", soon(2, 9), soon(2, 10))
    crm_made = sync_env.activity(subject="From CRM", start_at=soon(2, 14))
    sync_env.sync()
    # C6: Edit -> Stop sync -> Add account -> authenticate -> save preferences, same calendar.
    old = sync_env.account
    CalendarAccount.objects.filter(pk=old.pk).update(stopped_at=dt.datetime.now(dt.UTC))
    SyncPreferences.objects.filter(account=old).update(sync_stopped_at=dt.datetime.now(dt.UTC))
    sync_env.account = sync_env.connect()
    sync_env.set_preferences(incoming_type=sync_env.activity_type("Lunch"))
    sync_env.start()
    sync_env.sync()
    # Both sides are edited after the reconnect.
    sync_env.control.update_event(imported_id, subject="From calendar (edited)")
    crm_made.subject = "From CRM (edited)"
    crm_made.save()
    sync_env.sync()
    assert sorted(e.subject for e in sync_env.control.events()) == [
        "From CRM (edited)",
        "From calendar (edited)",
    ]
    assert Activity.objects.count() == 2
    from_calendar = Activity.objects.get(subject="From calendar (edited)")
    assert from_calendar.type.name == "Meeting"  # R5: not "Lunch"
    assert EventLink.objects.filter(account=sync_env.account).count() == 2


def test_r6_deselected_type_stops_syncing_and_its_event_stays(sync_env: SyncEnv) -> None:
    sync_env.start()
    call = sync_env.activity(subject="Weekly call", start_at=soon(2, 9), type=sync_env.activity_type("Call"))
    sync_env.sync()
    event_id = sync_env.link_of(call).external_id
    sync_env.set_preferences(outgoing_types=["Meeting"])
    call.subject = "Weekly call (new subject)"
    call.save()
    sync_env.sync()
    event = sync_env.control.event(event_id)
    assert event is not None
    assert event.subject == "Weekly call"
    call.refresh_from_db()
    assert call.sync_status == SyncStatus.SKIPPED
    # Deleting it in the CRM leaves the event in place too.
    call.delete()
    sync_env.sync()
    assert sync_env.control.event(event_id) is not None


def test_o10_privacy_changes_apply_only_to_items_synced_afterwards(sync_env: SyncEnv) -> None:
    sync_env.start()
    before_id = sync_env.control.create_event("Before", soon(2, 9), soon(2, 10))
    sync_env.sync()
    sync_env.set_preferences(external_visibility=ExternalVisibility.ONLY_ME)
    sync_env.control.update_event(before_id, subject="Before (edited)")
    after_id = sync_env.control.create_event("After", soon(2, 11), soon(2, 12))
    sync_env.sync()
    assert sync_env.imported(before_id).visibility == Visibility.EVERYONE
    assert sync_env.imported(after_id).visibility == Visibility.OWNER


def test_o1_a_calendar_change_starts_afresh_on_the_new_calendar(sync_env: SyncEnv) -> None:
    sync_env.start()
    first = sync_env.activity(subject="On the first calendar", start_at=soon(2, 9))
    sync_env.sync()
    team_id = sync_env.control.add_calendar("Team")
    team = RemoteCalendar.objects.create(account=sync_env.account, external_id=team_id, name="Team")
    sync_env.set_preferences(calendar=team)
    second = sync_env.activity(subject="On the team calendar", start_at=soon(2, 11))
    first.subject = "Edited after the switch"
    first.save()
    sync_env.sync()
    assert sync_env.link_of(second).calendar_external_id == team_id
    first.refresh_from_db()
    assert first.sync_status == SyncStatus.SKIPPED
    event = sync_env.event_of(first)
    assert event is not None
    assert event.subject == "On the first calendar"
