"""Google Calendar implementation of ``CalendarProvider`` (Calendar API v3).

Reference: https://developers.google.com/calendar/api/v3/reference
Facts this relies on are collected in /work/shared/PROVIDERS.md (Google section).
Payload mapping lives in ``mapping.py``, error mapping in ``errors.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from calendarsync.providers.base import (
    VIDEO_CALL,
    AuthRevoked,
    Change,
    ChangePage,
    Conflict,
    EventData,
    InvalidEvent,
    NotFound,
    ProviderError,
    RemoteCalendarInfo,
    RemoteEvent,
    TransientError,
    fields_to_write,
    same_content,
)
from calendarsync.providers.google.client import GoogleClient, TokenCallback
from calendarsync.providers.google.errors import GOOGLE_FAILURES, AlreadyExists, Operation, map_google_error
from calendarsync.providers.google.mapping import (
    TAG_PROPERTY,
    conference_request,
    event_body,
    event_id_for_key,
    parse_calendar,
    parse_event,
    rfc3339,
    video_request_id,
)
from calendarsync.providers.redaction import redact
from calendarsync.providers.retry import MAX_ATTEMPTS, call_with_retries, chunks, retry_delay, waits_inline

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Retry policy for transient failures (rate limits, 5xx, timeouts, resets). The adapter
# retries a few times itself, then raises TransientError for the caller (the Celery task)
# to reschedule. Sleeps honour Retry-After but are capped so a worker is never parked long.

# Google accepts 1000 calls per batch, each still counted against quota; 50 keeps one
# failed batch cheap to retry.
BATCH_SIZE = 50
# events.list page size: default 250, maximum 2500.
PAGE_SIZE = 2500


def send_updates(notify: bool) -> str:
    """The ``sendUpdates`` parameter of a write: Google mails the guests, or nobody.

    https://developers.google.com/calendar/api/v3/reference/events/insert (sendUpdates: "all",
    "externalOnly" or "none"); sent explicitly either way rather than relying on the default.
    """
    return "all" if notify else "none"


def insert_request(event: EventData, idempotency_key: str, *, notify: bool) -> dict[str, Any]:
    """The events.insert parameters for one create: idempotent id, mail, a Meet request if wanted.

    The conference ``requestId`` derives from the key, so a retried insert asks for the same one.
    """
    body = {**event_body(event), "id": event_id_for_key(idempotency_key)}
    params: dict[str, Any] = {"body": body, "sendUpdates": send_updates(notify)}
    if event.video_call:
        body["conferenceData"] = conference_request(video_request_id(f"create:{idempotency_key}"))
        params["conferenceDataVersion"] = 1
    return params


def _deleted_since(event_id: str) -> Conflict:
    return Conflict(
        f"Google event {event_id} was created earlier and deleted since; "
        "creating it again needs a new idempotency key"
    )


# --------------------------------------------------------------------------- provider


class GoogleProvider:
    """``CalendarProvider`` over the Google Calendar API v3."""

    # a syncToken listing returns every event deleted since, as status "cancelled".
    reports_unlisted_deletions = True
    # conferenceData.createRequest with conferenceSolutionKey "hangoutsMeet".
    video_call_service: str | None = "Google Meet"
    # Google mails guests only when a write says sendUpdates=all (or externalOnly).
    always_notifies_guests = False

    def __init__(self, client: GoogleClient, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._sleep = sleep

    @classmethod
    def from_tokens(
        cls,
        tokens: Mapping[str, Any],
        *,
        on_tokens_refreshed: TokenCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> GoogleProvider:
        return cls(GoogleClient(tokens, on_tokens_refreshed=on_tokens_refreshed), sleep=sleep)

    # ---------------------------------------------------------------- plumbing

    def _run(self, make_request: Callable[[], Any], operation: Operation) -> Any:
        """Execute one API call, retrying transient failures a bounded number of times."""
        return call_with_retries(
            lambda: self._client.execute(make_request()),
            catch=GOOGLE_FAILURES,
            to_error=lambda exc: map_google_error(exc, operation),
            sleep=self._sleep,
            label="Google Calendar",
        )

    def _run_batch(
        self, requests: list[tuple[int, Callable[[], Any]]], operation: Operation
    ) -> dict[int, Any]:
        """Execute (key, request factory) pairs in batches of BATCH_SIZE.

        Returns key -> response body or ProviderError. Items (or whole batches) that fail
        transiently are retried, together, a bounded number of times. A batch refused as a
        whole for a dead grant raises ``AuthRevoked`` like every other call.
        """
        results: dict[int, Any] = {}
        pending = list(requests)
        attempt = 0
        while pending:
            attempt += 1
            retry: list[tuple[int, Callable[[], Any]]] = []
            delays: list[float] = []
            for chunk in chunks(pending, BATCH_SIZE):
                outcomes = self._execute_chunk(chunk, operation)
                for key, make_request in chunk:
                    outcome = outcomes.get(key, TransientError("Google batch response lacks this item"))
                    results[key] = outcome
                    if isinstance(outcome, TransientError):
                        retry.append((key, make_request))
                        delays.append(retry_delay(outcome, attempt))
            if not retry or attempt >= MAX_ATTEMPTS or not waits_inline(max(delays)):
                break  # a long Retry-After: the items keep their TransientError, the run is rescheduled
            logger.warning("Google Calendar batch: %d items failed transiently; retrying", len(retry))
            self._sleep(max(delays))
            pending = retry
        return results

    def _execute_chunk(
        self, chunk: Sequence[tuple[int, Callable[[], Any]]], operation: Operation
    ) -> dict[int, Any]:
        outcomes: dict[int, Any] = {}

        def collect(key: int, _request_id: str, response: Any, exc: Any) -> None:
            outcomes[key] = map_google_error(exc, operation) if exc is not None else response

        batch = self._client.new_batch()
        for key, make_request in chunk:
            batch.add(make_request(), callback=partial(collect, key), request_id=str(key))
        try:
            self._client.execute_batch(batch)
        except GOOGLE_FAILURES as exc:
            error = map_google_error(exc, operation)
            if isinstance(error, AuthRevoked):
                raise error from exc
            return dict.fromkeys((key for key, _ in chunk), error)
        return outcomes

    def _fetch(self, calendar_id: str, external_id: str) -> RemoteEvent:
        # https://developers.google.com/calendar/api/v3/reference/events/get
        raw = self._run(
            lambda: self._client.events.get(calendarId=calendar_id, eventId=external_id), Operation.READ
        )
        return parse_event(raw, calendar_id)

    # ---------------------------------------------------------------- protocol

    def list_calendars(self) -> list[RemoteCalendarInfo]:
        calendars: list[RemoteCalendarInfo] = []
        page_token: str | None = None
        while True:
            # https://developers.google.com/calendar/api/v3/reference/calendarList/list
            page = self._run(
                partial(self._client.calendar_list.list, pageToken=page_token, maxResults=250), Operation.LIST
            )
            for item in page.get("items", []):
                try:
                    calendars.append(parse_calendar(item))
                except InvalidEvent:
                    logger.warning("Skipping an unreadable Google calendar list entry")
            page_token = page.get("nextPageToken")
            if not page_token:
                return calendars

    def list_changes(
        self,
        calendar_id: str,
        cursor: str | None,
        *,
        window_start: datetime,
        window_end: datetime,
    ) -> ChangePage:
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "singleEvents": True,  # recurring events come as their instances (R7)
            "showDeleted": True,  # deletions come as status=cancelled
            "maxResults": PAGE_SIZE,
        }
        if cursor is None:
            # Full listing: filters are allowed here (not with syncToken) and the sync
            # token returned on the last page remembers them.
            params["timeMin"] = rfc3339(window_start)
            params["timeMax"] = rfc3339(window_end)
        else:
            params["syncToken"] = cursor
        changes: dict[str, Change] = {}
        skipped: list[Change] = []
        page_token: str | None = None
        while True:
            # https://developers.google.com/calendar/api/v3/reference/events/list
            # https://developers.google.com/calendar/api/guides/sync
            page = self._run(
                partial(self._client.events.list, **params, pageToken=page_token), Operation.CHANGES
            )
            for item in page.get("items", []):
                change = self._change_from_item(item, calendar_id)
                if change.error is not None and not change.external_id:
                    skipped.append(change)
                    continue
                # Each event at most once, in its latest state.
                changes.pop(change.external_id, None)
                changes[change.external_id] = change
            page_token = page.get("nextPageToken")
            if page_token:
                continue
            next_cursor = page.get("nextSyncToken")
            if not isinstance(next_cursor, str) or not next_cursor:
                raise ProviderError("Google Calendar ended a listing without a sync token")
            return ChangePage(
                changes=(*changes.values(), *skipped), cursor=next_cursor, full_listing=cursor is None
            )

    @staticmethod
    def _change_from_item(item: object, calendar_id: str) -> Change:
        try:
            event = parse_event(item, calendar_id)
        except InvalidEvent as exc:
            raw_id = item.get("id") if isinstance(item, Mapping) else None
            external_id = raw_id if isinstance(raw_id, str) else ""
            logger.warning(
                "Skipping an unreadable Google event %s: %s", external_id or "(no id)", redact(exc.message)
            )
            return Change(external_id=external_id, event=None, error=exc.message)
        return Change(external_id=event.external_id, event=event, deleted=event.is_cancelled)

    def create_event(
        self, calendar_id: str, event: EventData, *, idempotency_key: str, notify: bool = False
    ) -> RemoteEvent:
        """Insert with an id derived from the key; a repeat adopts the event the first call made.

        If that event was deleted in the calendar since, raises ``Conflict``: Google keeps
        deleted ids reserved, so creating it again needs a new idempotency key. A repeat that
        adopts the event sends no mail: only the insert that made it could.
        """
        params = insert_request(event, idempotency_key, notify=notify)
        event_id = str(params["body"]["id"])
        try:
            # https://developers.google.com/calendar/api/v3/reference/events/insert
            # A client-chosen id makes the insert idempotent: a repeat answers 409. sendUpdates
            # says whether Google mails the invitations; conferenceDataVersion=1 lets
            # conferenceData.createRequest ask for a Meet conference.
            raw = self._run(
                lambda: self._client.events.insert(calendarId=calendar_id, **params), Operation.CREATE
            )
        except AlreadyExists:
            try:
                return self._adopt(self._fetch(calendar_id, event_id))
            except NotFound as exc:
                raise _deleted_since(event_id) from exc
        return parse_event(raw, calendar_id)

    @staticmethod
    def _adopt(existing: RemoteEvent) -> RemoteEvent:
        if existing.is_cancelled:
            raise _deleted_since(existing.external_id)
        return existing

    def create_events(
        self, calendar_id: str, items: list[tuple[EventData, str]], *, notify: bool = False
    ) -> list[RemoteEvent | ProviderError]:
        """``create_event`` for many items through batch requests of BATCH_SIZE calls each."""
        results: list[RemoteEvent | ProviderError | None] = [None] * len(items)
        inserts: list[tuple[int, Callable[[], Any]]] = []
        for index, (event, key) in enumerate(items):
            try:
                params = insert_request(event, key, notify=notify)
            except InvalidEvent as exc:
                results[index] = exc
                continue
            # https://developers.google.com/calendar/api/guides/batch
            # https://developers.google.com/calendar/api/v3/reference/events/insert (sendUpdates,
            # conferenceDataVersion: as in create_event)
            inserts.append((index, partial(self._client.events.insert, calendarId=calendar_id, **params)))

        adopt: list[tuple[int, Callable[[], Any]]] = []
        for index, outcome in self._run_batch(inserts, Operation.CREATE).items():
            if isinstance(outcome, AlreadyExists):
                event_id = event_id_for_key(items[index][1])
                # https://developers.google.com/calendar/api/v3/reference/events/get
                adopt.append(
                    (index, partial(self._client.events.get, calendarId=calendar_id, eventId=event_id))
                )
            else:
                results[index] = self._event_or_error(outcome, calendar_id)
        for index, outcome in self._run_batch(adopt, Operation.READ).items():
            adopted = self._event_or_error(outcome, calendar_id)
            if isinstance(adopted, NotFound) or (isinstance(adopted, RemoteEvent) and adopted.is_cancelled):
                adopted = _deleted_since(event_id_for_key(items[index][1]))
            results[index] = adopted
        return [r if r is not None else ProviderError("no result") for r in results]

    @staticmethod
    def _event_or_error(outcome: Any, calendar_id: str) -> RemoteEvent | ProviderError:
        if isinstance(outcome, ProviderError):
            return outcome
        try:
            return parse_event(outcome, calendar_id)
        except InvalidEvent as exc:
            return exc

    def update_event(
        self,
        calendar_id: str,
        external_id: str,
        event: EventData,
        *,
        etag: str | None,
        fields: Collection[str] | None = None,
        notify: bool = False,
    ) -> RemoteEvent:
        # Only what changed: a PATCH leaves every other property as the calendar has it (R11).
        body = event_body(event, for_patch=True, fields=fields)
        params: dict[str, Any] = {"body": body, "sendUpdates": send_updates(notify)}
        if self._wants_conference(calendar_id, external_id, event, fields):
            body["conferenceData"] = conference_request(video_request_id(f"event:{external_id}"))
            params["conferenceDataVersion"] = 1

        def make_request() -> Any:
            # https://developers.google.com/calendar/api/v3/reference/events/patch
            # If-Match makes the write conditional: a stale etag answers 412.
            # https://developers.google.com/calendar/api/guides/version-resources
            # sendUpdates: whether Google mails the guests the change; conferenceDataVersion=1
            # lets conferenceData.createRequest add a Meet conference.
            request = self._client.events.patch(calendarId=calendar_id, eventId=external_id, **params)
            if etag:
                request.headers["If-Match"] = etag
            return request

        try:
            raw = self._run(make_request, Operation.WRITE)
        except Conflict:
            # A retried write whose first attempt did land also answers 412: if the event
            # already holds exactly what we wanted, that is success, not a conflict.
            current = self._fetch(calendar_id, external_id)
            if not current.is_cancelled and same_content(current, event, fields):
                return current
            raise
        return parse_event(raw, calendar_id)

    def _wants_conference(
        self, calendar_id: str, external_id: str, event: EventData, fields: Collection[str] | None
    ) -> bool:
        """Ask for Meet on update only when the event has no conference yet (never a second one)."""
        if not event.video_call or VIDEO_CALL not in fields_to_write(fields):
            return False
        if (
            isinstance(event, RemoteEvent)
            and event.external_id == external_id
            and (event.join_url or event.video_call_pending)
        ):
            return False
        current = self._fetch(calendar_id, external_id)
        return not (current.join_url or current.video_call_pending)

    def delete_event(
        self, calendar_id: str, external_id: str, *, etag: str | None = None, notify: bool = False
    ) -> None:
        def make_request() -> Any:
            # https://developers.google.com/calendar/api/v3/reference/events/delete
            # sendUpdates: whether Google mails the guests a cancellation.
            request = self._client.events.delete(
                calendarId=calendar_id, eventId=external_id, sendUpdates=send_updates(notify)
            )
            if etag:
                request.headers["If-Match"] = etag
            return request

        try:
            self._run(make_request, Operation.WRITE)
        except NotFound:
            return  # already gone (404, or 410 for a deleted event): the goal is reached

    def get_event(self, calendar_id: str, external_id: str) -> RemoteEvent:
        event = self._fetch(calendar_id, external_id)
        if event.is_cancelled:
            raise NotFound(f"Google event {external_id} was deleted")
        return event

    def find_by_tag(self, calendar_id: str, tag: str) -> RemoteEvent | None:
        # https://developers.google.com/calendar/api/v3/reference/events/list
        # (privateExtendedProperty filter: "name=value")
        page = self._run(
            partial(
                self._client.events.list,
                calendarId=calendar_id,
                privateExtendedProperty=f"{TAG_PROPERTY}={tag}",
                showDeleted=False,
                maxResults=10,
            ),
            Operation.LIST,
        )
        for item in page.get("items", []):
            try:
                event = parse_event(item, calendar_id)
            except InvalidEvent:
                continue
            if not event.is_cancelled and event.tag == tag:
                return event
        return None
