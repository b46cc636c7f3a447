"""The week view's hour grid (A8): where each timed item sits, as CSS classes. Pure; no database.

A day column is a CSS grid of 96 quarter-hour rows (``.gs-N`` starts an item on row N,
``.gspan-N`` makes it N rows tall) and 60 narrow columns, so that 1 to ``MAX_LANES``
overlapping items share the width equally (``.lane-I-of-K``). Every class is written out in
``static/css/calendar.css``: the pages carry no ``style`` attribute (CSP without
'unsafe-inline'). Rows follow the viewer's wall clock; an item running past midnight is cut
there and continues in the next day's column.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from activities.calendar import CalendarDay, CalendarGrid, TimedEntry

SLOT_MINUTES = 15
SLOTS_PER_HOUR = 60 // SLOT_MINUTES
SLOTS_PER_DAY = 24 * SLOTS_PER_HOUR
# Shorter items are drawn half an hour tall so that their time and status stay readable.
MIN_SPAN = 2
# More items at once than this are stacked with an offset instead of getting narrower.
MAX_LANES = 6
MAX_STACK = 3
# The hour grid opens at the start of the working day, or earlier if an item starts earlier.
DEFAULT_SCROLL_HOUR = 7


@dataclass(frozen=True)
class PlacedEntry:
    """One timed item in one day column; ``lane`` counts from 1 within ``lanes`` side by side."""

    entry: TimedEntry
    row: int
    span: int
    lane: int
    lanes: int
    stack: int = 0
    continues_before: bool = False
    continues_after: bool = False

    @property
    def css(self) -> str:
        classes = [f"gs-{self.row}", f"gspan-{self.span}", f"lane-{self.lane}-of-{self.lanes}"]
        if self.stack:
            classes.append(f"stack-{self.stack}")
        if self.continues_before:
            classes.append("continues-before")
        if self.continues_after:
            classes.append("continues-after")
        return " ".join(classes)


@dataclass(frozen=True)
class HourLabel:
    hour: int
    row: int

    @property
    def label(self) -> str:
        return f"{self.hour:02d}:00"

    @property
    def css(self) -> str:
        return f"gs-{self.row} gspan-{SLOTS_PER_HOUR}"


@dataclass(frozen=True)
class WeekColumn:
    day: CalendarDay
    placed: list[PlacedEntry]
    # The row of the current quarter hour, in today's column only.
    now_row: int | None = None


@dataclass(frozen=True)
class WeekGrid:
    columns: list[WeekColumn]
    hours: list[HourLabel]
    scroll_hour: int


@dataclass(frozen=True)
class _Segment:
    entry: TimedEntry
    first_slot: int  # 0-based
    end_slot: int  # exclusive
    continues_before: bool
    continues_after: bool


def slot_of(moment: dt.datetime) -> int:
    """The 0-based quarter hour of the local wall-clock time ``moment``."""
    return (moment.hour * 60 + moment.minute) // SLOT_MINUTES


def _end_slot(moment: dt.datetime) -> int:
    """The first quarter hour after ``moment`` (exclusive end), rounding a partly used one up."""
    minutes = moment.hour * 60 + moment.minute + (1 if moment.second or moment.microsecond else 0)
    return math.ceil(minutes / SLOT_MINUTES)


def _day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


def _segment(entry: TimedEntry, day: dt.date, tz: dt.tzinfo) -> _Segment | None:
    """The part of ``entry`` inside ``day``, in slots; None if it has none."""
    day_start, day_end = _day_bounds(day, tz)
    starts, ends = entry.starts, max(entry.ends, entry.starts)
    if starts >= day_end or (ends <= day_start and starts < day_start):
        return None
    continues_before = starts < day_start
    continues_after = ends > day_end
    first = 0 if continues_before else slot_of(starts.astimezone(tz))
    last = SLOTS_PER_DAY if continues_after or ends == day_end else _end_slot(ends.astimezone(tz))
    return _Segment(entry, first, last, continues_before, continues_after)


def _placed(segments: Sequence[_Segment]) -> list[PlacedEntry]:
    """Rows and lanes: items that overlap share the width; each group as wide as it needs."""
    ordered = sorted(
        segments,
        key=lambda seg: (seg.first_slot, -(seg.end_slot - seg.first_slot), seg.entry.activity.pk or 0),
    )
    placed: list[PlacedEntry] = []
    group: list[tuple[_Segment, int, int]] = []  # (segment, display span, lane index)
    lane_ends: list[int] = []
    group_end = -1

    def close_group() -> None:
        lanes = min(len(lane_ends), MAX_LANES)
        for segment, span, lane in group:
            placed.append(
                PlacedEntry(
                    entry=segment.entry,
                    row=segment.first_slot + 1,
                    span=span,
                    lane=lane % MAX_LANES + 1,
                    lanes=lanes,
                    stack=min(lane // MAX_LANES, MAX_STACK),
                    continues_before=segment.continues_before,
                    continues_after=segment.continues_after,
                )
            )
        group.clear()
        lane_ends.clear()

    for segment in ordered:
        first = min(segment.first_slot, SLOTS_PER_DAY - 1)
        span = min(max(segment.end_slot - first, MIN_SPAN), SLOTS_PER_DAY - first)
        if first >= group_end:
            close_group()
        lane = next((index for index, end in enumerate(lane_ends) if end <= first), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(first + span)
        else:
            lane_ends[lane] = first + span
        group.append((segment, span, lane))
        group_end = max(group_end, first + span)
    close_group()
    return placed


def place_day(day: dt.date, entries: Iterable[TimedEntry], tz: dt.tzinfo) -> list[PlacedEntry]:
    """The timed items of (or running into) ``day``, placed on its hour grid."""
    return _placed([seg for entry in entries if (seg := _segment(entry, day, tz)) is not None])


def build_week(grid: CalendarGrid, *, tz: dt.tzinfo, now: dt.datetime) -> WeekGrid:
    days = grid.weeks[0]
    entries = [entry for day in days for entry in day.timed]
    local_now = now.astimezone(tz)
    columns = [
        WeekColumn(
            day=day,
            placed=place_day(day.date, entries, tz),
            now_row=slot_of(local_now) + 1 if day.date == local_now.date() else None,
        )
        for day in days
    ]
    starts = [placed.row for column in columns for placed in column.placed if not placed.continues_before]
    earliest_hour = (min(starts) - 1) // SLOTS_PER_HOUR if starts else DEFAULT_SCROLL_HOUR
    return WeekGrid(
        columns=columns,
        hours=[HourLabel(hour=hour, row=hour * SLOTS_PER_HOUR + 1) for hour in range(24)],
        scroll_hour=min(DEFAULT_SCROLL_HOUR, earliest_hour),
    )
