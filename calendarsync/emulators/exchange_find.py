"""FindItem in the Exchange emulator: IndexedPageItemView paging, CalendarView expansion, restrictions.

Reference: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/finditem-operation
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from calendarsync.emulators.exchange_items import Shape, View, field_value, id_only, render_item
from calendarsync.emulators.exchange_resolve import Context, children, folder_views, resolve_folder
from calendarsync.emulators.exchange_state import (
    Folder,
)
from calendarsync.emulators.exchange_xml import (
    EwsError,
    Node,
    SoapError,
    bool_text,
    m,
    node,
    operation_response,
    parse_datetime,
    response_message,
    t,
)

DEFAULT_PAGE_SIZE = 1000


# --------------------------------------------------------------------------- FindItem


def _compare(kind: str, actual: str | None, wanted: str) -> bool:
    if actual is None:
        return kind == "IsNotEqualTo"
    left: object = actual
    right: object = wanted
    with contextlib.suppress(EwsError):  # times compare as times, the rest as text
        left, right = parse_datetime(actual, "value"), parse_datetime(wanted, "value")
    if kind == "IsEqualTo":
        return left == right
    if kind == "IsNotEqualTo":
        return left != right
    if not isinstance(left, type(right)):
        return False
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "IsGreaterThan": lambda a, b: bool(a > b),
        "IsGreaterThanOrEqualTo": lambda a, b: bool(a >= b),
        "IsLessThan": lambda a, b: bool(a < b),
        "IsLessThanOrEqualTo": lambda a, b: bool(a <= b),
    }
    compare = comparisons.get(kind)
    if compare is None:
        raise EwsError("ErrorInvalidRestriction", f"{kind} is not supported.")
    return compare(left, right)


def _path(elem: Element) -> Element:
    for child in elem:
        if child.tag in (t("FieldURI"), t("ExtendedFieldURI")):
            return child
    raise EwsError("ErrorInvalidRestriction", "The restriction names no property.")


def _constant(elem: Element) -> str:
    constant = elem.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    if constant is None:
        constant = elem.find(t("Constant"))
    if constant is None:
        raise EwsError("ErrorInvalidRestriction", "The restriction has no constant.")
    return constant.attrib.get("Value", "")


def matches(view: View, expression: Element) -> bool:
    """Evaluate one restriction expression (And, Or, Not, Exists, Contains, comparisons)."""
    kind = expression.tag.rpartition("}")[2]
    if kind == "And":
        return all(matches(view, child) for child in expression)
    if kind == "Or":
        return any(matches(view, child) for child in expression)
    if kind == "Not":
        return not all(matches(view, child) for child in expression)
    if kind == "Exists":
        return field_value(view, _path(expression)) is not None
    if kind == "Contains":
        actual = field_value(view, _path(expression)) or ""
        wanted = _constant(expression)
        if "Ignore" in expression.attrib.get("ContainmentComparison", ""):
            actual, wanted = actual.lower(), wanted.lower()
        mode = expression.attrib.get("ContainmentMode", "Substring")
        if mode == "FullString":
            return actual == wanted
        if mode == "Prefixed":
            return actual.startswith(wanted)
        return wanted in actual
    return _compare(kind, field_value(view, _path(expression)), _constant(expression))


def _calendar_view(ctx: Context, folder: Folder, start: dt.datetime, end: dt.datetime) -> list[View]:
    """Singles overlapping the window, and the series' occurrences in it (masters themselves not)."""
    found: list[View] = []
    for item in folder.items.values():
        if item.is_master:
            found.extend(
                View.of_instance(instance, folder)
                for instance in item.instances(end)
                if instance.data.start < end and instance.data.end > start
            )
        elif item.data.start < end and item.data.end > start:
            found.append(View.of_item(item, folder))
    found.sort(key=lambda view: (view.data.start, view.id))
    return found


def find_item(ctx: Context, request: Element) -> bytes:
    shape = Shape.parse(request.find(m("ItemShape")), for_find=True)
    calendar_view = request.find(m("CalendarView"))
    paged_view = request.find(m("IndexedPageItemView"))
    restriction_elem = request.find(m("Restriction"))
    if calendar_view is not None and restriction_elem is not None:
        raise SoapError(
            "ErrorInvalidRestriction", "Restrictions and sort order may not be specified for a CalendarView."
        )
    restriction = next(iter(restriction_elem), None) if restriction_elem is not None else None
    messages = []
    for folder_elem in children(request, m("ParentFolderIds")):
        try:
            messages.append(_find_in_folder(ctx, folder_elem, shape, calendar_view, paged_view, restriction))
        except EwsError as error:
            messages.append(response_message("FindItem", error=error))
    return operation_response("FindItem", messages)


def _find_in_folder(
    ctx: Context,
    folder_elem: Element,
    shape: Shape,
    calendar_view: Element | None,
    paged_view: Element | None,
    restriction: Element | None,
) -> Node:
    folder = resolve_folder(ctx, folder_elem)
    root_attrs: dict[str, str] = {}
    if calendar_view is not None:
        start = parse_datetime(calendar_view.attrib.get("StartDate"), "StartDate")
        end = parse_datetime(calendar_view.attrib.get("EndDate"), "EndDate")
        if end < start:
            raise EwsError(
                "ErrorCalendarEndDateIsEarlierThanStartDate", "The end date is earlier than the start date."
            )
        views = _calendar_view(ctx, folder, start, end)
        limit = int(calendar_view.attrib.get("MaxEntriesReturned") or DEFAULT_PAGE_SIZE)
        page = views[:limit]
    else:
        views = folder_views(ctx, folder)
        if restriction is not None:
            views = [view for view in views if matches(view, restriction)]
        views.sort(key=lambda view: (view.data.start, view.id))
        offset = int(paged_view.attrib.get("Offset") or 0) if paged_view is not None else 0
        limit = (
            int(paged_view.attrib.get("MaxEntriesReturned") or DEFAULT_PAGE_SIZE)
            if paged_view is not None
            else len(views)
        )
        page = views[offset : offset + limit]
        root_attrs["IndexedPagingOffset"] = str(offset + len(page))
        limit = offset + limit
    root_attrs["TotalItemsInView"] = str(len(views))
    root_attrs["IncludesLastItemInRange"] = bool_text(len(views) <= limit)
    items = node("t:Items")
    for view in page:
        items.add(
            id_only(view)
            if shape.base == "IdOnly" and not shape.fields and not shape.extended
            else render_item(view, shape, ctx.mailbox)
        )
    message = response_message("FindItem")
    message.add(Node("m:RootFolder", root_attrs, [items]))
    return message
