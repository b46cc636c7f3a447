"""Occurrences of a series in the Exchange emulator: where a changed one may go.

Changing an occurrence makes it an exception stored on its recurring master
(https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-update-a-recurring-series-by-using-ews).
Outlook's rule for exceptions, which EWS enforces with ErrorOccurrenceCrossingBoundary ("the start
or end time of an occurrence is updated so that the occurrence must occur earlier or later than the
corresponding previous or next occurrence",
https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode):
an occurrence may not move to or before the day of the previous occurrence, nor to or after the day
of the next one, nor overlap them. Deleted neighbours count too, as Outlook users report.
"""

from __future__ import annotations

import datetime as dt

from calendarsync.emulators.exchange_state import ItemData, StoredItem, zone_of
from calendarsync.emulators.exchange_xml import EwsError

# How far past an occurrence its next one is looked for (yearly series with long intervals aside).
NEIGHBOUR_HORIZON = dt.timedelta(days=3660)


def check_occurrence_move(master: StoredItem, original_start: dt.datetime, data: ItemData) -> None:
    """Refuse the new times ``data`` of the occurrence originally at ``original_start`` if they
    cross into a neighbour's day or overlap a neighbour."""
    zone = zone_of(master.data.start_tz)
    slots = master.slots(original_start + NEIGHBOUR_HORIZON)
    index = next(i for i, (start, _) in enumerate(slots) if start == original_start)

    def span(position: int) -> tuple[dt.datetime, dt.datetime]:
        start, end = slots[position]
        exception = master.exceptions.get(start)
        return (exception.start, exception.end) if exception is not None else (start, end)

    new_day = data.start.astimezone(zone).date()
    crossing = False
    if index > 0:
        before_start, before_end = span(index - 1)
        crossing = new_day <= before_start.astimezone(zone).date() or data.start < before_end
    if index + 1 < len(slots):
        after_start, _ = span(index + 1)
        crossing = crossing or new_day >= after_start.astimezone(zone).date() or data.end > after_start
    if crossing:
        raise EwsError(
            "ErrorOccurrenceCrossingBoundary",
            "Modified occurrence is crossing or overlapping adjacent occurrence.",
        )
