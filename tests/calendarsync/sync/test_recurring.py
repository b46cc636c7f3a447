"""R7: recurring calendar events come in as their occurrences, read-only in the CRM."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.forms import modelform_factory
from django.utils import timezone

from activities.models import Activity
from calendarsync.models import EventLink
from calendarsync.sync.context import READ_ONLY_OCCURRENCE
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db


def occurrences(sync_env: SyncEnv, series_id: str) -> list[Activity]:
    return list(
        Activity.objects.filter(
            event_links__account=sync_env.account, event_links__series_id=series_id
        ).order_by("start_at")
    )


def test_r7_recurring_events_come_in_as_read_only_occurrences(sync_env: SyncEnv) -> None:
    sync_env.start()
    series_id = sync_env.control.create_event(
        "Stand-up", soon(1, 9), soon(1, 9) + dt.timedelta(minutes=15), daily_count=5
    )
    sync_env.sync()
    items = occurrences(sync_env, series_id)
    assert [a.start_at for a in items] == [soon(day, 9) for day in range(1, 6)]
    assert all(a.subject == "Stand-up" and a.sync_read_only_reason == READ_ONLY_OCCURRENCE for a in items)
    assert all(link.is_recurring_instance for link in EventLink.objects.filter(series_id=series_id))


def test_r7_editing_an_occurrence_in_the_crm_is_refused_with_the_reason(sync_env: SyncEnv) -> None:
    sync_env.start()
    series_id = sync_env.control.create_event("Stand-up", soon(1, 9), soon(1, 10), daily_count=2)
    sync_env.sync()
    occurrence = Activity.objects.get(pk=occurrences(sync_env, series_id)[0].pk)
    occurrence.subject = "My own subject"
    with pytest.raises(ValidationError) as refused:
        occurrence.full_clean()
    assert READ_ONLY_OCCURRENCE in refused.value.messages
    # The same through a ModelForm (what the activity form does).
    form_class = modelform_factory(Activity, fields=("subject", "location"))
    fresh = Activity.objects.get(pk=occurrence.pk)
    form = form_class(data={"subject": "Changed", "location": ""}, instance=fresh)
    assert not form.is_valid()
    assert READ_ONLY_OCCURRENCE in str(form.errors)
    # Marking it done is not a synced change and stays allowed.
    fresh = Activity.objects.get(pk=occurrence.pk)
    fresh.done = True
    fresh.full_clean()


def test_r7_a_change_to_the_series_updates_its_occurrences(sync_env: SyncEnv) -> None:
    sync_env.start()
    series_id = sync_env.control.create_event("Stand-up", soon(1, 9), soon(1, 10), daily_count=3)
    sync_env.sync()
    sync_env.control.update_event(series_id, subject="Daily sync", location="Room 7")
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.updated == 3
    items = occurrences(sync_env, series_id)
    assert [(a.subject, a.location) for a in items] == [("Daily sync", "Room 7")] * 3
    # Deleting the series removes the occurrences.
    sync_env.control.delete_event(series_id)
    sync_env.sync()
    assert occurrences(sync_env, series_id) == []


def test_r7_occurrences_are_expanded_up_to_the_horizon(sync_env: SyncEnv, settings: object) -> None:
    settings.CALSYNC_RECURRENCE_HORIZON_DAYS = 3  # type: ignore[attr-defined]
    sync_env.start()
    series_id = sync_env.control.create_event("Stand-up", soon(1, 9), soon(1, 10), daily_count=10)
    horizon = timezone.now() + dt.timedelta(days=3)
    sync_env.sync()
    expected = [soon(day, 9) for day in range(1, 11) if soon(day, 9) <= horizon]
    assert [a.start_at for a in occurrences(sync_env, series_id)] == expected


def test_r7_an_occurrence_edited_in_the_calendar_is_mirrored_alone(sync_env: SyncEnv) -> None:
    """One instance changed in the calendar ("this event only"): only its activity follows."""
    sync_env.start()
    series_id = sync_env.control.create_event("Stand-up", soon(1, 9), soon(1, 10), daily_count=3)
    sync_env.sync()
    before = occurrences(sync_env, series_id)
    assert len(before) == 3
    sync_env.control.update_instance(
        series_id, soon(2, 9), subject="Stand-up (moved room)", location="Room 12"
    )
    sync_env.sync()
    after = {a.pk: a for a in Activity.objects.filter(pk__in=[a.pk for a in before])}
    assert len(after) == 3  # no duplicate, no loss
    assert Activity.objects.filter(event_links__account=sync_env.account).count() == 3
    edited = [a for a in after.values() if a.subject == "Stand-up (moved room)"]
    assert len(edited) == 1
    assert edited[0].location == "Room 12"
    assert edited[0].start_at == soon(2, 9)
    assert edited[0].sync_read_only_reason == READ_ONLY_OCCURRENCE
    assert sorted(a.subject for a in after.values()) == ["Stand-up", "Stand-up", "Stand-up (moved room)"]


def test_r7_an_occurrence_cancelled_in_the_calendar_leaves_the_crm(sync_env: SyncEnv) -> None:
    """One instance deleted in the calendar: its activity goes, its siblings stay."""
    sync_env.start()
    series_id = sync_env.control.create_event("Stand-up", soon(1, 9), soon(1, 10), daily_count=3)
    sync_env.sync()
    assert len(occurrences(sync_env, series_id)) == 3
    sync_env.control.cancel_instance(series_id, soon(2, 9))
    sync_env.sync()
    remaining = Activity.objects.filter(event_links__account=sync_env.account).order_by("start_at")
    assert [a.start_at for a in remaining] == [soon(1, 9), soon(3, 9)]
    assert all(a.subject == "Stand-up" for a in remaining)
    # The series itself is untouched in the calendar.
    assert sync_env.control.event(series_id) is not None
