"""Who and what an EWS request names: the authenticated mailbox, its folders, its items and occurrences."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from calendarsync.emulators.exchange_items import View
from calendarsync.emulators.exchange_state import (
    ExchangeState,
    Folder,
    Mailbox,
    StoredItem,
    now,
    parse_occurrence_id,
)
from calendarsync.emulators.exchange_xml import (
    EwsError,
    SoapError,
    child_text,
    t,
)

ACCESS_DENIED = "Access is denied. Check credentials and try again."
ITEM_NOT_FOUND = "The specified object was not found in the store."
# Called for each item CreateItem is about to create; an EwsError it raises fails that item alone.
ItemHook = Callable[[], None]


@dataclass
class Context:
    state: ExchangeState
    mailbox: Mailbox
    before_create: ItemHook | None = None


# --------------------------------------------------------------------------- folders and ids


def resolve_folder(ctx: Context, elem: Element) -> Folder:
    """A t:DistinguishedFolderId (of this mailbox) or t:FolderId -> the folder."""
    if elem.tag == t("DistinguishedFolderId"):
        mailbox_elem = elem.find(t("Mailbox"))
        owner = child_text(mailbox_elem, t("EmailAddress")) if mailbox_elem is not None else None
        if owner and owner.strip().lower() != ctx.mailbox.email:
            if owner.strip().lower() in ctx.state.mailboxes:
                raise EwsError("ErrorAccessDenied", ACCESS_DENIED)
            raise EwsError("ErrorNonExistentMailbox", f"No mailbox with such guid or SMTP address {owner}.")
        name = elem.attrib.get("Id", "")
        folder = ctx.mailbox.folders.get(name)
        if folder is None:
            raise EwsError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
    elif elem.tag == t("FolderId"):
        found = ctx.mailbox.folder_by_id(elem.attrib.get("Id", ""))
        if found is None:
            raise EwsError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
        folder = found
    else:
        raise EwsError("ErrorSchemaValidation", "Expected a folder id.")
    if folder.is_calendar and not ctx.mailbox.calendar_access:
        raise EwsError("ErrorAccessDenied", ACCESS_DENIED)
    return folder


def _item_view(ctx: Context, item: StoredItem) -> View:
    folder = ctx.mailbox.folder(item.folder)
    if folder.is_calendar and not ctx.mailbox.calendar_access:
        raise EwsError("ErrorAccessDenied", ACCESS_DENIED)
    return View.of_item(item, folder)


def resolve_item(ctx: Context, elem: Element) -> tuple[View, str | None]:
    """An item id element -> the item (or occurrence) and the ChangeKey the client sent."""
    change_key = elem.attrib.get("ChangeKey") or None
    if elem.tag == t("ItemId"):
        item_id = elem.attrib.get("Id", "")
        item = ctx.mailbox.find_item(item_id)
        if item is not None:
            return _item_view(ctx, item), change_key
        occurrence = parse_occurrence_id(item_id)
        if occurrence is not None:
            master = ctx.mailbox.find_item(occurrence[0])
            instance = master.instance_at(occurrence[1]) if master is not None and master.is_master else None
            if master is not None and instance is not None:
                view = _item_view(ctx, master)
                return View.of_instance(instance, view.folder), change_key
        raise EwsError("ErrorItemNotFound", ITEM_NOT_FOUND)
    if elem.tag == t("OccurrenceItemId"):
        master = ctx.mailbox.find_item(elem.attrib.get("RecurringMasterId", ""))
        try:
            index = int(elem.attrib.get("InstanceIndex", ""))
        except ValueError:
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.") from None
        if master is None or not master.is_master:
            raise EwsError("ErrorItemNotFound", ITEM_NOT_FOUND)
        instance = master.instance_by_index(index)
        if instance is None:
            slots = master.slots(max(master.data.start, now()) + dt.timedelta(days=3660))
            if 1 <= index <= len(slots) and slots[index - 1][0] in master.deleted_occurrences:
                raise EwsError(
                    "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                    "Occurrence with this index was previously deleted from the recurrence.",
                )
            raise EwsError(
                "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", "Occurrence index is out of range."
            )
        view = _item_view(ctx, master)
        return View.of_instance(instance, view.folder), change_key
    if elem.tag == t("RecurringMasterItemId"):
        occurrence = parse_occurrence_id(elem.attrib.get("OccurrenceId", ""))
        master = ctx.mailbox.find_item(occurrence[0]) if occurrence is not None else None
        if master is None:
            raise EwsError("ErrorItemNotFound", ITEM_NOT_FOUND)
        return _item_view(ctx, master), change_key
    raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")


def children(elem: Element, tag: str) -> list[Element]:
    container = elem.find(tag)
    if container is None:
        raise SoapError("ErrorSchemaValidation", f"The request failed schema validation: {tag} is missing.")
    return list(container)


def folder_views(ctx: Context, folder: Folder) -> list[View]:
    return [View.of_item(item, folder) for item in folder.items.values()]
