"""Microsoft Exchange (EWS) implementation of ``CalendarProvider``, on exchangelib.

Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-operations-in-exchange
Facts this relies on are collected in /work/shared/PROVIDERS.md (Exchange section).
Item mapping lives in ``mapping.py``, error mapping in ``errors.py``, exchangelib set-up in ``client.py``,
the EWS requests in ``services.py`` and the change listings in ``changes.py``.

How the protocol's promises are kept over EWS:

- Idempotent creates: each item we create carries our idempotency key as an extended property.
  Every create first looks for the key (FindItem with a restriction) in the calendar and in
  Deleted Items, so a repeated or retried create adopts the item the first one made, and an
  item the user deleted since is reported as ``Conflict`` (a new key recreates it).
- Changes: SyncFolderItems with the folder's sync state as the cursor (ErrorInvalidSyncStateData
  -> ``CursorExpired``). Series come as masters; their occurrences in the window come from a
  CalendarView, so recurring events are synced as occurrences (R7).
- Conflicts: UpdateItem sends the item's ChangeKey (our etag) with ConflictResolution
  NeverOverwrite; a stale one answers ErrorIrresolvableConflict -> ``Conflict``.
- Meetings: Exchange mails attendees only when a request says so (``notify``: SendToAllAndSaveCopy,
  otherwise SendToNone), so nothing is sent behind the caller's back. A copy the mailbox was
  invited to names another organizer; once the organizer cancels it (IsCancelled) it counts as
  deleted. This Exchange adds no online meetings (``video_call_service`` None).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from exchangelib.restriction import Q

from calendarsync.providers.base import (
    AuthRevoked,
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
    same_content,
)
from calendarsync.providers.exchange.changes import full_listing, incremental_listing
from calendarsync.providers.exchange.client import (
    KEY_FIELD,
    TAG_FIELD,
    ExchangeClient,
    ExchangeLogin,
    reported_version,
)
from calendarsync.providers.exchange.errors import EXCHANGE_FAILURES, Operation, map_exchange_error
from calendarsync.providers.exchange.mapping import Cursor, item_fields, parse_item
from calendarsync.providers.exchange.services import EwsCalls
from calendarsync.providers.redaction import redact
from calendarsync.providers.retry import MAX_ATTEMPTS, call_with_retries, chunks, retry_delay, waits_inline

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Retry policy for transient failures (ErrorServerBusy, 5xx, timeouts, resets): a few attempts
# here, then TransientError for the caller (the Celery task) to reschedule. Sleeps honour the
# server's BackOffMilliseconds but are capped so a worker is never parked long.
# Items per CreateItem request (exchangelib would send 100); a failed batch stays cheap to retry.
BATCH_SIZE = 50


def _deleted_since(key: str) -> Conflict:
    return Conflict(
        f"The Exchange item created under key {key!r} was deleted since; creating it again needs a new key"
    )


Pending = list[tuple[int, EventData, str]]  # (index in the caller's list, event, idempotency key)
Outcomes = dict[int, RemoteEvent | ProviderError]


class ExchangeProvider:
    """``CalendarProvider`` over Exchange Web Services for one mailbox."""

    # SyncFolderItems skips items created and deleted between two calls.
    reports_unlisted_deletions = False
    # Exchange Server adds no Teams or Skype meeting to an item written over EWS.
    video_call_service: str | None = None
    # Exchange mails attendees only when the request asks it to (SendMeetingInvitations...).
    always_notifies_guests = False

    def __init__(
        self,
        client: ExchangeClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._client = client
        self._calls = EwsCalls(client)
        self._sleep = sleep
        self._attempts = max(1, attempts)

    @classmethod
    def from_credentials(
        cls,
        credentials: Mapping[str, Any],
        *,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = MAX_ATTEMPTS,
    ) -> ExchangeProvider:
        login = ExchangeLogin.from_credentials(credentials)
        if not login.email or not login.password or not login.server_url:
            raise AuthRevoked("Incomplete Exchange credentials: reconnect the account")
        return cls(ExchangeClient(login), sleep=sleep, attempts=attempts)

    def server_version(self) -> str:
        """The Exchange build the server reported in its last answer ("15.2.1544.4" for 2019)."""
        return reported_version(self._client.account)

    # ---------------------------------------------------------------- plumbing

    def _run(self, call: Callable[[], T], operation: Operation) -> T:
        """Make one EWS call, retrying transient failures (honouring the server's back-off)."""
        return call_with_retries(
            call,
            catch=EXCHANGE_FAILURES,
            to_error=lambda exc: map_exchange_error(exc, operation),
            sleep=self._sleep,
            label="Exchange",
            attempts=self._attempts,
        )

    def _fetch(self, external_id: str) -> RemoteEvent:
        [result] = self._calls.get_items([external_id])
        if isinstance(result, Exception):
            raise map_exchange_error(result, Operation.READ)
        event = parse_item(result, me=self._calls.email, owa_base=self._calls.owa_base)
        if event.is_cancelled:
            # The organizer cancelled the meeting: the copy stays until removed, but it is over.
            raise NotFound(f"The Exchange meeting {external_id!r} was cancelled by its organizer")
        return event

    # ---------------------------------------------------------------- reading

    def list_calendars(self) -> list[RemoteCalendarInfo]:
        folder = self._run(self._calls.default_calendar, Operation.LIST)
        rights = getattr(folder, "effective_rights", None)
        can_write = bool(getattr(rights, "create_contents", True)) if rights is not None else True
        name = str(folder.name or "Calendar")
        return [
            RemoteCalendarInfo(external_id=str(folder.id), name=name, is_primary=True, can_write=can_write)
        ]

    def list_changes(
        self,
        calendar_id: str,
        cursor: str | None,
        *,
        window_start: dt.datetime,
        window_end: dt.datetime,
    ) -> ChangePage:
        if cursor is None:
            return self._run(
                lambda: full_listing(self._calls, calendar_id, window_start, window_end), Operation.CHANGES
            )
        previous = Cursor.decode(cursor)
        return self._run(
            lambda: incremental_listing(self._calls, calendar_id, previous, window_start, window_end),
            Operation.CHANGES,
        )

    def get_event(self, calendar_id: str, external_id: str) -> RemoteEvent:
        return self._run(lambda: self._fetch(external_id), Operation.READ)

    def find_by_tag(self, calendar_id: str, tag: str) -> RemoteEvent | None:
        calendar = self._client.calendar_folder(calendar_id)
        query = Q(**{TAG_FIELD: tag})
        found = self._run(lambda: self._calls.find([calendar], query, (TAG_FIELD,)), Operation.LIST)
        for item in found:
            if getattr(item, TAG_FIELD, None) != tag:
                continue
            try:
                return self.get_event(calendar_id, str(item.id))
            except NotFound:
                continue
        return None

    # ---------------------------------------------------------------- creating

    def create_event(
        self, calendar_id: str, event: EventData, *, idempotency_key: str, notify: bool = False
    ) -> RemoteEvent:
        """Create once per key: a repeat (or a retry after a lost answer) adopts the first item.

        If that item was deleted in the calendar since (it sits in Deleted Items), raises
        ``Conflict``: creating it again takes a new idempotency key. ``notify``: the attendees get
        invitations; an adopted item was made (and mailed, or not) by the first attempt.
        """
        [result] = self.create_events(calendar_id, [(event, idempotency_key)], notify=notify)
        if isinstance(result, ProviderError):
            raise result
        return result

    def create_events(
        self, calendar_id: str, items: list[tuple[EventData, str]], *, notify: bool = False
    ) -> list[RemoteEvent | ProviderError]:
        """``create_event`` for many items: one FindItem and one CreateItem per BATCH_SIZE items."""
        results: list[RemoteEvent | ProviderError | None] = [None] * len(items)
        valid: list[int] = []
        for index, (event, _key) in enumerate(items):
            try:
                event.validate()
            except InvalidEvent as exc:
                results[index] = exc
                continue
            valid.append(index)
        for chunk in chunks(valid, BATCH_SIZE):
            pending = [(i, *items[i]) for i in chunk]
            for index, outcome in self._create_chunk(calendar_id, pending, notify).items():
                results[index] = outcome
        return [r if r is not None else ProviderError("no result") for r in results]

    def _create_chunk(self, calendar_id: str, chunk: Pending, notify: bool) -> Outcomes:
        """Find, create what is missing, read back; transient failures retry the rest of the chunk.

        A retry finds again first, so an item whose CreateItem did land (answer lost, or a
        batch aborted part-way) is adopted, never created twice (R10).
        """
        outcomes: Outcomes = {}
        pending = list(chunk)
        attempt = 0
        while pending:
            attempt += 1
            try:
                outcomes.update(self._create_attempt(calendar_id, pending, notify))
            except EXCHANGE_FAILURES as exc:
                error = map_exchange_error(exc, Operation.CREATE)
                if isinstance(error, AuthRevoked | InsufficientPermissions):
                    raise error from exc
                if not isinstance(error, TransientError) and len(pending) > 1:
                    # exchangelib raises on the first refused item of a batch: find the culprit
                    # by creating the rest one by one (each finds first what did land).
                    for entry in pending:
                        outcomes.update(self._create_chunk(calendar_id, [entry], notify))
                    return outcomes
                if (
                    not isinstance(error, TransientError)
                    or attempt >= self._attempts
                    or not waits_inline(retry_delay(error, attempt))
                ):
                    outcomes.update(dict.fromkeys((index for index, _, _ in pending), error))
                    return outcomes
                logger.warning(
                    "Exchange create: %s; retry %d of %d", redact(error.message), attempt, self._attempts - 1
                )
                self._sleep(retry_delay(error, attempt))
                continue
            retry = [entry for entry in pending if isinstance(outcomes.get(entry[0]), TransientError)]
            if not retry or attempt >= self._attempts:
                break
            delays = [outcomes[index] for index, _, _ in retry]
            delay = max(retry_delay(e, attempt) for e in delays if isinstance(e, TransientError))
            if not waits_inline(delay):
                break  # a long back-off: the items keep their TransientError, the run is rescheduled
            self._sleep(delay)
            pending = retry
        return outcomes

    def _existing(self, calendar_id: str, keys: list[str]) -> tuple[dict[str, str], set[str]]:
        """Which keys made an item already: key -> live item id, and the keys deleted since."""
        calendar = self._client.calendar_folder(calendar_id)
        trash = self._client.deleted_items_folder()
        # One FindItem over the calendar and Deleted Items (where Outlook's delete moves items).
        query = Q(**{f"{KEY_FIELD}__in": keys})
        found = self._calls.find([calendar, trash], query, (KEY_FIELD, "parent_folder_id"))
        live: dict[str, str] = {}
        deleted: set[str] = set()
        trash_id = self._calls.deleted_items_folder_id() if found else ""
        for item in found:
            key = str(getattr(item, KEY_FIELD, "") or "")
            parent = getattr(item, "parent_folder_id", None)
            if parent is not None and str(parent.id) == trash_id:
                deleted.add(key)
            else:
                live.setdefault(key, str(item.id))
        return live, deleted

    def _create_attempt(self, calendar_id: str, pending: Pending, notify: bool) -> Outcomes:
        """Create (and mail, when ``notify``) only the items no earlier attempt made."""
        live, deleted = self._existing(calendar_id, [key for _, _, key in pending])
        outcomes: Outcomes = {}
        to_create = [(i, event, key) for i, event, key in pending if key not in live and key not in deleted]
        for index, _, key in pending:
            if key in deleted and key not in live:
                outcomes[index] = _deleted_since(key)
        created_ids: dict[int, str] = {}
        if to_create:
            values = [item_fields(event, key=key) for _, event, key in to_create]
            created = self._calls.create_items(calendar_id, values, chunk_size=BATCH_SIZE, notify=notify)
            for (index, _, _), result in zip(to_create, created, strict=True):
                if isinstance(result, Exception):
                    outcomes[index] = map_exchange_error(result, Operation.CREATE)
                else:
                    created_ids[index] = str(result.id)
        wanted = {index: live[key] for index, _, key in pending if key in live} | created_ids
        order = list(wanted)
        for index, result in zip(order, self._calls.get_items([wanted[i] for i in order]), strict=True):
            if isinstance(result, Exception):
                error = map_exchange_error(result, Operation.READ)
                if isinstance(error, AuthRevoked | InsufficientPermissions | TransientError):
                    raise error
                outcomes[index] = error
                continue
            try:
                outcomes[index] = parse_item(result, me=self._calls.email, owa_base=self._calls.owa_base)
            except InvalidEvent as exc:
                outcomes[index] = exc
        return outcomes

    # ---------------------------------------------------------------- changing

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
        # Only what changed: UpdateItem sets (SetItemField) just these properties (R11). A video
        # call is not among them (``video_call_service`` is None): nothing to write, nothing sent.
        values = item_fields(event, fields=fields)
        if not values:
            return self.get_event(calendar_id, external_id)

        def update() -> RemoteEvent:
            result = self._calls.update_item(external_id, etag, values, notify=notify)
            if isinstance(result, Exception):
                raise result
            return self._fetch(external_id)

        try:
            return self._run(update, Operation.WRITE)
        except Conflict:
            # A retried write whose first attempt did land also meets a stale key: if the item
            # already holds exactly what we wanted, that is success, not a conflict.
            current = self._run(lambda: self._fetch(external_id), Operation.READ)
            if same_content(current, event, fields):
                return current
            raise

    def delete_event(
        self, calendar_id: str, external_id: str, *, etag: str | None = None, notify: bool = False
    ) -> None:
        def delete() -> None:
            result = self._calls.delete_item(external_id, notify=notify)
            if isinstance(result, Exception):
                raise result

        try:
            self._run(delete, Operation.WRITE)
        except NotFound:
            return  # already gone: the goal is reached
