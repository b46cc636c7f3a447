"""D2 per provider: the sync log lists what a run skipped or failed, by title, in the explanation's words.

Each case is a real run against the provider's emulator, and the log page the owner reads
(issue #14): a private event the user chose not to sync, an event in the past, and an activity
the calendar refused (R16) which also explains itself on its page (D1).
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from activities.models import Activity
from calendarsync.models import PrivateEvents, SyncRun, SyncRunEntry
from calendarsync.sync.explain import explain
from calendarsync.sync.reasons import Reason
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db


def log_text(client: Client, sync_env: SyncEnv) -> str:
    page = client.get(reverse("calendarsync:sync_log", args=[sync_env.account.pk]))
    assert page.status_code == 200
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page.content.decode())))


def test_d2_the_log_shows_a_skipped_private_event_a_past_event_and_a_refused_item(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(private_events=PrivateEvents.SKIP)
    sync_env.start()
    board = sync_env.activity(subject="Board meeting", start_at=soon(2, 9))
    sync_env.sync()
    now = timezone.now()
    sync_env.control.create_event("Doctor", soon(3, 8), soon(3, 9), private=True)
    sync_env.control.create_event(
        "Team offsite", now - dt.timedelta(days=2), now - dt.timedelta(days=2, hours=-3)
    )
    board.location = "Room 1"
    board.save()
    sync_env.control.inject_event_failure(sync_env.link_of(board).external_id, status=403)

    sync_env.sync()

    run = SyncRun.objects.filter(account=sync_env.account).latest("started_at")
    lines = {(entry.title, entry.code, entry.direction, entry.action) for entry in run.entries.all()}
    assert ("Doctor", Reason.PRIVATE_EVENT, "in", "skipped") in lines
    assert ("Team offsite", Reason.EVENT_PAST, "in", "skipped") in lines
    assert ("Board meeting", Reason.REFUSED, "out", "failed") in lines

    client = Client()
    client.force_login(sync_env.owner)
    text = log_text(client, sync_env)
    assert "Doctor: private event, your setting is Don't sync" in text
    assert "Team offsite: in the past" in text
    provider = sync_env.account.get_provider_display()
    assert f"Board meeting: Error: {provider} refused the change" in text

    # The same code on the activity: its page says so, with when it is retried (R16).
    board = Activity.objects.get(pk=board.pk)
    assert board.sync_code == Reason.REFUSED
    page = client.get(reverse("activities:detail", args=[board.pk])).content.decode()
    assert f"Error: {provider} refused the change" in html.unescape(page)
    assert "We&#x27;ll retry at" in page


def test_d2_a_run_logs_what_came_in_and_went_out(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.activity(subject="Pipeline review", start_at=soon(2, 9))
    sync_env.control.create_event("Lunch with Sam", soon(3, 12), soon(3, 13))

    sync_env.sync()

    entries = SyncRunEntry.objects.filter(run__account=sync_env.account)
    lines = {(entry.title, entry.code, entry.direction, entry.action) for entry in entries}
    assert ("Pipeline review", Reason.SENT, "out", "created") in lines
    assert ("Lunch with Sam", Reason.IMPORTED, "in", "created") in lines
    imported = entries.get(code=Reason.IMPORTED)
    assert imported.activity is not None
    assert imported.activity.subject == "Lunch with Sam"
    explanation = explain(imported, sync_env.account, None, None, timezone.now())
    assert explanation is not None
    assert explanation.message == "imported as an activity"


def test_d2_an_idle_run_writes_no_log(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.activity(subject="Pipeline review", start_at=soon(2, 9))
    sync_env.sync()
    before = SyncRunEntry.objects.count()
    sync_env.sync()
    assert SyncRunEntry.objects.count() == before
