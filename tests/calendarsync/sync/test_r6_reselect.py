"""R6 and O10: deselect a type, then select it again.

While deselected its activities stop syncing and their events stay as they are (R6). Once selected
again, what changed meanwhile goes out on the next run, not at some later full listing (issue #12,
hole 15); what did not change is left alone.
"""

from __future__ import annotations

import pytest

from activities.models import Activity, SyncStatus
from calendarsync.actions import do_update_preferences
from calendarsync.models import SyncPreferences
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = pytest.mark.django_db


def send_types(sync_env: SyncEnv, *names: str) -> None:
    do_update_preferences(
        acting_user=sync_env.owner,
        account=sync_env.account,
        changes={"outgoing_types": [sync_env.activity_type(name) for name in names]},
    )


def reload(activity: Activity) -> Activity:
    activity.refresh_from_db()
    return activity


def test_r6_items_changed_while_deselected_go_out_after_reselection(sync_env: SyncEnv) -> None:
    call = sync_env.activity_type("Call")
    sync_env.start()
    edited = sync_env.activity(subject="Call Ann", start_at=soon(2, 9), type=call)
    untouched = sync_env.activity(subject="Call Bob", start_at=soon(2, 11), type=call)
    meeting = sync_env.activity(subject="Planning", start_at=soon(2, 14))
    sync_env.sync()
    edited_event = sync_env.link_of(edited).external_id

    send_types(sync_env, "Meeting")
    edited.location = "Ann's office"
    edited.save()
    new_call = sync_env.activity(subject="Call Cem", start_at=soon(3, 9), type=call)
    sync_env.sync()
    # R6: deselected, nothing goes out; the event stays as it was.
    event = sync_env.control.event(edited_event)
    assert event is not None
    assert event.location == ""
    assert reload(edited).sync_status == SyncStatus.SKIPPED
    assert reload(new_call).sync_status == SyncStatus.SKIPPED
    assert len(sync_env.control.events()) == 3

    send_types(sync_env, "Meeting", "Call")
    assert reload(edited).sync_status == SyncStatus.PENDING
    outcome = sync_env.sync()
    assert outcome.result is not None
    event = sync_env.control.event(edited_event)
    assert event is not None
    assert event.location == "Ann's office"
    assert sorted(e.subject for e in sync_env.control.events()) == [
        "Call Ann",
        "Call Bob",
        "Call Cem",
        "Planning",
    ]
    assert outcome.result.pushed.created == 1
    assert outcome.result.pushed.updated == 1  # Ann's edit; Bob's call, unchanged, is not written again
    for activity in (edited, untouched, new_call, meeting):
        assert reload(activity).sync_status == SyncStatus.SYNCED
    assert_in_step(sync_env)


def test_r6_reselection_leaves_past_and_older_items_alone(sync_env: SyncEnv) -> None:
    """Only the owner's future items changed since sync started are made due (R2)."""
    call = sync_env.activity_type("Call")
    before_start = sync_env.activity(subject="Old call", start_at=soon(2, 8), type=call)
    sync_env.start()
    send_types(sync_env, "Meeting")
    past = sync_env.activity(subject="Yesterday's call", start_at=soon(-1, 9), type=call)
    sync_env.sync()
    send_types(sync_env, "Meeting", "Call")
    sync_env.sync()
    assert sync_env.control.events() == []
    assert reload(before_start).sync_status is None
    assert reload(past).sync_status == SyncStatus.SKIPPED


def test_r6_reselecting_does_not_touch_another_users_items(sync_env: SyncEnv, colleague: object) -> None:
    from accounts.models import User
    from tests.conftest import make_activity

    assert isinstance(colleague, User)
    send_types(sync_env, "Meeting")
    sync_env.start()
    theirs = make_activity(colleague, subject="Their call", type=sync_env.activity_type("Call"))
    send_types(sync_env, "Meeting", "Call")
    assert reload(theirs).sync_status is None
    assert SyncPreferences.objects.get(account=sync_env.account).outgoing_types.count() == 2
