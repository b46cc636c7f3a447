"""The Google emulator speaks Google's wire protocol: checked with the real client libraries."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from tests.calendarsync.conftest import RunningGoogleEmulator

ALICE = "alice@example.com"
CALENDAR = "https://www.googleapis.com/auth/calendar"
EVENTS = "https://www.googleapis.com/auth/calendar.events"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"
ALL_SCOPES = ["openid", EMAIL, CALENDAR]
REDIRECT_URI = "http://127.0.0.1:8000/calendar/google/callback"
DISCOVERY = json.loads(
    (Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "calendar.v3.json").read_text()
)


def service_for(google: RunningGoogleEmulator, scopes: list[str] | None = None) -> tuple[Any, Credentials]:
    issued = google.emulator.issue_tokens(ALICE, scopes or ALL_SCOPES, google.client_id)
    credentials = Credentials(
        issued["access_token"],
        refresh_token=issued["refresh_token"],
        token_uri=google.token_uri,
        client_id=google.client_id,
        client_secret=google.client_secret,
    )
    service = build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": google.api_endpoint},
    )
    return service, credentials


@pytest.fixture
def google(google_emulator: RunningGoogleEmulator) -> RunningGoogleEmulator:
    return google_emulator


@pytest.fixture
def calendar(google: RunningGoogleEmulator) -> Any:
    return service_for(google)[0]


def timed(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


def error_of(raised: pytest.ExceptionInfo[HttpError]) -> dict[str, Any]:
    return dict(json.loads(raised.value.content)["error"])


def reason_of(raised: pytest.ExceptionInfo[HttpError]) -> str:
    return str(error_of(raised)["errors"][0]["reason"])


def list_all(calendar: Any, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every page of events.list; returns the items and the final nextSyncToken."""
    items: list[dict[str, Any]] = []
    page_token = None
    while True:
        page = calendar.events().list(calendarId="primary", pageToken=page_token, **params).execute()
        items.extend(page["items"])
        page_token = page.get("nextPageToken")
        if not page_token:
            return items, page["nextSyncToken"]


# -- calendars and the event resource ----------------------------------------------------------


def test_calendar_list_shows_primary_calendar_by_email_and_secondary_calendars(google, calendar):
    google.emulator.add_calendar(ALICE, "team@group.calendar.google.com", "Team calendar")

    items = calendar.calendarList().list().execute()["items"]

    assert [(i["id"], i["summary"], i.get("primary", False), i["accessRole"]) for i in items] == [
        (ALICE, ALICE, True, "owner"),
        ("team@group.calendar.google.com", "Team calendar", False, "owner"),
    ]


def test_insert_returns_google_event_resource_and_primary_alias_reaches_the_email_calendar(calendar):
    created = (
        calendar.events()
        .insert(
            calendarId="primary",
            body=timed("Review", "2030-03-01T10:00:00+01:00", "2030-03-01T11:00:00+01:00"),
        )
        .execute()
    )

    fetched = calendar.events().get(calendarId=ALICE, eventId=created["id"]).execute()
    assert fetched == created
    assert created["kind"] == "calendar#event"
    assert created["status"] == "confirmed"
    assert created["start"] == {"dateTime": "2030-03-01T09:00:00Z"}
    assert created["etag"][0] == created["etag"][-1] == '"'
    assert created["created"].endswith("Z")
    assert len(created["updated"]) == len("2030-01-01T00:00:00.000Z")
    assert created["organizer"] == {"email": ALICE, "self": True}


def type_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Where `value` does not fit the discovery document's schema (unknown fields, wrong types)."""
    schemas = DISCOVERY["schemas"]
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    errors: list[str] = []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {value!r}"]
        properties = schema.get("properties")
        for key, item in value.items():
            if properties is not None:
                if key not in properties:
                    errors.append(f"{path}.{key}: not in the schema")
                    continue
                errors += type_errors(item, properties[key], f"{path}.{key}")
            elif "additionalProperties" in schema:
                errors += type_errors(item, schema["additionalProperties"], f"{path}.{key}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected array, got {value!r}"]
        for index, item in enumerate(value):
            errors += type_errors(item, schema["items"], f"{path}[{index}]")
    else:
        expected = {"string": str, "boolean": bool, "integer": int}[str(kind)]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            errors.append(f"{path}: expected {kind}, got {value!r}")
    return errors


def test_every_event_resource_fits_the_discovery_documents_event_schema(google, calendar):
    timed_event = (
        calendar.events()
        .insert(calendarId="primary", body=timed("Timed", "2030-03-01T10:00:00Z", "2030-03-01T11:00:00Z"))
        .execute()
    )
    all_day = (
        calendar.events()
        .insert(
            calendarId="primary",
            body={"summary": "Day", "start": {"date": "2030-03-02"}, "end": {"date": "2030-03-03"}},
        )
        .execute()
    )
    private = (
        calendar.events()
        .insert(
            calendarId="primary",
            body=timed(
                "Private",
                "2030-03-04T10:00:00Z",
                "2030-03-04T11:00:00Z",
                visibility="private",
                transparency="transparent",
                location="Room 1",
                description="Notes",
                attendees=[
                    {"email": "bob@example.com", "displayName": "Bob"},
                    {"email": "carol@example.com"},
                ],
                extendedProperties={"private": {"calsync_activity_id": "42"}, "shared": {"x": "y"}},
            ),
        )
        .execute()
    )
    series = google.emulator.user_create_event(
        ALICE,
        {
            "summary": "Weekly",
            "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2030-03-04T09:30:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=2"],
        },
    )
    calendar.events().delete(calendarId="primary", eventId=all_day["id"]).execute()
    listing = calendar.events().list(calendarId="primary", singleEvents=True, showDeleted=True).execute()
    series_listing = calendar.events().list(calendarId="primary").execute()
    resources = [timed_event, all_day, private, series, *listing["items"], *series_listing["items"]]

    assert {"recurringEventId" in item for item in listing["items"]} == {True, False}
    assert any(item["status"] == "cancelled" for item in listing["items"])
    event_schema = {"$ref": "Event"}
    for resource in resources:
        assert type_errors(resource, event_schema, resource.get("summary", resource["id"])) == []
    for envelope in (listing, series_listing):
        assert (
            type_errors({k: v for k, v in envelope.items() if k != "items"}, {"$ref": "Events"}, "events")
            == []
        )
    assert private["attendees"][0] == {
        "email": "bob@example.com",
        "displayName": "Bob",
        "responseStatus": "needsAction",
    }
    assert private["extendedProperties"] == {"private": {"calsync_activity_id": "42"}, "shared": {"x": "y"}}


# -- listing, pages and incremental sync -------------------------------------------------------


def test_pages_carry_next_page_token_and_only_the_last_page_a_sync_token(google, calendar):
    for day in range(1, 6):
        google.emulator.user_create_event(
            ALICE, timed(f"Event {day}", f"2030-04-0{day}T10:00:00Z", f"2030-04-0{day}T11:00:00Z")
        )

    pages = []
    page_token = None
    while True:
        page = calendar.events().list(calendarId="primary", maxResults=2, pageToken=page_token).execute()
        pages.append(page)
        page_token = page.get("nextPageToken")
        if not page_token:
            break

    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert ["nextSyncToken" in page for page in pages] == [False, False, True]
    assert ["nextPageToken" in page for page in pages] == [True, True, False]
    assert [item["summary"] for page in pages for item in page["items"]] == [
        f"Event {d}" for d in range(1, 6)
    ]


def test_max_results_above_2500_is_capped_and_default_page_is_250(google, calendar):
    for minute in range(0, 260):
        google.emulator.user_create_event(
            ALICE, timed("x", f"2030-05-01T{minute // 60:02d}:{minute % 60:02d}:00Z", "2030-05-02T00:00:00Z")
        )

    assert len(calendar.events().list(calendarId="primary").execute()["items"]) == 250
    assert len(calendar.events().list(calendarId="primary", maxResults=5000).execute()["items"]) == 260


def test_incremental_sync_reports_create_edit_and_delete_exactly_once(google, calendar):
    kept = google.emulator.user_create_event(
        ALICE, timed("Kept", "2030-04-01T10:00:00Z", "2030-04-01T11:00:00Z")
    )
    doomed = google.emulator.user_create_event(
        ALICE, timed("Doomed", "2030-04-02T10:00:00Z", "2030-04-02T11:00:00Z")
    )
    _, token = list_all(calendar)

    new = google.emulator.user_create_event(
        ALICE, timed("New", "2030-04-03T10:00:00Z", "2030-04-03T11:00:00Z")
    )
    google.emulator.user_update_event(ALICE, kept["id"], {"summary": "Kept, renamed"})
    google.emulator.user_delete_event(ALICE, doomed["id"])
    changes, token = list_all(calendar, syncToken=token)

    assert sorted((c["id"], c["status"], c.get("summary")) for c in changes) == sorted(
        [
            (new["id"], "confirmed", "New"),
            (kept["id"], "confirmed", "Kept, renamed"),
            (doomed["id"], "cancelled", None),
        ]
    )
    again, _ = list_all(calendar, syncToken=token)
    assert again == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeMin", "2030-01-01T00:00:00Z"),
        ("timeMax", "2030-01-01T00:00:00Z"),
        ("q", "review"),
        ("orderBy", "updated"),
        ("updatedMin", "2030-01-01T00:00:00Z"),
        ("privateExtendedProperty", "a=b"),
        ("sharedExtendedProperty", "a=b"),
    ],
)
def test_sync_token_refuses_filters_with_400(calendar, name, value):
    _, token = list_all(calendar)

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token, **{name: value}).execute()

    assert raised.value.resp.status == 400


def test_expired_sync_token_answers_410_full_sync_required(google, calendar):
    _, token = list_all(calendar)
    google.emulator.expire_sync_tokens(ALICE)

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token).execute()

    assert raised.value.resp.status == 410
    assert reason_of(raised) == "fullSyncRequired"
    assert error_of(raised)["message"] == "Sync token is no longer valid, a full sync is required."
    _, fresh = list_all(calendar)
    assert calendar.events().list(calendarId="primary", syncToken=fresh).execute()["items"] == []


def test_show_deleted_lists_cancelled_events_and_a_plain_full_list_hides_them(google, calendar):
    gone = google.emulator.user_create_event(
        ALICE, timed("Gone", "2030-04-01T10:00:00Z", "2030-04-01T11:00:00Z")
    )
    google.emulator.user_delete_event(ALICE, gone["id"])

    assert calendar.events().list(calendarId="primary").execute()["items"] == []
    shown = calendar.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    assert [(item["id"], item["status"]) for item in shown] == [(gone["id"], "cancelled")]


def test_time_window_filters_on_overlap_and_private_extended_property_filter(google, calendar):
    google.emulator.user_create_event(ALICE, timed("Before", "2030-04-01T08:00:00Z", "2030-04-01T09:00:00Z"))
    google.emulator.user_create_event(
        ALICE, timed("Straddles", "2030-04-01T09:30:00Z", "2030-04-01T10:30:00Z")
    )
    tagged = timed("Tagged", "2030-04-01T11:00:00Z", "2030-04-01T12:00:00Z")
    tagged["extendedProperties"] = {"private": {"calsync_activity_id": "7"}}
    google.emulator.user_create_event(ALICE, tagged)

    window = (
        calendar.events()
        .list(calendarId="primary", timeMin="2030-04-01T10:00:00Z", timeMax="2030-04-01T12:00:00Z")
        .execute()["items"]
    )
    filtered = (
        calendar.events()
        .list(calendarId="primary", privateExtendedProperty="calsync_activity_id=7")
        .execute()
    )

    assert [item["summary"] for item in window] == ["Straddles", "Tagged"]
    assert [item["summary"] for item in filtered["items"]] == ["Tagged"]


# -- recurrence ----------------------------------------------------------------------------------


def test_single_events_expands_a_daily_series_with_count_into_instances(google, calendar):
    series = google.emulator.user_create_event(
        ALICE,
        {
            "summary": "Daily",
            "start": {"dateTime": "2030-03-30T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2030-03-30T09:15:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=DAILY;INTERVAL=2;COUNT=3"],
        },
    )

    instances = calendar.events().list(calendarId="primary", singleEvents=True, orderBy="startTime").execute()
    as_series = calendar.events().list(calendarId="primary").execute()["items"]

    assert [(i["id"], i["start"]["dateTime"]) for i in instances["items"]] == [
        (f"{series['id']}_20300330T080000Z", "2030-03-30T09:00:00+01:00"),
        (f"{series['id']}_20300401T070000Z", "2030-04-01T09:00:00+02:00"),  # summer time since 31 March
        (f"{series['id']}_20300403T070000Z", "2030-04-03T09:00:00+02:00"),
    ]
    first = instances["items"][0]
    assert first["recurringEventId"] == series["id"]
    assert first["originalStartTime"] == {
        "dateTime": "2030-03-30T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    assert "recurrence" not in first
    assert [(e["id"], e["recurrence"]) for e in as_series] == [
        (series["id"], ["RRULE:FREQ=DAILY;INTERVAL=2;COUNT=3"])
    ]
    assert calendar.events().get(calendarId="primary", eventId=first["id"]).execute() == first


def test_single_events_expands_weekly_byday_until_and_keeps_wall_time_across_dst(google, calendar):
    series = google.emulator.user_create_event(
        ALICE,
        {
            "summary": "Stand-up",
            "start": {"dateTime": "2030-03-25T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2030-03-25T09:15:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20300404T235959Z"],
        },
    )

    items = (
        calendar.events()
        .list(calendarId="primary", singleEvents=True, orderBy="startTime")
        .execute()["items"]
    )

    assert [i["start"]["dateTime"] for i in items] == [
        "2030-03-25T09:00:00+01:00",
        "2030-03-28T09:00:00+01:00",
        "2030-04-01T09:00:00+02:00",
        "2030-04-04T09:00:00+02:00",
    ]
    assert {i["recurringEventId"] for i in items} == {series["id"]}


def test_all_day_weekly_recurrence_expands_to_dated_instances_up_to_time_max(google, calendar):
    series = google.emulator.user_create_event(
        ALICE,
        {
            "summary": "Holiday",
            "start": {"date": "2030-01-07"},
            "end": {"date": "2030-01-08"},
            "recurrence": ["RRULE:FREQ=WEEKLY;INTERVAL=2"],
        },
    )

    items = (
        calendar.events()
        .list(calendarId="primary", singleEvents=True, timeMax="2030-02-05T00:00:00Z")
        .execute()["items"]
    )
    unbounded = (
        calendar.events().list(calendarId="primary", singleEvents=True, maxResults=2500).execute()["items"]
    )

    assert [(i["id"], i["start"], i["end"]) for i in items] == [
        (f"{series['id']}_20300107", {"date": "2030-01-07"}, {"date": "2030-01-08"}),
        (f"{series['id']}_20300121", {"date": "2030-01-21"}, {"date": "2030-01-22"}),
        (f"{series['id']}_20300204", {"date": "2030-02-04"}, {"date": "2030-02-05"}),
    ]
    assert items[0]["originalStartTime"] == {"date": "2030-01-07"}
    assert len(unbounded) == 27  # one year after the first instance, every other week


def test_incremental_sync_with_single_events_yields_the_instances_of_a_changed_series(google, calendar):
    series = google.emulator.user_create_event(
        ALICE,
        {
            "summary": "Daily",
            "start": {"dateTime": "2030-04-01T09:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2030-04-01T10:00:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )
    _, token = list_all(calendar, singleEvents=True)

    google.emulator.user_update_event(
        ALICE, series["id"], {"summary": "Daily, renamed", "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]}
    )
    changes, token = list_all(calendar, singleEvents=True, syncToken=token)
    google.emulator.user_delete_event(ALICE, series["id"])
    deleted, _ = list_all(calendar, singleEvents=True, syncToken=token)

    assert sorted((c["id"][-16:], c["status"], c.get("summary")) for c in changes) == [
        ("20300401T090000Z", "confirmed", "Daily, renamed"),
        ("20300402T090000Z", "confirmed", "Daily, renamed"),
        ("20300403T090000Z", "cancelled", None),
    ]
    assert {(c["status"], c["recurringEventId"]) for c in deleted} == {("cancelled", series["id"])}
    assert len(deleted) == 3


def test_recurring_insert_through_the_api_needs_a_time_zone_and_a_supported_rule(calendar):
    body = timed("R", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z", recurrence=["RRULE:FREQ=DAILY;COUNT=2"])
    with pytest.raises(HttpError) as no_zone:
        calendar.events().insert(calendarId="primary", body=body).execute()
    body["start"]["timeZone"] = body["end"]["timeZone"] = "UTC"
    body["recurrence"] = ["RRULE:FREQ=HOURLY;COUNT=2"]
    with pytest.raises(HttpError) as bad_rule:
        calendar.events().insert(calendarId="primary", body=body).execute()

    assert (no_zone.value.resp.status, reason_of(no_zone)) == (400, "required")
    assert (bad_rule.value.resp.status, reason_of(bad_rule)) == (400, "invalid")


# -- writes: ids, etags, deleted events ------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["abcd", "ABCDEF", "abcdew", "abc-def", "x" * 1025])
def test_client_supplied_ids_must_be_base32hex_of_5_to_1024_chars(calendar, bad_id):
    body = timed("x", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z", id=bad_id)

    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=body).execute()

    assert (raised.value.resp.status, reason_of(raised)) == (400, "invalid")
    assert error_of(raised)["message"] == "Invalid resource id value."


def test_reusing_an_id_even_of_a_deleted_event_answers_409_duplicate(calendar):
    body = timed("x", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z", id="cs0activ42")
    created = calendar.events().insert(calendarId="primary", body=body).execute()
    assert created["id"] == "cs0activ42"

    with pytest.raises(HttpError) as live:
        calendar.events().insert(calendarId="primary", body=body).execute()
    calendar.events().delete(calendarId="primary", eventId=created["id"]).execute()
    with pytest.raises(HttpError) as deleted:
        calendar.events().insert(calendarId="primary", body=body).execute()

    for raised in (live, deleted):
        assert (raised.value.resp.status, reason_of(raised)) == (409, "duplicate")
        assert error_of(raised)["message"] == "The requested identifier already exists."


@pytest.mark.parametrize("missing", ["start", "end"])
def test_insert_without_start_or_end_answers_400_required(calendar, missing):
    body = timed("x", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z")
    del body[missing]

    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=body).execute()

    assert (raised.value.resp.status, reason_of(raised)) == (400, "required")


def test_etag_changes_on_every_change_and_a_stale_if_match_answers_412(calendar):
    created = (
        calendar.events()
        .insert(calendarId="primary", body=timed("x", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z"))
        .execute()
    )
    patch = calendar.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "y"})
    patch.headers["If-Match"] = created["etag"]
    patched = patch.execute()
    assert patched["etag"] != created["etag"]
    assert (patched["summary"], patched["start"]) == ("y", created["start"])

    stale_update = calendar.events().update(
        calendarId="primary",
        eventId=created["id"],
        body=timed("z", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z"),
    )
    stale_update.headers["If-Match"] = created["etag"]
    stale_delete = calendar.events().delete(calendarId="primary", eventId=created["id"])
    stale_delete.headers["If-Match"] = created["etag"]
    for request in (stale_update, stale_delete):
        with pytest.raises(HttpError) as raised:
            request.execute()
        assert (raised.value.resp.status, reason_of(raised)) == (412, "conditionNotMet")
        assert error_of(raised)["message"] == "Precondition Failed"

    fresh_delete = calendar.events().delete(calendarId="primary", eventId=created["id"])
    fresh_delete.headers["If-Match"] = patched["etag"]
    fresh_delete.execute()


def test_update_replaces_the_event_and_patch_merges_extended_properties(calendar):
    created = (
        calendar.events()
        .insert(
            calendarId="primary",
            body=timed(
                "x",
                "2030-04-01T09:00:00Z",
                "2030-04-01T10:00:00Z",
                location="Room",
                extendedProperties={"private": {"a": "1"}},
            ),
        )
        .execute()
    )

    patched = (
        calendar.events()
        .patch(
            calendarId="primary", eventId=created["id"], body={"extendedProperties": {"private": {"b": "2"}}}
        )
        .execute()
    )
    updated = (
        calendar.events()
        .update(
            calendarId="primary",
            eventId=created["id"],
            body=timed("y", "2030-04-01T09:00:00Z", "2030-04-01T11:00:00Z"),
        )
        .execute()
    )

    assert patched["extendedProperties"] == {"private": {"a": "1", "b": "2"}}
    assert not {"location", "extendedProperties"} & updated.keys()
    assert updated["sequence"] == created["sequence"] + 1


def test_deleted_event_gives_404_on_get_and_patch_and_410_on_a_second_delete(calendar):
    created = (
        calendar.events()
        .insert(calendarId="primary", body=timed("x", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z"))
        .execute()
    )
    calendar.events().delete(calendarId="primary", eventId=created["id"]).execute()

    outcomes = []
    for request in (
        calendar.events().get(calendarId="primary", eventId=created["id"]),
        calendar.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "again"}),
        calendar.events().delete(calendarId="primary", eventId=created["id"]),
        calendar.events().get(calendarId="primary", eventId="neverexisted1"),
    ):
        with pytest.raises(HttpError) as raised:
            request.execute()
        outcomes.append((raised.value.resp.status, reason_of(raised)))

    assert outcomes == [(404, "notFound"), (404, "notFound"), (410, "deleted"), (404, "notFound")]


def test_another_users_calendar_is_not_found(google, calendar):
    google.emulator.add_user("bob@example.com")

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="bob@example.com").execute()

    assert raised.value.resp.status == 404


# -- auth ------------------------------------------------------------------------------------------


def test_expired_access_token_makes_google_auth_refresh_and_retry(google):
    calendar, credentials = service_for(google)
    old_token = credentials.token
    google.emulator.expire_access_tokens(ALICE)
    google.emulator.reset_counts()

    items = calendar.calendarList().list().execute()["items"]

    assert [item["id"] for item in items] == [ALICE]
    assert credentials.token != old_token
    assert google.emulator.request_counts() == {"calendarList.list": 2, "token": 1}


def test_revoked_grant_makes_refresh_fail_with_refresh_error(google):
    calendar, credentials = service_for(google)
    google.emulator.revoke_tokens(ALICE)

    with pytest.raises(RefreshError) as raised:
        calendar.calendarList().list().execute()

    assert "invalid_grant" in str(raised.value)
    response = requests.post(
        google.token_uri,
        data={"grant_type": "refresh_token", "refresh_token": credentials.refresh_token},
        auth=(google.client_id, google.client_secret),
        timeout=5,
    )
    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )


def test_revoke_endpoint_kills_the_refresh_token_and_its_access_tokens(google):
    calendar, credentials = service_for(google)

    assert (
        requests.post(google.revoke_uri, params={"token": credentials.refresh_token}, timeout=5).status_code
        == 200
    )

    with pytest.raises(RefreshError):
        calendar.calendarList().list().execute()


def test_revoke_endpoint_records_each_revocation_and_refuses_unknown_tokens(google):
    calendar, credentials = service_for(google)

    revoked = requests.post(google.revoke_uri, data={"token": credentials.token}, timeout=5)
    unknown = requests.post(google.revoke_uri, data={"token": "never-issued"}, timeout=5)

    assert (revoked.status_code, unknown.status_code) == (200, 400)
    assert unknown.json()["error"] == "invalid_token"
    assert [(r.kind, r.token, r.client_id) for r in google.emulator.revocations(ALICE)] == [
        ("access_token", credentials.token, google.client_id)
    ]
    assert google.emulator.revocations("bob@example.com") == []
    with pytest.raises(RefreshError):  # the access token took its refresh token along
        calendar.calendarList().list().execute()


def test_raw_request_with_unknown_token_answers_401_auth_error(google):
    response = requests.get(
        f"{google.api_endpoint}users/me/calendarList", headers={"Authorization": "Bearer nope"}, timeout=5
    )

    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["status"], error["errors"][0]["reason"]) == (
        401,
        "UNAUTHENTICATED",
        "authError",
    )


def test_missing_calendar_scope_answers_403_insufficient_permissions(google):
    calendar, _ = service_for(google, ["openid", EMAIL])
    events_only, _ = service_for(google, [EVENTS])

    with pytest.raises(HttpError) as raised:
        calendar.calendarList().list().execute()
    with pytest.raises(HttpError) as list_with_events_scope:
        events_only.calendarList().list().execute()

    assert raised.value.resp.status == 403
    assert error_of(raised)["message"] == "Request had insufficient authentication scopes."
    assert error_of(raised)["status"] == "PERMISSION_DENIED"
    assert reason_of(raised) == "insufficientPermissions"
    assert list_with_events_scope.value.resp.status == 403
    assert events_only.events().list(calendarId="primary").execute()["items"] == []


def test_userinfo_tells_the_account_email(google):
    _, credentials = service_for(google)

    for path in ("oauth2/v2/userinfo", "oauth2/v3/userinfo"):
        response = requests.get(
            google.api_base_url + path, headers={"Authorization": f"Bearer {credentials.token}"}, timeout=5
        )
        assert response.json()["email"] == ALICE
        assert response.json()["sub"]


# -- OAuth consent flow -------------------------------------------------------------------------


class FormReader(HTMLParser):
    """The fields a browser would submit from the consent page's form."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.options: list[tuple[str, bool]] = []
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.action = attributes["action"]
        elif tag == "input" and (attributes.get("type") != "checkbox" or "checked" in attributes):
            self.fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "option":
            self.options.append((attributes["value"], "selected" in attributes))


def consent(google: RunningGoogleEmulator, authorization_url: str, decision: str = "allow") -> str:
    """Open the consent page, submit it as shown, and return the redirect's Location."""
    page = requests.get(authorization_url, timeout=5)
    assert page.status_code == 200
    form = FormReader()
    form.feed(page.text)
    selected = next(value for value, chosen in form.options if chosen)
    fields = [*form.fields, ("email", selected), ("decision", decision)]
    answer = requests.post(google.url + form.action, data=fields, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return str(answer.headers["Location"])


def new_flow(google: RunningGoogleEmulator, **kwargs: Any) -> Flow:
    config = {
        "web": {
            "client_id": google.client_id,
            "client_secret": google.client_secret,
            "auth_uri": google.auth_uri,
            "token_uri": google.token_uri,
            "redirect_uris": [REDIRECT_URI],
        }
    }
    return Flow.from_client_config(config, scopes=ALL_SCOPES, redirect_uri=REDIRECT_URI, **kwargs)


def test_oauth_code_flow_with_pkce_gives_working_tokens_and_an_unsigned_id_token(google):
    flow = new_flow(google)
    authorization_url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge=" in authorization_url

    location = consent(google, authorization_url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert location.startswith(REDIRECT_URI)
    assert query["state"] == [state]
    assert query["scope"] == [" ".join(ALL_SCOPES)]
    token = flow.fetch_token(authorization_response=location)

    assert token["refresh_token"]
    assert (token["expires_in"], token["token_type"]) == (3600, "Bearer")
    header, claims, signature = token["id_token"].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none", "typ": "JWT"}
    payload = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert (payload["email"], payload["aud"], signature) == (ALICE, google.client_id, "")
    assert {"iss", "sub", "iat", "exp"} <= payload.keys()
    calendar = build(
        "calendar",
        "v3",
        credentials=flow.credentials,
        static_discovery=True,
        client_options={"api_endpoint": google.api_endpoint},
    )
    assert calendar.calendarList().list().execute()["items"][0]["id"] == ALICE
    assert google.emulator.request_counts()["auth"] == 1


def code_exchange(google: RunningGoogleEmulator, code: str, verifier: str | None) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if verifier is not None:
        data["code_verifier"] = verifier
    return requests.post(
        google.token_uri, data=data, auth=(google.client_id, google.client_secret), timeout=5
    )


def test_code_exchange_refuses_wrong_or_missing_verifier_and_a_replayed_code(google):
    flow = new_flow(google)
    authorization_url, _ = flow.authorization_url(access_type="offline")
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(consent(google, authorization_url)).query)["code"][0]

    wrong = code_exchange(google, code, "x" * 64)
    missing = code_exchange(google, code, None)
    right = code_exchange(google, code, flow.code_verifier)
    replayed = code_exchange(google, code, flow.code_verifier)

    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant")
    assert right.status_code == 200
    assert right.json()["access_token"]
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")


def test_denied_consent_redirects_with_access_denied_and_the_state(google):
    authorization_url, state = new_flow(google).authorization_url()

    location = consent(google, authorization_url, decision="deny")

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query == {"error": ["access_denied"], "state": [state]}


def test_consent_page_lists_scopes_and_preselects_the_login_hint(google):
    google.emulator.add_user("bob@example.com")
    authorization_url, _ = new_flow(google).authorization_url(login_hint="bob@example.com")

    page = requests.get(authorization_url, timeout=5).text
    form = FormReader()
    form.feed(page)

    assert [name for name, _ in form.fields if name == "scope"] == ["scope"] * 3
    assert all(scope in page for scope in ALL_SCOPES)
    assert ("login_hint", "bob@example.com") in form.fields
    assert form.options == [(ALICE, False), ("bob@example.com", True)]


def test_unknown_client_or_unregistered_redirect_uri_gets_a_400_page(google):
    google.emulator.register_client("strict-client", "s", redirect_uris=["https://app.example.com/cb"])
    base = {"response_type": "code", "scope": CALENDAR}

    unknown = requests.get(
        google.auth_uri, params={**base, "client_id": "nope", "redirect_uri": REDIRECT_URI}, timeout=5
    )
    unregistered = requests.get(
        google.auth_uri,
        params={**base, "client_id": "strict-client", "redirect_uri": REDIRECT_URI},
        timeout=5,
    )

    assert unknown.status_code == 400
    assert "invalid_client" in unknown.text
    assert unregistered.status_code == 400
    assert "redirect_uri_mismatch" in unregistered.text


# -- batch -----------------------------------------------------------------------------------------


def test_batch_http_request_inserts_events_and_reports_each_part(google, calendar):
    results: dict[str, tuple[Any, Any]] = {}
    batch = BatchHttpRequest(
        batch_uri=google.batch_uri,
        callback=lambda rid, response, error: results.__setitem__(rid, (response, error)),
    )
    for n in range(3):
        body = timed(f"Batch {n}", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z", id=f"batchevent{n}")
        batch.add(calendar.events().insert(calendarId="primary", body=body), request_id=f"insert-{n}")
    duplicate = timed("Dup", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z", id="batchevent0")
    batch.add(calendar.events().insert(calendarId="primary", body=duplicate), request_id="duplicate")
    google.emulator.reset_counts()

    batch.execute()

    assert {rid: response["id"] for rid, (response, _) in results.items() if response} == {
        "insert-0": "batchevent0",
        "insert-1": "batchevent1",
        "insert-2": "batchevent2",
    }
    assert results["duplicate"][1].resp.status == 409
    assert google.emulator.request_counts() == {"batch": 1, "events.insert": 4}
    assert len(google.emulator.user_list_events(ALICE)) == 3


def test_batch_parts_answer_401_and_the_client_refreshes_and_resends_them(google):
    calendar, _ = service_for(google)
    google.emulator.expire_access_tokens(ALICE)
    google.emulator.reset_counts()
    errors: list[Any] = []
    batch = BatchHttpRequest(
        batch_uri=google.batch_uri, callback=lambda rid, response, error: errors.append(error)
    )
    batch.add(calendar.events().list(calendarId="primary"))
    batch.add(calendar.calendarList().list())

    batch.execute()

    assert errors == [None, None]
    assert google.emulator.request_counts() == {
        "batch": 2,
        "events.list": 2,
        "calendarList.list": 2,
        "token": 1,
    }


def test_long_get_sent_as_post_with_method_override_keeps_its_parameters(google, calendar):
    long_value = "v" * 2100
    needle = timed("Needle", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z")
    needle["extendedProperties"] = {"private": {"k": long_value}}
    google.emulator.user_create_event(ALICE, needle)
    google.emulator.user_create_event(ALICE, timed("Hay", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z"))

    request = calendar.events().list(calendarId="primary", privateExtendedProperty=f"k={long_value}")
    items = request.execute()["items"]

    assert request.method == "POST"  # googleapiclient's rewrite of a GET over 2048 characters
    assert [event["summary"] for event in items] == ["Needle"]


def test_batch_of_more_than_1000_parts_is_refused(google, calendar):
    boundary = "xyz"
    part = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{{n}}>\r\n\r\n"
        "GET /calendar/v3/users/me/calendarList HTTP/1.1\r\n\r\n"
    )
    body = "".join(part.replace("{n}", str(n)) for n in range(1001)) + f"--{boundary}--\r\n"

    response = requests.post(
        google.batch_uri,
        data=body,
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        timeout=5,
    )

    assert response.status_code == 400


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "reason"), [("429", 429, "rateLimitExceeded"), ("403-rate", 403, "rateLimitExceeded")]
)
def test_rate_limit_faults_carry_retry_after_then_recover(google, calendar, kind, status, reason):
    google.emulator.inject_faults(kind, count=1, path_contains="/events", retry_after=7)

    assert calendar.calendarList().list().execute()["items"]  # not matched by path_contains
    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary").execute()

    assert (raised.value.resp.status, reason_of(raised)) == (status, reason)
    assert raised.value.resp["retry-after"] == "7"
    assert calendar.events().list(calendarId="primary").execute()["items"] == []


def test_server_error_and_timeout_faults(google, calendar):
    google.emulator.timeout_seconds = 0.2
    google.emulator.inject_faults("500")
    google.emulator.inject_faults("timeout")

    statuses = []
    for _ in range(2):
        with pytest.raises(HttpError) as raised:
            calendar.events().list(calendarId="primary").execute()
        statuses.append(raised.value.resp.status)

    assert statuses == [500, 503]


def test_reset_fault_drops_the_connection_without_a_response(google):
    _, credentials = service_for(google)
    host, port = google.url.removeprefix("http://").split(":")
    google.emulator.inject_faults("reset", count=1)

    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(
        "GET", "/calendar/v3/users/me/calendarList", headers={"Authorization": f"Bearer {credentials.token}"}
    )
    with pytest.raises(ConnectionError):
        connection.getresponse()
    connection.close()

    calendar, _ = service_for(google)
    google.emulator.inject_faults("reset", count=1)
    with pytest.raises(ConnectionError):
        calendar.calendarList().list().execute()
    assert calendar.calendarList().list().execute()["items"]


def test_server_survives_clients_that_hang_up(google, calendar):
    host, port = google.url.removeprefix("http://").split(":")
    address = (host, int(port))
    with socket.create_connection(address, timeout=5):
        pass  # connects and leaves without a word
    with socket.create_connection(address, timeout=5) as half_sent:
        half_sent.sendall(
            b"POST /calendar/v3/calendars/primary/events HTTP/1.1\r\nContent-Length: 99\r\n\r\n{"
        )
    google.emulator.timeout_seconds = 0.2
    google.emulator.inject_faults("timeout")
    with socket.create_connection(address, timeout=5) as impatient:
        impatient.sendall(b"GET /calendar/v3/users/me/calendarList HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)

    assert calendar.calendarList().list().execute()["items"]


# -- control API and demo page ---------------------------------------------------------------------


def test_http_control_api_drives_the_emulated_user(google):
    def control(path: str, payload: dict[str, Any]) -> Any:
        response = requests.post(f"{google.url}/_control/{path}", json=payload, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    control("users", {"email": "carol@example.com"})
    created = control(
        "events",
        {
            "email": "carol@example.com",
            "calendar_id": "primary",
            "body": timed("A", "2030-04-01T09:00:00Z", "2030-04-01T10:00:00Z"),
        },
    )
    control(
        "events/update",
        {"email": "carol@example.com", "event_id": created["id"], "changes": {"summary": "B"}},
    )
    assert google.emulator.user_get_event("carol@example.com", created["id"])["summary"] == "B"
    control("events/delete", {"email": "carol@example.com", "event_id": created["id"]})
    control("faults", {"kind": "503", "count": 2})
    control("expire_sync_tokens", {})
    control("revoke", {"email": "carol@example.com"})

    assert google.emulator.user_get_event("carol@example.com", created["id"])["status"] == "cancelled"
    assert requests.get(f"{google.url}/_control/counts", timeout=5).json() == google.emulator.request_counts()
    assert requests.post(f"{google.url}/_control/faults", json={"kind": "nope"}, timeout=5).status_code == 400


def test_demo_page_lists_events_and_its_forms_add_edit_and_delete(google):
    google.emulator.add_calendar(ALICE, "team@group.calendar.google.com", "Team calendar")
    added = requests.post(
        f"{google.url}/_demo/events/create",
        data={
            "email": ALICE,
            "calendar_id": "team@group.calendar.google.com",
            "summary": "<Planning>",
            "start": "2099-01-05T09:00",
            "end": "2099-01-05T10:00",
            "time_zone": "Europe/Berlin",
            "private": "1",
        },
        timeout=5,
    )
    assert (added.status_code, added.url) == (200, f"{google.url}/")
    assert "&lt;Planning&gt;" in added.text
    assert "<Planning>" not in added.text
    (event,) = google.emulator.user_list_events(ALICE, "team@group.calendar.google.com")
    assert event["visibility"] == "private"
    assert event["start"] == {"dateTime": "2099-01-05T09:00:00+01:00", "timeZone": "Europe/Berlin"}

    common = {"email": ALICE, "calendar_id": "team@group.calendar.google.com", "event_id": event["id"]}
    requests.post(
        f"{google.url}/_demo/events/update",
        data={**common, "summary": "Planning", "start": "2099-01-05", "end": "2099-01-05", "all_day": "1"},
        timeout=5,
    )
    edited = google.emulator.user_get_event(ALICE, event["id"], "team@group.calendar.google.com")
    assert (edited["summary"], edited["start"], edited["end"], edited["visibility"]) == (
        "Planning",
        {"date": "2099-01-05"},
        {"date": "2099-01-06"},
        "default",
    )
    requests.post(f"{google.url}/_demo/events/delete", data=common, timeout=5)
    assert google.emulator.user_list_events(ALICE, "team@group.calendar.google.com") == []
