"""Microsoft 365 implementation of ``CalendarProvider`` (Microsoft Graph v1.0 calendar API).

Reference: https://learn.microsoft.com/en-us/graph/api/resources/calendar
Facts this relies on are collected in /work/shared/PROVIDERS.md (Microsoft section).
Payload mapping lives in ``mapping.py``, error mapping in ``errors.py``, HTTP and tokens in
``client.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from calendarsync.providers.base import (
    AuthRevoked,
    Change,
    ChangePage,
    Conflict,
    EventData,
    InsufficientPermissions,
    InvalidEvent,
    NotFound,
    ProviderError,
    RemoteCalendarInfo,
    RemoteEvent,
    TransientError,
)
from calendarsync.providers.microsoft.client import (
    JSON_BATCH_PATH,
    MicrosoftClient,
    TokenCallback,
    graph_path,
)
from calendarsync.providers.microsoft.errors import (
    GRAPH_FAILURES,
    GraphFailure,
    Operation,
    TransactionIdUsed,
    map_graph_error,
)
from calendarsync.providers.microsoft.mapping import (
    TAG_PROPERTY_ID,
    event_body,
    parse_calendar,
    parse_event,
    same_content,
    tag_of,
    transaction_id_for,
)
from calendarsync.providers.redaction import redact
from calendarsync.providers.retry import MAX_ATTEMPTS, call_with_retries, chunks, retry_delay, waits_inline

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Retry policy for transient failures (429, 5xx, timeouts, resets): a few attempts here, honouring
# Retry-After with a cap so a worker is never parked long; then TransientError for the task.
# JSON batching takes at most 20 requests per batch.
# https://learn.microsoft.com/en-us/graph/json-batching#batch-size-limitations
BATCH_SIZE = 20
# Delta page size (Prefer: odata.maxpagesize).
PAGE_SIZE = 200
# Graph answers in UTC unless asked otherwise; we also want plain-text bodies.
# https://learn.microsoft.com/en-us/graph/api/resources/event#properties (body, start)
READ_PREFERENCES = 'outlook.timezone="UTC", outlook.body-content-type="text"'
TAG_EXPAND = f"singleValueExtendedProperties($filter=id eq '{TAG_PROPERTY_ID}')"


def _odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deleted_since(key: str) -> Conflict:
    return Conflict(
        f"The Microsoft 365 event made under key {key!r} was deleted since; creating it again needs a new key"
    )


@dataclass(frozen=True)
class BatchCall:
    """One request of a JSON batch: method, path relative to the Graph root, optional body/headers."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None

    def as_json(self, request_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": request_id, "method": self.method, "url": "/" + self.path}
        headers = dict(self.headers or {})
        if self.body is not None:
            headers["Content-Type"] = "application/json"
            entry["body"] = dict(self.body)
        if headers:
            entry["headers"] = headers
        return entry


# --------------------------------------------------------------------------- provider


class MicrosoftProvider:
    """``CalendarProvider`` over Microsoft Graph.

    Meetings: Graph has no way to write a meeting without mailing its attendees. Creating an event
    with attendees invites them all (https://learn.microsoft.com/en-us/graph/api/calendar-post-events);
    a PATCH of a meeting this mailbox organizes mails invitations, cancellations and updates
    (https://learn.microsoft.com/en-us/graph/api/event-update); deleting it cancels it for every
    attendee (https://learn.microsoft.com/en-us/graph/api/event-delete). So the writes take
    ``notify`` for the protocol's sake and send the very same requests either way.
    """

    # delta only reports removals of items it handed out before.
    reports_unlisted_deletions = False
    always_notifies_guests = True
    # https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings
    video_call_service: str | None = "Microsoft Teams"

    def __init__(self, client: MicrosoftClient, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._sleep = sleep

    @classmethod
    def from_tokens(
        cls,
        tokens: Mapping[str, Any],
        *,
        on_tokens_refreshed: TokenCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> MicrosoftProvider:
        return cls(MicrosoftClient(tokens, on_tokens_refreshed=on_tokens_refreshed), sleep=sleep)

    # ---------------------------------------------------------------- plumbing

    def _run(
        self,
        method: str,
        path: str,
        operation: Operation,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One Graph call, retrying transient failures a bounded number of times."""
        return call_with_retries(
            lambda: self._client.request(method, path, body=body, headers=headers),
            catch=GRAPH_FAILURES,
            to_error=lambda exc: map_graph_error(exc, operation),
            sleep=self._sleep,
            label="Microsoft Graph",
        )

    def _run_batch(self, calls: Mapping[int, BatchCall], operation: Operation) -> dict[int, Any]:
        """Run (key -> call) in JSON batches of BATCH_SIZE; key -> response body or ProviderError.

        Calls (or whole batches) that fail transiently are retried, together, a bounded number of
        times. A batch refused as a whole for a dead grant raises ``AuthRevoked``.
        """
        results: dict[int, Any] = {}
        pending = list(calls.items())
        attempt = 0
        while pending:
            attempt += 1
            retry: list[tuple[int, BatchCall]] = []
            delays: list[float] = []
            for chunk in chunks(pending, BATCH_SIZE):
                outcomes = self._execute_chunk(chunk, operation)
                for key, call in chunk:
                    outcome = outcomes.get(key, TransientError("The Graph batch answer lacks this request"))
                    results[key] = outcome
                    if isinstance(outcome, TransientError):
                        retry.append((key, call))
                        delays.append(retry_delay(outcome, attempt))
            if not retry or attempt >= MAX_ATTEMPTS or not waits_inline(max(delays)):
                break  # a long Retry-After: the calls keep their TransientError, the run is rescheduled
            logger.warning("Microsoft Graph batch: %d requests failed transiently; retrying", len(retry))
            self._sleep(max(delays))
            pending = retry
        return results

    def _execute_chunk(self, chunk: Sequence[tuple[int, BatchCall]], operation: Operation) -> dict[int, Any]:
        try:
            # https://learn.microsoft.com/en-us/graph/json-batching
            answer = self._client.request(
                "POST", JSON_BATCH_PATH, body={"requests": [call.as_json(str(key)) for key, call in chunk]}
            )
        except GRAPH_FAILURES as exc:
            error = map_graph_error(exc, operation)
            if isinstance(error, AuthRevoked):
                raise error from exc
            return dict.fromkeys((key for key, _ in chunk), error)
        outcomes: dict[int, Any] = {}
        # Answers come in any order: match them by id.
        for response in answer.get("responses", []) if isinstance(answer, Mapping) else []:
            try:
                key = int(response["id"])
                status = int(response["status"])
            except (KeyError, TypeError, ValueError):
                continue
            body = response.get("body")
            if status >= 300:
                failure = GraphFailure.from_parts(status, response.get("headers") or {}, body)
                outcomes[key] = map_graph_error(failure, operation)
            else:
                outcomes[key] = body
        revoked = next((o for o in outcomes.values() if isinstance(o, AuthRevoked)), None)
        if revoked is not None:
            raise revoked  # a dead grant stops the whole bulk call, like any other call
        return outcomes

    def _fetch(self, external_id: str) -> RemoteEvent:
        # https://learn.microsoft.com/en-us/graph/api/event-get
        raw = self._run(
            "GET",
            graph_path("me", "events", external_id, query={"$expand": TAG_EXPAND}),
            Operation.READ,
            headers={"Prefer": READ_PREFERENCES},
        )
        return parse_event(raw)

    # ---------------------------------------------------------------- protocol

    def list_calendars(self) -> list[RemoteCalendarInfo]:
        calendars: list[RemoteCalendarInfo] = []
        # https://learn.microsoft.com/en-us/graph/api/user-list-calendars
        path: str | None = graph_path("me", "calendars")
        while path:
            page = self._run("GET", path, Operation.LIST)
            for item in page.get("value", []):
                try:
                    calendars.append(parse_calendar(item))
                except InvalidEvent:
                    logger.warning("Skipping an unreadable Microsoft 365 calendar")
            path = page.get("@odata.nextLink")
        return calendars

    def list_changes(
        self,
        calendar_id: str,
        cursor: str | None,
        *,
        window_start: datetime,
        window_end: datetime,
    ) -> ChangePage:
        """calendarView delta: the window is fixed by the first call; the cursor is the deltaLink."""
        if cursor is None:
            path: str = graph_path(
                "me",
                "calendars",
                calendar_id,
                "calendarView",
                "delta",
                query={"startDateTime": _graph_time(window_start), "endDateTime": _graph_time(window_end)},
            )
        else:
            path = cursor
        headers = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}, {READ_PREFERENCES}"}
        items: dict[str, Mapping[str, Any]] = {}
        while True:
            # https://learn.microsoft.com/en-us/graph/api/event-delta
            # https://learn.microsoft.com/en-us/graph/delta-query-events
            page = self._run("GET", path, Operation.CHANGES, headers=headers)
            for item in page.get("value", []):
                if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                    # Each event at most once, in its latest state.
                    items.pop(item["id"], None)
                    items[item["id"]] = item
            next_link = page.get("@odata.nextLink")
            if isinstance(next_link, str) and next_link:
                path = next_link
                continue
            delta_link = page.get("@odata.deltaLink")
            if not isinstance(delta_link, str) or not delta_link:
                raise ProviderError("Microsoft Graph ended a delta round without a deltaLink")
            break
        self._confirm_removals(items)
        changes = [self._change_from_item(item) for item in items.values()]
        return ChangePage(
            changes=tuple(c for c in changes if c is not None), cursor=delta_link, full_listing=cursor is None
        )

    def _confirm_removals(self, items: dict[str, Mapping[str, Any]]) -> None:
        """Turn "@removed" items that still exist into updates, in place.

        Graph reports an event moved out of the round's window as removed (reason "deleted"),
        like a deleted one; only a read tells them apart. Removals are rare, so this costs
        nothing in a quiet sync and one batch per 20 removals otherwise.
        """
        removed = [item_id for item_id, item in items.items() if "@removed" in item]
        if not removed:
            return
        # https://learn.microsoft.com/en-us/graph/api/event-get
        calls = {
            index: BatchCall("GET", graph_path("me", "events", item_id), headers={"Prefer": READ_PREFERENCES})
            for index, item_id in enumerate(removed)
        }
        for index, outcome in self._run_batch(calls, Operation.READ).items():
            item_id = removed[index]
            if isinstance(outcome, NotFound):
                continue  # really gone
            if isinstance(outcome, TransientError | InsufficientPermissions):
                raise outcome  # cannot tell a deletion from a move yet: list again later
            if isinstance(outcome, Mapping) and outcome.get("id") == item_id:
                items[item_id] = outcome
            else:
                # Never delete on a doubt: report the item as unreadable instead (R10).
                code = outcome.code if isinstance(outcome, ProviderError) else None
                items[item_id] = {"id": item_id, "@unconfirmed": redact(outcome)[:120], "@code": code}

    @staticmethod
    def _change_from_item(item: Mapping[str, Any]) -> Change | None:
        external_id = str(item["id"])
        if "@unconfirmed" in item:
            reason = f"Could not confirm the removal of this event: {item['@unconfirmed']}"
            return Change(external_id=external_id, event=None, error=reason, code=item.get("@code"))
        if "@removed" in item:
            return Change(external_id=external_id, event=None, deleted=True)
        if item.get("type") == "seriesMaster":
            return None  # a calendar view lists occurrences; a master here says nothing new
        try:
            event = parse_event(item)
        except InvalidEvent as exc:
            logger.warning(
                "Skipping an unreadable Microsoft 365 event %s: %s", external_id[:40], redact(exc.message)
            )
            return Change(external_id=external_id, event=None, error=exc.message)
        return Change(external_id=external_id, event=event, deleted=event.is_cancelled)

    def _create_call(self, calendar_id: str, event: EventData, key: str) -> BatchCall:
        # A video call comes as isOnlineMeeting + onlineMeetingProvider in the same body:
        # https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings
        body = {**event_body(event), "transactionId": transaction_id_for(key, event.tag)}
        # https://learn.microsoft.com/en-us/graph/api/calendar-post-events (transactionId: retries make no copy)
        return BatchCall(
            "POST", graph_path("me", "calendars", calendar_id, "events"), body, {"Prefer": READ_PREFERENCES}
        )

    def create_event(
        self, calendar_id: str, event: EventData, *, idempotency_key: str, notify: bool = False
    ) -> RemoteEvent:
        """Create with a transactionId derived from the key; a repeat returns the first event.

        If the event made under this key was deleted since, raises ``Conflict``. Graph invites the
        attendees whatever ``notify`` says (``always_notifies_guests``); a repeat sends nothing.
        """
        call = self._create_call(calendar_id, event, idempotency_key)
        try:
            raw = self._run(call.method, call.path, Operation.CREATE, body=call.body, headers=call.headers)
        except TransactionIdUsed:
            adopted = self._adopt(calendar_id, event, idempotency_key)
            if adopted is None:
                raise _deleted_since(idempotency_key) from None
            return adopted
        # Graph's answer to a write carries no extended properties unless expanded: ours is the tag we sent.
        return parse_event(raw, tag=event.tag)

    def _adopt(self, calendar_id: str, event: EventData, key: str) -> RemoteEvent | None:
        """The live event made under ``key`` (found by our tag and its transactionId), if any."""
        if event.tag is None:
            return None
        raw = self._tagged(calendar_id, event.tag, transaction_id=transaction_id_for(key, event.tag))
        return parse_event(raw) if raw is not None else None

    def _tagged(
        self, calendar_id: str, tag: str, *, transaction_id: str | None = None
    ) -> Mapping[str, Any] | None:
        page = self._run(
            "GET", self._tag_query(calendar_id, tag), Operation.LIST, headers={"Prefer": READ_PREFERENCES}
        )
        return self._pick_tagged(page, tag, transaction_id)

    @staticmethod
    def _tag_query(calendar_id: str, tag: str) -> str:
        # https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get
        # (filter on the value of a named string property, expand it too)
        flt = (
            f"singleValueExtendedProperties/Any(ep: ep/id eq {_odata_literal(TAG_PROPERTY_ID)} "
            f"and ep/value eq {_odata_literal(tag)})"
        )
        return graph_path(
            "me", "calendars", calendar_id, "events", query={"$filter": flt, "$expand": TAG_EXPAND}
        )

    @staticmethod
    def _pick_tagged(page: object, tag: str, transaction_id: str | None) -> Mapping[str, Any] | None:
        for item in page.get("value", []) if isinstance(page, Mapping) else []:
            if not isinstance(item, Mapping) or tag_of(item) != tag or item.get("isCancelled"):
                continue
            if transaction_id is None or item.get("transactionId") == transaction_id:
                return item
        return None

    def create_events(
        self, calendar_id: str, items: list[tuple[EventData, str]], *, notify: bool = False
    ) -> list[RemoteEvent | ProviderError]:
        """``create_event`` for many items through JSON batches of BATCH_SIZE requests each
        (``notify`` as for ``create_event``: Graph invites attendees either way)."""
        results: list[RemoteEvent | ProviderError | None] = [None] * len(items)
        creates: dict[int, BatchCall] = {}
        for index, (event, key) in enumerate(items):
            try:
                creates[index] = self._create_call(calendar_id, event, key)
            except InvalidEvent as exc:
                results[index] = exc
        lookups: dict[int, BatchCall] = {}
        for index, outcome in self._run_batch(creates, Operation.CREATE).items():
            event = items[index][0]
            if isinstance(outcome, TransactionIdUsed):
                if event.tag is None:
                    results[index] = _deleted_since(items[index][1])
                else:
                    lookups[index] = BatchCall(
                        "GET", self._tag_query(calendar_id, event.tag), headers={"Prefer": READ_PREFERENCES}
                    )
            else:
                results[index] = self._event_or_error(outcome, tag=event.tag)
        for index, outcome in self._run_batch(lookups, Operation.LIST).items():
            event, key = items[index]
            if isinstance(outcome, ProviderError):
                results[index] = outcome
                continue
            # Only tagged items were looked up.
            found = self._pick_tagged(outcome, event.tag or "", transaction_id_for(key, event.tag))
            results[index] = self._event_or_error(found) if found is not None else _deleted_since(key)
        return [r if r is not None else ProviderError("no result") for r in results]

    @staticmethod
    def _event_or_error(outcome: Any, *, tag: str | None = None) -> RemoteEvent | ProviderError:
        if isinstance(outcome, ProviderError):
            return outcome
        try:
            return parse_event(outcome, tag=tag)
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
        """PATCH only ``fields``; Graph mails the attendees of a meeting we organize whatever
        ``notify`` says: added ones an invitation, removed ones a cancellation and, unless only
        the attendees changed, the others an update."""
        # Only what changed: a PATCH leaves every other property as the calendar has it (R11).
        body = event_body(event, fields)
        headers = {"Prefer": READ_PREFERENCES}
        if etag:
            # A stale @odata.etag answers 412: the event changed since we read it.
            headers["If-Match"] = etag
        try:
            # https://learn.microsoft.com/en-us/graph/api/event-update
            raw = self._run(
                "PATCH", graph_path("me", "events", external_id), Operation.WRITE, body=body, headers=headers
            )
        except Conflict:
            # A retried write whose first attempt landed also answers 412: if the event already
            # holds exactly what we wanted, that is success, not a conflict.
            current = self._fetch(external_id)
            if not current.is_cancelled and same_content(current, event, fields):
                return current
            raise
        return parse_event(raw, tag=event.tag)

    def delete_event(
        self, calendar_id: str, external_id: str, *, etag: str | None = None, notify: bool = False
    ) -> None:
        """Delete; Graph cancels a meeting we organize for its attendees whatever ``notify`` says."""
        headers = {"If-Match": etag} if etag else None
        try:
            # https://learn.microsoft.com/en-us/graph/api/event-delete
            self._run("DELETE", graph_path("me", "events", external_id), Operation.WRITE, headers=headers)
        except NotFound:
            return  # already gone: the goal is reached

    def get_event(self, calendar_id: str, external_id: str) -> RemoteEvent:
        event = self._fetch(external_id)
        if event.is_cancelled:
            raise NotFound(f"Microsoft 365 event {external_id[:40]} was cancelled")
        return event

    def find_by_tag(self, calendar_id: str, tag: str) -> RemoteEvent | None:
        raw = self._tagged(calendar_id, tag)
        return parse_event(raw) if raw is not None else None
