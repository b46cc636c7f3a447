"""Pure calendar-grid arithmetic (A8): Monday weeks, month grids, the viewer's local days."""

from __future__ import annotations

import datetime as dt

from activities.calendar import CalendarView, build_grid, grid_range, parse_anchor, parse_view
from activities.models import Activity
from tests.activities.conftest import BERLIN, NEW_YORK, berlin

TODAY = dt.date(2025, 1, 13)


def test_a8_week_runs_monday_to_sunday():
    assert grid_range(CalendarView.WEEK, dt.date(2025, 1, 15)) == (dt.date(2025, 1, 13), dt.date(2025, 1, 19))
    assert grid_range(CalendarView.WEEK, dt.date(2025, 1, 13)) == (dt.date(2025, 1, 13), dt.date(2025, 1, 19))
    assert grid_range(CalendarView.WEEK, dt.date(2025, 1, 19)) == (dt.date(2025, 1, 13), dt.date(2025, 1, 19))


def test_a8_month_grid_covers_whole_weeks_starting_monday():
    # January 2025 starts on a Wednesday and ends on a Friday.
    assert grid_range(CalendarView.MONTH, dt.date(2025, 1, 20)) == (
        dt.date(2024, 12, 30),
        dt.date(2025, 2, 2),
    )
    grid = build_grid(CalendarView.MONTH, dt.date(2025, 1, 20), today=TODAY, tz=BERLIN, activities=[])
    assert len(grid.weeks) == 5
    assert all(len(week) == 7 for week in grid.weeks)
    assert grid.weeks[0][0].date.weekday() == 0
    assert grid.weekday_names[0] == "Monday"
    assert not grid.weeks[0][0].in_period
    assert grid.weeks[0][2].in_period
    assert grid.title == "January 2025"
    assert [day.date for week in grid.weeks for day in week if day.is_today] == [TODAY]


def test_a8_month_navigation_crosses_years():
    grid = build_grid(CalendarView.MONTH, dt.date(2025, 1, 31), today=TODAY, tz=BERLIN, activities=[])
    assert (grid.previous_anchor, grid.next_anchor) == (dt.date(2024, 12, 1), dt.date(2025, 2, 1))
    december = build_grid(CalendarView.MONTH, dt.date(2024, 12, 5), today=TODAY, tz=BERLIN, activities=[])
    assert december.next_anchor == dt.date(2025, 1, 1)


def test_a8_week_navigation_and_titles():
    grid = build_grid(CalendarView.WEEK, dt.date(2025, 1, 15), today=TODAY, tz=BERLIN, activities=[])
    assert (grid.previous_anchor, grid.next_anchor) == (dt.date(2025, 1, 6), dt.date(2025, 1, 20))
    assert grid.title == "13 \N{EN DASH} 19 Jan 2025"
    assert build_grid(
        CalendarView.WEEK, dt.date(2025, 1, 29), today=TODAY, tz=BERLIN, activities=[]
    ).title == ("27 Jan \N{EN DASH} 2 Feb 2025")
    assert build_grid(
        CalendarView.WEEK, dt.date(2024, 12, 31), today=TODAY, tz=BERLIN, activities=[]
    ).title == ("30 Dec 2024 \N{EN DASH} 5 Jan 2025")


def test_a8_a_six_week_month():
    # March 2025 starts on a Saturday and ends on a Monday: six rows.
    grid = build_grid(CalendarView.MONTH, dt.date(2025, 3, 1), today=TODAY, tz=BERLIN, activities=[])
    assert len(grid.weeks) == 6


def activity(pk: int, start: dt.datetime | None, due: dt.date | None = None) -> Activity:
    item = Activity(
        pk=pk,
        subject=f"#{pk}",
        start_at=start,
        due_date=due if due is not None else start.date() if start is not None else dt.date.min,
        duration=dt.timedelta(minutes=30) if start else None,
    )
    return item


def test_a8_items_land_on_the_viewers_local_day_in_time_order():
    late_berlin = activity(1, berlin(2025, 1, 15, 23, 30))
    early = activity(2, berlin(2025, 1, 15, 8, 0))
    day_long = activity(3, None, dt.date(2025, 1, 15))
    outside = activity(4, berlin(2025, 1, 25, 8, 0))
    items = [late_berlin, early, day_long, outside]

    in_berlin = build_grid(CalendarView.WEEK, dt.date(2025, 1, 15), today=TODAY, tz=BERLIN, activities=items)
    wednesday = in_berlin.weeks[0][2]
    assert wednesday.date == dt.date(2025, 1, 15)
    assert [entry.activity.pk for entry in wednesday.timed] == [2, 1]
    assert [entry.starts.strftime("%H:%M") for entry in wednesday.timed] == ["08:00", "23:30"]
    assert wednesday.all_day == [day_long]

    in_new_york = build_grid(
        CalendarView.WEEK, dt.date(2025, 1, 15), today=TODAY, tz=NEW_YORK, activities=items
    )
    wednesday = in_new_york.weeks[0][2]
    assert [entry.starts.strftime("%H:%M") for entry in wednesday.timed] == ["02:00", "17:30"]
    assert sum(len(day.timed) + len(day.all_day) for day in in_new_york.weeks[0]) == 3


def test_a8_bad_parameters_fall_back():
    assert parse_view("year") is CalendarView.WEEK
    assert parse_view("month") is CalendarView.MONTH
    assert parse_view(None) is CalendarView.WEEK
    assert parse_anchor("2025-13-01", TODAY) == TODAY
    assert parse_anchor("", TODAY) == TODAY
    assert parse_anchor("2025-02-03", TODAY) == dt.date(2025, 2, 3)
