"""D1: every reason code the sync can record has its words, and a test here (issue #14).

``EXAMPLES`` holds one case per ``Reason``: how an item comes to have that reason, and what its
explanation must say. ``test_d1_every_code_has_words_and_an_example`` fails when a code is added
without both; ``test_d1_every_code_is_recorded_or_derived`` fails when a code is dead (neither
the engine nor ``explain`` ever gives it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import time_machine

from accounts.models import User
from activities.models import Activity, ActivityType, SyncStatus, Visibility
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
from calendarsync.sync.explain import Explanation, explain
from calendarsync.sync.reasons import WORDING, Kind, Reason
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db

# Tuesday 14 January 2025, 13:00 UTC (14:00 in Berlin, the owner's zone).
NOW = dt.datetime(2025, 1, 14, 13, 0, tzinfo=dt.UTC)
STARTED = dt.datetime(2025, 1, 3, 9, 0, tzinfo=dt.UTC)
ENGINE = Path(__file__).resolve().parents[2] / "calendarsync"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@dataclass
class Case:
    """What ``explain`` is given for one example."""

    item: Activity | SyncRunEntry
    account: CalendarAccount | None
    preferences: SyncPreferences | None
    link: EventLink | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def explain(self) -> Explanation:
        explanation = explain(
            self.item, self.account, self.preferences, self.link, NOW, tz=self.account_tz(), **self.extra
        )
        assert explanation is not None
        return explanation

    def account_tz(self) -> dt.tzinfo:
        return self.account.user.tzinfo if self.account is not None else dt.UTC


def connected(owner: User, **account_fields: Any) -> tuple[CalendarAccount, SyncPreferences]:
    account = CalendarAccount.objects.create(
        user=owner, provider=Provider.GOOGLE, email="alice@gmail.test", **account_fields
    )
    preferences = SyncPreferences.objects.create(account=account, sync_started_at=STARTED)
    preferences.outgoing_types.set(
        ActivityType.objects.filter(company=owner.company, name__in=["Meeting", "Call"])
    )
    return account, preferences


def stored(owner: User, code: Reason, status: SyncStatus, error: str = "", **account_fields: Any) -> Case:
    """An activity the engine recorded ``code`` for."""
    account, preferences = connected(owner, **account_fields)
    activity = make_activity(owner, subject="Board meeting", start_at=NOW + dt.timedelta(days=1))
    Activity.objects.filter(pk=activity.pk).update(
        sync_status=status,
        sync_code=code,
        sync_error=error,
        sync_status_at=NOW - dt.timedelta(minutes=57),
        calendar_account=account,
    )
    activity.refresh_from_db()
    return Case(activity, account, preferences)


def judged(
    owner: User, *, start: dt.datetime, type_name: str = "Meeting", changed: dt.datetime = NOW
) -> Case:
    """An activity no run or save decided on: ``explain`` applies the engine's rules."""
    account, preferences = connected(owner)
    activity = make_activity(
        owner,
        subject="Demo",
        start_at=start,
        type=ActivityType.objects.get(company=owner.company, name=type_name),
    )
    Activity.objects.filter(pk=activity.pk).update(sync_status=None, sync_code="", sync_changed_at=changed)
    activity.refresh_from_db()
    return Case(activity, account, preferences)


def entry(owner: User, code: Reason, title: str = "Doctor", detail: str = "") -> Case:
    account, preferences = connected(owner)
    run = SyncRun.objects.create(account=account, started_at=NOW, outcome=SyncRun.Outcome.OK)
    item = SyncRunEntry.objects.create(
        run=run, direction="in", action="skipped", code=code, title=title, detail=detail
    )
    return Case(item, account, preferences)


def synced(owner: User) -> Case:
    case = stored(owner, Reason.SYNCED, SyncStatus.SYNCED)
    assert isinstance(case.item, Activity)
    assert case.account is not None
    case.link = EventLink.objects.create(
        account=case.account,
        activity=case.item,
        calendar_external_id="primary",
        external_id="evt-1",
        origin=LinkOrigin.CRM,
        web_url="https://calendar.google.test/event?eid=evt-1",
    )
    return case


def for_colleague(owner: User, *, attends: bool) -> Case:
    case = synced(owner)
    colleague = User.objects.create_user(email="bob@acme.test", password="x", company=owner.company)
    case.extra = {"viewer_id": colleague.pk, "viewer_attends": attends}
    return case


def refused(owner: User) -> Case:
    case = stored(
        owner, Reason.REFUSED, SyncStatus.ERROR, "The calendar refused this item (forbiddenForNonOrganizer)"
    )
    assert isinstance(case.item, Activity)
    assert case.account is not None
    failure = ItemFailure.objects.create(
        account=case.account,
        activity=case.item,
        reason="x",
        first_failed_at=NOW,
        failed_at=NOW,
        retry_at=NOW + dt.timedelta(hours=1),
    )
    case.extra = {"failure": failure}
    return case


def account_waits(state: AccountState) -> Callable[[User], Case]:
    return lambda owner: stored(
        owner,
        Reason.PENDING,
        SyncStatus.PENDING,
        state=state,
        state_detail="The calendar refused (HTTP 500)",
        last_sync_error="Calendar sync failed (HTTP 500)",
    )


def no_account(owner: User) -> Case:
    return Case(make_activity(owner, subject="Demo"), None, None)


def not_started(owner: User) -> Case:
    case = judged(owner, start=NOW + dt.timedelta(days=1))
    assert case.preferences is not None
    case.preferences.sync_started_at = None
    return case


def stopped(owner: User) -> Case:
    case = judged(owner, start=NOW + dt.timedelta(days=1))
    assert case.account is not None
    case.account.stopped_at = NOW
    return case


# reason -> (how to get there, what the explanation's message must contain)
EXAMPLES: dict[Reason, tuple[Callable[[User], Case], str]] = {
    Reason.SYNCED: (synced, "Synced with alice@gmail.test at 13:03."),
    Reason.SHARED_MEETING: (
        lambda o: for_colleague(o, attends=True),
        "In your calendar too: Owner owns this meeting",
    ),
    Reason.PENDING: (
        lambda o: judged(o, start=NOW + dt.timedelta(days=2)),
        "Waiting: goes out with the next sync (about a minute).",
    ),
    Reason.AWAITING_CALENDAR_COPY: (
        lambda o: stored(o, Reason.AWAITING_CALENDAR_COPY, SyncStatus.SKIPPED),
        "the next sync reads the calendar's copy",
    ),
    Reason.CALENDAR_BUSY: (
        lambda o: stored(
            o, Reason.CALENDAR_BUSY, SyncStatus.PENDING, "The calendar did not answer; will retry"
        ),
        "Waiting: Google did not answer",
    ),
    Reason.CHANGED_MEANWHILE: (
        lambda o: stored(o, Reason.CHANGED_MEANWHILE, SyncStatus.PENDING),
        "the event changed in the calendar meanwhile",
    ),
    Reason.NEEDS_RECONNECT: (
        account_waits(AccountState.NEEDS_RECONNECT),
        "Waiting: your Google account needs to be reconnected.",
    ),
    Reason.INSUFFICIENT_PERMISSIONS: (
        account_waits(AccountState.INSUFFICIENT_PERMISSIONS),
        "Waiting: Google does not allow CalSync to use your calendar.",
    ),
    Reason.ACCOUNT_ERROR: (
        account_waits(AccountState.ERROR),
        "Waiting: the last sync failed; we retry shortly.",
    ),
    Reason.NO_ACCOUNT: (no_account, "Not synced: you have no calendar connected."),
    Reason.SYNC_NOT_STARTED: (not_started, "Not synced: your calendar sync is not started yet."),
    Reason.SYNC_STOPPED: (stopped, "Not syncing: the calendar sync was stopped."),
    Reason.OTHER_OWNER: (
        lambda o: for_colleague(o, attends=False),
        "Not sent to your calendar: Owner owns it; each person's sync covers only their own activities.",
    ),
    Reason.BEFORE_START: (
        lambda o: judged(o, start=NOW + dt.timedelta(days=1), changed=STARTED - dt.timedelta(days=1)),
        "Not sent: created before you started the sync on 3 Jan.",
    ),
    Reason.PAST: (lambda o: judged(o, start=NOW - dt.timedelta(days=1)), "Not sent: it's in the past."),
    Reason.MOVED_INTO_PAST: (
        lambda o: stored(o, Reason.MOVED_INTO_PAST, SyncStatus.SKIPPED),
        "No longer synced: it was moved into the past.",
    ),
    Reason.TYPE_NOT_SENT: (
        lambda o: judged(o, start=NOW + dt.timedelta(days=1), type_name="Task"),
        "Not sent: Task is not among the types you send.",
    ),
    Reason.TYPE_NO_LONGER_SENT: (
        lambda o: stored(o, Reason.TYPE_NO_LONGER_SENT, SyncStatus.SKIPPED),
        "No longer synced: Meeting is no longer among the types you send.",
    ),
    Reason.OTHER_CALENDAR: (
        lambda o: stored(o, Reason.OTHER_CALENDAR, SyncStatus.SKIPPED),
        "a calendar you no longer sync with",
    ),
    Reason.DELETED_IN_CALENDAR: (
        lambda o: stored(o, Reason.DELETED_IN_CALENDAR, SyncStatus.SKIPPED),
        "Not synced: its event was deleted in the calendar.",
    ),
    Reason.OCCURRENCE: (
        lambda o: stored(o, Reason.OCCURRENCE, SyncStatus.SYNCED),
        "Read-only: one occurrence of a recurring event; edit the series in Google Calendar.",
    ),
    Reason.REFUSED: (refused, "Error: Google refused the change (you are not the organizer)."),
    Reason.NOT_FOUND: (
        lambda o: stored(
            o, Reason.NOT_FOUND, SyncStatus.ERROR, "The calendar could not find this event (HTTP 404)"
        ),
        "Error: Google could not find the event (the event no longer exists).",
    ),
    Reason.FAILED: (
        lambda o: stored(o, Reason.FAILED, SyncStatus.ERROR, "Calendar sync failed unexpectedly"),
        "Error: the sync could not send it.",
    ),
    Reason.ONE_WAY: (lambda o: entry(o, Reason.ONE_WAY), "one-way sync: calendar events are not imported"),
    Reason.EVENT_BEFORE_START: (
        lambda o: entry(o, Reason.EVENT_BEFORE_START),
        "existed before you started the sync",
    ),
    Reason.EVENT_PAST: (lambda o: entry(o, Reason.EVENT_PAST), "in the past"),
    Reason.BEYOND_HORIZON: (lambda o: entry(o, Reason.BEYOND_HORIZON), "too far in the future"),
    Reason.PRIVATE_EVENT: (
        lambda o: entry(o, Reason.PRIVATE_EVENT),
        "private event, your setting is Don't sync",
    ),
    Reason.MADE_PRIVATE: (lambda o: entry(o, Reason.MADE_PRIVATE), "made private in the calendar"),
    Reason.DECLINED: (lambda o: entry(o, Reason.DECLINED), "a meeting you declined"),
    Reason.NO_INCOMING_TYPE: (lambda o: entry(o, Reason.NO_INCOMING_TYPE), "no activity type is chosen"),
    Reason.INCOMING_TYPE_INACTIVE: (lambda o: entry(o, Reason.INCOMING_TYPE_INACTIVE), "is deactivated"),
    Reason.NO_COMPANY: (lambda o: entry(o, Reason.NO_COMPANY), "belongs to no company"),
    Reason.UNREADABLE_EVENT: (
        lambda o: entry(o, Reason.UNREADABLE_EVENT, detail="HTTP 500"),
        "the calendar sent an event CalSync cannot read (HTTP 500)",
    ),
    Reason.NOT_APPLIED: (
        lambda o: entry(o, Reason.NOT_APPLIED, detail="DataError"),
        "the calendar change could not be applied (DataError)",
    ),
    Reason.DUPLICATE_MEETING: (
        lambda o: entry(o, Reason.DUPLICATE_MEETING),
        "already stands for this meeting",
    ),
    Reason.SERIES_KEPT: (lambda o: entry(o, Reason.SERIES_KEPT), "a recurring series is never deleted"),
    Reason.REASSIGNED: (lambda o: entry(o, Reason.REASSIGNED), "given to another user"),
    Reason.ACTIVITY_GONE: (lambda o: entry(o, Reason.ACTIVITY_GONE), "the activity was deleted meanwhile"),
    Reason.LINKED_ELSEWHERE: (lambda o: entry(o, Reason.LINKED_ELSEWHERE), "linked to another event"),
    Reason.MEETING_IN_PROGRESS: (
        lambda o: entry(o, Reason.MEETING_IN_PROGRESS),
        "a colleague's sync is making",
    ),
    Reason.UNCONFIRMED_DELETION: (
        lambda o: entry(o, Reason.UNCONFIRMED_DELETION, detail="HTTP 500"),
        "missing from the calendar's listing but could not be read (HTTP 500)",
    ),
    Reason.DETACHED: (lambda o: entry(o, Reason.DETACHED), "no longer linked to an activity"),
    Reason.SENT: (lambda o: entry(o, Reason.SENT), "sent to the calendar"),
    Reason.SENT_UPDATE: (lambda o: entry(o, Reason.SENT_UPDATE), "change sent to the calendar"),
    Reason.SENT_DELETION: (lambda o: entry(o, Reason.SENT_DELETION), "deleted from the calendar"),
    Reason.IMPORTED: (lambda o: entry(o, Reason.IMPORTED), "imported as an activity"),
    Reason.APPLIED: (lambda o: entry(o, Reason.APPLIED), "calendar change applied"),
    Reason.OCCURRENCE_APPLIED: (
        lambda o: entry(o, Reason.OCCURRENCE_APPLIED),
        "occurrence edited in the calendar, applied",
    ),
    Reason.TRASHED: (lambda o: entry(o, Reason.TRASHED), "activity moved to the trash"),
}


def test_d1_every_code_has_words_and_an_example() -> None:
    assert set(WORDING) == set(Reason)
    assert set(EXAMPLES) == set(Reason), sorted(set(Reason) - set(EXAMPLES))


def test_d1_every_code_is_recorded_or_derived() -> None:
    """No dead code: each is given by the engine (calendarsync/sync) or by ``explain`` itself."""
    sources = "".join(
        path.read_text() for path in (ENGINE / "sync").glob("*.py") if path.name != "reasons.py"
    )
    used = set(re.findall(r"Reason\.([A-Z_]+)", sources))
    assert {reason.name for reason in Reason} <= used


@pytest.mark.parametrize("reason", list(Reason), ids=lambda reason: reason.value)
def test_d1_each_code_is_explained(owner: User, reason: Reason) -> None:
    build, expected = EXAMPLES[reason]
    explanation = build(owner).explain()
    assert explanation.code == reason
    assert expected in explanation.message
    assert explanation.kind == WORDING[reason].kind


def test_d1_synced_links_the_event_in_the_providers_web_calendar(owner: User) -> None:
    assert synced(owner).explain().web_url == "https://calendar.google.test/event?eid=evt-1"


def test_d1_a_refusal_says_when_it_is_retried_in_the_users_zone(owner: User) -> None:
    explanation = refused(owner).explain()
    assert explanation.hint.endswith("We'll retry at 15:00, or when you edit it.")  # 14:00 UTC in Berlin


def test_d1_type_not_sent_links_to_the_options(owner: User) -> None:
    explanation = EXAMPLES[Reason.TYPE_NOT_SENT][0](owner).explain()
    assert (explanation.action_label, explanation.action_url) == (
        "Change",
        "/preferences/calendar-sync/#sync-options",
    )


def test_d1_before_start_says_what_to_change(owner: User) -> None:
    explanation = EXAMPLES[Reason.BEFORE_START][0](owner).explain()
    assert explanation.hint == "Change its time, place, participants or description to send it."
    assert explanation.action_label == "Edit"


def test_d1_a_past_activity_created_before_start_says_past(owner: User) -> None:
    case = judged(owner, start=NOW - dt.timedelta(days=30), changed=STARTED - dt.timedelta(days=40))
    assert case.explain().code == Reason.PAST


def test_d1_a_colleague_hears_the_owners_status_as_a_hint(owner: User) -> None:
    explanation = for_colleague(owner, attends=False).explain()
    assert explanation.hint == "Owner's sync: synced."  # never the owner's calendar address (A6)
    assert "alice@gmail.test" not in explanation.message + explanation.hint


def test_a6_a_masked_activity_has_no_explanation(owner: User) -> None:
    case = synced(owner)
    assert isinstance(case.item, Activity)
    case.item.visibility = Visibility.OWNER
    case.item.masked = True  # type: ignore[attr-defined]
    assert explain(case.item, case.account, case.preferences, case.link, NOW) is None


def test_d1_r16_an_account_in_error_only_for_lasting_refusals_holds_nothing(owner: User) -> None:
    """Its runs go through: a waiting item still just waits for the next one."""
    case = stored(
        owner, Reason.PENDING, SyncStatus.PENDING, state=AccountState.ERROR, state_detail="1 item …"
    )
    assert case.explain().code == Reason.PENDING


def test_d1_an_account_error_says_what_failed(owner: User) -> None:
    explanation = account_waits(AccountState.ERROR)(owner).explain()
    assert explanation.hint == "Calendar sync failed (HTTP 500)"


def test_d1_a_synced_item_stays_synced_while_the_account_needs_reconnect(owner: User) -> None:
    """Only what waits for a run says why the account is not running."""
    case = stored(owner, Reason.SYNCED, SyncStatus.SYNCED, state=AccountState.NEEDS_RECONNECT)
    assert case.explain().kind == Kind.SYNCED


def test_d1_an_older_row_without_a_code_falls_back_on_its_status(owner: User) -> None:
    case = stored(owner, Reason.SYNCED, SyncStatus.ERROR, "The calendar refused this item (HTTP 400)")
    assert isinstance(case.item, Activity)
    case.item.sync_code = ""
    assert case.explain().code == Reason.FAILED


def test_d1_a_log_line_of_an_unknown_code_still_reads(owner: User) -> None:
    case = entry(owner, Reason.SENT)
    assert isinstance(case.item, SyncRunEntry)
    case.item.code = "gone_in_a_later_version"
    assert case.explain().code == Reason.FAILED
