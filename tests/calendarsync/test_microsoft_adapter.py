"""The Microsoft 365 adapter beyond the shared contract: mapping, paging, batching, tokens, error map."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from calendarsync.providers.base import (
    Attendee,
    AuthRevoked,
    Conflict,
    CursorExpired,
    EventData,
    InsufficientPermissions,
    InvalidEvent,
    NotFound,
    TransientError,
)
from calendarsync.providers.microsoft import adapter as microsoft_adapter
from calendarsync.providers.microsoft.adapter import MicrosoftProvider
from calendarsync.providers.microsoft.errors import (
    GraphFailure,
    Operation,
    TokenRefreshFailed,
    TransactionIdUsed,
    map_graph_error,
)
from calendarsync.providers.microsoft.mapping import (
    TAG_PROPERTY_ID,
    event_body,
    graph_when,
    parse_event,
    transaction_id_for,
)
from calendarsync.providers.retry import parse_retry_after
from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator

ALICE = "alice@contoso.test"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TOMORROW_NINE = (NOW + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0)


def window() -> dict[str, dt.datetime]:
    return {"window_start": NOW - dt.timedelta(days=1), "window_end": NOW + dt.timedelta(days=90)}


def meeting(subject: str = "Review", *, hours: int = 0, tag: str | None = None) -> EventData:
    start = TOMORROW_NINE + dt.timedelta(hours=hours)
    return EventData(subject=subject, start=start, end=start + dt.timedelta(minutes=30), tag=tag)


def graph_event(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "@odata.etag": 'W/"abc"',
        "id": "AAMkAGI2=",
        "lastModifiedDateTime": "2030-01-02T03:04:05.1234567Z",
        "type": "singleInstance",
        "subject": "Review",
        "isAllDay": False,
        "start": {"dateTime": "2030-01-10T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-10T09:30:00.0000000", "timeZone": "UTC"},
        "body": {"contentType": "text", "content": "Agenda"},
        "location": {"displayName": "Room 1"},
        "sensitivity": "normal",
        "showAs": "busy",
        "attendees": [],
    }
    raw.update(overrides)
    return raw


@pytest.fixture
def ms(microsoft_emulator: RunningMicrosoftEmulator, settings: Any) -> RunningMicrosoftEmulator:
    settings.CALSYNC_HTTP_TIMEOUT_SECONDS = 2
    return microsoft_emulator


def provider_for(
    ms: RunningMicrosoftEmulator, sleeps: list[float] | None = None, **token_changes: Any
) -> MicrosoftProvider:
    issued = ms.emulator.issue_tokens(ALICE, ["Calendars.ReadWrite", "User.Read"], ms.client_id)
    tokens = {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": (NOW + dt.timedelta(hours=1)).isoformat(),
        "scopes": ["Calendars.ReadWrite", "User.Read"],
        **token_changes,
    }
    return MicrosoftProvider.from_tokens(tokens, sleep=(sleeps if sleeps is not None else []).append)


# --------------------------------------------------------------------------- mapping


def test_timed_events_are_written_in_their_own_zone_and_read_back_in_utc() -> None:
    berlin = dt.datetime(2030, 3, 31, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # the day DST starts
    assert graph_when(berlin) == {"dateTime": "2030-03-31T09:00:00", "timeZone": "Europe/Berlin"}
    fixed = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert graph_when(fixed) == {"dateTime": "2030-01-01T07:00:00", "timeZone": "UTC"}
    read = parse_event(
        graph_event(
            start={"dateTime": "2030-03-31T09:00:00.0000000", "timeZone": "W. Europe Standard Time"},
            end={"dateTime": "2030-03-31T10:00:00.0000000", "timeZone": "W. Europe Standard Time"},
        )
    )
    assert read.start == dt.datetime(2030, 3, 31, 7, 0, tzinfo=dt.UTC)


def test_all_day_events_map_to_dates_whatever_the_zone() -> None:
    day = dt.date(2030, 1, 10)
    body = event_body(EventData(subject="Offsite", start_date=day, end_date=day + dt.timedelta(days=1)))
    assert body["isAllDay"] is True
    assert body["start"] == {"dateTime": "2030-01-10T00:00:00", "timeZone": "UTC"}
    read = parse_event(
        graph_event(
            isAllDay=True,
            start={"dateTime": "2030-01-10T00:00:00.0000000", "timeZone": "Pacific Standard Time"},
            end={"dateTime": "2030-01-11T00:00:00.0000000", "timeZone": "Pacific Standard Time"},
        )
    )
    assert (read.start_date, read.end_date, read.start) == (day, day + dt.timedelta(days=1), None)


def test_privacy_free_busy_attendees_and_body() -> None:
    read = parse_event(
        graph_event(
            sensitivity="confidential",
            showAs="free",
            body={
                "contentType": "html",
                "content": "<html><body><div>Line 1<br>Line &amp; 2</div></body></html>",
            },
            attendees=[
                {
                    "type": "optional",
                    "status": {"response": "tentativelyAccepted"},
                    "emailAddress": {"name": "Kim", "address": "kim@client.test"},
                },
                {
                    "type": "required",
                    "status": {"response": "none"},
                    "emailAddress": {"name": "lee@client.test", "address": "lee@client.test"},
                },
                {"type": "resource", "emailAddress": {"name": "Room 1"}},
            ],
        )
    )
    assert read.private
    assert not read.busy
    assert read.description == "Line 1\nLine & 2"
    assert read.attendees == (
        Attendee(email="kim@client.test", name="Kim", response="tentative", optional=True),
        Attendee(email="lee@client.test", name="", response="needsAction", optional=False),
    )
    written = event_body(
        EventData(
            subject="X",
            start=TOMORROW_NINE,
            end=TOMORROW_NINE + dt.timedelta(hours=1),
            private=True,
            busy=False,
        )
    )
    assert (written["sensitivity"], written["showAs"]) == ("private", "free")
    assert written["body"] == {"contentType": "text", "content": ""}


def test_our_tag_reads_from_the_extended_property_or_the_transaction_id() -> None:
    tagged = graph_event(singleValueExtendedProperties=[{"id": TAG_PROPERTY_ID.upper(), "value": "act-1"}])
    assert parse_event(tagged).tag == "act-1"
    transaction_id = transaction_id_for("activity-1-2", "act-1")
    assert transaction_id == transaction_id_for("activity-1-2", "act-1")
    assert transaction_id != transaction_id_for("activity-1-2-1", "act-1")
    assert parse_event(graph_event(transactionId=transaction_id)).tag == "act-1"
    assert parse_event(graph_event(transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")).tag is None
    assert event_body(meeting(tag="act-1"))["singleValueExtendedProperties"] == [
        {"id": TAG_PROPERTY_ID, "value": "act-1"}
    ]


def test_occurrences_are_recurring_instances_of_their_series() -> None:
    read = parse_event(graph_event(type="occurrence", seriesMasterId="AAMkSeries="))
    assert read.is_recurring_instance
    assert read.series_id == "AAMkSeries="


def test_unreadable_events_raise_invalid_event() -> None:
    with pytest.raises(InvalidEvent):
        parse_event(graph_event(start={"dateTime": "2030-01-10T09:00:00", "timeZone": "Mars/Olympus"}))
    with pytest.raises(InvalidEvent):
        parse_event(graph_event(id=None))


# --------------------------------------------------------------------------- error map


@pytest.mark.parametrize(
    ("failure", "operation", "expected"),
    [
        (GraphFailure(401, "InvalidAuthenticationToken", ""), Operation.READ, AuthRevoked),
        (GraphFailure(403, "ErrorAccessDenied", ""), Operation.LIST, InsufficientPermissions),
        (GraphFailure(403, "ErrorAccessDenied", ""), Operation.CHANGES, InsufficientPermissions),
        (GraphFailure(403, "ErrorAccessDenied", ""), Operation.CREATE, InsufficientPermissions),
        # R16: one event refused is that item's error.
        (GraphFailure(403, "ErrorAccessDenied", ""), Operation.WRITE, InvalidEvent),
        (GraphFailure(403, "ErrorAccessDenied", ""), Operation.READ, InvalidEvent),
        (GraphFailure(429, "ApplicationThrottled", "", 3.0), Operation.LIST, TransientError),
        (GraphFailure(503, "ServiceUnavailable", ""), Operation.WRITE, TransientError),
        (GraphFailure(504, "UnknownError", ""), Operation.READ, TransientError),
        (GraphFailure(404, "ErrorItemNotFound", ""), Operation.READ, NotFound),
        (GraphFailure(412, "ErrorIrresolvableConflict", ""), Operation.WRITE, Conflict),
        (GraphFailure(410, "syncStateNotFound", ""), Operation.CHANGES, CursorExpired),
        (GraphFailure(400, "ErrorDuplicateTransactionId", ""), Operation.CREATE, TransactionIdUsed),
        (GraphFailure(400, "ErrorPropertyValidationFailure", ""), Operation.CREATE, InvalidEvent),
        (TokenRefreshFailed("invalid_grant"), Operation.READ, AuthRevoked),
        (TokenRefreshFailed("temporarily_unavailable"), Operation.READ, TransientError),
        (requests.ReadTimeout(), Operation.READ, TransientError),
        (requests.ConnectionError(), Operation.READ, TransientError),
    ],
)
def test_one_error_map(failure: BaseException, operation: Operation, expected: type[Exception]) -> None:
    assert type(map_graph_error(failure, operation)) is expected


def test_retry_after_is_kept() -> None:
    error = map_graph_error(
        GraphFailure.from_parts(429, {"retry-after": "12"}, {"error": {"code": "TooManyRequests"}})
    )
    assert isinstance(error, TransientError)
    assert error.retry_after == 12
    later = dt.datetime(2030, 1, 1, 0, 0, 30, tzinfo=dt.UTC)
    assert parse_retry_after("Tue, 01 Jan 2030 00:00:30 GMT", now=later - dt.timedelta(seconds=30)) == 30


# --------------------------------------------------------------------------- against the emulator


def test_delta_pages_are_followed_and_each_event_comes_once(
    ms: RunningMicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(microsoft_adapter, "PAGE_SIZE", 2)
    for n in range(5):
        start = TOMORROW_NINE + dt.timedelta(hours=n)
        ms.emulator.user_create_event(
            ALICE,
            {
                "subject": f"E{n}",
                "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
                "end": {
                    "dateTime": (start + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat(),
                    "timeZone": "UTC",
                },
            },
        )
    provider = provider_for(ms)
    ms.emulator.reset_counts()
    page = provider.list_changes(ms.calendar_id, None, **window())
    assert sorted(c.event.subject for c in page.changes if c.event) == [f"E{n}" for n in range(5)]
    assert ms.emulator.request_counts()["events.delta"] == 3
    ms.emulator.reset_counts()
    assert provider.list_changes(ms.calendar_id, page.cursor, **window()).changes == ()
    assert ms.emulator.request_counts() == {"events.delta": 1}  # a quiet sync is one request


def test_an_event_moved_out_of_the_window_is_an_update_not_a_deletion(ms: RunningMicrosoftEmulator) -> None:
    provider = provider_for(ms)
    moved = provider.create_event(ms.calendar_id, meeting("Moves"), idempotency_key="k-move")
    gone = provider.create_event(ms.calendar_id, meeting("Goes", hours=2), idempotency_key="k-gone")
    cursor = provider.list_changes(ms.calendar_id, None, **window()).cursor
    far = NOW + dt.timedelta(days=400)
    provider.update_event(
        ms.calendar_id,
        moved.external_id,
        EventData(subject="Moves", start=far, end=far + dt.timedelta(hours=1)),
        etag=None,
    )
    provider.delete_event(ms.calendar_id, gone.external_id)
    page = provider.list_changes(ms.calendar_id, cursor, **window())
    by_id = {c.external_id: c for c in page.changes}
    assert by_id[moved.external_id].kind == "upserted"
    assert by_id[moved.external_id].event is not None
    assert by_id[moved.external_id].event.start == far  # type: ignore[union-attr]
    assert by_id[gone.external_id].kind == "deleted"


def test_a_cursor_pointing_elsewhere_is_never_followed(ms: RunningMicrosoftEmulator) -> None:
    provider = provider_for(ms)
    with pytest.raises(CursorExpired):
        provider.list_changes(
            ms.calendar_id, "https://attacker.test/v1.0/me/calendarView/delta?$deltatoken=x", **window()
        )


def test_bulk_create_uses_batches_of_twenty(ms: RunningMicrosoftEmulator) -> None:
    provider = provider_for(ms)
    items = [(meeting(f"Call {n}", hours=n % 12, tag=f"t-{n}"), f"k-{n}") for n in range(45)]
    ms.emulator.reset_counts()
    results = provider.create_events(ms.calendar_id, items)
    assert all(not isinstance(r, Exception) for r in results)
    assert ms.emulator.request_counts()["batch"] == 3
    assert [r.tag for r in results if not isinstance(r, Exception)] == [f"t-{n}" for n in range(45)]


def test_a_repeated_create_with_changed_content_adopts_the_first_event(ms: RunningMicrosoftEmulator) -> None:
    provider = provider_for(ms)
    first = provider.create_event(ms.calendar_id, meeting("First", tag="act-9"), idempotency_key="act-9")
    again = provider.create_event(
        ms.calendar_id, meeting("Edited meanwhile", tag="act-9"), idempotency_key="act-9"
    )
    assert again.external_id == first.external_id
    [bulk] = provider.create_events(ms.calendar_id, [(meeting("Edited again", tag="act-9"), "act-9")])
    assert not isinstance(bulk, Exception)
    assert bulk.external_id == first.external_id
    assert len(ms.emulator.user_list_events(ALICE)) == 1


def test_an_expired_token_is_refreshed_before_the_call(ms: RunningMicrosoftEmulator) -> None:
    refreshed: list[dict[str, Any]] = []
    issued = ms.emulator.issue_tokens(ALICE, ["Calendars.ReadWrite"], ms.client_id)
    provider = MicrosoftProvider.from_tokens(
        {
            "access_token": "stale",
            "refresh_token": issued["refresh_token"],
            "expiry": (NOW - dt.timedelta(minutes=5)).isoformat(),
            "scopes": [],
        },
        on_tokens_refreshed=refreshed.append,
    )
    ms.emulator.reset_counts()
    assert provider.list_calendars()
    counts = ms.emulator.request_counts()
    assert counts["token"] == 1
    assert counts["calendars.list"] == 1  # no 401 round trip first
    assert refreshed[0]["access_token"] != "stale"


def test_a_revoked_grant_raises_auth_revoked_without_retries(ms: RunningMicrosoftEmulator) -> None:
    sleeps: list[float] = []
    provider = provider_for(ms, sleeps)
    ms.emulator.revoke_tokens(ALICE)
    with pytest.raises(AuthRevoked):
        provider.create_event(ms.calendar_id, meeting(tag="x"), idempotency_key="x")
    assert sleeps == []


def test_invalid_events_are_refused_before_any_request(ms: RunningMicrosoftEmulator) -> None:
    provider = provider_for(ms)
    ms.emulator.reset_counts()
    with pytest.raises(InvalidEvent):
        provider.create_event(
            ms.calendar_id,
            EventData(subject="Backwards", start=TOMORROW_NINE, end=TOMORROW_NINE - dt.timedelta(hours=1)),
            idempotency_key="b",
        )
    assert ms.emulator.request_counts() == {}
