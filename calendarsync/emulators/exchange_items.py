"""Calendar items of the Exchange emulator on the wire: render by item shape, compare in restrictions.

Parsing what clients write lives in ``exchange_parse``.

Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/calendaritem
and https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/itemshape
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree.ElementTree import Element

from calendarsync.emulators.exchange_state import (
    Attendee,
    EwsRecurrence,
    ExtendedKey,
    Folder,
    Instance,
    ItemData,
    Mailbox,
    StoredItem,
    occurrence_id,
)
from calendarsync.emulators.exchange_xml import (
    EwsError,
    Node,
    bool_text,
    child_text,
    format_datetime,
    node,
    t,
    text_node,
)

# What BaseShape Default returns for a calendar item besides the id (AllProperties adds the rest).
DEFAULT_FIELDS = (
    "item:ParentFolderId",
    "item:ItemClass",
    "item:Subject",
    "item:Sensitivity",
    "item:HasAttachments",
    "calendar:Start",
    "calendar:End",
    "calendar:IsAllDayEvent",
    "calendar:LegacyFreeBusyStatus",
    "calendar:Location",
    "calendar:CalendarItemType",
    "calendar:Organizer",
)
# FindItem cannot return these (Exchange answers ErrorInvalidPropertyRequest): use GetItem.
NOT_IN_FIND_ITEM = frozenset(
    {
        "item:Body",
        "item:Attachments",
        "calendar:RequiredAttendees",
        "calendar:OptionalAttendees",
        "calendar:Resources",
        "calendar:Recurrence",
        "calendar:ModifiedOccurrences",
        "calendar:DeletedOccurrences",
        "calendar:StartTimeZone",
        "calendar:EndTimeZone",
    }
)


# --------------------------------------------------------------------------- extended properties


def extended_key(uri: Element) -> ExtendedKey:
    """The identity of an ExtendedFieldURI: property set (or tag), name (or id), type."""
    attrs = uri.attrib
    if attrs.get("PropertyTag"):
        return ("tag", attrs["PropertyTag"].lower(), attrs.get("PropertyType", ""))
    property_set = (attrs.get("PropertySetId") or attrs.get("DistinguishedPropertySetId") or "").lower()
    name = attrs.get("PropertyName") or attrs.get("PropertyId") or ""
    if not property_set or not name or not attrs.get("PropertyType"):
        raise EwsError(
            "ErrorInvalidExtendedProperty", "The extended property attribute combination is invalid."
        )
    return (property_set, name, attrs["PropertyType"])


def extended_uri_node(key: ExtendedKey) -> Node:
    property_set, name, property_type = key
    if property_set == "tag":
        return node("t:ExtendedFieldURI", PropertyTag=name, PropertyType=property_type)
    set_attr = "PropertySetId" if "-" in property_set else "DistinguishedPropertySetId"
    name_attr = "PropertyId" if name.isdigit() else "PropertyName"
    return node(
        "t:ExtendedFieldURI", **{set_attr: property_set, name_attr: name, "PropertyType": property_type}
    )


# --------------------------------------------------------------------------- requested properties


@dataclass(frozen=True)
class Shape:
    """What an ItemShape asks for: a base shape plus additional field URIs and extended properties."""

    base: str
    fields: frozenset[str]
    extended: tuple[ExtendedKey, ...]

    @classmethod
    def parse(cls, elem: Element | None, *, for_find: bool = False) -> Shape:
        if elem is None:
            raise EwsError("ErrorSchemaValidation", "The request has no ItemShape.")
        base = child_text(elem, t("BaseShape")) or ""
        if base not in ("IdOnly", "Default", "AllProperties"):
            raise EwsError("ErrorSchemaValidation", f"BaseShape {base!r} is not valid.")
        fields: set[str] = set()
        extended: list[ExtendedKey] = []
        additional = elem.find(t("AdditionalProperties"))
        for uri in additional if additional is not None else ():
            if uri.tag == t("FieldURI"):
                fields.add(uri.attrib.get("FieldURI", ""))
            elif uri.tag == t("ExtendedFieldURI"):
                extended.append(extended_key(uri))
        if for_find and fields & NOT_IN_FIND_ITEM:
            raise EwsError(
                "ErrorInvalidPropertyRequest",
                f"The property {sorted(fields & NOT_IN_FIND_ITEM)[0]} can't be used in FindItem requests.",
            )
        if base == "Default":
            fields.update(DEFAULT_FIELDS)
        elif base == "AllProperties":
            fields.update(RENDERERS)
            if for_find:
                fields -= NOT_IN_FIND_ITEM
        return cls(base=base, fields=frozenset(fields), extended=tuple(extended))


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class View:
    """An item as rendered: a stored single item or master, or one occurrence of a series."""

    id: str
    change_key: str
    data: ItemData
    stored: StoredItem
    folder: Folder
    kind: str  # Single, RecurringMaster, Occurrence, Exception
    original_start: dt.datetime | None = None

    @classmethod
    def of_item(cls, item: StoredItem, folder: Folder) -> View:
        kind = "RecurringMaster" if item.is_master else "Single"
        return cls(item.id, item.change_key, item.data, item, folder, kind)

    @classmethod
    def of_instance(cls, instance: Instance, folder: Folder) -> View:
        master = instance.master
        return cls(
            instance.id,
            master.change_key,
            instance.data,
            master,
            folder,
            "Exception" if instance.is_exception else "Occurrence",
            instance.original_start,
        )


def _mailbox_node(tag: str, email: str, name: str) -> Node:
    return node(tag).add(
        node("t:Mailbox").extend(
            [node("t:Name", name or email), node("t:EmailAddress", email), node("t:RoutingType", "SMTP")]
        )
    )


def _attendees_node(tag: str, attendees: list[Attendee]) -> Node | None:
    if not attendees:
        return None
    container = node(tag)
    for attendee in attendees:
        entry = _mailbox_node("t:Attendee", attendee.email, attendee.name)
        entry.add(node("t:ResponseType", attendee.response))
        container.add(entry)
    return container


def _recurrence_node(recurrence: EwsRecurrence | None) -> Node | None:
    if recurrence is None:
        return None
    pattern = node(f"t:{recurrence.pattern}")
    if recurrence.pattern == "AbsoluteYearlyRecurrence":
        pattern.add(node("t:DayOfMonth", str(recurrence.day_of_month)))
        pattern.add(node("t:Month", recurrence.month or "January"))
    else:
        pattern.add(node("t:Interval", str(recurrence.interval)))
        if recurrence.pattern == "WeeklyRecurrence":
            pattern.add(node("t:DaysOfWeek", " ".join(recurrence.days_of_week)))
            pattern.add(node("t:FirstDayOfWeek", recurrence.first_day_of_week))
        elif recurrence.pattern == "AbsoluteMonthlyRecurrence":
            pattern.add(node("t:DayOfMonth", str(recurrence.day_of_month)))
    span = node(f"t:{recurrence.range_kind}")
    span.add(text_node("t:StartDate", recurrence.start_date.isoformat() if recurrence.start_date else None))
    if recurrence.range_kind == "EndDateRecurrence" and recurrence.end_date is not None:
        span.add(node("t:EndDate", recurrence.end_date.isoformat()))
    if recurrence.range_kind == "NumberedRecurrence":
        span.add(node("t:NumberOfOccurrences", str(recurrence.count)))
    return node("t:Recurrence").extend([pattern, span])


def _modified_occurrences_node(view: View) -> Node | None:
    """A master's changed occurrences: their ids, times now and original starts."""
    master = view.stored
    if view.kind != "RecurringMaster" or not master.exceptions:
        return None
    container = node("t:ModifiedOccurrences")
    for original_start in sorted(master.exceptions):
        data = master.exceptions[original_start]
        container.add(
            node("t:Occurrence").extend(
                [
                    node(
                        "t:ItemId", Id=occurrence_id(master.id, original_start), ChangeKey=master.change_key
                    ),
                    node("t:Start", format_datetime(data.start)),
                    node("t:End", format_datetime(data.end)),
                    node("t:OriginalStart", format_datetime(original_start)),
                ]
            )
        )
    return container


def _deleted_occurrences_node(view: View) -> Node | None:
    """A master's deleted occurrences, by their original start."""
    master = view.stored
    if view.kind != "RecurringMaster" or not master.deleted_occurrences:
        return None
    return node("t:DeletedOccurrences").extend(
        node("t:DeletedOccurrence").add(node("t:Start", format_datetime(original_start)))
        for original_start in sorted(master.deleted_occurrences)
    )


def _zone_node(tag: str, zone_id: str) -> Node:
    return node(tag, Id=zone_id, Name=zone_id)


def read_form_query_string(item_id: str) -> str:
    """What Exchange Server answers for WebClientReadFormQueryString: the query to append to its
    Outlook on the web URL (https://<server>/owa/), naming the item by its URL-encoded EWS id.

    https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/webclientreadformquerystring
    """
    return f"?ItemID={quote(item_id, safe='')}&exvsurl=1&viewmodel=ReadMessageItem"


Renderer = Callable[[View, Mailbox], Node | None]

# In schema order (ItemType, then CalendarItemType), as Exchange writes them.
RENDERERS: dict[str, Renderer] = {
    "item:ParentFolderId": lambda v, _: node("t:ParentFolderId", Id=v.folder.id, ChangeKey="AQAAAA=="),
    "item:ItemClass": lambda v, _: node("t:ItemClass", "IPM.Appointment"),
    "item:Subject": lambda v, _: node("t:Subject", v.data.subject),
    "item:Sensitivity": lambda v, _: node("t:Sensitivity", v.data.sensitivity),
    "item:Body": lambda v, _: node("t:Body", v.data.body, BodyType=v.data.body_type),
    "item:DateTimeCreated": lambda v, _: node("t:DateTimeCreated", format_datetime(v.stored.created)),
    "item:Importance": lambda v, _: node("t:Importance", v.data.importance),
    "item:ReminderIsSet": lambda v, _: node("t:ReminderIsSet", bool_text(v.data.reminder_is_set)),
    "item:ReminderMinutesBeforeStart": lambda v, _: node(
        "t:ReminderMinutesBeforeStart", str(v.data.reminder_minutes)
    ),
    "item:HasAttachments": lambda v, _: node("t:HasAttachments", "false"),
    "item:LastModifiedName": lambda v, mailbox: node("t:LastModifiedName", mailbox.email),
    "item:LastModifiedTime": lambda v, _: node("t:LastModifiedTime", format_datetime(v.stored.modified)),
    "item:WebClientReadFormQueryString": lambda v, _: node(
        "t:WebClientReadFormQueryString", read_form_query_string(v.id)
    ),
    "calendar:UID": lambda v, _: node("t:UID", v.stored.uid),
    "calendar:Start": lambda v, _: node("t:Start", format_datetime(v.data.start)),
    "calendar:End": lambda v, _: node("t:End", format_datetime(v.data.end)),
    "calendar:OriginalStart": lambda v, _: text_node(
        "t:OriginalStart", format_datetime(v.original_start) if v.original_start else None
    ),
    "calendar:IsAllDayEvent": lambda v, _: node("t:IsAllDayEvent", bool_text(v.data.all_day)),
    "calendar:LegacyFreeBusyStatus": lambda v, _: node("t:LegacyFreeBusyStatus", v.data.free_busy),
    "calendar:Location": lambda v, _: node("t:Location", v.data.location),
    "calendar:IsMeeting": lambda v, _: node("t:IsMeeting", bool_text(bool(v.data.attendees))),
    "calendar:IsCancelled": lambda v, _: node("t:IsCancelled", bool_text(v.stored.is_cancelled)),
    "calendar:IsRecurring": lambda v, _: node("t:IsRecurring", bool_text(v.kind != "Single")),
    "calendar:CalendarItemType": lambda v, _: node("t:CalendarItemType", v.kind),
    "calendar:MyResponseType": lambda v, _: node("t:MyResponseType", v.stored.my_response),
    "calendar:Organizer": lambda v, mailbox: _mailbox_node(
        "t:Organizer", v.stored.organizer or mailbox.email, v.stored.organizer or mailbox.email
    ),
    "calendar:RequiredAttendees": lambda v, _: _attendees_node(
        "t:RequiredAttendees", [a for a in v.data.attendees if not a.optional]
    ),
    "calendar:OptionalAttendees": lambda v, _: _attendees_node(
        "t:OptionalAttendees", [a for a in v.data.attendees if a.optional]
    ),
    "calendar:Recurrence": lambda v, _: _recurrence_node(
        v.data.recurrence if v.kind == "RecurringMaster" else None
    ),
    "calendar:ModifiedOccurrences": lambda v, _: _modified_occurrences_node(v),
    "calendar:DeletedOccurrences": lambda v, _: _deleted_occurrences_node(v),
    "calendar:StartTimeZone": lambda v, _: _zone_node("t:StartTimeZone", v.data.start_tz),
    "calendar:EndTimeZone": lambda v, _: _zone_node("t:EndTimeZone", v.data.end_tz),
}
# The extended properties come right before LastModifiedName in the schema.
_EXTENDED_BEFORE = "item:LastModifiedName"


def render_item(view: View, shape: Shape, mailbox: Mailbox) -> Node:
    """A t:CalendarItem with the id and what the shape asks for, in schema order."""
    item = node("t:CalendarItem").add(node("t:ItemId", Id=view.id, ChangeKey=view.change_key))
    for uri, renderer in RENDERERS.items():
        if uri == _EXTENDED_BEFORE:
            for key in shape.extended:
                if key in view.data.extended:
                    prop = node("t:ExtendedProperty").extend(
                        [extended_uri_node(key), node("t:Value", view.data.extended[key])]
                    )
                    item.add(prop)
        if uri in shape.fields:
            item.add(renderer(view, mailbox))
    return item


def id_only(view: View) -> Node:
    return node("t:CalendarItem").add(node("t:ItemId", Id=view.id, ChangeKey=view.change_key))


def field_value(view: View, uri: Element) -> str | None:
    """A property as restrictions compare it (text; times as xs:dateTime), None when unset."""
    if uri.tag == t("ExtendedFieldURI"):
        return view.data.extended.get(extended_key(uri))
    field_uri = uri.attrib.get("FieldURI", "")
    values: dict[str, Callable[[], str]] = {
        "item:Subject": lambda: view.data.subject,
        "item:ItemClass": lambda: "IPM.Appointment",
        "item:Sensitivity": lambda: view.data.sensitivity,
        "item:LastModifiedTime": lambda: format_datetime(view.stored.modified),
        "item:DateTimeCreated": lambda: format_datetime(view.stored.created),
        "calendar:Start": lambda: format_datetime(view.data.start),
        "calendar:End": lambda: format_datetime(view.data.end),
        "calendar:Location": lambda: view.data.location,
        "calendar:CalendarItemType": lambda: view.kind,
        "calendar:UID": lambda: view.stored.uid,
        "calendar:IsCancelled": lambda: bool_text(view.stored.is_cancelled),
        "calendar:MyResponseType": lambda: view.stored.my_response,
        "calendar:IsAllDayEvent": lambda: bool_text(view.data.all_day),
        "calendar:LegacyFreeBusyStatus": lambda: view.data.free_busy,
    }
    getter = values.get(field_uri)
    if getter is None:
        raise EwsError(
            "ErrorUnsupportedPathForQuery", f"The property {field_uri} can't be used in a restriction."
        )
    return getter()
