"""Week and month grids for the calendar view (A8): pure date arithmetic, no database, no request.

Weeks start on Monday. Every date is a local date of the viewer: a timed activity
lands on the day its ``start_at`` falls on in the viewer's time zone, an all-day
activity on its ``due_date``.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field

from activities.bounds import MAX_DATE, MIN_DATE, clamp_date
from activities.models import Activity

DAYS_PER_WEEK = 7
RANGE_DASH = " \N{EN DASH} "


class CalendarView(enum.StrEnum):
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class TimedEntry:
    activity: Activity
    starts: dt.datetime  # local to the viewer
    ends: dt.datetime

    @property
    def has_end(self) -> bool:
        """False for an activity without a duration: it shows its start time only."""
        return self.ends > self.starts

    @property
    def ends_same_day(self) -> bool:
        return self.ends.date() == self.starts.date()

    # Formatted here rather than with template filters: a month shows up to 500 of them.
    @property
    def start_iso(self) -> str:
        return self.starts.isoformat()

    @property
    def start_label(self) -> str:
        return f"{self.starts:%H:%M}"

    @property
    def end_label(self) -> str:
        """``10:30``, or ``Fri 02:00`` for an item that ends on a later day."""
        return f"{self.ends:%H:%M}" if self.ends_same_day else f"{self.ends:%a %H:%M}"


@dataclass
class CalendarDay:
    date: dt.date
    in_period: bool
    is_today: bool
    all_day: list[Activity] = field(default_factory=list)
    timed: list[TimedEntry] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.all_day or self.timed)


@dataclass(frozen=True)
class CalendarGrid:
    view: CalendarView
    anchor: dt.date
    first: dt.date
    last: dt.date
    weeks: list[list[CalendarDay]]
    title: str
    # None at the ends of the range of dates the product handles (MIN_DATE..MAX_DATE).
    previous_anchor: dt.date | None
    next_anchor: dt.date | None

    @property
    def weekday_names(self) -> list[str]:
        return [day.date.strftime("%A") for day in self.weeks[0]]


def parse_view(raw: str | None) -> CalendarView:
    try:
        return CalendarView(raw or CalendarView.WEEK)
    except ValueError:
        return CalendarView.WEEK


def parse_anchor(raw: str | None, today: dt.date) -> dt.date:
    """The date asked for, today if it is not a date, kept within ``MIN_DATE``..``MAX_DATE``."""
    if not raw:
        return clamp_date(today)
    try:
        return clamp_date(dt.date.fromisoformat(raw))
    except ValueError:
        return clamp_date(today)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def grid_range(view: CalendarView, anchor: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day shown (inclusive): a Monday-Sunday week, or the weeks covering a month."""
    if view is CalendarView.WEEK:
        first = _monday(anchor)
        return first, first + dt.timedelta(days=DAYS_PER_WEEK - 1)
    month_first = anchor.replace(day=1)
    month_last = _add_months(anchor, 1) - dt.timedelta(days=1)
    first = _monday(month_first)
    last = _monday(month_last) + dt.timedelta(days=DAYS_PER_WEEK - 1)
    return first, last


def _title(view: CalendarView, first: dt.date, last: dt.date, anchor: dt.date) -> str:
    if view is CalendarView.MONTH:
        return anchor.strftime("%B %Y")
    end = f"{last.day} {last:%b %Y}"
    if first.year != last.year:
        return f"{first.day} {first:%b %Y}{RANGE_DASH}{end}"
    if first.month != last.month:
        return f"{first.day} {first:%b}{RANGE_DASH}{end}"
    return f"{first.day}{RANGE_DASH}{end}"


def _neighbours(view: CalendarView, anchor: dt.date, first: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """The anchors of the previous and next week or month; None past ``MIN_DATE`` or ``MAX_DATE``.

    ``anchor`` is within the bounds (``parse_anchor``), which are far enough from ``datetime``'s
    limits that a week or month either side can always be computed.
    """
    if view is CalendarView.WEEK:
        previous = first - dt.timedelta(days=DAYS_PER_WEEK)
        following = first + dt.timedelta(days=DAYS_PER_WEEK)
        previous_last = first - dt.timedelta(days=1)
    else:
        previous, following = _add_months(anchor, -1), _add_months(anchor, 1)
        previous_last = anchor.replace(day=1) - dt.timedelta(days=1)
    return (
        previous if previous_last >= MIN_DATE else None,
        following if following <= MAX_DATE else None,
    )


def build_grid(
    view: CalendarView,
    anchor: dt.date,
    *,
    today: dt.date,
    tz: zoneinfo.ZoneInfo,
    activities: Iterable[Activity],
) -> CalendarGrid:
    first, last = grid_range(view, anchor)
    in_period_month = anchor.month if view is CalendarView.MONTH else None
    days: dict[dt.date, CalendarDay] = {}
    day = first
    while day <= last:
        in_period = in_period_month is None or day.month == in_period_month
        days[day] = CalendarDay(date=day, in_period=in_period, is_today=day == today)
        day += dt.timedelta(days=1)

    for activity in activities:
        if activity.start_at is None:
            cell = days.get(activity.due_date)
            if cell is not None:
                cell.all_day.append(activity)
            continue
        starts = activity.start_at.astimezone(tz)
        cell = days.get(starts.date())
        if cell is not None:
            # Added in UTC, then made local: across a DST change, wall-clock arithmetic is an hour off.
            ends = (activity.start_at.astimezone(dt.UTC) + (activity.duration or dt.timedelta(0))).astimezone(
                tz
            )
            cell.timed.append(TimedEntry(activity=activity, starts=starts, ends=ends))

    for cell in days.values():
        cell.timed.sort(key=lambda entry: (entry.starts, entry.activity.pk or 0))

    ordered = list(days.values())
    weeks = [ordered[index : index + DAYS_PER_WEEK] for index in range(0, len(ordered), DAYS_PER_WEEK)]
    previous_anchor, next_anchor = _neighbours(view, anchor, first)
    return CalendarGrid(
        view=view,
        anchor=anchor,
        first=first,
        last=last,
        weeks=weeks,
        title=_title(view, first, last, anchor),
        previous_anchor=previous_anchor,
        next_anchor=next_anchor,
    )
