"""O11: the calendar is the only mailer, and never twice.

The emulators record what each provider would have mailed on the organizer's behalf
(invitation, update, cancellation per recipient); these tests assert exact counts, including
after a crash between the create and our commit, retries and a full resync.
"""

from __future__ import annotations

from typing import Any

import pytest

from activities.models import Activity
from calendarsync.models import Provider
from calendarsync.sync import push
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db

GUESTS = ["ann@partner.test", "ben@partner.test"]


class WorkerKilled(Exception):
    """The worker dies between the provider's create and our commit."""


def mails(sync_env: SyncEnv, kind: str) -> list[str]:
    return sorted(recipient for sent, recipient, _uid in sync_env.control.invitations() if sent == kind)


def meeting(sync_env: SyncEnv) -> Activity:
    return sync_env.activity(subject="Pricing call", start_at=soon(2, 10), guests=list(GUESTS))


def test_o11_a_new_crm_meeting_invites_each_guest_once(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    activity = meeting(sync_env)
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert sorted(a.email for a in event.attendees) == GUESTS
    assert mails(sync_env, "invitation") == GUESTS
    assert mails(sync_env, "update") == []
    assert mails(sync_env, "cancellation") == []


def test_o11_nothing_is_mailed_twice_after_a_crash_retries_and_a_full_resync(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    sync_env.sync()
    meeting(sync_env)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(push, "record_created", killed)
    sync_env.sync(expect="failed")
    monkeypatch.undo()
    sync_env.control.inject_failure("server_error", 1)  # retried by the adapter
    sync_env.sync()
    sync_env.control.expire_cursor()
    sync_env.sync()
    sync_env.account.full_sync_at = None
    sync_env.account.save(update_fields=["full_sync_at"])
    sync_env.sync()
    assert len(sync_env.control.events()) == 1
    assert mails(sync_env, "invitation") == GUESTS
    assert mails(sync_env, "update") == []
    assert mails(sync_env, "cancellation") == []


def test_o11_a_crm_change_of_time_or_place_updates_the_guests(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    activity = meeting(sync_env)
    sync_env.sync()
    activity.refresh_from_db()
    activity.location = "Room 7"
    activity.save()
    sync_env.sync()
    assert mails(sync_env, "update") == GUESTS


def test_o11_other_crm_changes_and_calendar_edits_mail_nobody(sync_env: SyncEnv) -> None:
    """Graph mails an update for every change of a meeting it organizes (it has no switch)."""
    sync_env.start()
    sync_env.sync()
    activity = meeting(sync_env)
    sync_env.sync()
    activity.refresh_from_db()
    activity.subject = "Pricing call (v2)"
    activity.save()
    sync_env.sync()
    expected = GUESTS if sync_env.setup.provider == Provider.MICROSOFT else []
    assert mails(sync_env, "update") == expected
    # The user's own edit in their calendar app mails as that app does; merging it into the
    # CRM sends nothing more.
    sync_env.control.update_event(sync_env.link_of(activity).external_id, description="Agenda")
    before = len(sync_env.control.invitations())
    sync_env.sync()
    sync_env.sync()
    assert len(sync_env.control.invitations()) == before


def test_o11_deleting_a_crm_meeting_cancels_it_for_the_guests(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    activity = meeting(sync_env)
    sync_env.sync()
    activity.delete()
    sync_env.sync()
    assert sync_env.control.events() == []
    assert mails(sync_env, "cancellation") == GUESTS


def test_o11_with_invitations_off_nobody_is_mailed(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.set_preferences(send_invitations=False)
    sync_env.sync()
    activity = meeting(sync_env)
    sync_env.sync()
    activity.refresh_from_db()
    activity.location = "Room 7"
    activity.save()
    sync_env.sync()
    activity.delete()
    sync_env.sync()
    assert sync_env.control.invitations() == []
    assert sync_env.control.events() == []


def test_o11_microsoft_keeps_guests_in_the_crm_while_invitations_are_off(sync_env: SyncEnv) -> None:
    """Graph mails whoever is written as a guest: with invitations off, guests are not written."""
    sync_env.start()
    sync_env.set_preferences(send_invitations=False)
    sync_env.sync()
    activity = meeting(sync_env)
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    written = sorted(a.email for a in event.attendees)
    assert written == ([] if sync_env.setup.provider == Provider.MICROSOFT else GUESTS)
    activity.refresh_from_db()
    assert activity.guests == GUESTS  # nothing lost in the CRM
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.guests == GUESTS
