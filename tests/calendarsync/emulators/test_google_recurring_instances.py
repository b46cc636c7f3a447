"""The Google emulator's recurring instances: EXDATE zones, changed and cancelled instances, series shape changes.

Checked with the real client library, as Google documents them: an instance changed on its own
(PATCH/PUT on `<seriesId>_<original start>`) becomes an exception with `recurringEventId` and
`originalStartTime`; a cancelled one comes as `status: "cancelled"` with its instance id
(https://developers.google.com/calendar/api/v3/reference/events, https://developers.google.com/calendar/api/guides/recurringevents).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from tests.calendarsync.conftest import RunningGoogleEmulator
from tests.calendarsync.emulators.test_google_emulator import (
    ALICE,
    error_of,
    list_all,
    reason_of,
    service_for,
    timed,
)

BERLIN = "Europe/Berlin"


@pytest.fixture
def google(google_emulator: RunningGoogleEmulator) -> RunningGoogleEmulator:
    return google_emulator


@pytest.fixture
def calendar(google: RunningGoogleEmulator) -> Any:
    return service_for(google)[0]


def daily(google: RunningGoogleEmulator, count: int = 3, **extra: Any) -> dict[str, Any]:
    """A daily series at 09:00 Berlin time from 1 April 2030 (summer time: 07:00 UTC)."""
    body = {
        "summary": "Stand-up",
        "start": {"dateTime": "2030-04-01T09:00:00", "timeZone": BERLIN},
        "end": {"dateTime": "2030-04-01T09:30:00", "timeZone": BERLIN},
        "recurrence": [f"RRULE:FREQ=DAILY;COUNT={count}"],
        **extra,
    }
    return dict(google.emulator.user_create_event(ALICE, body))


def instance_id(series: dict[str, Any], day: int) -> str:
    return f"{series['id']}_203004{day:02d}T070000Z"


def single_events(calendar: Any, **params: Any) -> list[dict[str, Any]]:
    return list(list_all(calendar, singleEvents=True, **params)[0])


# -- EXDATE with a time zone (issue #12, item 18) -------------------------------------------------


def test_exdate_with_a_tzid_keeps_the_zone_name_and_drops_that_instance(google, calendar):
    series = daily(
        google,
        recurrence=["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;TZID=Europe/Berlin:20300402T090000"],
    )

    items = single_events(calendar, orderBy="startTime")

    assert [i["id"] for i in items] == [instance_id(series, 1), instance_id(series, 3)]
    stored = calendar.events().get(calendarId="primary", eventId=series["id"]).execute()
    assert stored["recurrence"][1] == "EXDATE;TZID=Europe/Berlin:20300402T090000"


def test_exdate_through_the_api_with_a_quoted_tzid_and_a_utc_exdate(calendar):
    body = {
        "summary": "Review",
        "start": {"dateTime": "2030-04-01T09:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2030-04-01T10:00:00", "timeZone": "America/New_York"},
        "recurrence": [
            "RRULE:FREQ=DAILY;COUNT=4",
            'EXDATE;TZID="America/New_York":20300402T090000',
            "EXDATE:20300403T130000Z",
        ],
    }
    series = calendar.events().insert(calendarId="primary", body=body).execute()

    items = single_events(calendar, orderBy="startTime")

    assert [i["start"]["dateTime"] for i in items] == [
        "2030-04-01T09:00:00-04:00",
        "2030-04-04T09:00:00-04:00",
    ]
    assert {i["recurringEventId"] for i in items} == {series["id"]}


# -- changing one instance -------------------------------------------------------------------------


def test_patching_an_instance_makes_an_exception_that_sync_reports_alone(google, calendar):
    series = daily(google)
    _, token = list_all(calendar, singleEvents=True)
    second = instance_id(series, 2)
    before = calendar.events().get(calendarId="primary", eventId=second).execute()

    changed = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=second,
            body={
                "summary": "Stand-up (moved)",
                "start": {"dateTime": "2030-04-02T11:00:00", "timeZone": BERLIN},
                "end": {"dateTime": "2030-04-02T11:30:00", "timeZone": BERLIN},
            },
        )
        .execute()
    )
    changes, token = list_all(calendar, singleEvents=True, syncToken=token)

    assert changed["id"] == second
    assert changed["recurringEventId"] == series["id"]
    assert changed["originalStartTime"] == {"dateTime": "2030-04-02T09:00:00+02:00", "timeZone": BERLIN}
    assert changed["start"] == {"dateTime": "2030-04-02T11:00:00+02:00", "timeZone": BERLIN}
    assert changed["etag"] != before["etag"]
    assert "recurrence" not in changed
    assert [(c["id"], c["summary"]) for c in changes] == [(second, "Stand-up (moved)")]
    assert calendar.events().get(calendarId="primary", eventId=second).execute() == changed
    listed = single_events(calendar, orderBy="startTime")
    assert [(i["id"], i["summary"]) for i in listed] == [
        (instance_id(series, 1), "Stand-up"),
        (second, "Stand-up (moved)"),
        (instance_id(series, 3), "Stand-up"),
    ]
    # The series itself did not change.
    master = calendar.events().get(calendarId="primary", eventId=series["id"]).execute()
    assert master["etag"] == series["etag"]
    assert list_all(calendar, singleEvents=True, syncToken=token)[0] == []


def test_instances_then_update_with_put_and_a_stale_if_match(google, calendar):
    series = daily(google)
    instances = calendar.events().instances(calendarId="primary", eventId=series["id"]).execute()["items"]
    third = instances[2]

    body = {key: value for key, value in third.items() if key not in ("etag", "updated")}
    body["location"] = "Room 7"
    updated = calendar.events().update(calendarId="primary", eventId=third["id"], body=body).execute()
    request = calendar.events().patch(calendarId="primary", eventId=third["id"], body={"summary": "Late"})
    request.headers["If-Match"] = third["etag"]
    with pytest.raises(HttpError) as stale:
        request.execute()

    assert [i["id"] for i in instances] == [instance_id(series, day) for day in (1, 2, 3)]
    assert all(i["recurringEventId"] == series["id"] for i in instances)
    assert (updated["id"], updated["location"], updated["summary"]) == (third["id"], "Room 7", "Stand-up")
    assert (stale.value.resp.status, reason_of(stale)) == (412, "conditionNotMet")


def test_an_instance_cannot_take_a_recurrence_and_unknown_instances_are_not_found(google, calendar):
    series = daily(google)

    with pytest.raises(HttpError) as recurring:
        calendar.events().patch(
            calendarId="primary",
            eventId=instance_id(series, 1),
            body={"recurrence": ["RRULE:FREQ=WEEKLY"]},
        ).execute()
    with pytest.raises(HttpError) as missing:
        calendar.events().patch(
            calendarId="primary", eventId=f"{series['id']}_20300405T070000Z", body={"summary": "x"}
        ).execute()
    with pytest.raises(HttpError) as off_pattern:
        calendar.events().get(calendarId="primary", eventId=f"{series['id']}_20300402T080000Z").execute()

    assert (recurring.value.resp.status, reason_of(recurring)) == (400, "invalid")
    assert missing.value.resp.status == 404
    assert off_pattern.value.resp.status == 404


# -- cancelling one instance -----------------------------------------------------------------------


def test_deleting_an_instance_cancels_it_and_sync_reports_it_cancelled(google, calendar):
    series = daily(google)
    _, token = list_all(calendar, singleEvents=True)
    second = instance_id(series, 2)

    calendar.events().delete(calendarId="primary", eventId=second).execute()
    changes, _ = list_all(calendar, singleEvents=True, syncToken=token)

    assert changes == [
        {
            "kind": "calendar#event",
            "etag": changes[0]["etag"],
            "id": second,
            "status": "cancelled",
            "updated": changes[0]["updated"],
            "recurringEventId": series["id"],
            "originalStartTime": {"dateTime": "2030-04-02T09:00:00+02:00", "timeZone": BERLIN},
        }
    ]
    assert [i["id"] for i in single_events(calendar)] == [instance_id(series, 1), instance_id(series, 3)]
    shown = single_events(calendar, showDeleted=True)
    assert [(i["id"], i["status"]) for i in shown] == [
        (instance_id(series, 1), "confirmed"),
        (second, "cancelled"),
        (instance_id(series, 3), "confirmed"),
    ]
    with pytest.raises(HttpError) as again:
        calendar.events().delete(calendarId="primary", eventId=second).execute()
    with pytest.raises(HttpError) as gone:
        calendar.events().patch(calendarId="primary", eventId=second, body={"summary": "x"}).execute()
    assert (again.value.resp.status, reason_of(again)) == (410, "deleted")
    assert gone.value.resp.status == 404


def test_status_cancelled_on_an_instance_cancels_it_too(google, calendar):
    series = daily(google)
    _, token = list_all(calendar, singleEvents=True)

    answer = (
        calendar.events()
        .patch(calendarId="primary", eventId=instance_id(series, 3), body={"status": "cancelled"})
        .execute()
    )
    changes, _ = list_all(calendar, singleEvents=True, syncToken=token)

    assert (answer["id"], answer["status"]) == (instance_id(series, 3), "cancelled")
    assert [(c["id"], c["status"]) for c in changes] == [(instance_id(series, 3), "cancelled")]


def test_without_single_events_the_series_and_its_exceptions_are_listed(google, calendar):
    series = daily(google)
    google.emulator.user_update_event(ALICE, instance_id(series, 1), {"summary": "First"})
    google.emulator.user_delete_event(ALICE, instance_id(series, 2))

    items = calendar.events().list(calendarId="primary").execute()["items"]
    instances = calendar.events().instances(calendarId="primary", eventId=series["id"]).execute()["items"]
    with_cancelled = (
        calendar.events()
        .instances(calendarId="primary", eventId=series["id"], showDeleted=True)
        .execute()["items"]
    )

    # showDeleted and singleEvents both false: cancelled instances are still included.
    assert sorted((i["id"], i["status"]) for i in items) == sorted(
        [
            (series["id"], "confirmed"),
            (instance_id(series, 1), "confirmed"),
            (instance_id(series, 2), "cancelled"),
        ]
    )
    assert [(i["id"], i["summary"]) for i in instances] == [
        (instance_id(series, 1), "First"),
        (instance_id(series, 3), "Stand-up"),
    ]
    assert [(i["id"], i["status"]) for i in with_cancelled] == [
        (instance_id(series, 1), "confirmed"),
        (instance_id(series, 2), "cancelled"),
        (instance_id(series, 3), "confirmed"),
    ]


def test_instances_paginates_and_picks_one_by_original_start(google, calendar):
    series = daily(google, count=5)

    first = calendar.events().instances(calendarId="primary", eventId=series["id"], maxResults=2).execute()
    rest = (
        calendar.events()
        .instances(calendarId="primary", eventId=series["id"], pageToken=first["nextPageToken"])
        .execute()
    )
    picked = (
        calendar.events()
        .instances(calendarId="primary", eventId=series["id"], originalStart="2030-04-03T09:00:00+02:00")
        .execute()["items"]
    )
    windowed = (
        calendar.events()
        .instances(
            calendarId="primary",
            eventId=series["id"],
            timeMin="2030-04-02T07:30:00Z",
            timeMax="2030-04-04T07:00:00Z",
        )
        .execute()["items"]
    )

    assert len(first["items"]) == 2
    assert "nextSyncToken" not in first
    assert len(rest["items"]) == 3
    assert [i["id"] for i in picked] == [instance_id(series, 3)]
    # timeMin is inclusive for the end, timeMax exclusive for the start.
    assert [i["id"] for i in windowed] == [instance_id(series, 2), instance_id(series, 3)]


# -- the series changes ----------------------------------------------------------------------------


def test_changed_instances_survive_a_series_edit_until_their_slot_is_gone(google, calendar):
    series = daily(google, count=3)
    google.emulator.user_update_event(ALICE, instance_id(series, 3), {"summary": "Third"})
    _, token = list_all(calendar, singleEvents=True)

    google.emulator.user_update_event(ALICE, series["id"], {"location": "Room 1"})
    renamed, token = list_all(calendar, singleEvents=True, syncToken=token)
    google.emulator.user_update_event(ALICE, series["id"], {"recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]})
    shortened, token = list_all(calendar, singleEvents=True, syncToken=token)
    google.emulator.user_delete_event(ALICE, series["id"])
    deleted, _ = list_all(calendar, singleEvents=True, syncToken=token)

    assert sorted((c["id"], c.get("summary"), c.get("location")) for c in renamed) == [
        (instance_id(series, 1), "Stand-up", "Room 1"),
        (instance_id(series, 2), "Stand-up", "Room 1"),
        (instance_id(series, 3), "Third", None),
    ]
    assert sorted((c["id"], c["status"]) for c in shortened) == [
        (instance_id(series, 1), "confirmed"),
        (instance_id(series, 2), "confirmed"),
        (instance_id(series, 3), "cancelled"),
    ]
    # Every instance the series had comes cancelled (the one cancelled before comes again).
    assert sorted((c["id"], c["status"]) for c in deleted) == [
        (instance_id(series, 1), "cancelled"),
        (instance_id(series, 2), "cancelled"),
        (instance_id(series, 3), "cancelled"),
    ]


def test_deleting_the_series_cancels_its_changed_instances(google, calendar):
    series = daily(google, count=2)
    google.emulator.user_update_event(ALICE, instance_id(series, 2), {"summary": "Second"})
    _, token = list_all(calendar, singleEvents=True)

    calendar.events().delete(calendarId="primary", eventId=series["id"]).execute()
    changes, _ = list_all(calendar, singleEvents=True, syncToken=token)

    assert sorted((c["id"], c["status"]) for c in changes) == [
        (instance_id(series, 1), "cancelled"),
        (instance_id(series, 2), "cancelled"),
    ]
    assert google.emulator.user_get_event(ALICE, instance_id(series, 2)) is None


def test_a_single_event_patched_into_a_series_comes_back_as_its_instances(google, calendar):
    single = google.emulator.user_create_event(
        ALICE,
        {
            "summary": "Kick-off",
            "start": {"dateTime": "2030-04-01T09:00:00", "timeZone": BERLIN},
            "end": {"dateTime": "2030-04-01T10:00:00", "timeZone": BERLIN},
        },
    )
    before, token = list_all(calendar, singleEvents=True)

    became = (
        calendar.events()
        .patch(calendarId="primary", eventId=single["id"], body={"recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]})
        .execute()
    )
    changes, _ = list_all(calendar, singleEvents=True, syncToken=token)
    unexpanded = calendar.events().list(calendarId="primary").execute()["items"]

    assert [i["id"] for i in before] == [single["id"]]
    assert became["id"] == single["id"]
    assert became["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=2"]
    assert became["sequence"] == single["sequence"] + 1
    # singleEvents returns instances, never the recurring event: nothing comes under the old id,
    # only instances that name it as their recurringEventId.
    assert sorted((c["id"], c["status"], c["recurringEventId"]) for c in changes) == [
        (f"{single['id']}_20300401T070000Z", "confirmed", single["id"]),
        (f"{single['id']}_20300402T070000Z", "confirmed", single["id"]),
    ]
    assert [(i["id"], i["recurrence"]) for i in unexpanded] == [(single["id"], ["RRULE:FREQ=DAILY;COUNT=2"])]


# -- a refusal for one event -----------------------------------------------------------------------


def test_an_injected_event_refusal_hits_the_next_write_to_that_event_only(google, calendar):
    mine = google.emulator.user_create_event(
        ALICE, timed("Mine", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z")
    )
    other = google.emulator.user_create_event(
        ALICE, timed("Other", "2030-04-02T09:00:00Z", "2030-04-02T10:00:00Z")
    )
    google.emulator.inject_event_fault(mine["id"])

    calendar.events().get(calendarId="primary", eventId=mine["id"]).execute()  # reads are not refused
    calendar.events().patch(calendarId="primary", eventId=other["id"], body={"summary": "O"}).execute()
    with pytest.raises(HttpError) as refused:
        calendar.events().patch(calendarId="primary", eventId=mine["id"], body={"summary": "M"}).execute()
    retried = (
        calendar.events().patch(calendarId="primary", eventId=mine["id"], body={"summary": "M"}).execute()
    )

    assert error_of(refused) == {
        "code": 403,
        "message": "Shared properties can only be changed by the organizer of the event.",
        "errors": [
            {
                "domain": "calendar",
                "reason": "forbiddenForNonOrganizer",
                "message": "Shared properties can only be changed by the organizer of the event.",
            }
        ],
        "status": "PERMISSION_DENIED",
    }
    assert retried["summary"] == "M"


def test_an_event_refusal_inside_a_batch_fails_that_part_alone(google, calendar):
    events = [
        google.emulator.user_create_event(
            ALICE, timed(f"E{n}", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z")
        )
        for n in range(2)
    ]
    google.emulator.inject_event_fault(events[1]["id"], 404)
    outcomes: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Any) -> None:
        outcomes[request_id] = exception.resp.status if exception is not None else response["summary"]

    batch = BatchHttpRequest(callback=collect, batch_uri=google.batch_uri)
    for n, event in enumerate(events):
        batch.add(
            calendar.events().patch(calendarId="primary", eventId=event["id"], body={"summary": f"B{n}"}),
            request_id=str(n),
        )
    batch.execute()

    assert outcomes == {"0": "B0", "1": 404}


def test_event_refusals_are_checked_and_cleared(google):
    with pytest.raises(ValueError, match="Google answers"):
        google.emulator.inject_event_fault("abcdef", 404, "forbiddenForNonOrganizer")
    google.emulator.inject_event_fault("abcdef")
    google.emulator.clear_faults()

    assert google.emulator.state.event_faults == {}


def test_a_slot_that_comes_back_brings_a_plain_instance_but_a_users_cancellation_stays(google, calendar):
    series = daily(google, count=3)
    google.emulator.user_update_event(ALICE, instance_id(series, 2), {"summary": "Second"})
    google.emulator.user_delete_event(ALICE, instance_id(series, 3))
    later = {
        "start": {"dateTime": "2030-04-01T10:00:00", "timeZone": BERLIN},
        "end": {"dateTime": "2030-04-01T10:30:00", "timeZone": BERLIN},
    }
    back = {
        "start": {"dateTime": "2030-04-01T09:00:00", "timeZone": BERLIN},
        "end": {"dateTime": "2030-04-01T09:30:00", "timeZone": BERLIN},
    }
    _, token = list_all(calendar, singleEvents=True)

    google.emulator.user_update_event(ALICE, series["id"], later)
    moved, token = list_all(calendar, singleEvents=True, syncToken=token)
    google.emulator.user_update_event(ALICE, series["id"], back)
    returned, _ = list_all(calendar, singleEvents=True, syncToken=token)
    shown = single_events(calendar, showDeleted=True)

    assert sorted((c["id"][-16:], c["status"]) for c in moved) == [
        ("20300401T070000Z", "cancelled"),
        ("20300401T080000Z", "confirmed"),
        ("20300402T070000Z", "cancelled"),
        ("20300402T080000Z", "confirmed"),
        ("20300403T070000Z", "cancelled"),
        ("20300403T080000Z", "confirmed"),
    ]
    assert sorted((c["id"][-16:], c["status"], c.get("summary")) for c in returned) == [
        ("20300401T070000Z", "confirmed", "Stand-up"),
        ("20300401T080000Z", "cancelled", None),
        ("20300402T070000Z", "confirmed", "Stand-up"),
        ("20300402T080000Z", "cancelled", None),
        ("20300403T070000Z", "cancelled", None),
        ("20300403T080000Z", "cancelled", None),
    ]
    assert len(shown) == len({item["id"] for item in shown}) == 6


# -- web links ---------------------------------------------------------------------------------------


def eid_of(html_link: str) -> str:
    """What an htmlLink's eid names: "<event id> <calendar id>" (base64url, unpadded)."""
    eid = html_link.partition("?eid=")[2]
    return base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode()


def test_each_instance_has_an_html_link_of_its_own(google, calendar):
    series = daily(google)
    listed = {item["id"]: item for item in single_events(calendar)}
    assert {eid_of(item["htmlLink"]) for item in listed.values()} == {
        f"{instance_id(series, day)} {ALICE}" for day in (1, 2, 3)
    }
    assert eid_of(series["htmlLink"]) == f"{series['id']} {ALICE}"
    second = instance_id(series, 2)
    got = calendar.events().get(calendarId="primary", eventId=second).execute()
    assert got["htmlLink"] == listed[second]["htmlLink"]
    changed = (
        calendar.events().patch(calendarId="primary", eventId=second, body={"summary": "Moved"}).execute()
    )
    assert changed["htmlLink"] == listed[second]["htmlLink"]  # an exception keeps its instance's link
