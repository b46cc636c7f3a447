"""The calendar page (A8): the list's filters, A5/A6, time zones, the 500-item cap, htmx navigation."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.urls import reverse

from activities.models import ActivityType, SyncStatus
from tests.activities.calendar_html import calendar_items
from tests.activities.conftest import all_day, berlin, bulk_timed, make_account, timed

CALENDAR = reverse("activities:calendar")

pytestmark = pytest.mark.usefixtures("frozen_now")


def items(response) -> list[str]:
    """The calendar items' start time (or "All day") and subject, in page order."""
    return [item.text for item in calendar_items(response.content.decode())]


def cell_of(response, day: str) -> str:
    """The HTML of the month cell of ``day`` (YYYY-MM-DD)."""
    html = response.content.decode()
    match = re.search(rf'<td[^>]*>\s*<div class="day-num"><time datetime="{day}".*?</td>', html, flags=re.S)
    assert match, day
    return match.group(0)


@pytest.mark.django_db
def test_a8_anonymous_is_sent_to_login(client):
    response = client.get(CALENDAR)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a8_week_view_has_seven_days_an_all_day_row_and_timed_items_in_order(owner_client, owner):
    timed(owner, berlin(2025, 1, 15, 14, 0), subject="Afternoon demo")
    timed(owner, berlin(2025, 1, 15, 9, 0), subject="Morning call")
    all_day(owner, dt.date(2025, 1, 15), subject="Trade fair")
    response = owner_client.get(CALENDAR, {"view": "week", "date": "2025-01-15"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "13 \N{EN DASH} 19 Jan 2025" in html
    assert len(re.findall(r'<div class="wk-dayhead[^"]*"><time datetime="2025-01-1\d"', html)) == 7
    assert '<div class="wk-rowhead">All day</div>' in html
    assert items(response) == ["All day Trade fair", "09:00 Morning call", "14:00 Afternoon demo"]


def test_a8_default_is_the_current_week(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="This week")
    timed(owner, berlin(2025, 1, 21, 9, 0), subject="Next week")
    response = owner_client.get(CALENDAR)
    assert items(response) == ["09:00 This week"]
    assert "(today)" in response.content.decode()


def test_a8_month_view_weeks_start_on_monday(owner_client, owner):
    timed(owner, berlin(2025, 1, 31, 9, 0), subject="Month end")
    timed(owner, berlin(2025, 2, 2, 9, 0), subject="Shown in the trailing week")
    timed(owner, berlin(2025, 2, 3, 9, 0), subject="Not shown")
    response = owner_client.get(CALENDAR, {"view": "month", "date": "2025-01-10"})
    html = response.content.decode()
    assert "January 2025" in html
    headers = re.findall(r'<th scope="col">(\w+day)</th>', html)
    assert headers == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    assert items(response) == ["09:00 Month end", "09:00 Shown in the trailing week"]
    assert "Month end" in cell_of(response, "2025-01-31")
    assert "outside" in cell_of(response, "2025-02-02").split(">", 1)[0]
    assert "outside" not in cell_of(response, "2025-01-31").split(">", 1)[0]


def test_a8_navigation_links_work_with_and_without_htmx(owner_client):
    html = owner_client.get(CALENDAR, {"view": "week", "date": "2025-01-15", "owner": "all"}).content.decode()
    for date in ("2025-01-06", "2025-01-20", "2025-01-13"):
        link = f"/activities/calendar/?view=week&amp;date={date}&amp;owner=all"
        assert f'href="{link}"' in html
        assert f'hx-get="{link}" hx-target="#calendar" hx-push-url="true"' in html
    month = "/activities/calendar/?view=month&amp;date=2025-01-15&amp;owner=all"
    assert f'href="{month}"' in html
    assert f'hx-get="{month}"' in html


def test_a8_htmx_request_returns_only_the_calendar_fragment(owner_client, owner):
    timed(owner, berlin(2025, 1, 21, 9, 0), subject="Next week")
    response = owner_client.get(
        CALENDAR, {"view": "week", "date": "2025-01-20"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="activity-filters"' not in html
    assert items(response) == ["09:00 Next week"]
    assert 'name="date" value="2025-01-20" form="activity-filters"' in html  # keeps the filter form in step


def test_a8_items_show_sync_status_and_account(owner_client, owner):
    timed(
        owner,
        berlin(2025, 1, 14, 9, 0),
        subject="Synced call",
        sync_status=SyncStatus.SYNCED,
        calendar_account=make_account(owner, "owner@gmail.test"),
    )
    [item] = calendar_items(owner_client.get(CALENDAR).content.decode())
    assert item.sync_text == "\N{CHECK MARK} Synced"
    assert item.images == ["/static/img/provider-google.svg"]
    assert item.accessible_text == "09:00 \N{EN DASH} 09:30 Synced call Synced Google: owner@gmail.test"


def test_a8_calendar_uses_the_list_filters(owner_client, owner, colleague):
    call = ActivityType.objects.get(company=owner.company, name="Call")
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="My call", type=call)
    timed(owner, berlin(2025, 1, 14, 10, 0), subject="My meeting")
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="My done call", type=call, done=True)
    timed(colleague, berlin(2025, 1, 14, 12, 0), subject="Their call", type=call)
    assert items(owner_client.get(CALENDAR)) == ["09:00 My call", "10:00 My meeting"]
    assert items(owner_client.get(CALENDAR, {"types": call.pk})) == ["09:00 My call"]
    assert items(owner_client.get(CALENDAR, {"types": call.pk, "status": "all"})) == [
        "09:00 My call",
        "11:00 My done call",
    ]
    assert items(owner_client.get(CALENDAR, {"owner": "all", "types": call.pk})) == [
        "09:00 My call",
        "12:00 Their call",
    ]
    assert items(owner_client.get(CALENDAR, {"owner": colleague.pk})) == ["12:00 Their call"]
    assert items(owner_client.get(CALENDAR, {"q": "meeting"})) == ["10:00 My meeting"]


def test_a8_outsider_sees_an_empty_calendar(outsider_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="My call")
    response = outsider_client.get(CALENDAR, {"owner": "all", "status": "all"})
    assert items(response) == []
    assert "No activities in this range match the filters." in response.content.decode()


def test_a5_activity_linked_to_hidden_deal_is_not_in_the_calendar(
    colleague_client, owner_client, owner, hidden_deal
):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Negotiate", deal=hidden_deal)
    assert items(colleague_client.get(CALENDAR, {"owner": "all"})) == []
    assert items(owner_client.get(CALENDAR)) == ["09:00 Negotiate"]


def test_a6_private_activity_shows_as_private_in_the_calendar(colleague_client, private_activity):
    response = colleague_client.get(CALENDAR, {"owner": "all"})
    html = response.content.decode()
    assert items(response) == ["09:00 Private"]
    assert "Secret merger talk" not in html
    assert "Hotel Adlon" not in html
    assert reverse("activities:detail", args=[private_activity.pk]) not in html


def test_a8_time_zones_23_30_berlin_is_the_same_day_1730_in_new_york(owner_client, colleague_client, owner):
    timed(owner, berlin(2025, 1, 15, 23, 30), subject="Late call")
    params = {"view": "month", "date": "2025-01-15", "owner": "all"}
    berlin_view = owner_client.get(CALENDAR, params)
    assert "23:30 Late call" in " ".join(items(berlin_view))
    assert "Late call" in cell_of(berlin_view, "2025-01-15")
    new_york_view = colleague_client.get(CALENDAR, params)
    assert items(new_york_view) == ["17:30 Late call"]
    assert "Late call" in cell_of(new_york_view, "2025-01-15")


def test_a8_just_after_midnight_in_berlin_is_the_previous_day_in_new_york(colleague_client, owner):
    timed(owner, berlin(2025, 1, 20, 0, 30), subject="Monday early")
    # The New York viewer's week of 13-19 January ends at 19 Jan 23:59 local = 20 Jan 05:59 Berlin.
    response = colleague_client.get(CALENDAR, {"view": "week", "date": "2025-01-15", "owner": "all"})
    assert items(response) == ["18:30 Monday early"]
    assert items(colleague_client.get(CALENDAR, {"view": "week", "date": "2025-01-20", "owner": "all"})) == []


def test_a8_cap_at_500_with_a_plain_notice(owner_client, owner):
    limit = settings.CALENDAR_MAX_ITEMS
    assert limit == 500
    start = berlin(2025, 1, 13, 0, 0)
    bulk_timed(owner, [start + dt.timedelta(minutes=15 * index) for index in range(limit + 7)])
    response = owner_client.get(CALENDAR, {"view": "week", "date": "2025-01-13"})
    html = response.content.decode()
    assert (
        "Showing the first 500 of 507 activities in this range; narrow the filters to see the rest." in html
    )
    assert len(items(response)) == limit
    shown = items(response)
    assert shown[0] == "00:00 Bulk call 0"  # the earliest ones, in time order


def test_a8_no_notice_at_exactly_500(owner_client, owner):
    start = berlin(2025, 1, 13, 0, 0)
    bulk_timed(owner, [start + dt.timedelta(minutes=15 * index) for index in range(500)])
    response = owner_client.get(CALENDAR, {"view": "week", "date": "2025-01-13"})
    assert "Showing the first" not in response.content.decode()
    assert len(items(response)) == 500


def test_a8_calendar_query_count_is_constant(django_assert_max_num_queries, owner_client, owner, colleague):
    account = make_account(owner)
    start = berlin(2025, 1, 1, 8, 0)
    bulk_timed(
        owner,
        [start + dt.timedelta(hours=index) for index in range(300)],
        calendar_account=account,
        sync_status="synced",
    )
    bulk_timed(
        colleague, [start + dt.timedelta(hours=index, minutes=30) for index in range(250)], visibility="owner"
    )
    owner_client.get(CALENDAR)  # warm up the session
    with django_assert_max_num_queries(10):
        response = owner_client.get(CALENDAR, {"view": "month", "date": "2025-01-15", "owner": "all"})
    assert len(items(response)) == 500
    assert "Showing the first 500 of 550 activities" in response.content.decode()


def test_a8_bad_view_and_date_fall_back_to_this_week(owner_client):
    response = owner_client.get(CALENDAR, {"view": "decade", "date": "soon"})
    assert response.status_code == 200
    assert "13 \N{EN DASH} 19 Jan 2025" in response.content.decode()


def test_a8_week_view_places_timed_items_on_their_days_hour_grid(owner_client, owner):
    timed(owner, berlin(2025, 1, 15, 9, 0), subject="Standup")
    timed(owner, berlin(2025, 1, 15, 9, 15), subject="Design review", duration=dt.timedelta(hours=1))
    timed(owner, berlin(2025, 1, 16, 22, 0), subject="Night shift", duration=dt.timedelta(hours=4))
    all_day(owner, dt.date(2025, 1, 15), subject="Trade fair")
    html = owner_client.get(CALENDAR, {"view": "week", "date": "2025-01-15"}).content.decode()
    placed = {(item.text, item.column, " ".join(item.placement)) for item in calendar_items(html)}
    assert placed == {
        ("All day Trade fair", "All day, Wednesday 15 January", ""),
        ("09:00 Standup", "Wednesday 15 January", "wk-entry gs-37 gspan-2 lane-1-of-2"),
        ("09:15 Design review", "Wednesday 15 January", "wk-entry gs-38 gspan-4 lane-2-of-2"),
        ("22:00 Night shift", "Thursday 16 January", "wk-entry gs-89 gspan-8 lane-1-of-1 continues-after"),
        ("22:00 Night shift", "Friday 17 January", "wk-entry gs-1 gspan-8 lane-1-of-1 continues-before"),
    }
    [continued] = [item for item in calendar_items(html) if "continues-before" in item.placement]
    assert continued.accessible_text.startswith("22:00 \N{EN DASH} Fri 02:00 Night shift (continued)")
    # Hours 00:00-23:00 label the grid, which opens at 07:00; "now" is marked in today's column.
    assert len(re.findall(r'<span class="wk-hour gs-\d+ gspan-4" data-hour="\d+">', html)) == 24
    assert 'data-scroll-hour="7"' in html
    assert re.search(r'<ol class="wk-day today" aria-label="Monday 13 January">.*?wk-now gs-41', html, re.S)


def test_a8_week_query_count_is_constant(django_assert_max_num_queries, owner_client, owner, colleague):
    account = make_account(owner)
    start = berlin(2025, 1, 13, 0, 0)
    bulk_timed(
        owner, [start + dt.timedelta(minutes=20 * index) for index in range(300)], calendar_account=account
    )
    bulk_timed(
        colleague, [start + dt.timedelta(minutes=25 * index) for index in range(250)], visibility="owner"
    )
    owner_client.get(CALENDAR)  # warm up the session
    with django_assert_max_num_queries(10):
        response = owner_client.get(CALENDAR, {"view": "week", "date": "2025-01-15", "owner": "all"})
    # 500 activities; one running past midnight shows in two day columns.
    assert len({item.pk for item in calendar_items(response.content.decode())}) == 500
