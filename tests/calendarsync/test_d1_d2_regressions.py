"""Regressions from the adversarial review of issue #14 (D1 explanations, D2 sync log).

Each test is a finding of that review, kept after its fix, or a path it suspected and found safe
(a failed run's log, unstorable titles, crowded logs, daily repeats, stale "Synced" words, the
owner's address in a colleague's hint, web links over a reconnect, admin counts, Sync now races).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, ActivityType, SyncStatus
from calendarsync.actions import do_update_preferences
from calendarsync.admin_health import bucket_counts
from calendarsync.explaining import explanation_for
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    EventLink,
    ItemFailure,
    LinkOrigin,
    Provider,
    SyncPreferences,
    SyncRun,
    SyncRunEntry,
)
from calendarsync.providers.base import AuthRevoked, Change
from calendarsync.sync import context, earlier_links, item_errors, runner
from calendarsync.sync.accounts import provider_for
from calendarsync.sync.reasons import Kind, Reason
from calendarsync.views_log import seconds_before_sync_now
from tests.calendarsync.sync.conftest import SyncEnv, google_setup, soon
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db


@pytest.fixture
def google_env(request: pytest.FixtureRequest, owner: User, settings: Any) -> SyncEnv:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return SyncEnv(google_setup(request), owner)


def started_account(user: User, email: str = "owner@gmail.test", **fields: Any) -> CalendarAccount:
    account = CalendarAccount.objects.create(user=user, provider=Provider.GOOGLE, email=email, **fields)
    preferences = SyncPreferences.objects.create(
        account=account, sync_started_at=timezone.now() - dt.timedelta(days=3)
    )
    preferences.outgoing_types.set(ActivityType.objects.filter(company=user.company, name="Meeting"))
    return account


def synced_activity(owner: User, account: CalendarAccount) -> Activity:
    activity = make_activity(owner, subject="Board meeting", start_at=timezone.now() + dt.timedelta(days=2))
    Activity.objects.filter(pk=activity.pk).update(
        sync_status=SyncStatus.SYNCED,
        sync_code=Reason.SYNCED,
        sync_status_at=timezone.now(),
        calendar_account=account,
        sync_seen_at=activity.sync_changed_at,
    )
    EventLink.objects.create(
        account=account,
        activity=activity,
        calendar_external_id="primary",
        external_id="evt-1",
        origin=LinkOrigin.CRM,
        web_url="https://calendar.google.test/event?eid=evt-1",
    )
    return Activity.objects.select_related("owner", "type").get(pk=activity.pk)


# --------------------------------------------------------------------------- 3. log writing


class _RevokedOnCreate:
    """The real adapter, except that creating events finds the grant revoked (AuthRevoked)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_events(self, *args: Any, **kwargs: Any) -> Any:
        raise AuthRevoked("revoked while the run was pushing")


def test_d2_a_failed_run_still_logs_what_it_skipped_before_failing(google_env: SyncEnv) -> None:
    """runner.RunRecorder keeps the engine's result only from the progress callback, which is called
    only once something *changed*: a run that skipped or refused items, then failed, loses them."""
    google_env.start()
    task = google_env.activity(
        subject="Call notes", start_at=soon(2, 9), type=google_env.activity_type("Task")
    )
    google_env.activity(subject="Pipeline review", start_at=soon(2, 11))

    outcome = runner.run_account_sync(
        google_env.account.pk, provider_factory=lambda account: _RevokedOnCreate(provider_for(account))
    )

    assert outcome.status == runner.RunStatus.BLOCKED
    task.refresh_from_db()
    assert task.sync_code == Reason.TYPE_NOT_SENT  # the engine did record it on the activity ...
    run = SyncRun.objects.filter(account=google_env.account).latest("started_at")
    assert run.outcome == SyncRun.Outcome.FAILED
    # ... but the run's log has no line for it (D2: "what was skipped and why").
    assert list(run.entries.values_list("title", "code")) == [("Call notes", Reason.TYPE_NOT_SENT)]


class _TitleAs:
    """The real adapter, whose listings name one event differently (what the calendar's JSON said)."""

    def __init__(self, inner: Any, title: str, wire_title: str) -> None:
        self._inner, self._title, self._wire_title = inner, title, wire_title

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list_changes(self, *args: Any, **kwargs: Any) -> Any:
        page = self._inner.list_changes(*args, **kwargs)
        changes = tuple(
            replace(change, event=replace(change.event, subject=self._wire_title))
            if change.event is not None and change.event.subject == self._title
            else change
            for change in page.changes
        )
        return replace(page, changes=changes)


def test_d2_an_event_title_the_database_cannot_store_does_not_crash_the_run(google_env: SyncEnv) -> None:
    """_log_entries catches IntegrityError only; any other error while inserting the log escapes
    run_account_sync (after the account and the run row were written) and loses every line of the
    run. A lone surrogate (a valid JSON escape, "\\ud83d", that json.loads turns into a str) cannot
    be encoded for SQLite or PostgreSQL; on PostgreSQL a NUL ("\\u0000") does the same. The event is
    only *skipped* (it existed before the start), so nothing else in the run stores its title."""
    google_env.control.create_event("Broken title", soon(3, 12), soon(3, 13))
    google_env.control.create_event("Dentist", soon(4, 12), soon(4, 13))
    google_env.start(settle=1.1)  # both existed before the start: skipped, logged (D2)

    outcome = runner.run_account_sync(
        google_env.account.pk,
        provider_factory=lambda account: _TitleAs(
            google_env.setup.provider_factory(account), "Broken title", "Broken \ud83d title"
        ),
    )

    assert outcome.status == runner.RunStatus.OK
    titles = set(SyncRunEntry.objects.filter(run__account=google_env.account).values_list("title", flat=True))
    assert "Dentist" in titles


def test_d2_a_very_long_event_title_is_cut_not_refused(google_env: SyncEnv) -> None:
    """Confirmed safe: titles are cut to the column (255), details to 500."""
    google_env.control.create_event("Long title", soon(3, 12), soon(3, 13))
    google_env.start(settle=1.1)

    outcome = runner.run_account_sync(
        google_env.account.pk,
        provider_factory=lambda account: _TitleAs(
            google_env.setup.provider_factory(account), "Long title", "x" * 5000
        ),
    )

    assert outcome.status == runner.RunStatus.OK
    assert SyncRunEntry.objects.filter(run__account=google_env.account, title="x" * 255).exists()


def test_d2_a_nul_in_an_event_title_does_not_crash_the_run(google_env: SyncEnv) -> None:
    """PostgreSQL refuses NUL characters (SQLite would store them): the log drops them on both."""
    google_env.control.create_event("Broken title", soon(3, 12), soon(3, 13))
    google_env.control.create_event("Dentist", soon(4, 12), soon(4, 13))
    google_env.start(settle=1.1)

    outcome = runner.run_account_sync(
        google_env.account.pk,
        provider_factory=lambda account: _TitleAs(
            google_env.setup.provider_factory(account), "Broken title", "Broken \x00 title"
        ),
    )

    assert outcome.status == runner.RunStatus.OK
    titles = set(SyncRunEntry.objects.filter(run__account=google_env.account).values_list("title", flat=True))
    assert "Dentist" in titles
    assert "Broken  title" in titles  # the NUL dropped, the rest kept


class _UnreadableLast(_TitleAs):
    """The real adapter, whose full listing ends with one event it could not read (R10)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, "", "")

    def list_changes(self, *args: Any, **kwargs: Any) -> Any:
        page = self._inner.list_changes(*args, **kwargs)
        bad = Change(external_id="evt-unreadable", event=None, error="bad payload", code="HTTP 500")
        return replace(page, changes=(*page.changes, bad))


def test_d2_a_failure_is_never_crowded_out_of_the_log_by_skips(
    google_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SideCounts._log keeps the first MAX_LOG_ENTRIES lines of a side whatever they are: a first
    full listing's hundreds of "existed before you started" skips push the run's failures out."""
    monkeypatch.setattr(context, "MAX_LOG_SKIPS", 2)
    for day in (3, 4, 5):
        google_env.control.create_event(f"Old event {day}", soon(day, 12), soon(day, 13))
    google_env.start(settle=1.1)

    runner.run_account_sync(
        google_env.account.pk,
        provider_factory=lambda account: _UnreadableLast(google_env.setup.provider_factory(account)),
    )

    codes = set(SyncRunEntry.objects.filter(run__account=google_env.account).values_list("code", flat=True))
    assert Reason.UNREADABLE_EVENT in codes


def test_d2_the_daily_full_listing_does_not_log_the_same_skipped_events_again(google_env: SyncEnv) -> None:
    """Every full listing (daily, a year ahead) logs every event that existed before the start
    again: the same lines every day, up to 1000 per run, 14 days kept."""
    google_env.control.create_event("Weekly 1:1", soon(3, 12), soon(3, 13))
    google_env.start(settle=1.1)
    google_env.sync()
    full_listing_at = CalendarAccount.objects.get(pk=google_env.account.pk).full_sync_at
    assert full_listing_at is not None
    # A day later: the daily full listing lists the unchanged event again.
    outcome = runner.run_account_sync(
        google_env.account.pk,
        provider_factory=google_env.setup.provider_factory,
        now=timezone.now() + dt.timedelta(days=1, minutes=1),
    )
    assert outcome.status == runner.RunStatus.OK
    assert CalendarAccount.objects.get(pk=google_env.account.pk).full_sync_at != full_listing_at

    assert SyncRunEntry.objects.filter(title="Weekly 1:1", code=Reason.EVENT_BEFORE_START).count() == 1


# --------------------------------------------------------------------------- 1. disagreement


def test_d1_r6_an_item_whose_type_is_no_longer_sent_does_not_say_synced(google_env: SyncEnv) -> None:
    """R6: after its type is deselected the item stops syncing, but its stored code stays SYNCED
    (nothing re-codes it until it changes), so D1 tells the owner "Synced with ..."."""
    google_env.start()
    board = google_env.activity(subject="Board meeting", start_at=soon(2, 9))
    google_env.sync()
    do_update_preferences(
        acting_user=google_env.owner,
        account=google_env.account,
        changes={"outgoing_types": [google_env.activity_type("Call")]},
    )
    google_env.sync()

    board = Activity.objects.select_related("owner", "type").get(pk=board.pk)
    why = explanation_for(board, google_env.owner, timezone.now())
    assert why is not None
    assert why.kind != Kind.SYNCED, why.message
    assert why.code == Reason.TYPE_NO_LONGER_SENT


def test_d1_r3_an_activity_whose_link_was_removed_does_not_say_synced(google_env: SyncEnv) -> None:
    """pull._event_deleted, past branch: the event of a meeting that took place is deleted in the
    calendar; the link goes (ItemSkipped EVENT_PAST, logged) but the activity keeps SYNCED: D1 says
    "Synced with ..." for an activity linked to nothing."""
    google_env.start()
    board = google_env.activity(subject="Board meeting", start_at=soon(2, 9))
    google_env.sync()
    link = google_env.link_of(board)
    # Two days later: the meeting took place, both sides agree it is over.
    over = timezone.now() - dt.timedelta(hours=2)
    past = {"start": (over - dt.timedelta(hours=1)).isoformat(), "end": over.isoformat()}
    snapshot = {**link.snapshot, "cal": {**link.snapshot["cal"], "time": past}}
    EventLink.objects.filter(pk=link.pk).update(snapshot=snapshot)
    Activity.objects.filter(pk=board.pk).update(start_at=over - dt.timedelta(hours=1), due_date=over.date())
    google_env.control.delete_event(link.external_id)
    google_env.sync()

    assert not EventLink.objects.filter(activity_id=board.pk).exists()
    board = Activity.objects.select_related("owner", "type").get(pk=board.pk)
    why = explanation_for(board, google_env.owner, timezone.now())
    assert why is not None
    assert why.kind != Kind.SYNCED, why.message


def test_d1_r16_pending_items_of_an_account_in_error_for_lasting_refusals_are_not_told_the_sync_failed(
    owner: User,
) -> None:
    """R16: one item refused for over a day makes the account "Error" while every run succeeds
    (runner._succeeded: last_sync_error ""). explain maps every waiting item to ACCOUNT_ERROR:
    "the last sync failed; we retry shortly", and the hint's {detail} is the *activity's*
    sync_error (empty for a pending item), so it reads "no reason given"."""
    account = started_account(
        owner,
        state=AccountState.ERROR,
        state_detail="1 item has been refused by the calendar for over a day",
        last_synced_at=timezone.now(),
        last_sync_error="",
    )
    pending = make_activity(owner, subject="Pipeline review", start_at=timezone.now() + dt.timedelta(days=2))
    Activity.objects.filter(pk=pending.pk).update(
        sync_status=SyncStatus.PENDING, sync_code=Reason.PENDING, calendar_account=account
    )
    pending = Activity.objects.select_related("owner", "type").get(pk=pending.pk)

    why = explanation_for(pending, owner, timezone.now())

    assert why is not None
    assert "no reason given" not in why.hint
    assert "the last sync failed" not in why.message


# --------------------------------------------------------------------------- 2. A5/A6 leaks


def test_a6_d1_a_colleague_is_not_told_the_owners_calendar_address(owner: User, colleague: User) -> None:
    """_for_colleague copies the owner's own message into the hint: "Owner's sync: Synced with
    owner.private@gmail.test at 13:03", i.e. the owner's (possibly personal) calendar address, and
    owner-addressed words ("your Google account needs to be reconnected") shown to someone else."""
    account = started_account(owner, email="owner.private@gmail.test")
    activity = synced_activity(owner, account)

    why = explanation_for(activity, colleague, timezone.now())
    assert why is not None
    assert "owner.private@gmail.test" not in why.message + why.hint

    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    Activity.objects.filter(pk=activity.pk).update(sync_status=SyncStatus.PENDING, sync_code=Reason.PENDING)
    activity = Activity.objects.select_related("owner", "type").get(pk=activity.pk)
    why = explanation_for(activity, colleague, timezone.now())
    assert why is not None
    assert "your Google account" not in why.hint


def test_a5_the_popover_of_an_activity_of_another_company_is_not_found(
    owner: User, outsider_client: Client
) -> None:
    """Confirmed safe: the popover starts from visible_activities (A5)."""
    activity = synced_activity(owner, started_account(owner))
    response = outsider_client.get(reverse("calendarsync:activity_sync", args=[activity.pk]))
    assert response.status_code == 404


# --------------------------------------------------------------------------- reconnect, admin


def test_d1_c6_a_link_taken_over_after_a_reconnect_keeps_its_web_link(owner: User) -> None:
    """earlier_links.take_over copies every field of the earlier link but the new web_url: after
    Stop sync -> Add account the item loses its "Open in Google Calendar" link."""
    old = started_account(owner, email="owner@gmail.test")
    activity = synced_activity(owner, old)
    earlier = EventLink.objects.get(account=old, activity=activity)
    CalendarAccount.objects.filter(pk=old.pk).update(stopped_at=timezone.now())  # C6: Stop sync
    new = started_account(owner, email="owner@gmail.test")  # ... Add account

    taken = earlier_links.take_over(SimpleNamespace(account=new), earlier)  # type: ignore[arg-type]

    assert taken.web_url == earlier.web_url


def test_r16_admin_health_counts_refused_items_like_the_users_status(owner: User) -> None:
    """admin_health's "with refused items" counts every ItemFailure row; the user's status and the
    runner count only item_errors.still_failing (a refusal whose activity synced since is stale)."""
    account = started_account(owner)
    activity = synced_activity(owner, account)  # refused once, settled since by a pull
    now = timezone.now()
    ItemFailure.objects.create(
        account=account,
        activity=activity,
        reason="The calendar refused the change (HTTP 403)",
        first_failed_at=now - dt.timedelta(days=2),
        failed_at=now - dt.timedelta(days=2),
        retry_at=now + dt.timedelta(hours=1),
        changed_at=activity.sync_changed_at,
    )
    assert item_errors.counts(account.pk, now).failing == 0

    assert bucket_counts(CalendarAccount.objects.all(), now)["refused"] == 0


# --------------------------------------------------------------------------- 5. Sync now limit


def test_d2_sync_now_takes_one_of_many_simultaneous_presses() -> None:
    """Confirmed safe (with the shared cache production requires): cache.add is atomic."""
    now = timezone.now()
    results: list[int] = []
    barrier = threading.Barrier(8)

    def press() -> None:
        barrier.wait()
        results.append(seconds_before_sync_now(4242, now))

    threads = [threading.Thread(target=press) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count(0) == 1
