"""R2 and R10 across a reconnect: Stop sync, Add account, Start sync (C6).

What changed in the CRM while the account was revoked or stopped, and was never sent, goes out once
with the new account; nothing older (before the user's first start), nothing twice (issue #12, hole 5).
"""

from __future__ import annotations

import datetime as dt

import pytest

from activities.models import Activity, SyncStatus
from activities.sync_display import sync_badge
from calendarsync.actions import do_connect_account, do_start_sync, do_stop_sync
from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.base import RemoteCalendarInfo
from tests.calendarsync.sync.conftest import SyncEnv, soon
from tests.calendarsync.sync.second_account import second_setup

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "new-password-after-revoke-1"


def sign_in_again(sync_env: SyncEnv, request: pytest.FixtureRequest) -> dict[str, object]:
    """The user authenticates again: fresh credentials for the same mailbox."""
    from django.conf import settings

    setup = sync_env.setup
    if setup.provider == Provider.EXCHANGE:
        running = request.getfixturevalue("exchange_emulator")
        running.emulator.add_user(setup.email, NEW_PASSWORD)
        return dict(running.credentials(setup.email, NEW_PASSWORD))
    if setup.provider == Provider.GOOGLE:
        emulator, scopes, client_id = (
            request.getfixturevalue("google_emulator").emulator,
            list(settings.GOOGLE_SCOPES),
            settings.GOOGLE_CLIENT_ID,
        )
    else:
        emulator, scopes, client_id = (
            request.getfixturevalue("microsoft_emulator").emulator,
            list(settings.MICROSOFT_SCOPES),
            settings.MICROSOFT_CLIENT_ID,
        )
    issued = emulator.issue_tokens(setup.email, scopes, client_id)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued.get("expires_in", 3600)))
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }


def reconnect(sync_env: SyncEnv, credentials: dict[str, object]) -> CalendarAccount:
    """Edit -> Stop sync -> Add account -> authenticate -> review and Start sync (C6)."""
    owner = sync_env.owner
    old = sync_env.account
    if old.stopped_at is None:
        do_stop_sync(acting_user=owner, account=old)
    calendar = RemoteCalendarInfo(sync_env.setup.calendar_id, "Primary", is_primary=True, can_write=True)
    new = do_connect_account(
        acting_user=owner,
        provider=Provider(sync_env.setup.provider),
        email=sync_env.setup.email,
        credentials=credentials,
        calendars=[calendar],
    )
    do_start_sync(acting_user=owner, account=new)
    sync_env.account = CalendarAccount.objects.get(pk=new.pk)
    return sync_env.account


def status_of(activity: Activity) -> tuple[str | None, int | None]:
    activity.refresh_from_db()
    return activity.sync_status, activity.calendar_account_id


def test_r2_what_changed_while_revoked_or_stopped_goes_out_after_reconnecting(
    sync_env: SyncEnv, request: pytest.FixtureRequest
) -> None:
    older = sync_env.activity(subject="Before the first start", start_at=soon(4, 9))
    sync_env.start(settle=1.1)
    synced = sync_env.activity(subject="Synced before", start_at=soon(2, 9))
    edited = sync_env.activity(subject="Edited while stopped", start_at=soon(2, 11))
    sync_env.sync()
    old_account = sync_env.account
    events_before = {event.external_id for event in sync_env.control.events()}
    assert len(events_before) == 2

    sync_env.control.revoke()
    sync_env.sync(expect="blocked")
    while_revoked = sync_env.activity(subject="Made while revoked", start_at=soon(3, 9))
    assert status_of(while_revoked) == (SyncStatus.PENDING, old_account.pk)
    do_stop_sync(acting_user=sync_env.owner, account=old_account)
    while_stopped = sync_env.activity(subject="Made while stopped", start_at=soon(3, 11))
    edited.location = "Room 12"
    edited.save()

    new_account = reconnect(sync_env, sign_in_again(sync_env, request))
    sync_env.sync()
    sync_env.sync()  # a second run sends nothing again

    events = sync_env.control.events()
    subjects = sorted(event.subject for event in events)
    assert subjects == ["Edited while stopped", "Made while revoked", "Made while stopped", "Synced before"]
    assert len({event.external_id for event in events}) == 4
    assert events_before <= {event.external_id for event in events}  # the earlier events were reused
    edited_event = next(event for event in events if event.subject == "Edited while stopped")
    assert edited_event.location == "Room 12"
    for activity in (while_revoked, while_stopped, edited):
        assert status_of(activity) == (SyncStatus.SYNCED, new_account.pk)
    # Nothing older than the first start goes out, and it is not said to be synced with anyone.
    assert "Before the first start" not in subjects
    assert status_of(older)[0] is None
    # Untouched since it synced: its event is left as it is (R2), no second copy.
    synced.refresh_from_db()
    assert synced.subject == "Synced before"
    # No row says it is synced with the stopped account any more.
    for activity in Activity.objects.filter(owner=sync_env.owner).select_related("calendar_account"):
        badge = sync_badge(activity)
        assert not (badge.status == SyncStatus.SYNCED and activity.calendar_account_id == old_account.pk)
        if activity.calendar_account_id == old_account.pk:
            assert badge.label == "Not syncing"


def test_r2_a_new_identity_gets_only_what_its_user_changed_meanwhile(
    sync_env: SyncEnv, request: pytest.FixtureRequest
) -> None:
    """Another mailbox (a new calendar): the changes not yet sent go there, once."""
    sync_env.start()
    sync_env.activity(subject="Synced with the first calendar", start_at=soon(2, 9))
    sync_env.sync()
    do_stop_sync(acting_user=sync_env.owner, account=sync_env.account)
    waiting = sync_env.activity(subject="Made while stopped", start_at=soon(3, 11))

    other = second_setup(sync_env.setup, request, "second.mailbox@example.com")
    sync_env.setup = other
    sync_env.control = other.control
    new_account = reconnect(sync_env, other.credentials)
    sync_env.sync()
    sync_env.sync()
    assert [event.subject for event in other.control.events()] == ["Made while stopped"]
    assert status_of(waiting) == (SyncStatus.SYNCED, new_account.pk)


def test_r2_the_first_start_of_a_user_is_the_baseline(sync_env: SyncEnv) -> None:
    sync_env.start()
    first_start = sync_env.preferences.sync_started_at
    do_stop_sync(acting_user=sync_env.owner, account=sync_env.account)
    calendar = RemoteCalendarInfo(sync_env.setup.calendar_id, "Primary", is_primary=True, can_write=True)
    new = do_connect_account(
        acting_user=sync_env.owner,
        provider=Provider(sync_env.setup.provider),
        email=sync_env.setup.email,
        credentials=dict(sync_env.setup.credentials),
        calendars=[calendar],
    )
    preferences = do_start_sync(acting_user=sync_env.owner, account=new)
    assert preferences.sync_started_at is not None
    assert first_start is not None
    assert preferences.sync_started_at > first_start
    assert preferences.crm_changes_since == first_start
