"""Google adapter mapping: payloads <-> our dataclasses, errors -> our error types (R7, R9, R10)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

import httplib2  # type: ignore[import-untyped]
import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from calendarsync.providers.base import (
    Attendee,
    AuthRevoked,
    Conflict,
    CursorExpired,
    EventData,
    InsufficientPermissions,
    InvalidEvent,
    NotFound,
    ProviderError,
    TransientError,
    same_content,
)
from calendarsync.providers.google.adapter import GoogleProvider
from calendarsync.providers.google.errors import Operation, map_google_error
from calendarsync.providers.google.mapping import (
    TAG_PROPERTY,
    event_body,
    event_id_for_key,
    parse_calendar,
    parse_event,
)
from calendarsync.providers.retry import MAX_ATTEMPTS, parse_retry_after

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def google_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "calendar#event",
        "id": "abc123",
        "etag": '"3181161784712000"',
        "status": "confirmed",
        "summary": "Quarterly review",
        "updated": "2026-03-01T10:00:00.000Z",
        "start": {"dateTime": "2026-03-10T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-10T09:30:00+01:00", "timeZone": "Europe/Berlin"},
    }
    event.update(fields)
    return event


def http_error(status: int, reason: str | None = None, headers: dict[str, str] | None = None) -> HttpError:
    resp = httplib2.Response({"status": str(status), **(headers or {})})
    body: dict[str, Any] = {"error": {"code": status, "message": "nope"}}
    if reason:
        body["error"]["errors"] = [{"domain": "global", "reason": reason, "message": "nope"}]
    return HttpError(resp, json.dumps(body).encode(), uri="http://127.0.0.1/calendar/v3/x")


# --------------------------------------------------------------------------- ids


def test_r10_event_id_from_idempotency_key_is_stable_and_base32hex() -> None:
    first = event_id_for_key("activity-42:v1")
    assert first == event_id_for_key("activity-42:v1")
    assert first != event_id_for_key("activity-43:v1")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", first)


# --------------------------------------------------------------------------- reading


def test_parse_timed_event_converts_to_aware_utc() -> None:
    event = parse_event(google_event())
    assert event.start == dt.datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    assert event.end == dt.datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
    assert event.start is not None
    assert event.start.utcoffset() == dt.timedelta(0)
    assert event.updated == dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert event.start_date is None
    assert not event.all_day
    assert event.external_id == "abc123"
    assert event.etag == '"3181161784712000"'


def test_parse_all_day_event_keeps_dates_with_exclusive_end() -> None:
    event = parse_event(google_event(start={"date": "2026-03-10"}, end={"date": "2026-03-11"}))
    assert event.all_day
    assert event.start_date == dt.date(2026, 3, 10)
    assert event.end_date == dt.date(2026, 3, 11)
    assert event.start is None
    assert event.end is None


def test_parse_local_time_across_dst_switch_in_berlin() -> None:
    # 2026-03-29: clocks go from 02:00 CET (+01:00) to 03:00 CEST (+02:00).
    event = parse_event(
        google_event(
            start={"dateTime": "2026-03-29T01:00:00", "timeZone": "Europe/Berlin"},
            end={"dateTime": "2026-03-29T04:00:00", "timeZone": "Europe/Berlin"},
        )
    )
    assert event.start == dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert event.end == dt.datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert event.end - event.start == dt.timedelta(hours=2)  # three wall-clock hours, two real ones


def test_parse_offset_wins_over_time_zone_name() -> None:
    event = parse_event(
        google_event(
            start={"dateTime": "2026-03-29T03:30:00+02:00", "timeZone": "America/New_York"},
            end={"dateTime": "2026-03-29T04:00:00+02:00", "timeZone": "America/New_York"},
        )
    )
    assert event.start == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_parse_fields_privacy_busy_attendees_and_tag() -> None:
    event = parse_event(
        google_event(
            location="Room 1",
            description="Agenda",
            visibility="private",
            transparency="transparent",
            attendees=[
                {"email": "bob@example.com", "displayName": "Bob", "responseStatus": "accepted"},
                {"email": "carol@example.com", "optional": True},
                {"displayName": "hidden address"},
            ],
            extendedProperties={"private": {TAG_PROPERTY: "act-7"}},
        )
    )
    assert event.location == "Room 1"
    assert event.description == "Agenda"
    assert event.private is True
    assert event.busy is False
    assert event.attendees == (
        Attendee(email="bob@example.com", name="Bob", response="accepted"),
        Attendee(email="carol@example.com", optional=True),
    )
    assert event.tag == "act-7"


def test_parse_default_visibility_and_opaque_transparency() -> None:
    event = parse_event(google_event(visibility="default"))
    assert event.private is False
    assert event.busy is True
    assert event.tag is None
    assert parse_event(google_event(visibility="confidential")).private is True


def test_r7_parse_recurring_instance() -> None:
    event = parse_event(
        google_event(id="series1_20260310T080000Z", recurringEventId="series1", iCalUID="series1@google.com")
    )
    assert event.is_recurring_instance
    assert event.series_id == "series1"
    assert event.ical_uid == "series1@google.com"
    assert not parse_event(google_event()).is_recurring_instance


def test_parse_cancelled_tombstone_without_times() -> None:
    event = parse_event({"kind": "calendar#event", "id": "gone1", "etag": '"1"', "status": "cancelled"})
    assert event.is_cancelled
    assert event.external_id == "gone1"
    assert event.start is None
    assert event.updated is None


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ("not an event", "not an object"),
        ({"status": "confirmed"}, "no id"),
        (google_event(start=None), "start is missing"),
        (google_event(end="tomorrow"), "end is missing"),
        (google_event(start={"date": "2026-03-10", "dateTime": "2026-03-10T09:00:00Z"}), "exactly one"),
        (google_event(start={}), "exactly one"),
        (google_event(start={"date": "10.03.2026"}), "not a date"),
        (google_event(start={"dateTime": "soon"}), "not a timestamp"),
        (google_event(start={"dateTime": "2026-03-10T09:00:00"}), "neither an offset nor a timeZone"),
        (google_event(start={"dateTime": "2026-03-10T09:00:00", "timeZone": "Mars/Olympus"}), "unknown"),
        (google_event(start={"date": "2026-03-10"}), "mix"),
        (google_event(end={"dateTime": "2026-03-10T07:00:00Z"}), "end must be after start"),
        (google_event(start={"date": "2026-03-10"}, end={"date": "2026-03-10"}), "end_date"),
        (google_event(summary=["not", "text"]), "summary is not text"),
        (google_event(attendees="bob@example.com"), "attendees"),
        (google_event(attendees=["bob@example.com"]), "attendee"),
        (google_event(updated=None), "updated is missing"),
        (google_event(updated="2026-03-01T10:00:00"), "no time zone"),
    ],
)
def test_r10_malformed_payload_raises_invalid_event(payload: object, complaint: str) -> None:
    with pytest.raises(InvalidEvent, match=complaint):
        parse_event(payload)


def test_parse_calendar_list_entry() -> None:
    info = parse_calendar(
        {"id": "alice@example.com", "summary": "Alice", "primary": True, "accessRole": "owner"}
    )
    assert (info.external_id, info.name, info.is_primary, info.can_write) == (
        "alice@example.com",
        "Alice",
        True,
        True,
    )
    reader = parse_calendar({"id": "holidays", "summary": "Holidays", "accessRole": "reader"})
    assert not reader.is_primary
    assert not reader.can_write


# --------------------------------------------------------------------------- writing


def timed(**fields: Any) -> EventData:
    defaults: dict[str, Any] = {
        "subject": "Call Bob",
        "start": dt.datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
        "end": dt.datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
    }
    defaults.update(fields)
    return EventData(**defaults)


def test_event_body_timed_keeps_zone_name_and_offset() -> None:
    body = event_body(timed(tag="act-1", attendees=(Attendee("bob@example.com", "Bob"),)))
    assert body["start"] == {"dateTime": "2026-03-29T01:30:00+01:00", "timeZone": "Europe/Berlin"}
    assert body["end"] == {"dateTime": "2026-03-29T03:30:00+02:00", "timeZone": "Europe/Berlin"}
    assert body["extendedProperties"] == {"private": {TAG_PROPERTY: "act-1"}}
    assert body["attendees"] == [{"email": "bob@example.com", "displayName": "Bob", "optional": False}]
    assert body["visibility"] == "default"
    assert body["transparency"] == "opaque"


def test_event_body_all_day_private_free() -> None:
    event = EventData(
        subject="Offsite",
        start_date=dt.date(2026, 3, 10),
        end_date=dt.date(2026, 3, 12),
        private=True,
        busy=False,
    )
    body = event_body(event)
    assert body["start"] == {"date": "2026-03-10"}
    assert body["end"] == {"date": "2026-03-12"}
    assert body["visibility"] == "private"
    assert body["transparency"] == "transparent"
    assert "extendedProperties" not in body


def test_patch_body_clears_the_other_time_form() -> None:
    all_day = event_body(
        EventData(subject="x", start_date=dt.date(2026, 3, 10), end_date=dt.date(2026, 3, 11)), for_patch=True
    )
    assert all_day["start"] == {"date": "2026-03-10", "dateTime": None, "timeZone": None}
    utc = event_body(
        timed(start=dt.datetime(2026, 3, 10, 8, tzinfo=UTC), end=dt.datetime(2026, 3, 10, 9, tzinfo=UTC)),
        for_patch=True,
    )
    assert utc["start"] == {"dateTime": "2026-03-10T08:00:00+00:00", "timeZone": None, "date": None}


def test_written_event_reads_back_equal() -> None:
    wanted = timed(location="Room", description="Notes", tag="act-9", private=True, busy=False)
    body = event_body(wanted)
    raw = {**body, "id": "x1", "etag": '"1"', "status": "confirmed", "updated": "2026-03-01T00:00:00Z"}
    remote = parse_event(raw)
    assert remote.content() == wanted
    assert same_content(remote, wanted)
    assert not same_content(remote, timed(subject="other"))


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"start": dt.datetime(2026, 3, 10, 9), "end": dt.datetime(2026, 3, 10, 10)}, "aware"),  # noqa: DTZ001
        ({"end": dt.datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)}, "after start"),
        ({"end": None}, "both start and end"),
        ({"start_date": dt.date(2026, 3, 10), "end_date": dt.date(2026, 3, 11)}, "not both"),
    ],
)
def test_event_data_validation(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidEvent, match=complaint):
        timed(**fields).validate()


def test_all_day_validation_refuses_datetimes_and_empty_ranges() -> None:
    with pytest.raises(InvalidEvent, match="dates, not datetimes"):
        EventData(
            subject="x",
            start_date=dt.datetime(2026, 3, 10, tzinfo=UTC),
            end_date=dt.datetime(2026, 3, 11, tzinfo=UTC),
        ).validate()
    with pytest.raises(InvalidEvent, match="exclusive"):
        EventData(subject="x", start_date=dt.date(2026, 3, 10), end_date=dt.date(2026, 3, 10)).validate()
    with pytest.raises(InvalidEvent, match="needs a start"):
        EventData(subject="x").validate()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "reason", "operation", "expected"),
    [
        (401, "authError", Operation.READ, AuthRevoked),
        (403, "insufficientPermissions", Operation.READ, InsufficientPermissions),
        # R16: a refused write or read of one event is that item's error; listing, creating or a
        # reason about the grant or the calendar concerns the account (C4).
        (403, "forbidden", Operation.WRITE, InvalidEvent),
        (403, "forbiddenForNonOrganizer", Operation.WRITE, InvalidEvent),
        (403, "forbidden", Operation.READ, InvalidEvent),
        (403, "forbidden", Operation.LIST, InsufficientPermissions),
        (403, "forbidden", Operation.CHANGES, InsufficientPermissions),
        (403, "forbidden", Operation.CREATE, InsufficientPermissions),
        (403, "insufficientPermissions", Operation.WRITE, InsufficientPermissions),
        (403, "requiredAccessLevel", Operation.WRITE, InsufficientPermissions),
        (403, "rateLimitExceeded", Operation.READ, TransientError),
        (403, "userRateLimitExceeded", Operation.CREATE, TransientError),
        (429, "rateLimitExceeded", Operation.CHANGES, TransientError),
        (500, "backendError", Operation.WRITE, TransientError),
        (503, None, Operation.WRITE, TransientError),
        (400, "invalid", Operation.CREATE, InvalidEvent),
        (400, "invalid", Operation.WRITE, InvalidEvent),
        (400, "invalid", Operation.LIST, ProviderError),
        (404, "notFound", Operation.READ, NotFound),
        (410, "deleted", Operation.WRITE, NotFound),
        (410, "fullSyncRequired", Operation.CHANGES, CursorExpired),
        (412, "conditionNotMet", Operation.WRITE, Conflict),
        (409, "duplicate", Operation.WRITE, Conflict),
    ],
)
def test_map_http_errors(status: int, reason: str | None, operation: Operation, expected: type) -> None:
    error = map_google_error(http_error(status, reason), operation)
    assert type(error) is expected
    assert str(status) in error.message


def test_retry_after_is_read_from_the_response() -> None:
    error = map_google_error(http_error(429, "rateLimitExceeded", {"retry-after": "7"}))
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0
    error = map_google_error(http_error(403, "userRateLimitExceeded", {"retry-after": "2.5"}))
    assert isinstance(error, TransientError)
    assert error.retry_after == 2.5
    error = map_google_error(http_error(503))
    assert isinstance(error, TransientError)
    assert error.retry_after is None


def test_parse_retry_after_http_date() -> None:
    now = dt.datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 10 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 10 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_r9_refresh_errors() -> None:
    revoked = RefreshError("invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"})
    assert isinstance(map_google_error(revoked), AuthRevoked)
    flaky = RefreshError("server error", {"error": "internal_failure"}, retryable=True)
    assert isinstance(map_google_error(flaky), TransientError)


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("timed out"),
        TimeoutError(),
        ConnectionResetError(104, "reset"),
        httplib2.ServerNotFoundError(),
    ],
)
def test_network_failures_are_transient(exc: BaseException) -> None:
    assert isinstance(map_google_error(exc), TransientError)


def test_error_messages_carry_no_tokens() -> None:
    error = map_google_error(RefreshError("invalid_grant: bad 1//secret-refresh", {"error": "invalid_grant"}))
    assert "secret" not in error.message
    assert "secret" not in repr(error)


# --------------------------------------------------------------------------- provider logic without HTTP


class FakeRequest:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.headers: dict[str, str] = {}

    def execute(self, num_retries: int = 0) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class FakeEvents:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.calls: list[dict[str, Any]] = []

    def list(self, **params: Any) -> FakeRequest:
        self.calls.append(params)
        return FakeRequest(self.outcomes.pop(0))


class FakeClient:
    def __init__(self, outcomes: list[Any]) -> None:
        self.events = FakeEvents(outcomes)

    def execute(self, request: FakeRequest) -> Any:
        return request.execute()


WINDOW = {
    "window_start": dt.datetime(2026, 3, 1, tzinfo=UTC),
    "window_end": dt.datetime(2026, 6, 1, tzinfo=UTC),
}


def test_r10_one_bad_event_is_skipped_not_fatal() -> None:
    page = {
        "items": [google_event(id="good1"), google_event(id="bad1", start={"dateTime": "garbage"}), {"x": 1}],
        "nextSyncToken": "tok-1",
    }
    provider = GoogleProvider(FakeClient([page]), sleep=lambda _: None)  # type: ignore[arg-type]
    result = provider.list_changes("primary", None, **WINDOW)
    kinds = {(c.external_id, c.kind) for c in result.changes}
    assert kinds == {("good1", "upserted"), ("bad1", "skipped"), ("", "skipped")}
    bad = next(c for c in result.changes if c.external_id == "bad1")
    assert bad.error
    assert "dateTime" in bad.error
    assert result.cursor == "tok-1"
    assert result.full_listing


def test_list_changes_pages_and_reports_each_event_once() -> None:
    pages = [
        {"items": [google_event(id="a"), google_event(id="b")], "nextPageToken": "p2"},
        {
            "items": [google_event(id="a", summary="edited"), {"id": "c", "status": "cancelled"}],
            "nextSyncToken": "t2",
        },
    ]
    client = FakeClient(pages)
    provider = GoogleProvider(client, sleep=lambda _: None)  # type: ignore[arg-type]
    result = provider.list_changes("primary", "t1", **WINDOW)
    assert [(c.external_id, c.kind) for c in result.changes] == [
        ("b", "upserted"),
        ("a", "upserted"),
        ("c", "deleted"),
    ]
    assert next(c for c in result.changes if c.external_id == "a").event.subject == "edited"  # type: ignore[union-attr]
    assert not result.full_listing
    assert client.events.calls[0]["syncToken"] == "t1"
    assert "timeMin" not in client.events.calls[0]
    assert client.events.calls[1]["pageToken"] == "p2"


def test_transient_errors_are_retried_then_raised_with_retry_after() -> None:
    rate_limited = http_error(429, "rateLimitExceeded", {"retry-after": "3"})
    sleeps: list[float] = []
    provider = GoogleProvider(FakeClient([rate_limited] * MAX_ATTEMPTS), sleep=sleeps.append)  # type: ignore[arg-type]
    with pytest.raises(TransientError) as caught:
        provider.list_changes("primary", "t1", **WINDOW)
    assert caught.value.retry_after == 3.0
    assert sleeps == [3.0] * (MAX_ATTEMPTS - 1)


def test_a_long_retry_after_is_raised_at_once_not_slept() -> None:
    """PROVIDERS.md: honour Retry-After; a worker never sits out minutes (the run is rescheduled)."""
    rate_limited = http_error(429, "rateLimitExceeded", {"retry-after": "300"})
    sleeps: list[float] = []
    provider = GoogleProvider(FakeClient([rate_limited] * MAX_ATTEMPTS), sleep=sleeps.append)  # type: ignore[arg-type]
    with pytest.raises(TransientError) as caught:
        provider.list_changes("primary", "t1", **WINDOW)
    assert caught.value.retry_after == 300.0
    assert sleeps == []


def test_transient_error_then_success() -> None:
    pages = [http_error(503), {"items": [], "nextSyncToken": "t2"}]
    sleeps: list[float] = []
    provider = GoogleProvider(FakeClient(pages), sleep=sleeps.append)  # type: ignore[arg-type]
    assert provider.list_changes("primary", "t1", **WINDOW).cursor == "t2"
    assert len(sleeps) == 1


def test_permanent_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    provider = GoogleProvider(FakeClient([http_error(410, "fullSyncRequired")]), sleep=sleeps.append)  # type: ignore[arg-type]
    with pytest.raises(CursorExpired):
        provider.list_changes("primary", "old", **WINDOW)
    assert sleeps == []
