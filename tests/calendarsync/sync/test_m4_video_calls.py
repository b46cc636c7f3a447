"""M4: "Add a video call" asks the owner's calendar for one; its join link comes back by sync."""

from __future__ import annotations

import pytest

from activities.models import Activity
from calendarsync.models import Provider
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db

LINK_PREFIX: dict[str, str] = {
    Provider.GOOGLE: "https://meet.google.com/",
    Provider.MICROSOFT: "https://teams.microsoft.com/",
}


def settle(sync_env: SyncEnv, activity: Activity, runs: int = 3) -> Activity:
    """Google makes the conference a moment after the create: a later run brings the link."""
    for _ in range(runs):
        sync_env.sync()
        activity.refresh_from_db()
        if activity.join_url:
            break
    return activity


def test_m4_a_new_activity_with_a_video_call_gets_its_join_link(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    activity = sync_env.activity(subject="Demo", start_at=soon(2, 11), video_call=True)
    activity = settle(sync_env, activity)
    prefix = LINK_PREFIX.get(str(sync_env.setup.provider))
    if prefix is None:  # Exchange over EWS cannot add one: the event is made without it
        assert activity.join_url == ""
        assert sync_env.event_of(activity) is not None
        return
    assert activity.join_url.startswith(prefix)
    event = sync_env.event_of(activity)
    assert event is not None
    assert event.join_url == activity.join_url
    # Later runs change nothing: one conference, the same link.
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.join_url == event.join_url


def test_m4_asking_later_adds_a_video_call_to_the_synced_event(sync_env: SyncEnv) -> None:
    if str(sync_env.setup.provider) not in LINK_PREFIX:
        pytest.skip("this calendar cannot add video calls")
    sync_env.start()
    sync_env.sync()
    activity = sync_env.activity(subject="Demo", start_at=soon(2, 11))
    sync_env.sync()
    assert activity.join_url == ""
    activity.refresh_from_db()
    activity.video_call = True
    activity.save()
    activity = settle(sync_env, activity)
    assert activity.join_url.startswith(LINK_PREFIX[str(sync_env.setup.provider)])
    assert len(sync_env.control.events()) == 1
