"""Creating and editing activities (A3), no recurrence (A4), owner-only changes, links limited by A5."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from activities.forms import ActivityForm, parse_guests
from activities.models import Activity, ActivityType, Visibility
from calendarsync.sync.mapping import activity_time
from tests.activities.conftest import BERLIN, berlin, make_deal, make_org, make_person, timed
from tests.activities.form_html import submitted_values
from tests.conftest import make_activity

CREATE = reverse("activities:create")

pytestmark = pytest.mark.usefixtures("frozen_now")


def edit_url(activity: Activity) -> str:
    return reverse("activities:edit", args=[activity.pk])


@pytest.fixture
def valid_post(owner):
    meeting = ActivityType.objects.get(company=owner.company, name="Meeting")
    return {
        "subject": "Kick-off with Initech",
        "type": str(meeting.pk),
        "due_date": "2025-01-15",
        "due_time": "23:30",
        "end_time": "23:45",
        "location": "Room 4",
        "note": "Agenda attached",
        "guests": "ann@example.com, bob@example.com\ncarl@example.com",
        "busy": "True",
        "visibility": Visibility.EVERYONE,
    }


# --- create ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a3_anonymous_cannot_open_the_form(client):
    response = client.get(CREATE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a3_create_timed_activity_in_the_users_time_zone(owner_client, owner, valid_post):
    deal, person, org = make_deal(owner), make_person(owner), make_org(owner)
    participant = make_person(owner, name="Pat Participant")
    response = owner_client.post(
        CREATE,
        {
            **valid_post,
            "deal": deal.pk,
            "person": person.pk,
            "organization": org.pk,
            "participants": [participant.pk],
        },
        follow=True,
    )
    assert response.redirect_chain == [(reverse("activities:list"), 302)]
    assert "Activity saved." in response.content.decode()
    activity = Activity.objects.get()
    assert activity.owner == owner
    assert activity.company == owner.company
    assert activity.start_at == dt.datetime(2025, 1, 15, 22, 30, tzinfo=dt.UTC)
    assert activity.due_date == dt.date(2025, 1, 15)
    assert activity.duration == dt.timedelta(minutes=15)
    assert activity.guests == ["ann@example.com", "bob@example.com", "carl@example.com"]
    assert (activity.deal, activity.person, activity.organization) == (deal, person, org)
    assert list(activity.participants.all()) == [participant]
    assert activity.busy is True
    assert activity.done is False


def test_a3_create_all_day_activity_when_no_time(owner_client, valid_post):
    response = owner_client.post(CREATE, {**valid_post, "due_time": "", "end_time": "", "busy": "False"})
    assert response.status_code == 302
    activity = Activity.objects.get()
    assert activity.is_all_day
    assert activity.start_at is None
    assert activity.duration is None
    assert activity.due_date == dt.date(2025, 1, 15)
    assert activity.busy is False


def test_a3_new_form_takes_the_date_from_the_calendar(owner_client):
    html = owner_client.get(CREATE, {"date": "2025-02-03"}).content.decode()
    assert 'value="2025-02-03"' in html


def test_a4_no_recurrence_field_and_posted_recurrence_creates_one_activity(owner_client, owner, valid_post):
    form = ActivityForm(user=owner)
    assert not {name for name in form.fields if "recur" in name or "rrule" in name or "repeat" in name}
    html = owner_client.get(CREATE).content.decode().lower()
    assert "recurr" not in html
    assert "rrule" not in html
    assert "repeat" not in html
    response = owner_client.post(
        CREATE,
        {**valid_post, "recurrence": "RRULE:FREQ=DAILY;COUNT=10", "rrule": "FREQ=WEEKLY", "repeat": "daily"},
    )
    assert response.status_code == 302
    assert Activity.objects.count() == 1


# --- bad input: re-rendered with the message, nothing saved ------------------------------------------


@pytest.fixture
def foreign_type(outsider):
    return ActivityType.objects.get(company=outsider.company, name="Meeting")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subject": ""}, "Give the activity a subject."),
        ({"due_date": ""}, "Pick the date of the activity."),
        ({"due_date": "2025-02-30"}, "Enter a valid date."),
        ({"end_time": "23:30"}, "The end time must differ from the start time."),  # zero duration
        ({"due_time": "", "end_time": "10:00"}, "Set a start time too"),
        ({"guests": "ann@example.com, not-an-address"}, "“not-an-address” is not a valid e-mail address."),
        ({"guests": "ann@example.com\nbob@"}, "“bob@” is not a valid e-mail address."),
        ({"due_date": "2025-03-30", "due_time": "02:30", "end_time": ""}, "does not exist on 2025-03-30"),
        ({"visibility": "team"}, "Select a valid choice."),
    ],
)
def test_a3_bad_input_is_refused_with_a_message(owner_client, valid_post, change, message):
    response = owner_client.post(CREATE, {**valid_post, **change})
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert "The activity was not saved." in html
    assert Activity.objects.count() == 0


@pytest.mark.parametrize("link", ["deal", "person", "organization", "participants"])
def test_a5_link_to_an_item_the_user_may_not_see_is_refused(colleague_client, owner, valid_post, link):
    factory = {
        "deal": make_deal,
        "person": make_person,
        "organization": make_org,
        "participants": make_person,
    }[link]
    hidden = factory(owner, "Owner only", visibility=Visibility.OWNER)
    response = colleague_client.post(CREATE, {**valid_post, link: hidden.pk})
    html = response.content.decode()
    assert "does not exist or you may not see" in html
    assert "Owner only" not in html
    assert Activity.objects.count() == 0


def test_a5_link_to_a_colleagues_public_item_is_allowed(colleague_client, owner, valid_post):
    deal = make_deal(owner, "Team deal")
    assert colleague_client.post(CREATE, {**valid_post, "deal": deal.pk}).status_code == 302
    assert Activity.objects.get().deal == deal


def test_a2_type_of_another_company_is_refused(owner_client, valid_post, foreign_type):
    response = owner_client.post(CREATE, {**valid_post, "type": foreign_type.pk})
    assert "Select a valid choice." in response.content.decode()
    assert Activity.objects.count() == 0


def test_a2_inactive_type_cannot_be_picked_for_a_new_activity(owner_client, owner, valid_post):
    lunch = ActivityType.objects.get(company=owner.company, name="Lunch")
    lunch.is_active = False
    lunch.save()
    assert f'value="{lunch.pk}"' not in owner_client.get(CREATE).content.decode()
    response = owner_client.post(CREATE, {**valid_post, "type": lunch.pk})
    assert "Select a valid choice." in response.content.decode()
    assert Activity.objects.count() == 0


# --- edit ----------------------------------------------------------------------------------------------


def test_a3_edit_form_shows_the_owners_local_time(owner_client, owner):
    activity = timed(owner, berlin(2025, 1, 15, 23, 30), guests=["ann@example.com", "bob@example.com"])
    html = owner_client.get(edit_url(activity)).content.decode()
    assert 'name="due_date" value="2025-01-15"' in html
    assert 'name="due_time" value="23:30"' in html
    assert 'name="end_time" value="00:00"' not in html  # 23:30 + 30 min ends on the next day
    assert "ann@example.com\nbob@example.com" in html


def test_a3_edit_saves_changes(owner_client, owner, valid_post):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0))
    response = owner_client.post(
        edit_url(activity),
        {**valid_post, "due_time": "14:00", "end_time": "15:30", "done": "on"},
        follow=True,
    )
    assert "Activity saved." in response.content.decode()
    activity.refresh_from_db()
    assert activity.subject == "Kick-off with Initech"
    assert activity.start_at == berlin(2025, 1, 15, 14, 0)
    assert activity.duration == dt.timedelta(minutes=90)
    assert activity.done is True


def test_a3_edit_to_all_day_clears_time_and_duration(owner_client, owner, valid_post):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0))
    owner_client.post(edit_url(activity), {**valid_post, "due_time": "", "end_time": ""})
    activity.refresh_from_db()
    assert activity.start_at is None
    assert activity.duration is None


def test_a3_bad_edit_changes_nothing(owner_client, owner, valid_post):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), subject="Original")
    response = owner_client.post(edit_url(activity), {**valid_post, "end_time": "09:00", "due_time": "09:00"})
    assert "The end time must differ from the start time." in response.content.decode()
    activity.refresh_from_db()
    assert activity.subject == "Original"


def test_a2_edit_keeps_a_deactivated_type(owner_client, owner, valid_post):
    lunch = ActivityType.objects.get(company=owner.company, name="Lunch")
    activity = timed(owner, berlin(2025, 1, 15, 12, 0), type=lunch)
    lunch.is_active = False
    lunch.save()
    html = owner_client.get(edit_url(activity)).content.decode()
    assert "Lunch (inactive)" in html
    response = owner_client.post(edit_url(activity), {**valid_post, "type": lunch.pk})
    assert response.status_code == 302
    activity.refresh_from_db()
    assert activity.type == lunch


def test_a3_colleague_cannot_edit_an_activity_they_can_see(colleague_client, owner, valid_post):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), subject="Original")
    assert colleague_client.get(edit_url(activity)).status_code == 404
    assert colleague_client.post(edit_url(activity), valid_post).status_code == 404
    activity.refresh_from_db()
    assert activity.subject == "Original"


def test_a6_colleague_gets_404_on_edit_url_of_a_private_activity(colleague_client, private_activity):
    assert colleague_client.get(edit_url(private_activity)).status_code == 404


def test_a1_outsider_gets_404_on_edit(outsider_client, owner, valid_post):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), subject="Original")
    assert outsider_client.get(edit_url(activity)).status_code == 404
    assert outsider_client.post(edit_url(activity), valid_post).status_code == 404


def test_a3_edit_of_missing_activity_is_404(owner_client):
    assert owner_client.get(reverse("activities:edit", args=[999999])).status_code == 404


# --- guests parser -------------------------------------------------------------------------------------


def test_a3_guests_are_split_on_commas_semicolons_and_new_lines_without_duplicates():
    assert parse_guests(" a@x.test,b@x.test;\n\nA@x.test\r\nc@x.test ") == [
        "a@x.test",
        "b@x.test",
        "c@x.test",
    ]
    assert parse_guests("") == []


def test_a3_form_field_times_are_local(owner):
    form = ActivityForm(
        data={
            "subject": "x",
            "type": ActivityType.objects.get(company=owner.company, name="Call").pk,
            "due_date": "2025-07-01",
            "due_time": "09:00",
            "busy": "True",
            "visibility": Visibility.EVERYONE,
        },
        user=owner,
    )
    assert form.is_valid(), form.errors
    activity = form.save()
    assert activity.start_at == dt.datetime(2025, 7, 1, 7, 0, tzinfo=dt.UTC)  # summer time: UTC+2
    assert activity.start_at == dt.datetime(2025, 7, 1, 9, 0, tzinfo=BERLIN)


def test_a1_outsider_cannot_link_another_companys_items(outsider_client, owner, valid_post, outsider):
    deal = make_deal(owner, "Acme public deal")
    globex_meeting = ActivityType.objects.get(company=outsider.company, name="Meeting")
    html = outsider_client.get(CREATE).content.decode()
    assert "Acme public deal" not in html
    response = outsider_client.post(CREATE, {**valid_post, "type": globex_meeting.pk, "deal": deal.pk})
    assert "does not exist or you may not see" in response.content.decode()
    assert Activity.objects.count() == 0


def test_a1_outsider_creates_in_their_own_company(outsider_client, outsider, valid_post):
    globex_meeting = ActivityType.objects.get(company=outsider.company, name="Meeting")
    assert outsider_client.post(CREATE, {**valid_post, "type": globex_meeting.pk}).status_code == 302
    activity = Activity.objects.get()
    assert activity.company == outsider.company
    assert activity.owner == outsider


# --- all day, last day, duration presets ----------------------------------------------------------------


def all_day(owner, first_day: dt.date, days: int = 1, **fields) -> Activity:
    """An all-day activity; over several days it keeps its length as whole days (as the sync stores it)."""
    duration = dt.timedelta(days=days) if days > 1 else None
    return make_activity(owner, start_at=None, due_date=first_day, duration=duration, **fields)


def test_a3_editing_a_multi_day_all_day_activity_keeps_all_its_days(owner_client, owner):
    """Saving the edit form as shown must not shorten a three-day item to one day, nor push anything."""
    activity = all_day(owner, dt.date(2025, 1, 20), days=3, subject="Trade fair")
    html = owner_client.get(edit_url(activity)).content.decode()
    posted = submitted_values(html)
    assert posted["all_day"] == ["on"]
    assert posted["end_date"] == ["2025-01-22"]
    sync_changed_at = activity.sync_changed_at

    response = owner_client.post(edit_url(activity), posted)
    assert response.status_code == 302
    activity.refresh_from_db()
    assert (activity.start_at, activity.due_date) == (None, dt.date(2025, 1, 20))
    assert activity.duration == dt.timedelta(days=3)
    assert activity.sync_changed_at == sync_changed_at  # nothing changed: nothing to push (R8)
    assert activity_time(activity) == {"start_date": "2025-01-20", "end_date": "2025-01-23"}

    owner_client.post(edit_url(activity), {**posted, "subject": ["Trade fair, Hall 4"]})
    activity.refresh_from_db()
    assert activity.subject == "Trade fair, Hall 4"
    assert activity.duration == dt.timedelta(days=3)


def test_a3_moving_a_multi_day_all_day_activity_with_its_last_day(owner_client, owner):
    activity = all_day(owner, dt.date(2025, 1, 20), days=3)
    posted = submitted_values(owner_client.get(edit_url(activity)).content.decode())
    owner_client.post(edit_url(activity), {**posted, "due_date": ["2025-01-27"], "end_date": ["2025-01-28"]})
    activity.refresh_from_db()
    assert (activity.due_date, activity.duration) == (dt.date(2025, 1, 27), dt.timedelta(days=2))


def test_a3_create_all_day_activity_over_several_days(owner_client, valid_post):
    response = owner_client.post(
        CREATE, {**valid_post, "all_day": "on", "due_date": "2025-01-15", "end_date": "2025-01-17"}
    )
    assert response.status_code == 302
    activity = Activity.objects.get()
    assert (activity.start_at, activity.due_date) == (None, dt.date(2025, 1, 15))
    assert activity.duration == dt.timedelta(days=3)


def test_a3_all_day_toggle_wins_over_a_time_left_in_the_form(owner_client, valid_post):
    """Without JavaScript the time fields stay visible; ticking "All day" makes them not count."""
    owner_client.post(CREATE, {**valid_post, "all_day": "on", "due_time": "09:00", "end_time": "10:00"})
    activity = Activity.objects.get()
    assert activity.is_all_day
    assert activity.duration is None


def test_a3_last_day_is_ignored_for_a_timed_activity(owner_client, valid_post):
    owner_client.post(CREATE, {**valid_post, "end_date": "2025-01-20", "duration_preset": "60"})
    activity = Activity.objects.get()
    assert activity.start_at == berlin(2025, 1, 15, 23, 30)
    assert activity.duration == dt.timedelta(hours=1)


def test_a3_last_day_before_the_first_day_is_refused(owner_client, valid_post):
    response = owner_client.post(
        CREATE, {**valid_post, "all_day": "on", "due_date": "2025-01-15", "end_date": "2025-01-14"}
    )
    assert "The last day cannot be before the first day." in response.content.decode()
    assert Activity.objects.count() == 0


@pytest.mark.parametrize(("preset", "minutes"), [("15", 15), ("30", 30), ("60", 60), ("120", 120)])
def test_a3_duration_presets_set_the_duration(owner_client, valid_post, preset, minutes):
    # A preset wins over an end time left over from "Custom" (hidden, but still posted).
    owner_client.post(CREATE, {**valid_post, "due_time": "09:00", "duration_preset": preset})
    activity = Activity.objects.get()
    assert activity.start_at == berlin(2025, 1, 15, 9, 0)
    assert activity.duration == dt.timedelta(minutes=minutes)


def test_a3_custom_duration_takes_the_end_time(owner_client, valid_post):
    owner_client.post(
        CREATE, {**valid_post, "due_time": "09:00", "duration_preset": "custom", "end_time": "09:45"}
    )
    assert Activity.objects.get().duration == dt.timedelta(minutes=45)


def test_a3_custom_duration_without_end_time_has_no_fixed_length(owner_client, valid_post):
    owner_client.post(
        CREATE, {**valid_post, "due_time": "09:00", "duration_preset": "custom", "end_time": ""}
    )
    assert Activity.objects.get().duration is None


def test_a3_unknown_duration_preset_is_refused(owner_client, valid_post):
    response = owner_client.post(CREATE, {**valid_post, "duration_preset": "45"})
    assert "Select a valid choice." in response.content.decode()
    assert Activity.objects.count() == 0


def test_a3_custom_duration_over_a_daylight_saving_change_counts_real_time(owner_client, valid_post):
    """Berlin skips 02:00-03:00 on 30 March 2025: 01:00 to 04:00 on the clock is two hours."""
    owner_client.post(
        CREATE,
        {
            **valid_post,
            "due_date": "2025-03-30",
            "due_time": "01:00",
            "duration_preset": "custom",
            "end_time": "04:00",
        },
    )
    assert Activity.objects.get().duration == dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("duration", "preset", "end_time"),
    [
        (dt.timedelta(minutes=30), "30", ""),
        (dt.timedelta(hours=2), "120", ""),
        (dt.timedelta(minutes=45), "custom", "09:45"),
        (None, "custom", ""),
    ],
)
def test_a3_edit_form_shows_the_preset_or_the_custom_end_time(
    owner_client, owner, duration, preset, end_time
):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), duration=duration)
    html = owner_client.get(edit_url(activity)).content.decode()
    posted = submitted_values(html)
    assert posted["duration_preset"] == [preset]
    assert posted["end_time"] == [end_time]
    assert "all_day" not in posted
    assert owner_client.post(edit_url(activity), posted).status_code == 302
    activity.refresh_from_db()
    assert (activity.start_at, activity.duration) == (berlin(2025, 1, 15, 9, 0), duration)


def test_a3_edit_keeps_a_timed_activity_that_ends_after_the_next_morning(owner_client, owner):
    """An end time alone can say "the next day, before the start time"; 30 hours it cannot."""
    activity = timed(owner, berlin(2025, 1, 15, 22, 0), duration=dt.timedelta(hours=30))
    html = owner_client.get(edit_url(activity)).content.decode()
    assert "It now ends on Fri 17 Jan 2025, 04:00; leave empty to keep that length." in html
    assert submitted_values(html)["end_time"] == [""]
    assert owner_client.post(edit_url(activity), submitted_values(html)).status_code == 302
    activity.refresh_from_db()
    assert activity.duration == dt.timedelta(hours=30)


def test_a3_new_form_offers_thirty_minutes_and_is_not_all_day(owner_client):
    posted = submitted_values(owner_client.get(CREATE).content.decode())
    assert posted["duration_preset"] == ["30"]
    assert "all_day" not in posted


# --- guests ------------------------------------------------------------------------------------------------


def test_a3_every_invalid_guest_is_named_and_the_text_is_kept(owner_client, valid_post):
    entered = "ann@example.com, not-an-address\nbob@, ANN@example.com"
    response = owner_client.post(CREATE, {**valid_post, "guests": entered})
    html = response.content.decode()
    assert "“not-an-address” is not a valid e-mail address." in html
    assert "“bob@” is not a valid e-mail address." in html
    assert submitted_values(html)["guests"] == [entered]
    assert Activity.objects.count() == 0


def test_a3_duplicate_guests_are_dropped_ignoring_case(owner_client, valid_post):
    owner_client.post(CREATE, {**valid_post, "guests": "ann@example.com; ANN@example.com bob@example.com"})
    assert Activity.objects.get().guests == ["ann@example.com", "bob@example.com"]


def test_a3_refused_guests_come_back_as_chips_marked_invalid(owner_client, valid_post):
    """The browser's check may pass an address the server refuses: the chips must agree with the error."""
    entered = "ann@example.com, a..b@example.com\nx@[999.1.1.1]"
    html = owner_client.post(CREATE, {**valid_post, "guests": entered}).content.decode()
    chips = re.findall(r'<li class="(chip[^"]*)" data-value="([^"]*)"( data-invalid)?>', html)
    assert chips == [
        ("chip", "ann@example.com", ""),
        ("chip is-invalid", "a..b@example.com", " data-invalid"),
        ("chip is-invalid", "x@[999.1.1.1]", " data-invalid"),
    ]
    assert "“a..b@example.com” is not a valid e-mail address." in html
    assert "“x@[999.1.1.1]” is not a valid e-mail address." in html
    assert Activity.objects.count() == 0


def test_a3_the_edit_form_draws_saved_guests_as_valid_chips(owner_client, owner):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), guests=["ann@example.com", "bob@example.com"])
    html = owner_client.get(edit_url(activity)).content.decode()
    assert re.findall(r'<li class="(chip[^"]*)" data-value="([^"]*)"', html) == [
        ("chip", "ann@example.com"),
        ("chip", "bob@example.com"),
    ]
    assert "data-invalid" not in html
