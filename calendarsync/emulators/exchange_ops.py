"""The EWS operations the emulator serves, against one authenticated mailbox.

GetFolder, SyncFolderItems, FindItem (IndexedPageItemView, CalendarView, Restriction),
GetItem, CreateItem (calendar items, and meeting responses), UpdateItem (ChangeKey +
ConflictResolution) and DeleteItem, answering with Exchange's response messages and error codes;
their send attributes mail the attendees of meetings (``exchange_meetings``). Callers hold `ExchangeState.lock`.

Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-operations-in-exchange
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from xml.etree.ElementTree import Element

from calendarsync.emulators.exchange_find import find_item
from calendarsync.emulators.exchange_items import Shape, View, id_only, render_item
from calendarsync.emulators.exchange_meetings import (
    CREATE_OR_DELETE_MODES,
    RESPONSE_TAGS,
    SEND_TO_NONE,
    UPDATE_MODES,
    MeetingSnapshot,
    require_mode,
    respond,
    send_cancellations,
    send_invitations,
    send_mode,
    send_occurrence_cancellations,
    send_updates,
    sends_from,
)
from calendarsync.emulators.exchange_occurrences import check_occurrence_move
from calendarsync.emulators.exchange_parse import apply_update, parse_new_item
from calendarsync.emulators.exchange_resolve import (
    ACCESS_DENIED,
    Context,
    children,
    resolve_folder,
    resolve_item,
)
from calendarsync.emulators.exchange_state import (
    CALENDAR,
    DELETED_ITEMS,
    ROOT,
    SENT_ITEMS,
    Folder,
    StoredItem,
    validate_item,
)
from calendarsync.emulators.exchange_xml import (
    EwsError,
    Node,
    SoapError,
    bool_text,
    child_text,
    m,
    node,
    operation_response,
    response_message,
    t,
)

MAX_SYNC_CHANGES = 512  # MaxChangesReturned is 1..512
# --------------------------------------------------------------------------- GetFolder


def _render_folder(folder: Folder) -> Node:
    tag = "t:CalendarFolder" if folder.is_calendar else "t:Folder"
    rendered = node(tag).add(node("t:FolderId", Id=folder.id, ChangeKey="AQAAABYAAAA="))
    if folder.parent_id:
        rendered.add(node("t:ParentFolderId", Id=folder.parent_id, ChangeKey="AQAAAA=="))
    if folder.folder_class:
        rendered.add(node("t:FolderClass", folder.folder_class))
    rendered.add(node("t:DisplayName", folder.name))
    if folder.distinguished != ROOT:
        rendered.add(node("t:TotalCount", str(len(folder.items))))
    rendered.add(
        node(
            "t:ChildFolderCount",
            "0" if folder.is_calendar or folder.distinguished in (DELETED_ITEMS, SENT_ITEMS) else "1",
        )
    )
    rights = node("t:EffectiveRights").extend(
        node(f"t:{name}", "true")
        for name in ("CreateAssociated", "CreateContents", "CreateHierarchy", "Delete")
    )
    rights.extend([node("t:Modify", "true"), node("t:Read", "true")])
    rendered.add(rights)
    if folder.distinguished != ROOT:
        rendered.add(node("t:UnreadCount", "0"))
    return rendered


def get_folder(ctx: Context, request: Element) -> bytes:
    messages = []
    for folder_elem in children(request, m("FolderIds")):
        try:
            folder = resolve_folder(ctx, folder_elem)
        except EwsError as error:
            messages.append(response_message("GetFolder", error=error))
            continue
        message = response_message("GetFolder")
        message.add(node("m:Folders").add(_render_folder(folder)))
        messages.append(message)
    return operation_response("GetFolder", messages)


# --------------------------------------------------------------------------- SyncFolderItems


def sync_folder_items(ctx: Context, request: Element) -> bytes:
    try:
        message = _sync_folder_items(ctx, request)
    except EwsError as error:
        # exchangelib reads SyncState and IncludesLastItemInRange before the response code.
        message = response_message("SyncFolderItems", error=error)
        message.extend([node("m:SyncState", ""), node("m:IncludesLastItemInRange", "true")])
    return operation_response("SyncFolderItems", [message])


def _sync_folder_items(ctx: Context, request: Element) -> Node:
    shape = Shape.parse(request.find(m("ItemShape")))
    folder_ids = children(request, m("SyncFolderId"))
    if len(folder_ids) != 1:
        raise SoapError("ErrorSchemaValidation", "The request failed schema validation: one SyncFolderId.")
    folder = resolve_folder(ctx, folder_ids[0])
    try:
        limit = int(child_text(request, m("MaxChangesReturned")) or "")
    except ValueError:
        raise SoapError("ErrorSchemaValidation", "MaxChangesReturned must be a number.") from None
    if not 1 <= limit <= MAX_SYNC_CHANGES:
        raise SoapError("ErrorSchemaValidation", "MaxChangesReturned must be between 1 and 512.")
    token = (child_text(request, m("SyncState")) or "").strip()
    since = ctx.state.sync_state(token, ctx.mailbox.email, folder.id).seq if token else 0
    ignore_elem = request.find(m("Ignore"))
    ignored = {e.attrib.get("Id", "") for e in ignore_elem} if ignore_elem is not None else set()

    entries: list[tuple[int, str, Node]] = []
    for item in folder.items.values():
        if item.change_seq > since and item.id not in ignored:
            kind = "t:Create" if item.created_seq > since else "t:Update"
            view = View.of_item(item, folder)
            entries.append((item.change_seq, kind, render_item(view, shape, ctx.mailbox)))
    for item_id, (removed_seq, created_seq) in folder.tombstones.items():
        if removed_seq > since and created_seq <= since:
            entries.append((removed_seq, "t:Delete", node("t:ItemId", Id=item_id, ChangeKey="AAAAAA==")))
    entries.sort(key=lambda entry: entry[0])
    page, last_page = entries[:limit], len(entries) <= limit
    new_seq = ctx.state.seq if last_page else page[-1][0]
    message = response_message("SyncFolderItems")
    message.add(node("m:SyncState", ctx.state.new_sync_state(ctx.mailbox.email, folder.id, new_seq)))
    message.add(node("m:IncludesLastItemInRange", bool_text(last_page)))
    changes = node("m:Changes")
    for _, kind, rendered in page:
        changes.add(node(kind).add(rendered))
    message.add(changes)
    return message


# --------------------------------------------------------------------------- GetItem


def get_item(ctx: Context, request: Element) -> bytes:
    shape = Shape.parse(request.find(m("ItemShape")))
    messages = []
    for id_elem in children(request, m("ItemIds")):
        try:
            view, _ = resolve_item(ctx, id_elem)
        except EwsError as error:
            messages.append(response_message("GetItem", error=error))
            continue
        message = response_message("GetItem")
        message.add(node("m:Items").add(render_item(view, shape, ctx.mailbox)))
        messages.append(message)
    return operation_response("GetItem", messages)


# --------------------------------------------------------------------------- CreateItem


def create_item(ctx: Context, request: Element) -> bytes:
    folder_ids = request.find(m("SavedItemFolderId"))
    if folder_ids is not None and len(folder_ids):
        folder = resolve_folder(ctx, folder_ids[0])
    else:
        folder = ctx.mailbox.folder(CALENDAR)
        if not ctx.mailbox.calendar_access:
            raise EwsError("ErrorAccessDenied", ACCESS_DENIED)
    invitations = send_mode(request, "SendMeetingInvitations", CREATE_OR_DELETE_MODES)
    disposition = request.attrib.get("MessageDisposition")
    messages = []
    for item_elem in children(request, m("Items")):
        try:
            if ctx.before_create is not None:
                ctx.before_create()
            if item_elem.tag in RESPONSE_TAGS:
                # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem-operation-meeting-request
                # SendOnly and SendAndSaveCopy return no item id (nor does this emulator for SaveOnly).
                respond(ctx.state, ctx.mailbox, item_elem, disposition)
                messages.append(response_message("CreateItem").add(node("m:Items")))
                continue
            item = _create_calendar_item(ctx, folder, item_elem, invitations)
        except EwsError as error:
            messages.append(response_message("CreateItem", error=error))
            continue
        message = response_message("CreateItem")
        message.add(node("m:Items").add(id_only(View.of_item(item, folder))))
        messages.append(message)
    return operation_response("CreateItem", messages)


def _create_calendar_item(
    ctx: Context, folder: Folder, item_elem: Element, invitations: str | None
) -> StoredItem:
    """One t:CalendarItem; its attendees are invited only when the request asks to send."""
    mode = require_mode(invitations, "SendMeetingInvitations")
    data, uid = parse_new_item(item_elem)
    item = ctx.state.create_item(folder, data, uid)
    if mode != SEND_TO_NONE and sends_from(ctx.mailbox, item):
        send_invitations(ctx.state, ctx.mailbox, item)
    return item


# --------------------------------------------------------------------------- UpdateItem


def update_item(ctx: Context, request: Element) -> bytes:
    resolution = request.attrib.get("ConflictResolution", "AutoResolve")
    if resolution not in ("NeverOverwrite", "AutoResolve", "AlwaysOverwrite"):
        raise SoapError("ErrorSchemaValidation", f"ConflictResolution {resolution!r} is not valid.")
    mode = send_mode(request, "SendMeetingInvitationsOrCancellations", UPDATE_MODES)
    messages = []
    for change in children(request, m("ItemChanges")):
        try:
            messages.append(_update_one(ctx, change, resolution, mode))
        except EwsError as error:
            messages.append(response_message("UpdateItem", error=error))
    return operation_response("UpdateItem", messages)


def _update_one(ctx: Context, change: Element, resolution: str, mode: str | None) -> Node:
    id_elem = next((child for child in change if child.tag != t("Updates")), None)
    updates = change.find(t("Updates"))
    if id_elem is None or updates is None:
        raise EwsError("ErrorSchemaValidation", "An ItemChange needs an item id and updates.")
    view, change_key = resolve_item(ctx, id_elem)
    send = require_mode(mode, "SendMeetingInvitationsOrCancellations")
    ctx.state.take_item_fault(view.id)
    # A stale ChangeKey: someone changed the item since the client read it. Exchange only
    # overwrites with AlwaysOverwrite; this emulator resolves nothing automatically either.
    if change_key is not None and change_key != view.change_key and resolution != "AlwaysOverwrite":
        raise EwsError(
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the "
            "request does not match the current change key for the item.",
        )
    data = copy.deepcopy(view.data)
    for update in updates:
        apply_update(data, update)
    master = view.stored
    before = MeetingSnapshot.of(master)
    if view.original_start is not None:
        data.recurrence = None
        validate_item(data)
        check_occurrence_move(master, view.original_start, data)
        master.exceptions[view.original_start] = data
        ctx.state.touch(master)
        rendered_id = View(
            view.id, master.change_key, data, master, view.folder, "Exception", view.original_start
        )
    else:
        validate_item(data)
        master.data = data
        if data.recurrence is None:
            master.exceptions.clear()
            master.deleted_occurrences.clear()
        ctx.state.touch(master)
        rendered_id = View.of_item(master, view.folder)
    if send != SEND_TO_NONE and sends_from(ctx.mailbox, master):
        send_updates(ctx.state, ctx.mailbox, master, before, send)
    message = response_message("UpdateItem")
    message.add(node("m:Items").add(id_only(rendered_id)))
    message.add(node("m:ConflictResults").add(node("t:Count", "0")))
    return message


# --------------------------------------------------------------------------- DeleteItem


def delete_item(ctx: Context, request: Element) -> bytes:
    delete_type = request.attrib.get("DeleteType", "")
    if delete_type not in ("HardDelete", "SoftDelete", "MoveToDeletedItems"):
        raise SoapError(
            "ErrorSchemaValidation", "DeleteType must be HardDelete, SoftDelete or MoveToDeletedItems."
        )
    cancellations = send_mode(request, "SendMeetingCancellations", CREATE_OR_DELETE_MODES)
    messages = []
    for id_elem in children(request, m("ItemIds")):
        try:
            view, _ = resolve_item(ctx, id_elem)
            mode = require_mode(cancellations, "SendMeetingCancellations")
            ctx.state.take_item_fault(view.id)
        except EwsError as error:
            messages.append(response_message("DeleteItem", error=error))
            continue
        send = mode != SEND_TO_NONE and sends_from(ctx.mailbox, view.stored)
        _delete_one(ctx, view, delete_type, send=send)
        messages.append(response_message("DeleteItem"))
    return operation_response("DeleteItem", messages)


def _delete_one(ctx: Context, view: View, delete_type: str, *, send: bool) -> None:
    """Delete an item or one occurrence; the organizer's delete that asked to send cancels the
    meeting (or that occurrence) for the attendees.
    https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/deleteitem
    """
    if view.original_start is not None:
        view.stored.exceptions.pop(view.original_start, None)
        view.stored.deleted_occurrences.add(view.original_start)
        ctx.state.touch(view.stored)
        if send:
            send_occurrence_cancellations(ctx.state, ctx.mailbox, view.stored)
        return
    if send:
        send_cancellations(ctx.state, ctx.mailbox, view.stored)
    # SoftDelete goes to the dumpster (Recoverable Items), out of sight like a hard delete.
    ctx.state.remove_item(ctx.mailbox, view.stored, hard=delete_type != "MoveToDeletedItems")


OPERATIONS: dict[str, Callable[[Context, Element], bytes]] = {
    "GetFolder": get_folder,
    "SyncFolderItems": sync_folder_items,
    "FindItem": find_item,
    "GetItem": get_item,
    "CreateItem": create_item,
    "UpdateItem": update_item,
    "DeleteItem": delete_item,
}
