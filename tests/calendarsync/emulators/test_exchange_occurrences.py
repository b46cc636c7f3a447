"""The Exchange emulator's occurrences: changed and deleted ones, a single item becoming a series, refusals.

As EWS documents them, checked with exchangelib: occurrences and exceptions are not items of the
folder but live on their recurring master
(https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/calendars-and-ews-in-exchange),
so SyncFolderItems reports a change to one as an update of the master, whose ModifiedOccurrences
and DeletedOccurrences say what happened, and a CalendarView shows it
(https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-update-a-recurring-series-by-using-ews).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorCalendarOccurrenceIsDeletedFromRecurrence,
    ErrorItemNotFound,
    ErrorOccurrenceCrossingBoundary,
)
from exchangelib.items import CalendarItem
from exchangelib.recurrence import DailyPattern, Recurrence

from calendarsync.emulators.exchange import EwsError
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator
from tests.calendarsync.emulators.test_exchange_emulator import TOMORROW, connected

UTC = EWSTimeZone("UTC")


@pytest.fixture
def ews(exchange_emulator: RunningExchangeEmulator) -> RunningExchangeEmulator:
    return exchange_emulator


def window(folder: Any, *fields: str) -> list[Any]:
    """The CalendarView of the next month; "uid" makes exchangelib read the items with GetItem."""
    start = EWSDateTime.from_datetime(TOMORROW - dt.timedelta(days=1)).astimezone(UTC)
    return list(folder.view(start=start, end=start + dt.timedelta(days=30)).only("uid", *fields))


def daily_series(ews: RunningExchangeEmulator, count: int = 3) -> dict[str, Any]:
    return dict(
        ews.emulator.user_create_event(
            ews.user,
            {
                "subject": "Stand-up",
                "start": TOMORROW,
                "end": TOMORROW + dt.timedelta(minutes=30),
                "time_zone": "Europe/Berlin",
                "recurrence": {"pattern": "daily", "count": count},
            },
        )
    )


def test_changing_an_occurrence_updates_the_master_in_sync_and_lists_it_modified(
    ews: RunningExchangeEmulator,
) -> None:
    series = daily_series(ews)
    account, folder = connected(ews)
    list(folder.sync_items())
    occurrences = window(folder, "subject", "start", "end", "type")
    second = occurrences[1]
    original_start = second.start

    second.subject = "Stand-up (later)"
    second.start = second.start + dt.timedelta(hours=2)
    second.end = second.end + dt.timedelta(hours=2)
    second.save(update_fields=["subject", "start", "end"], send_meeting_invitations="SendToNone")
    changes = list(folder.sync_items(sync_state=folder.item_sync_state))
    [master] = account.fetch(ids=[(series["id"], None)], only_fields=["modified_occurrences", "type"])
    again = window(folder, "subject", "start", "type")

    assert [(kind, item.id) for kind, item in changes] == [("update", series["id"])]
    assert master.type == "RecurringMaster"
    [modified] = master.modified_occurrences
    assert modified.id == second.id
    assert modified.original_start == original_start
    assert modified.start == original_start + dt.timedelta(hours=2)
    assert [(item.id, item.type, item.subject) for item in again][1] == (
        second.id,
        "Exception",
        "Stand-up (later)",
    )


def test_deleting_an_occurrence_updates_the_master_and_leaves_the_view(ews: RunningExchangeEmulator) -> None:
    series = daily_series(ews)
    account, folder = connected(ews)
    list(folder.sync_items())
    occurrences = window(folder, "start")

    occurrences[0].delete()
    changes = list(folder.sync_items(sync_state=folder.item_sync_state))
    [master] = account.fetch(ids=[(series["id"], None)], only_fields=["deleted_occurrences"])

    assert [(kind, item.id) for kind, item in changes] == [("update", series["id"])]
    assert [deleted.start for deleted in master.deleted_occurrences] == [occurrences[0].start]
    assert [item.id for item in window(folder, "start")] == [item.id for item in occurrences[1:]]
    master_item = CalendarItem(account=account, folder=folder, id=series["id"], changekey=None)
    with pytest.raises(ErrorCalendarOccurrenceIsDeletedFromRecurrence):
        master_item.occurrence(index=1).refresh()
    assert master_item.occurrence(index=2).refresh().start == occurrences[1].start


def test_an_occurrence_cannot_move_onto_a_neighbours_day(ews: RunningExchangeEmulator) -> None:
    daily_series(ews)
    _, folder = connected(ews)
    occurrences = window(folder, "start", "end")
    second = occurrences[1]
    second.start = second.start + dt.timedelta(days=1)
    second.end = second.end + dt.timedelta(days=1)

    with pytest.raises(ErrorOccurrenceCrossingBoundary):
        second.save(update_fields=["start", "end"], send_meeting_invitations="SendToNone")
    moved = TOMORROW + dt.timedelta(days=2)
    with pytest.raises(EwsError) as in_outlook:
        ews.emulator.user_update_event(ews.user, occurrences[0].id, {"start": moved, "end": moved})
    same_day = TOMORROW + dt.timedelta(days=1, hours=-3)  # earlier on the same day
    ews.emulator.user_update_event(
        ews.user, occurrences[1].id, {"start": same_day, "end": same_day + dt.timedelta(minutes=30)}
    )

    assert in_outlook.value.code == "ErrorOccurrenceCrossingBoundary"
    assert window(folder, "type")[1].type == "Exception"


def test_a_single_item_given_a_recurrence_becomes_a_master_of_the_same_id(
    ews: RunningExchangeEmulator,
) -> None:
    account, folder = connected(ews)
    item = CalendarItem(
        account=account,
        folder=folder,
        subject="Kick-off",
        start=TOMORROW,
        end=TOMORROW + dt.timedelta(hours=1),
    )
    item.save(send_meeting_invitations="SendToNone")
    list(folder.sync_items())

    item.recurrence = Recurrence(pattern=DailyPattern(interval=1), start=TOMORROW.date(), number=3)
    item.save(update_fields=["recurrence"], send_meeting_invitations="SendToNone")
    changes = list(folder.sync_items(sync_state=folder.item_sync_state, only_fields=["type"]))
    view = window(folder, "type", "start")

    assert [(kind, changed.id, changed.type) for kind, changed in changes] == [
        ("update", item.id, "RecurringMaster")
    ]
    assert [(occurrence.type, occurrence.start) for occurrence in view] == [
        ("Occurrence", TOMORROW + dt.timedelta(days=n)) for n in range(3)
    ]
    assert item.id not in {occurrence.id for occurrence in view}


def test_an_injected_refusal_fails_that_item_alone(ews: RunningExchangeEmulator) -> None:
    account, _ = connected(ews)
    created = [
        ews.emulator.user_create_event(ews.user, {"subject": f"E{n}", "start": TOMORROW, "end": TOMORROW})
        for n in range(2)
    ]
    items = list(account.fetch(ids=[(event["id"], None) for event in created]))
    ews.emulator.inject_item_fault(items[0].id)

    for item in items:
        item.subject = item.subject + "!"
    # One UpdateItem for both: the refused item's response message fails, the other one works.
    with pytest.raises(ErrorAccessDenied):
        list(account.bulk_update(items=[(item, ["subject"]) for item in items]))
    after_refusal = sorted(e["subject"] for e in ews.emulator.user_list_events(ews.user))
    items[0].save(update_fields=["subject"], send_meeting_invitations="SendToNone")

    assert after_refusal == ["E0", "E1!"]
    assert sorted(e["subject"] for e in ews.emulator.user_list_events(ews.user)) == ["E0!", "E1!"]


def test_a_refusal_for_an_occurrence_and_for_a_delete(ews: RunningExchangeEmulator) -> None:
    series = daily_series(ews, count=2)
    occurrences = ews.emulator.user_list_occurrences(ews.user, series["id"])
    ews.emulator.inject_item_fault(occurrences[1]["id"], "ErrorItemNotFound")
    ews.emulator.inject_item_fault(series["id"])
    account, folder = connected(ews)
    view = window(folder, "start")

    with pytest.raises(ErrorItemNotFound):
        view[1].delete()
    view[1].delete()
    with pytest.raises(ErrorAccessDenied):
        CalendarItem(account=account, folder=folder, id=series["id"], changekey=None).delete()

    assert [o["id"] for o in ews.emulator.user_list_occurrences(ews.user, series["id"])] == [
        occurrences[0]["id"]
    ]
    ews.emulator.inject_item_fault(series["id"])
    ews.emulator.clear_faults()
    assert ews.emulator.state.item_faults == {}


def test_the_user_changes_and_lists_occurrences(ews: RunningExchangeEmulator) -> None:
    series = daily_series(ews)
    occurrences = ews.emulator.user_list_occurrences(ews.user, series["id"])

    ews.emulator.user_update_event(ews.user, occurrences[2]["id"], {"private": True})
    ews.emulator.user_delete_event(ews.user, occurrences[0]["id"])
    after = ews.emulator.user_list_occurrences(ews.user, series["id"])

    assert [o["original_start"] for o in occurrences] == [
        (TOMORROW + dt.timedelta(days=n)).isoformat() for n in range(3)
    ]
    assert [(o["id"], o["is_exception"], o["sensitivity"]) for o in after] == [
        (occurrences[1]["id"], False, "Normal"),
        (occurrences[2]["id"], True, "Private"),
    ]
