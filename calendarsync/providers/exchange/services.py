"""The EWS calls the adapter makes, on exchangelib's service classes: one method per request kind.

No retries and no error mapping here (the adapter does both); each method consumes exchangelib's
generators, so a failure surfaces where the call is made. Per-item errors exchangelib hands back
instead of raising (a missing item in GetItem, a refused one in CreateItem) come back in the lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from exchangelib import EWSDateTime
from exchangelib.fields import FieldPath
from exchangelib.items import (
    ALL_OCCURRENCES,
    ALWAYS_OVERWRITE,
    MOVE_TO_DELETED_ITEMS,
    NEVER_OVERWRITE,
    SAVE_ONLY,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_NONE,
    CalendarItem,
)
from exchangelib.properties import CalendarView, ItemId
from exchangelib.restriction import Restriction
from exchangelib.services import (
    CreateItem,
    DeleteItem,
    FindItem,
    GetFolder,
    GetItem,
    SyncFolderItems,
    UpdateItem,
)

from calendarsync.providers.base import ProviderError
from calendarsync.providers.exchange.client import ExchangeClient
from calendarsync.providers.exchange.mapping import READ_FIELDS, UTC, WRITE_FIELDS, owa_base_url

# SyncFolderItems' MaxChangesReturned is 1..512.
SYNC_PAGE_SIZE = 512
# Items per CalendarView; a fuller window is split in two (CalendarView has no paging).
VIEW_MAX_ITEMS = 1000
MIN_VIEW_SPAN = dt.timedelta(hours=1)
FIND_PAGE_SIZE = 100


def fields(*names: str) -> list[Any]:
    return [FieldPath(field=CalendarItem.get_field_by_fieldname(name)) for name in names]


def ews_moment(moment: dt.datetime) -> Any:
    utc = moment.astimezone(dt.UTC)
    return EWSDateTime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, tzinfo=UTC)


def send_mode(notify: bool) -> str:
    """The send attribute of CreateItem, UpdateItem and DeleteItem: mail the attendees, or nobody."""
    return str(SEND_TO_ALL_AND_SAVE_COPY if notify else SEND_TO_NONE)


def _raise_errors(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


class EwsCalls:
    """One mailbox's EWS requests (the ``ExchangeClient`` holds its exchangelib Account)."""

    def __init__(self, client: ExchangeClient) -> None:
        self.client = client
        self.account = client.account
        self._deleted_items_id: str | None = None
        self.owa_base = owa_base_url(client.login.server_url)

    @property
    def email(self) -> str:
        """The mailbox's address (its own meetings name it as organizer)."""
        return self.client.login.email

    def default_calendar(self) -> Any:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getfolder-operation
        return self.client.default_calendar()

    def deleted_items_folder_id(self) -> str:
        """The id of Deleted Items (asked once per adapter: only needed when a key was found)."""
        if self._deleted_items_id is None:
            # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getfolder-operation
            service = GetFolder(account=self.account)
            [folder] = _raise_errors(
                list(
                    service.call(
                        folders=[self.client.deleted_items_folder()], additional_fields=[], shape="IdOnly"
                    )
                )
            )
            self._deleted_items_id = str(folder.id)
        return self._deleted_items_id

    def get_items(self, item_ids: Sequence[str]) -> list[Any]:
        """GetItem with our read fields: CalendarItems, or exchangelib errors for missing ones, in order."""
        if not item_ids:
            return []
        ids = [ItemId(id=item_id) for item_id in item_ids]
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getitem-operation
        service = GetItem(account=self.account)
        return list(service.call(items=ids, additional_fields=fields(*READ_FIELDS), shape="IdOnly"))

    def find(self, folders: list[Any], query: Any, wanted: Sequence[str]) -> list[Any]:
        """FindItem (no CalendarView) with a restriction, in one or more folders, all pages."""
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/finditem-operation
        restriction = Restriction(query, folders=folders, applies_to=Restriction.ITEMS)
        service = FindItem(account=self.account, page_size=FIND_PAGE_SIZE)
        found = service.call(
            folders=folders,
            additional_fields=fields(*wanted),
            restriction=restriction,
            order_fields=None,
            shape="IdOnly",
            query_string=None,
            depth="Shallow",
            calendar_view=None,
            max_items=None,
            offset=0,
        )
        return _raise_errors(list(found))

    def view(self, calendar_id: str, start: dt.datetime, end: dt.datetime) -> list[Any]:
        """Every item and occurrence in [start, end) (CalendarView): id, type and UID only."""
        folder = self.client.calendar_folder(calendar_id)
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/calendarview
        calendar_view = CalendarView(start=ews_moment(start), end=ews_moment(end), max_items=VIEW_MAX_ITEMS)
        service = FindItem(account=self.account, page_size=VIEW_MAX_ITEMS)
        found = service.call(
            folders=[folder],
            additional_fields=fields("type", "uid"),
            restriction=None,
            order_fields=None,
            shape="IdOnly",
            query_string=None,
            depth="Shallow",
            calendar_view=calendar_view,
            max_items=VIEW_MAX_ITEMS,
            offset=0,
        )
        items = _raise_errors(list(found))
        if len(items) >= VIEW_MAX_ITEMS and end - start > MIN_VIEW_SPAN:
            # The view was cut off: look at each half (a long item in both halves is kept once).
            middle = start + (end - start) / 2
            seen: dict[str, Any] = {}
            for item in [*self.view(calendar_id, start, middle), *self.view(calendar_id, middle, end)]:
                seen.setdefault(item.id, item)
            return list(seen.values())
        return items

    def sync(self, calendar_id: str, sync_state: str | None) -> tuple[list[tuple[str, Any]], str]:
        """Every change since ``sync_state`` (all pages: until IncludesLastItemInRange) and the new state."""
        folder = self.client.calendar_folder(calendar_id)
        changes: list[tuple[str, Any]] = []
        state = sync_state
        while True:
            service = SyncFolderItems(account=self.account)
            # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/syncfolderitems-operation
            page = service.call(
                folder=folder,
                shape="IdOnly",
                additional_fields=fields("type", "uid"),
                sync_state=state,
                ignore=None,
                max_changes_returned=SYNC_PAGE_SIZE,
                sync_scope=None,
            )
            changes.extend(page)
            if not service.sync_state:
                raise ProviderError("Exchange ended a change listing without a sync state")
            state = service.sync_state
            if service.includes_last_item_in_range:
                return changes, state

    def create_items(
        self, calendar_id: str, items: list[dict[str, Any]], chunk_size: int, *, notify: bool
    ) -> list[Any]:
        """CreateItem in the calendar, ``chunk_size`` items per request: created ids or per-item errors.

        ``notify``: Exchange mails an invitation to each attendee (SendToAllAndSaveCopy); otherwise
        none, and the meeting stays out of the attendees' calendars (SendToNone).
        """
        calendar = self.client.calendar_folder(calendar_id)
        new_items = [CalendarItem(account=self.account, folder=calendar, **values) for values in items]
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem-operation
        # SendMeetingInvitations: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem
        service = CreateItem(account=self.account, chunk_size=chunk_size)
        created = service.call(
            items=new_items,
            folder=calendar,
            message_disposition=SAVE_ONLY,
            send_meeting_invitations=send_mode(notify),
        )
        return list(created)

    def update_item(self, external_id: str, etag: str | None, values: dict[str, Any], *, notify: bool) -> Any:
        """UpdateItem of our fields: the new id and ChangeKey, or the item's error.

        ``notify``: Exchange mails the attendees (SendToAllAndSaveCopy: invitations to added ones,
        cancellations to removed ones, an update to the rest); otherwise nobody (SendToNone).
        """
        item = CalendarItem(account=self.account, id=external_id, changekey=etag, **values)
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updateitem-operation
        # SendMeetingInvitationsOrCancellations: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updateitem
        # With our ChangeKey and NeverOverwrite, a stale key answers ErrorIrresolvableConflict.
        service = UpdateItem(account=self.account)
        [result] = service.call(
            items=[(item, [name for name in WRITE_FIELDS if name in values])],
            conflict_resolution=NEVER_OVERWRITE if etag else ALWAYS_OVERWRITE,
            message_disposition=SAVE_ONLY,
            send_meeting_invitations_or_cancellations=send_mode(notify),
            suppress_read_receipts=True,
        )
        return result

    def delete_item(self, external_id: str, *, notify: bool) -> Any:
        """DeleteItem as MoveToDeletedItems (restorable, as a delete in Outlook): True or the item's error.

        ``notify``: Exchange mails each attendee a cancellation (SendToAllAndSaveCopy); otherwise none.
        """
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/deleteitem-operation
        # SendMeetingCancellations: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/deleteitem
        service = DeleteItem(account=self.account)
        [result] = service.call(
            items=[ItemId(id=external_id)],
            delete_type=MOVE_TO_DELETED_ITEMS,
            send_meeting_cancellations=send_mode(notify),
            affected_task_occurrences=ALL_OCCURRENCES,
            suppress_read_receipts=True,
        )
        return result
