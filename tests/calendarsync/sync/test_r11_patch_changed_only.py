"""R11: a write sends only the fields that changed (PATCH on Google and Graph, SetItemField on EWS).

What the CRM did not change is never rewritten: a calendar's own settings (Google's "public"
visibility, Outlook's "personal" sensitivity) survive every CRM edit, and a calendar edit made
meanwhile to another field is never overwritten. The privacy of an event the calendar made is
the calendar's: the CRM's visibility of its activity is a CRM setting, never written back.
"""

from __future__ import annotations

import datetime as dt

import pytest

from activities.models import Visibility
from calendarsync.models import ExternalVisibility, Provider
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon
from tests.calendarsync.sync.r11_support import (
    NOT_DEFAULT_NOT_PRIVATE,
    raw_privacy,
    sent_updates,
    set_raw_privacy,
    settle,
    written_fields,
)

pytestmark = pytest.mark.django_db

SUBJECT_ONLY = {
    Provider.GOOGLE: {"summary"},
    Provider.MICROSOFT: {"subject"},
    Provider.EXCHANGE: {"item:Subject"},
}


def test_r11_a_subject_edit_sends_only_the_subject(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(
        subject="Review", start_at=soon(2, 10), location="Room 1", note="Agenda", guests=["ann@example.com"]
    )
    sync_env.sync()
    activity.subject = "Review (renamed)"
    activity.save()
    sync_env.control.reset_counts()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pushed.updated == 1
    [update] = sent_updates(sync_env)
    assert set(update) == SUBJECT_ONLY[Provider(sync_env.setup.provider)]
    event = sync_env.event_of(activity)
    assert event is not None
    assert (event.subject, event.location, event.description) == ("Review (renamed)", "Room 1", "Agenda")
    assert_in_step(sync_env)


def test_r11_each_write_carries_the_changed_fields_only(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10), location="Room 1")
    sync_env.sync()
    sync_env.control.reset_counts()
    activity.start_at = soon(2, 12)
    activity.location = "Room 2"
    activity.save()
    sync_env.sync()
    assert written_fields(sync_env) == [{"time", "location"}]
    sync_env.control.reset_counts()
    activity.busy = False
    activity.save()
    sync_env.sync()
    assert written_fields(sync_env) == [{"busy"}]
    event = sync_env.event_of(activity)
    assert event is not None
    assert (event.start, event.location, event.busy) == (soon(2, 12), "Room 2", False)


def test_r11_a_calendar_edit_merged_in_sends_only_the_crm_fields(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10), location="Room 1")
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    sync_env.control.update_event(event_id, subject="Review (calendar)")
    settle(sync_env)
    activity.location = "Room 2"
    activity.save()
    sync_env.control.reset_counts()
    sync_env.sync()
    assert written_fields(sync_env) == [{"location"}]
    activity.refresh_from_db()
    assert (activity.subject, activity.location) == ("Review (calendar)", "Room 2")
    assert_in_step(sync_env)


def test_r11_the_calendars_own_visibility_survives_a_subject_edit(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    public = NOT_DEFAULT_NOT_PRIVATE[Provider(sync_env.setup.provider)]
    set_raw_privacy(sync_env, event_id, public)
    sync_env.sync()  # the calendar's change comes in: nothing to change in the CRM
    settle(sync_env)
    activity.refresh_from_db()
    assert activity.visibility == Visibility.EVERYONE
    activity.subject = "Review (renamed)"
    activity.save()
    sync_env.sync()
    assert raw_privacy(sync_env, event_id) == public
    event = sync_env.control.event(event_id)
    assert event is not None
    assert event.subject == "Review (renamed)"


def test_r11_crm_visibility_of_a_calendar_made_event_is_never_written_back(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(external_visibility=ExternalVisibility.EVERYONE)
    sync_env.start()
    start = soon(3, 9)
    event_id = sync_env.control.create_event("Board meeting", start, start + dt.timedelta(hours=1))
    sync_env.sync()
    activity = sync_env.imported(event_id)
    assert activity.visibility == Visibility.EVERYONE
    settle(sync_env)
    # Made private in the CRM: a CRM setting, the calendar's event stays as it is.
    activity.visibility = Visibility.OWNER
    activity.save()
    sync_env.control.reset_counts()
    sync_env.sync()
    assert written_fields(sync_env) == []
    event = sync_env.control.event(event_id)
    assert event is not None
    assert not event.private
    # Later edits on both sides still flow, and the CRM's visibility stays.
    activity.refresh_from_db()
    activity.location = "Room 9"
    activity.save()
    sync_env.sync()
    assert written_fields(sync_env) == [{"location"}]
    sync_env.control.update_event(event_id, subject="Board meeting (moved)")
    sync_env.sync()
    activity.refresh_from_db()
    assert (activity.subject, activity.location, activity.visibility) == (
        "Board meeting (moved)",
        "Room 9",
        Visibility.OWNER,
    )
    event = sync_env.control.event(event_id)
    assert event is not None
    assert not event.private
    assert_in_step(sync_env)
