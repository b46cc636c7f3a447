"""Out-of-range dates and junk or huge ids from a request are validation errors or ignored, never a 500.

An adversarial review found that 9999-12-31 23:30 saved (and overflowed later in the sync
mapping), 0001-01-01 00:00 in Berlin crashed the form, "²" and 26-digit ids crashed the form,
the pickers and the preferences, and the calendar crashed at the ends of the date range.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import User
from activities.bounds import DATE_RANGE_MESSAGE, MAX_ID, parse_id, parse_ids
from activities.calendar import CalendarView, build_grid, parse_anchor
from activities.forms import local_start
from activities.models import Activity, ActivityType, Visibility
from calendarsync.actions import do_start_sync
from tests.activities.conftest import BERLIN, NEW_YORK, berlin, make_deal, make_org, make_person, timed
from tests.calendarsync.support import HTMX, connect_account

CREATE = reverse("activities:create")
LIST = reverse("activities:list")
CALENDAR = reverse("activities:calendar")
EXPORT = reverse("activities:export")
TOO_BIG = "9" * 26
JUNK_IDS = [
    "\N{SUPERSCRIPT TWO}",  # str.isdigit() says yes, int() says no
    "\N{ARABIC-INDIC DIGIT ONE}",  # int() reads it as 1: not an id a browser sends
    TOO_BIG,
    str(2**63),  # one past the largest bigint
]

pytestmark = pytest.mark.usefixtures("frozen_now")


@pytest.fixture
def meeting(owner: User) -> ActivityType:
    return ActivityType.objects.get(company=owner.company, name="Meeting")


def form_data(meeting: ActivityType, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "subject": "Edge of time",
        "type": str(meeting.pk),
        "due_date": "2025-01-15",
        "due_time": "10:00",
        "duration_preset": "30",
        "busy": "True",
        "visibility": Visibility.EVERYONE,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


# --- ids ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("007", 7),
        (str(MAX_ID), MAX_ID),
        (42, 42),
        *((junk, None) for junk in JUNK_IDS),
        ("-5", None),
        ("1.0", None),
        (" 7", None),
        ("0", None),
        ("", None),
        (None, None),
        (True, None),
        ("1" * 4400, None),  # longer than int() converts at all
    ],
)
def test_parse_id_takes_ascii_digits_within_the_bigint_range_only(raw, expected):
    assert parse_id(raw) == expected


def test_parse_ids_keeps_the_valid_ones_once_in_order():
    assert parse_ids(["3", TOO_BIG, "1", "3", "\N{SUPERSCRIPT TWO}", "2"]) == [3, 1, 2]


@pytest.mark.parametrize("junk", JUNK_IDS)
@pytest.mark.parametrize("field", ["participants", "deal", "person", "organization"])
def test_a3_picker_options_ignore_junk_chosen_ids(owner_client, owner, field, junk):
    make_person(owner, "Ann Alpha")
    make_deal(owner, "Alpha deal")
    make_org(owner, "Alpha org")
    url = reverse("activities:picker_options", args=[field])
    response = owner_client.get(url, {f"{field}_query": "a", field: [junk, "1"]})
    assert response.status_code == 200
    assert 'role="option"' in response.content.decode()


@pytest.mark.parametrize("junk", JUNK_IDS)
@pytest.mark.parametrize(
    "field", ["participants", "participants_pick", "deal", "deal_pick", "person", "organization", "type"]
)
def test_a3_junk_ids_posted_to_the_form_are_refused_and_nothing_is_saved(
    owner_client, owner, meeting, field, junk
):
    person = make_person(owner, "Pat Buyer")
    data = form_data(meeting, participants=[str(person.pk)])
    data[field] = [*data[field], junk] if field == "participants" else junk
    response = owner_client.post(CREATE, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The activity was not saved." in html
    assert Activity.objects.count() == 0
    # The good participant stays chosen for the next try.
    assert f'name="participants" value="{person.pk}"' in html


@pytest.mark.parametrize("junk", JUNK_IDS)
def test_a3_junk_ids_posted_when_editing_change_nothing(owner_client, owner, meeting, junk):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), subject="Original")
    edit = reverse("activities:edit", args=[activity.pk])
    for field in ("participants", "deal", "deal_pick", "participants_pick"):
        response = owner_client.post(edit, form_data(meeting, subject="Changed", **{field: junk}))
        assert response.status_code == 200
    activity.refresh_from_db()
    assert activity.subject == "Original"


@pytest.mark.parametrize("junk", JUNK_IDS)
@pytest.mark.parametrize("url", [LIST, CALENDAR, EXPORT])
def test_a7_a8_junk_type_ids_in_the_filters_are_ignored(owner_client, owner, url, junk):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Still listed")
    response = owner_client.get(url, {"types": junk, "owner": junk})
    assert response.status_code == 200
    body = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
    assert "Still listed" in body


@pytest.mark.parametrize("junk", JUNK_IDS)
@pytest.mark.parametrize("headers", [{}, HTMX])
def test_o3_junk_outgoing_type_ids_are_refused_with_a_message(owner_client, owner, junk, headers):
    account = connect_account(owner)
    url = reverse("calendarsync:update_preferences", args=[account.pk, "outgoing_types"])
    response = owner_client.post(url, {"outgoing_types": [junk]}, headers=headers, follow=not headers)
    assert response.status_code == (422 if headers else 200)
    assert "That is not an active activity type of your company." in response.content.decode()


@pytest.mark.parametrize("junk", [TOO_BIG, str(2**63)])
def test_a3_huge_ids_in_urls_are_404(owner_client, junk):
    for name in ("detail", "edit", "delete"):
        assert (
            owner_client.get(f"/activities/{junk}/{'' if name == 'detail' else name + '/'}").status_code
            == 404
        )
    assert owner_client.post(f"/activities/{junk}/done/").status_code == 404


# --- dates in the form -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "changes"),
    [
        ("owner", {"due_date": "9999-12-31", "due_time": "23:30"}),
        ("owner", {"due_date": "0001-01-01", "due_time": "00:00"}),
        ("owner", {"due_date": "0001-01-01", "due_time": "10:00"}),
        ("colleague", {"due_date": "9999-12-31", "due_time": "23:30"}),
        ("owner", {"due_date": "1899-12-31", "due_time": "10:00"}),
        ("owner", {"due_date": "3000-01-01", "due_time": "10:00"}),
        ("owner", {"due_date": "9999-12-31", "due_time": None, "all_day": "on"}),
        ("owner", {"due_date": "0001-01-01", "due_time": None, "all_day": "on"}),
        ("owner", {"due_date": "2999-12-30", "due_time": None, "all_day": "on", "end_date": "3000-01-01"}),
        ("owner", {"due_date": "2025-01-15", "due_time": None, "all_day": "on", "end_date": "9999-12-31"}),
    ],
)
def test_a3_dates_outside_1900_to_2999_are_refused_and_nothing_is_saved(
    owner_client, colleague_client, meeting, who, changes
):
    client = owner_client if who == "owner" else colleague_client
    response = client.post(CREATE, form_data(meeting, **changes))
    assert response.status_code == 200
    assert DATE_RANGE_MESSAGE in response.content.decode()
    assert Activity.objects.count() == 0


def test_a3_an_all_day_date_out_of_range_is_refused_with_sync_on(owner_client, owner, meeting):
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    response = owner_client.post(
        CREATE, form_data(meeting, due_date="9999-12-31", due_time=None, all_day="on")
    )
    assert response.status_code == 200
    assert DATE_RANGE_MESSAGE in response.content.decode()
    assert Activity.objects.count() == 0


@pytest.mark.parametrize(
    ("who", "changes", "start_at", "due_date"),
    [
        ("owner", {"due_date": "1900-01-01", "due_time": "00:00"}, None, dt.date(1900, 1, 1)),
        ("colleague", {"due_date": "2999-12-31", "due_time": "23:30"}, None, dt.date(2999, 12, 31)),
        ("owner", {"due_date": "2999-12-31", "due_time": None, "all_day": "on"}, None, dt.date(2999, 12, 31)),
    ],
)
def test_a3_the_first_and_last_days_of_the_range_are_accepted(
    owner_client, colleague_client, meeting, who, changes, start_at, due_date
):
    client = owner_client if who == "owner" else colleague_client
    assert client.post(CREATE, form_data(meeting, **changes)).status_code == 302
    assert Activity.objects.get().due_date == due_date


@pytest.mark.parametrize(
    ("day", "time", "tz"),
    [(dt.date(1, 1, 1), dt.time(0, 0), BERLIN), (dt.date(9999, 12, 31), dt.time(23, 30), NEW_YORK)],
)
def test_a3_local_start_next_to_datetimes_limits_is_a_validation_error(day, time, tz):
    with pytest.raises(ValidationError) as raised:
        local_start(day, time, tz)
    assert raised.value.code == "date_out_of_range"


def test_a3_a_new_form_ignores_an_out_of_range_date_in_the_url(owner_client):
    html = owner_client.get(CREATE, {"date": "0001-01-01"}).content.decode()
    assert "0001-01-01" not in html


# --- the calendar and the list's date filters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "title"),
    [
        ({"date": "9999-12-31"}, "30 Dec 2999 \N{EN DASH} 5 Jan 3000"),
        ({"date": "0001-01-01"}, "1 \N{EN DASH} 7 Jan 1900"),
        ({"date": "0001-01-03"}, "1 \N{EN DASH} 7 Jan 1900"),
        ({"date": "9999-12-31", "view": "month"}, "December 2999"),
        ({"date": "0001-01-01", "view": "month"}, "January 1900"),
        ({"date": "1900-01-01"}, "1 \N{EN DASH} 7 Jan 1900"),
        ({"date": "2999-12-31", "view": "month"}, "December 2999"),
    ],
)
def test_a8_calendar_at_the_ends_of_time_shows_the_nearest_period(owner_client, params, title):
    response = owner_client.get(CALENDAR, params)
    assert response.status_code == 200
    assert f'id="calendar-title" class="cal-title">{title}</h2>' in response.content.decode()


@pytest.mark.parametrize(
    ("params", "has_previous", "has_next"),
    [
        ({"date": "1900-01-01"}, False, True),
        ({"date": "1900-01-08"}, True, True),
        ({"date": "1900-01-31", "view": "month"}, False, True),
        ({"date": "1900-02-01", "view": "month"}, True, True),
        ({"date": "2999-12-31"}, True, False),
        ({"date": "2999-12-23"}, True, True),
        ({"date": "2999-12-01", "view": "month"}, True, False),
        ({"date": "2999-11-30", "view": "month"}, True, True),
    ],
)
def test_a8_previous_and_next_stop_at_the_ends_of_time(owner_client, params, has_previous, has_next):
    html = owner_client.get(CALENDAR, params).content.decode()
    assert ('rel="prev"' in html) is has_previous
    assert ('rel="next"' in html) is has_next
    assert html.count('aria-disabled="true"') == (not has_previous) + (not has_next)
    for found in re.findall(r'href="[^"]*date=(\d{4}-\d{2}-\d{2})', html):
        assert "1900-01-01" <= found <= "2999-12-31"


def test_a8_parse_anchor_clamps_to_the_range():
    today = dt.date(2025, 1, 13)
    assert parse_anchor("0001-01-01", today) == dt.date(1900, 1, 1)
    assert parse_anchor("9999-12-31", today) == dt.date(2999, 12, 31)
    assert parse_anchor("2025-02-30", today) == today


def test_a8_grid_at_the_bounds_has_no_previous_or_next():
    first = build_grid(
        CalendarView.MONTH, dt.date(1900, 1, 1), today=dt.date(2025, 1, 13), tz=BERLIN, activities=[]
    )
    last = build_grid(
        CalendarView.WEEK, dt.date(2999, 12, 31), today=dt.date(2025, 1, 13), tz=BERLIN, activities=[]
    )
    assert (first.previous_anchor, first.next_anchor) == (None, dt.date(1900, 2, 1))
    assert (last.previous_anchor, last.next_anchor) == (dt.date(2999, 12, 23), None)


@pytest.mark.parametrize(
    "params",
    [
        {"time": "range", "from": "0001-01-01", "to": "9999-12-31"},
        {"time": "range", "from": "0001-01-01"},
        {"time": "range", "to": "9999-12-31"},
        {"from": "1899-12-31"},
    ],
)
@pytest.mark.parametrize("url", [LIST, CALENDAR, EXPORT])
def test_a7_out_of_range_filter_dates_are_reported_and_ignored(
    owner_client, owner, colleague_client, url, params
):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Still listed")
    for client, extra in ((owner_client, {}), (colleague_client, {"owner": "all"})):
        response = client.get(url, {**params, **extra, "date": "2025-01-14"})
        assert response.status_code == 200
        if response.streaming:
            assert "Still listed" in b"".join(response.streaming_content).decode()
        else:
            html = response.content.decode()
            assert "Still listed" in html
            if url == LIST:
                assert DATE_RANGE_MESSAGE in html
