"""What clients write into calendar items: t:CalendarItem of CreateItem, the updates of UpdateItem.

Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/calendaritem
and https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updates-item
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from xml.etree.ElementTree import Element

from calendarsync.emulators.exchange_items import extended_key
from calendarsync.emulators.exchange_state import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    Attendee,
    EwsRecurrence,
    ItemData,
)
from calendarsync.emulators.exchange_xml import EwsError, child_text, parse_bool, parse_datetime, t

SENSITIVITIES = ("Normal", "Personal", "Private", "Confidential")
FREE_BUSY = ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
RESPONSE_TYPES = ("Unknown", "Organizer", "Tentative", "Accept", "Decline", "NoResponseReceived")


# --------------------------------------------------------------------------- parsing


def _mailbox_email(elem: Element) -> tuple[str, str]:
    mailbox = elem.find(t("Mailbox"))
    if mailbox is None:
        raise EwsError("ErrorInvalidRecipients", "An attendee has no mailbox.")
    email = (child_text(mailbox, t("EmailAddress")) or "").strip()
    if "@" not in email:
        raise EwsError("ErrorInvalidRecipients", "An attendee has no valid e-mail address.")
    return email, child_text(mailbox, t("Name")) or ""


def _attendees(elem: Element, *, optional: bool) -> list[Attendee]:
    found = []
    for attendee in elem.findall(t("Attendee")):
        email, name = _mailbox_email(attendee)
        response = child_text(attendee, t("ResponseType")) or "Unknown"
        found.append(
            Attendee(
                email=email,
                name=name,
                response=response if response in RESPONSE_TYPES else "Unknown",
                optional=optional,
            )
        )
    return found


def _date(text: str | None, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat((text or "")[:10])
    except ValueError:
        raise EwsError("ErrorCalendarInvalidRecurrence", f"{what} is not a valid date.") from None


def _int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise EwsError("ErrorCalendarInvalidRecurrence", f"{what} is not a number.") from None


def parse_recurrence(elem: Element) -> EwsRecurrence:
    """A t:Recurrence: one supported pattern and one range."""
    pattern_elem = next(iter(elem), None)
    if pattern_elem is None:
        raise EwsError("ErrorCalendarInvalidRecurrence", "The recurrence has no pattern.")
    pattern = pattern_elem.tag.rpartition("}")[2]
    fields: dict[str, object] = {"pattern": pattern}
    if pattern in ("DailyRecurrence", "WeeklyRecurrence", "AbsoluteMonthlyRecurrence"):
        fields["interval"] = _int(child_text(pattern_elem, t("Interval")), "Interval")
    if pattern == "WeeklyRecurrence":
        days = tuple((child_text(pattern_elem, t("DaysOfWeek")) or "").split())
        if not days or any(day not in WEEKDAY_NAMES for day in days):
            raise EwsError(
                "ErrorCalendarInvalidRecurrence", "DaysOfWeek must name weekdays (Monday..Sunday)."
            )
        fields["days_of_week"] = days
        fields["first_day_of_week"] = child_text(pattern_elem, t("FirstDayOfWeek")) or "Monday"
    elif pattern in ("AbsoluteMonthlyRecurrence", "AbsoluteYearlyRecurrence"):
        fields["day_of_month"] = _int(child_text(pattern_elem, t("DayOfMonth")), "DayOfMonth")
        if pattern == "AbsoluteYearlyRecurrence":
            month = child_text(pattern_elem, t("Month")) or ""
            if month not in MONTH_NAMES:
                raise EwsError("ErrorCalendarInvalidRecurrence", "Month must name a month.")
            fields["month"] = month
    elif pattern != "DailyRecurrence":
        raise EwsError("ErrorCalendarInvalidRecurrence", f"The emulator does not support {pattern}.")
    range_elem = next((child for child in elem if child is not pattern_elem), None)
    if range_elem is None:
        raise EwsError("ErrorCalendarInvalidRecurrence", "The recurrence has no range.")
    range_kind = range_elem.tag.rpartition("}")[2]
    fields["range_kind"] = range_kind
    fields["start_date"] = _date(child_text(range_elem, t("StartDate")), "StartDate")
    if range_kind == "EndDateRecurrence":
        fields["end_date"] = _date(child_text(range_elem, t("EndDate")), "EndDate")
    elif range_kind == "NumberedRecurrence":
        fields["count"] = _int(child_text(range_elem, t("NumberOfOccurrences")), "NumberOfOccurrences")
    elif range_kind != "NoEndRecurrence":
        raise EwsError("ErrorCalendarInvalidRecurrence", f"{range_kind} is not a recurrence range.")
    return EwsRecurrence(**fields)  # type: ignore[arg-type]


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise EwsError("ErrorInvalidValueForProperty", f"{value!r} is not a valid {what}.")
    return value


# FieldURI -> applies that property, read from a t:CalendarItem element, onto ItemData (None = clear).
Setter = Callable[[ItemData, Element | None], None]


def _set_body(data: ItemData, elem: Element | None) -> None:
    body = None if elem is None else elem.find(t("Body"))
    data.body = "" if body is None else (body.text or "")
    data.body_type = "Text" if body is None else body.attrib.get("BodyType", "Text")


def _set_text(name: str, tag: str) -> Setter:
    def setter(data: ItemData, elem: Element | None) -> None:
        setattr(data, name, "" if elem is None else (child_text(elem, t(tag)) or ""))

    return setter


def _set_choice(name: str, tag: str, allowed: tuple[str, ...], default: str) -> Setter:
    def setter(data: ItemData, elem: Element | None) -> None:
        raw = None if elem is None else child_text(elem, t(tag))
        setattr(data, name, default if raw is None else _choice(raw, allowed, tag))

    return setter


def _set_time(name: str, tag: str) -> Setter:
    def setter(data: ItemData, elem: Element | None) -> None:
        if elem is None:
            raise EwsError("ErrorInvalidPropertyDelete", f"{tag} cannot be deleted.")
        setattr(data, name, parse_datetime(child_text(elem, t(tag)), tag))

    return setter


def _set_zone(name: str, tag: str) -> Setter:
    def setter(data: ItemData, elem: Element | None) -> None:
        zone = None if elem is None else elem.find(t(tag))
        setattr(data, name, "UTC" if zone is None else (zone.attrib.get("Id") or "UTC"))

    return setter


def _set_bool(name: str, tag: str) -> Setter:
    def setter(data: ItemData, elem: Element | None) -> None:
        setattr(data, name, False if elem is None else parse_bool(child_text(elem, t(tag))))

    return setter


def _set_reminder_minutes(data: ItemData, elem: Element | None) -> None:
    raw = None if elem is None else child_text(elem, t("ReminderMinutesBeforeStart"))
    data.reminder_minutes = int(raw) if raw and raw.strip().lstrip("-").isdigit() else 0


def _set_attendees(optional: bool, tag: str) -> Setter:
    def setter(data: ItemData, elem: Element | None) -> None:
        found = None if elem is None else elem.find(t(tag))
        keep = [a for a in data.attendees if a.optional != optional]
        data.attendees = keep + ([] if found is None else _attendees(found, optional=optional))

    return setter


def _set_recurrence(data: ItemData, elem: Element | None) -> None:
    found = None if elem is None else elem.find(t("Recurrence"))
    data.recurrence = None if found is None else parse_recurrence(found)


SETTERS: dict[str, Setter] = {
    "item:Subject": _set_text("subject", "Subject"),
    "item:Body": _set_body,
    "item:Sensitivity": _set_choice("sensitivity", "Sensitivity", SENSITIVITIES, "Normal"),
    "item:Importance": _set_choice("importance", "Importance", ("Low", "Normal", "High"), "Normal"),
    "item:ReminderIsSet": _set_bool("reminder_is_set", "ReminderIsSet"),
    "item:ReminderMinutesBeforeStart": _set_reminder_minutes,
    "calendar:Start": _set_time("start", "Start"),
    "calendar:End": _set_time("end", "End"),
    "calendar:IsAllDayEvent": _set_bool("all_day", "IsAllDayEvent"),
    "calendar:LegacyFreeBusyStatus": _set_choice("free_busy", "LegacyFreeBusyStatus", FREE_BUSY, "Busy"),
    "calendar:Location": _set_text("location", "Location"),
    "calendar:RequiredAttendees": _set_attendees(False, "RequiredAttendees"),
    "calendar:OptionalAttendees": _set_attendees(True, "OptionalAttendees"),
    "calendar:Recurrence": _set_recurrence,
    "calendar:StartTimeZone": _set_zone("start_tz", "StartTimeZone"),
    "calendar:EndTimeZone": _set_zone("end_tz", "EndTimeZone"),
}
# Element name in a t:CalendarItem -> its FieldURI (for CreateItem, which sends whole items).
ELEMENT_URIS = {uri.partition(":")[2]: uri for uri in SETTERS}
# Written by clients, kept by nobody here: accepted and ignored like Exchange's many other properties.
IGNORED_ELEMENTS = frozenset(
    {
        "Categories",
        "Culture",
        "MeetingTimeZone",
        "ConferenceType",
        "AllowNewTimeProposal",
        "IsResponseRequested",
        "When",
        "Resources",
        "MeetingWorkspaceUrl",
        "NetShowUrl",
        "InReplyTo",
        "ReminderDueBy",
    }
)


def parse_new_item(elem: Element) -> tuple[ItemData, str | None]:
    """A whole t:CalendarItem of CreateItem -> content and the client's UID (if it sent one)."""
    if elem.tag != t("CalendarItem"):
        raise EwsError("ErrorInvalidItemForOperationCreateItem", "Only calendar items can be created here.")
    if elem.find(t("Start")) is None or elem.find(t("End")) is None:
        raise EwsError("ErrorRequiredPropertyMissing", "A calendar item needs Start and End.")
    data = ItemData(start=parse_datetime(child_text(elem, t("Start")), "Start"), end=dt.datetime.now(dt.UTC))
    uid: str | None = None
    for child in elem:
        name = child.tag.rpartition("}")[2]
        if name == "ExtendedProperty":
            uri = child.find(t("ExtendedFieldURI"))
            if uri is None:
                raise EwsError(
                    "ErrorInvalidExtendedProperty", "An extended property has no ExtendedFieldURI."
                )
            data.extended[extended_key(uri)] = child_text(child, t("Value")) or ""
        elif name == "UID":
            uid = child.text or None
        elif name in ELEMENT_URIS:
            SETTERS[ELEMENT_URIS[name]](data, elem)
        elif name not in IGNORED_ELEMENTS:
            raise EwsError("ErrorInvalidPropertySet", f"{name} cannot be set on a calendar item.")
    return data, uid


def apply_update(data: ItemData, update: Element) -> None:
    """One t:SetItemField / t:AppendToItemField / t:DeleteItemField of an UpdateItem change."""
    kind = update.tag.rpartition("}")[2]
    if kind not in ("SetItemField", "AppendToItemField", "DeleteItemField"):
        raise EwsError("ErrorSchemaValidation", f"{kind} is not an item update.")
    uri = update.find(t("FieldURI"))
    extended = update.find(t("ExtendedFieldURI"))
    value = update.find(t("CalendarItem"))
    if kind != "DeleteItemField" and value is None:
        raise EwsError(
            "ErrorIncorrectUpdatePropertyCount", "An update must carry one calendar item property."
        )
    if extended is not None:
        key = extended_key(extended)
        if kind == "DeleteItemField":
            data.extended.pop(key, None)
            return
        prop = value.find(t("ExtendedProperty")) if value is not None else None
        data.extended[key] = "" if prop is None else (child_text(prop, t("Value")) or "")
        return
    if uri is None:
        raise EwsError("ErrorSchemaValidation", "An update names no property.")
    field_uri = uri.attrib.get("FieldURI", "")
    if field_uri in ("calendar:UID", "calendar:MeetingTimeZone", "item:Categories", "item:Culture"):
        return
    setter = SETTERS.get(field_uri)
    if setter is None:
        raise EwsError("ErrorInvalidPropertyUpdateSentMessage", f"{field_uri} cannot be updated.")
    if kind == "AppendToItemField" and field_uri in (
        "calendar:RequiredAttendees",
        "calendar:OptionalAttendees",
    ):
        before = list(data.attendees)
        setter(data, value)
        added = [a for a in data.attendees if a not in before]
        data.attendees = before + added
        return
    setter(data, None if kind == "DeleteItemField" else value)
