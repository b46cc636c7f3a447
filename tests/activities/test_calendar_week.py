"""The week view's hour grid (A8): rows by start time, spans by duration, lanes for overlaps. Pure."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from django.conf import settings

from activities.calendar import CalendarView, TimedEntry, build_grid
from activities.calendar_week import MAX_LANES, MAX_STACK, SLOTS_PER_DAY, build_week, place_day
from activities.models import Activity
from activities.type_colours import PALETTE
from tests.activities.conftest import BERLIN, berlin

WEDNESDAY = dt.date(2025, 1, 15)
STATIC = Path(settings.BASE_DIR) / "static" / "css"


def activity(pk: int, start: dt.datetime, minutes: int | None = 60) -> Activity:
    return Activity(
        pk=pk,
        subject=f"#{pk}",
        start_at=start,
        due_date=start.astimezone(BERLIN).date(),
        duration=dt.timedelta(minutes=minutes) if minutes is not None else None,
    )


def entry(pk: int, start: dt.datetime, minutes: int | None = 60) -> TimedEntry:
    item = activity(pk, start, minutes)
    starts = start.astimezone(BERLIN)
    ends = start.astimezone(dt.UTC) + (item.duration or dt.timedelta(0))
    return TimedEntry(item, starts, ends.astimezone(BERLIN))


def placed_css(day: dt.date, *entries: TimedEntry) -> dict[int, str]:
    return {placed.entry.activity.pk or 0: placed.css for placed in place_day(day, entries, BERLIN)}


def test_a8_item_is_placed_by_start_time_and_sized_by_duration():
    assert placed_css(WEDNESDAY, entry(1, berlin(2025, 1, 15, 9, 0))) == {1: "gs-37 gspan-4 lane-1-of-1"}
    assert placed_css(WEDNESDAY, entry(2, berlin(2025, 1, 15, 0, 0), 15)) == {2: "gs-1 gspan-2 lane-1-of-1"}
    # A start inside a quarter hour starts on that quarter; the end rounds up to the next one.
    assert placed_css(WEDNESDAY, entry(3, berlin(2025, 1, 15, 14, 40), 50)) == {
        3: "gs-59 gspan-4 lane-1-of-1"
    }


def test_a8_short_and_untimed_items_stay_readable_but_never_pass_midnight():
    assert placed_css(WEDNESDAY, entry(1, berlin(2025, 1, 15, 9, 0), None)) == {
        1: "gs-37 gspan-2 lane-1-of-1"
    }
    assert placed_css(WEDNESDAY, entry(2, berlin(2025, 1, 15, 23, 45), 15)) == {
        2: "gs-96 gspan-1 lane-1-of-1"
    }


def test_a8_overlapping_items_sit_side_by_side_and_the_rest_keep_the_full_width():
    css = placed_css(
        WEDNESDAY,
        entry(1, berlin(2025, 1, 15, 9, 0), 120),  # 09:00-11:00
        entry(2, berlin(2025, 1, 15, 9, 0), 60),  # 09:00-10:00
        entry(3, berlin(2025, 1, 15, 10, 0), 60),  # 10:00-11:00: takes the lane #2 left free
        entry(4, berlin(2025, 1, 15, 11, 0), 30),  # after the group
    )
    assert css == {
        1: "gs-37 gspan-8 lane-1-of-2",
        2: "gs-37 gspan-4 lane-2-of-2",
        3: "gs-41 gspan-4 lane-2-of-2",
        4: "gs-45 gspan-2 lane-1-of-1",
    }


def test_a8_three_at_once_share_the_width_in_thirds():
    starts = [berlin(2025, 1, 15, 9, 0), berlin(2025, 1, 15, 9, 15), berlin(2025, 1, 15, 9, 30)]
    css = placed_css(WEDNESDAY, *(entry(pk, start) for pk, start in enumerate(starts, 1)))
    assert [value.split()[-1] for value in css.values()] == ["lane-1-of-3", "lane-2-of-3", "lane-3-of-3"]


def test_a8_more_items_at_once_than_lanes_are_stacked_with_an_offset():
    crowd = [entry(pk, berlin(2025, 1, 15, 9, 0)) for pk in range(1, MAX_LANES + 3)]
    placed = place_day(WEDNESDAY, crowd, BERLIN)
    assert {p.lanes for p in placed} == {MAX_LANES}
    assert [(p.lane, p.stack) for p in placed] == [(lane, 0) for lane in range(1, MAX_LANES + 1)] + [
        (1, 1),
        (2, 1),
    ]
    assert placed[-1].css == f"gs-37 gspan-4 lane-2-of-{MAX_LANES} stack-1"


def test_a8_an_item_past_midnight_continues_in_the_next_days_column():
    late = entry(1, berlin(2025, 1, 15, 22, 0), 240)  # 22:00 to 02:00 on Thursday
    assert placed_css(WEDNESDAY, late) == {1: "gs-89 gspan-8 lane-1-of-1 continues-after"}
    assert placed_css(dt.date(2025, 1, 16), late) == {1: "gs-1 gspan-8 lane-1-of-1 continues-before"}
    assert placed_css(dt.date(2025, 1, 17), late) == {}
    ends_at_midnight = entry(2, berlin(2025, 1, 15, 23, 0), 60)
    assert placed_css(WEDNESDAY, ends_at_midnight) == {2: "gs-93 gspan-4 lane-1-of-1"}
    assert placed_css(dt.date(2025, 1, 16), ends_at_midnight) == {}


def test_a8_rows_follow_the_wall_clock_on_the_day_the_clocks_go_forward():
    # 30 March 2025: Berlin skips 02:00-03:00. Two hours from 01:30 end at 04:30 local time.
    grid = build_grid(
        CalendarView.WEEK,
        dt.date(2025, 3, 30),
        today=dt.date(2025, 3, 24),
        tz=BERLIN,
        activities=[activity(1, berlin(2025, 3, 30, 1, 30), 120)],
    )
    [timed] = grid.weeks[0][6].timed
    assert (timed.starts.strftime("%H:%M"), timed.ends.strftime("%H:%M")) == ("01:30", "04:30")
    week = build_week(grid, tz=BERLIN, now=berlin(2025, 3, 24, 9, 0))
    [placed] = week.columns[6].placed
    assert placed.css == "gs-7 gspan-12 lane-1-of-1"


def test_a8_week_opens_at_seven_or_at_an_earlier_first_item_and_marks_now_in_todays_column():
    now = dt.datetime(2025, 1, 13, 9, 0, tzinfo=dt.UTC)  # 10:00 in Berlin
    quiet = build_grid(CalendarView.WEEK, WEDNESDAY, today=dt.date(2025, 1, 13), tz=BERLIN, activities=[])
    week = build_week(quiet, tz=BERLIN, now=now)
    assert week.scroll_hour == 7
    assert [column.now_row for column in week.columns] == [41, None, None, None, None, None, None]
    assert [hour.label for hour in week.hours][:2] == ["00:00", "01:00"]
    assert week.hours[7].css == "gs-29 gspan-4"
    assert len(week.hours) == 24

    early = build_grid(
        CalendarView.WEEK,
        WEDNESDAY,
        today=dt.date(2025, 1, 13),
        tz=BERLIN,
        activities=[activity(1, berlin(2025, 1, 16, 5, 45)), activity(2, berlin(2025, 1, 15, 8, 0))],
    )
    assert build_week(early, tz=BERLIN, now=now).scroll_hour == 5


def _css_rules(name: str) -> set[str]:
    """Every class a selector of the stylesheet names."""
    return set(re.findall(r"\.([a-z][a-z0-9-]*)", (STATIC / name).read_text()))


def test_a8_every_class_the_grid_uses_is_in_the_static_stylesheet():
    """No inline styles (CSP): each position, lane and colour must exist as a class."""
    rules = _css_rules("calendar.css")
    assert {f"gs-{row}" for row in range(1, SLOTS_PER_DAY + 1)} <= rules
    assert {f"gspan-{span}" for span in range(1, SLOTS_PER_DAY + 1)} <= rules
    assert {
        f"lane-{lane}-of-{lanes}" for lanes in range(1, MAX_LANES + 1) for lane in range(1, lanes + 1)
    } <= rules
    assert {f"stack-{level}" for level in range(1, MAX_STACK + 1)} <= rules
    assert {"continues-before", "continues-after", "wk-now"} <= rules
    assert {f"tc-{key}" for key in PALETTE} | {"tc-private", "type-dot"} <= _css_rules("app.css")
