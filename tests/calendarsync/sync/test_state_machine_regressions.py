"""Counterexamples the randomized sync test (``test_state_machine.py``) found, as plain example tests.

Each is the shrunk sequence, written out by hand and named after the rule it breaks. Those the
engine still fails are ``xfail(strict=True)``: whoever fixes the engine flips the marker (and
removes the rule from ``KNOWN_OPEN`` in ``test_state_machine.py``, so the machine guards the fix).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import User
from activities.models import Activity
from calendarsync.models import CalendarAccount, EventLink, LinkState
from calendarsync.sync import runner
from tests.calendarsync.sync.conftest import SyncEnv, soon
from tests.calendarsync.sync.second_account import second_env
from tests.calendarsync.sync.state_machine_support import CrashAfterWrite, WorkerKilled
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db


def run_killed_after_first_write(env: SyncEnv) -> None:
    """One run whose worker dies right after the provider's first write; then its lease runs out."""
    factory = env.setup.provider_factory
    armed = [True]
    with pytest.raises(WorkerKilled):
        runner.run_account_sync(
            env.account.pk,
            provider_factory=lambda account: CrashAfterWrite(factory(account), armed),
        )
    CalendarAccount.objects.filter(pk=env.account.pk).update(
        sync_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )


def reassign(activity: Activity, user: User) -> Activity:
    fresh = Activity.objects.get(pk=activity.pk)
    fresh.owner = user
    fresh.save()
    return fresh


def test_r13_event_made_just_before_a_crash_leaves_the_old_owners_calendar(
    sync_env: SyncEnv, request: pytest.FixtureRequest, colleague: User
) -> None:
    """Found by the machine: crm_create(colleague) -> crash after write -> reassign -> quiesce."""
    other = second_env(sync_env, request, colleague)
    sync_env.start()
    other.start()
    activity = make_activity(colleague, subject="Pipeline review", start_at=soon(2, 10))
    run_killed_after_first_write(other)  # the colleague's calendar has the event; no link recorded
    assert len(other.control.events()) == 1
    reassign(activity, sync_env.owner)
    for _ in range(2):
        other.sync()
        sync_env.sync()
    assert other.control.events() == [], "the old owner's calendar keeps a copy (R13)"
    [event] = sync_env.control.events()
    assert EventLink.objects.get(activity=activity, state=LinkState.ACTIVE).external_id == event.external_id
