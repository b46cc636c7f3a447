"""O3 and A2: calendar events never become activities of a deactivated type.

New events are skipped with a reason while the chosen incoming type is inactive, the preferences
page says so, and once another type is chosen they come in (issue #12, hole 17a).
"""

from __future__ import annotations

import pytest
from django.test import Client

from activities.models import Activity, ActivityType
from calendarsync.actions import do_update_preferences
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db

PAGE = "/preferences/calendar-sync/"


def deactivate(activity_type: ActivityType) -> None:
    activity_type.is_active = False
    activity_type.save()


def test_o3_events_are_never_imported_with_a_deactivated_incoming_type(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    deactivate(sync_env.activity_type("Meeting"))
    external_id = sync_env.control.create_event("Lunch with Dana", soon(2, 12), soon(2, 13))
    outcome = sync_env.sync()
    assert not Activity.objects.filter(owner=sync_env.owner).exists()
    assert outcome.result is not None
    [skip] = outcome.result.pulled.skipped
    assert skip.item == external_id
    assert "deactivated" in skip.reason

    # The user picks another type: the event comes in, as that type, once.
    do_update_preferences(
        acting_user=sync_env.owner,
        account=sync_env.account,
        changes={"incoming_type": sync_env.activity_type("Lunch")},
    )
    sync_env.sync()
    sync_env.sync()
    imported = sync_env.imported(external_id)
    assert (imported.subject, imported.type.name) == ("Lunch with Dana", "Lunch")
    assert Activity.objects.filter(owner=sync_env.owner).count() == 1


def test_o3_the_page_warns_when_the_incoming_type_is_inactive(sync_env: SyncEnv) -> None:
    sync_env.start()
    client = Client()
    client.force_login(sync_env.owner)
    assert "deactivated" not in client.get(PAGE).content.decode()
    deactivate(sync_env.activity_type("Meeting"))
    html = client.get(PAGE).content.decode()
    assert "“Meeting” has been deactivated" in html
    assert "not imported" in html
