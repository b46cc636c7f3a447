"""A3: a timed activity may run past midnight. With "Custom", an end time before the start time is the next day.

Found in review: 22:00 to 01:00 was refused with "The end time must be after the start time".
Durations are real elapsed time, so a night on which the clocks change is an hour shorter or longer.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from activities.forms import ActivityForm
from activities.models import Activity, ActivityType, Visibility
from tests.activities.conftest import berlin, timed
from tests.activities.form_html import submitted_values

CREATE = reverse("activities:create")

pytestmark = pytest.mark.usefixtures("frozen_now")


@pytest.fixture
def night_shift(owner):
    meeting = ActivityType.objects.get(company=owner.company, name="Meeting")
    return {
        "subject": "Night shift",
        "type": str(meeting.pk),
        "due_date": "2025-01-15",
        "due_time": "22:00",
        "duration_preset": "custom",
        "end_time": "01:00",
        "busy": "True",
        "visibility": Visibility.EVERYONE,
    }


def edit_url(activity: Activity) -> str:
    return reverse("activities:edit", args=[activity.pk])


def test_a3_an_end_time_before_the_start_time_is_on_the_next_day(owner_client, night_shift):
    assert owner_client.post(CREATE, night_shift).status_code == 302
    activity = Activity.objects.get()
    assert activity.start_at == berlin(2025, 1, 15, 22, 0)
    assert activity.due_date == dt.date(2025, 1, 15)
    assert activity.duration == dt.timedelta(hours=3)


@pytest.mark.parametrize(
    ("day", "start", "end", "hours"),
    [
        # Berlin skips 02:00-03:00 on 30 March 2025: 22:00 to 04:00 on the clock is five hours.
        ("2025-03-29", "22:00", "04:00", 5),
        # ... and goes through 02:00-03:00 twice on 26 October 2025: seven hours.
        ("2025-10-25", "22:00", "04:00", 7),
        ("2025-10-25", "23:30", "00:15", 0.75),
        # An ordinary night, ending one minute before the start time.
        ("2025-01-15", "09:00", "08:59", 23 + 59 / 60),
    ],
)
def test_a3_a_night_across_a_daylight_saving_change_counts_real_time(
    owner_client, night_shift, day, start, end, hours
):
    response = owner_client.post(CREATE, {**night_shift, "due_date": day, "due_time": start, "end_time": end})
    assert response.status_code == 302
    assert Activity.objects.get().duration == dt.timedelta(hours=hours)


def test_a3_an_end_time_the_clocks_skip_on_the_next_day_is_refused(owner_client, night_shift):
    response = owner_client.post(
        CREATE, {**night_shift, "due_date": "2025-03-29", "due_time": "23:00", "end_time": "02:30"}
    )
    assert "02:30 does not exist on 2025-03-30 in your time zone" in response.content.decode()
    assert Activity.objects.count() == 0


def test_a3_the_same_start_and_end_time_is_refused(owner_client, night_shift):
    response = owner_client.post(CREATE, {**night_shift, "end_time": "22:00"})
    assert "The end time must differ from the start time." in response.content.decode()
    assert Activity.objects.count() == 0


def test_a3_a_preset_ignores_the_end_time(owner_client, night_shift):
    owner_client.post(CREATE, {**night_shift, "duration_preset": "60"})
    assert Activity.objects.get().duration == dt.timedelta(hours=1)


def test_a3_the_help_text_says_an_earlier_end_time_is_the_next_day(owner_client):
    html = owner_client.get(CREATE).content.decode()
    assert "A time before the start time is on the next day" in html


@pytest.mark.parametrize(
    ("start", "duration", "end_time"),
    [
        (berlin(2025, 1, 15, 22, 0), dt.timedelta(hours=3), "01:00"),
        (berlin(2025, 3, 29, 22, 0), dt.timedelta(hours=5), "04:00"),  # the clocks go forward
        (berlin(2025, 10, 25, 22, 0), dt.timedelta(hours=7), "04:00"),  # the clocks go back
        (berlin(2025, 1, 15, 9, 0), dt.timedelta(hours=23, minutes=59), "08:59"),
    ],
)
def test_a3_an_overnight_activity_shows_its_end_time_and_saves_unchanged(
    owner_client, owner, start, duration, end_time
):
    activity = timed(owner, start, duration=duration)
    html = owner_client.get(edit_url(activity)).content.decode()
    posted = submitted_values(html)
    assert posted["duration_preset"] == ["custom"]
    assert posted["end_time"] == [end_time]
    assert "It now ends on" not in html
    assert owner_client.post(edit_url(activity), posted).status_code == 302
    activity.refresh_from_db()
    assert (activity.start_at, activity.duration) == (start, duration)


def test_a3_form_unit_end_before_start_is_the_next_day(owner, night_shift):
    form = ActivityForm(night_shift, user=owner)
    assert form.is_valid(), form.errors
    assert form.instance.duration == dt.timedelta(hours=3)
