"""The activity list (A7), with viewing permission (A5) and private activities (A6) applied."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from activities.models import ActivityType, SyncStatus, Visibility
from activities.views.listing import PAGE_SIZE
from tests.activities.conftest import (
    all_day,
    berlin,
    bulk_timed,
    make_account,
    make_deal,
    make_org,
    make_person,
    timed,
)
from tests.conftest import make_user

LIST = reverse("activities:list")

pytestmark = pytest.mark.usefixtures("frozen_now")


def subjects(response) -> list[str]:
    """Subjects of the listed rows, in order ("Private" for masked rows)."""
    html = response.content.decode()
    rows = re.findall(r'<tr id="activity-\d+".*?</tr>', html, flags=re.S)
    found = []
    for row in rows:
        match = re.search(
            r'<a href="/activities/\d+/">([^<]*)</a>|<span class="private">(Private)</span>', row
        )
        assert match, row
        found.append(match.group(1) or match.group(2))
    return found


# --- access -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a7_anonymous_is_sent_to_login(client):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a7_owner_sees_own_activity_with_all_columns(owner_client, owner):
    deal = make_deal(owner, title="Acme renewal")
    timed(
        owner,
        berlin(2025, 1, 14, 11, 0),
        subject="Call Alice",
        deal=deal,
        person=make_person(owner, name="Alice Able"),
        organization=make_org(owner, name="Acme GmbH"),
        sync_status=SyncStatus.SYNCED,
        calendar_account=make_account(owner, "owner@gmail.test"),
    )
    response = owner_client.get(LIST)
    html = response.content.decode()
    assert response.status_code == 200
    assert subjects(response) == ["Call Alice"]
    assert "Tue 14 Jan 2025, 11:00" in html
    assert "30 min" in html
    assert "Acme renewal" in html
    assert "Alice Able" in html
    assert "Acme GmbH" in html
    assert '<span class="badge synced"' in html
    assert "owner@gmail.test" in html
    assert 'name="done" value="1"' in html  # the done checkbox of an own row


def test_a7_unsynced_row_shows_dashes_for_sync_status_and_account(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 11, 0))
    html = owner_client.get(LIST).content.decode()
    match = re.search(r'<tr id="activity-\d+".*?</tr>', html, flags=re.S)
    assert match is not None
    row = match.group(0)
    assert 'title="Not synced">—</span>' in row
    assert "<td>—</td>" in row


def test_a7_sync_error_badge(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 11, 0), sync_status=SyncStatus.ERROR, sync_error="Quota exceeded")
    html = owner_client.get(LIST).content.decode()
    assert (
        '<span class="badge error" title="Error: Quota exceeded"><span class="badge-glyph" aria-hidden="true">!</span>'
        '<span class="badge-text">Error</span></span>'
    ) in html


def test_a7_all_day_activity_shows_all_day(owner_client, owner):
    all_day(owner, dt.date(2025, 1, 15), subject="Trade fair")
    html = owner_client.get(LIST).content.decode()
    assert "Wed 15 Jan 2025</time> · All day" in html


def test_a7_empty_state(owner_client):
    html = owner_client.get(LIST).content.decode()
    assert "No activities match these filters." in html


def test_a7_outsider_from_another_company_sees_nothing(outsider_client, owner, colleague):
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Call Alice")
    timed(colleague, berlin(2025, 1, 14, 12, 0), subject="Call Bob")
    response = outsider_client.get(LIST, {"owner": "all", "status": "all"})
    assert subjects(response) == []
    html = response.content.decode()
    assert "Call Alice" not in html
    assert "Call Bob" not in html
    assert "Colleague" not in html  # no other company's users in the owner filter


def test_a7_colleague_sees_owner_activity_without_done_checkbox_or_edit_link(colleague_client, owner):
    activity = timed(owner, berlin(2025, 1, 14, 11, 0), subject="Call Alice", done=True)
    html = colleague_client.get(LIST, {"owner": "all", "status": "all"}).content.decode()
    assert "Call Alice" in html
    assert reverse("activities:toggle_done", args=[activity.pk]) not in html
    assert reverse("activities:edit", args=[activity.pk]) not in html


# --- A5 / A6 -----------------------------------------------------------------------------------------


def test_a5_activity_linked_to_hidden_deal_is_not_listed(owner_client, colleague_client, owner, hidden_deal):
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Negotiate terms", deal=hidden_deal)
    assert subjects(colleague_client.get(LIST, {"owner": "all"})) == []
    assert "Negotiate terms" not in colleague_client.get(LIST, {"owner": "all"}).content.decode()
    assert subjects(owner_client.get(LIST)) == ["Negotiate terms"]


@pytest.mark.parametrize("link", ["person", "organization"])
def test_a5_activity_linked_to_hidden_person_or_org_is_not_listed(colleague_client, owner, link):
    item = (make_person if link == "person" else make_org)(owner, "Secret item", visibility=Visibility.OWNER)
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Hidden", **{link: item})
    assert subjects(colleague_client.get(LIST, {"owner": "all"})) == []


def test_a6_private_activity_shows_as_private_in_list(colleague_client, private_activity):
    response = colleague_client.get(LIST, {"owner": "all"})
    html = response.content.decode()
    assert subjects(response) == ["Private"]
    for secret in (
        "Secret merger talk",
        "Bring the term sheet",
        "Hotel Adlon",
        "Merger deal",
        "Hidden Harry",
        "Initrode",
    ):
        assert secret not in html
    assert reverse("activities:detail", args=[private_activity.pk]) not in html
    assert "Tue 14 Jan 2025, 09:00" in html  # the time stays (New York)


def test_a6_owner_sees_own_private_activity_in_full(owner_client, private_activity):
    response = owner_client.get(LIST)
    assert subjects(response) == ["Secret merger talk"]
    assert "Merger deal" in response.content.decode()


def test_a6_search_never_matches_a_masked_activity(colleague_client, owner_client, private_activity):
    for text in ("merger", "term sheet", "Adlon"):
        assert subjects(colleague_client.get(LIST, {"owner": "all", "q": text})) == []
    assert subjects(owner_client.get(LIST, {"q": "merger"})) == ["Secret merger talk"]


# --- filters -------------------------------------------------------------------------------------------


def test_a7_owner_filter_defaults_to_me(owner_client, owner, colleague):
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Mine")
    timed(colleague, berlin(2025, 1, 14, 12, 0), subject="Theirs")
    assert subjects(owner_client.get(LIST)) == ["Mine"]
    assert subjects(owner_client.get(LIST, {"owner": "all"})) == ["Mine", "Theirs"]
    assert subjects(owner_client.get(LIST, {"owner": str(colleague.pk)})) == ["Theirs"]


def test_a7_owner_filter_refuses_a_user_of_another_company(owner_client, owner, outsider):
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Mine")
    response = owner_client.get(LIST, {"owner": str(outsider.pk)})
    html = response.content.decode()
    assert "Some filters were not understood" in html
    assert subjects(response) == ["Mine"]  # falls back to "me"


def test_a7_types_filter_subset_including_inactive_type(owner_client, owner):
    company = owner.company
    call = ActivityType.objects.get(company=company, name="Call")
    lunch = ActivityType.objects.get(company=company, name="Lunch")
    lunch.is_active = False
    lunch.save()
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="A call", type=call)
    timed(owner, berlin(2025, 1, 14, 12, 0), subject="A lunch", type=lunch)
    timed(owner, berlin(2025, 1, 14, 15, 0), subject="A meeting")
    assert subjects(owner_client.get(LIST, {"types": [call.pk]})) == ["A call"]
    assert subjects(owner_client.get(LIST, {"types": [call.pk, lunch.pk]})) == ["A call", "A lunch"]
    assert subjects(owner_client.get(LIST)) == ["A call", "A lunch", "A meeting"]
    assert "Lunch (inactive)" in owner_client.get(LIST).content.decode()


def test_a7_types_filter_refuses_another_company_type(owner_client, owner, outsider):
    foreign = ActivityType.objects.get(company=outsider.company, name="Call")
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="A meeting")
    response = owner_client.get(LIST, {"types": [foreign.pk]})
    assert "Some filters were not understood" in response.content.decode()
    assert subjects(response) == ["A meeting"]


def test_a7_status_filter(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Open")
    timed(owner, berlin(2025, 1, 14, 10, 0), subject="Finished", done=True)
    assert subjects(owner_client.get(LIST)) == ["Open"]
    assert subjects(owner_client.get(LIST, {"status": "done"})) == ["Finished"]
    assert subjects(owner_client.get(LIST, {"status": "all"})) == ["Open", "Finished"]


@pytest.fixture
def week_of_activities(owner):
    """Around "now" = Monday 13 Jan 2025 10:00 Berlin."""
    timed(owner, berlin(2025, 1, 10, 9, 0), subject="Last Friday")
    timed(owner, berlin(2025, 1, 13, 8, 0), subject="This morning")
    all_day(owner, dt.date(2025, 1, 13), subject="Today all day")
    timed(owner, berlin(2025, 1, 13, 23, 30), subject="Tonight")
    timed(owner, berlin(2025, 1, 14, 0, 30), subject="Tomorrow early")
    all_day(owner, dt.date(2025, 1, 14), subject="Tomorrow all day")
    timed(owner, berlin(2025, 1, 19, 23, 0), subject="Sunday night")
    timed(owner, berlin(2025, 1, 20, 9, 0), subject="Next Monday")
    all_day(owner, dt.date(2025, 1, 26), subject="Next Sunday")
    timed(owner, berlin(2025, 1, 27, 9, 0), subject="In two weeks")


@pytest.mark.usefixtures("week_of_activities")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"time": "overdue"}, ["Last Friday", "This morning"]),
        ({"time": "today"}, ["Today all day", "This morning", "Tonight"]),
        ({"time": "tomorrow"}, ["Tomorrow all day", "Tomorrow early"]),
        (
            {"time": "this_week"},
            [
                "Today all day",
                "This morning",
                "Tonight",
                "Tomorrow all day",
                "Tomorrow early",
                "Sunday night",
            ],
        ),
        ({"time": "next_week"}, ["Next Monday", "Next Sunday"]),
        (
            {"time": "range", "from": "2025-01-14", "to": "2025-01-20"},
            ["Tomorrow all day", "Tomorrow early", "Sunday night", "Next Monday"],
        ),
        ({"time": "range", "from": "2025-01-26"}, ["Next Sunday", "In two weeks"]),
        ({"from": "2025-01-10", "to": "2025-01-10"}, ["Last Friday"]),  # dates alone imply a range
    ],
)
def test_a7_time_filters_use_the_viewers_days(owner_client, params, expected):
    assert subjects(owner_client.get(LIST, params)) == expected


def test_a7_overdue_leaves_out_done_activities(owner_client, owner):
    timed(owner, berlin(2025, 1, 10, 9, 0), subject="Late and done", done=True)
    assert subjects(owner_client.get(LIST, {"time": "overdue", "status": "all"})) == []


def test_a7_today_is_the_new_york_viewers_day(colleague_client, colleague, owner):
    """At 04:00 in New York, "today" is 13 January there: a Berlin activity at 23:30 is 17:30 NY."""
    timed(owner, berlin(2025, 1, 13, 23, 30), subject="Late in Berlin")
    timed(owner, berlin(2025, 1, 13, 5, 30), subject="Still the 12th in New York")
    response = colleague_client.get(LIST, {"owner": "all", "time": "today"})
    assert subjects(response) == ["Late in Berlin"]
    assert "Mon 13 Jan 2025, 17:30" in response.content.decode()


def test_a7_range_with_end_before_start_is_reported(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Any")
    html = owner_client.get(
        LIST, {"time": "range", "from": "2025-01-20", "to": "2025-01-10"}
    ).content.decode()
    assert "The end date must be on or after the start date." in html


def test_a7_search_matches_subject_location_and_note(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Pitch", location="Room Kepler")
    timed(owner, berlin(2025, 1, 14, 10, 0), subject="Demo", note="Bring the projector")
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Other")
    assert subjects(owner_client.get(LIST, {"q": "kepler"})) == ["Pitch"]
    assert subjects(owner_client.get(LIST, {"q": "PROJECTOR"})) == ["Demo"]
    assert subjects(owner_client.get(LIST, {"q": "pitch"})) == ["Pitch"]


def test_a7_sort_by_due_date_ascending_by_default_and_descending_on_request(owner_client, owner):
    timed(owner, berlin(2025, 1, 16, 9, 0), subject="Third")
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="First")
    all_day(owner, dt.date(2025, 1, 15), subject="Second")
    assert subjects(owner_client.get(LIST)) == ["First", "Second", "Third"]
    response = owner_client.get(LIST, {"sort": "desc"})
    assert subjects(response) == ["Third", "Second", "First"]
    assert 'aria-sort="descending"' in response.content.decode()
    assert "sort=asc" in response.content.decode()  # the header link toggles back


def test_a7_pagination_50_per_page_keeps_the_filters(owner_client, owner):
    bulk_timed(
        owner, [berlin(2025, 1, 14, 8, 0) + dt.timedelta(minutes=index) for index in range(PAGE_SIZE + 3)]
    )
    first = owner_client.get(LIST, {"status": "todo"})
    assert len(subjects(first)) == PAGE_SIZE
    html = first.content.decode()
    assert "Page 1 of 2" in html
    assert "?status=todo&amp;page=2" in html
    second = owner_client.get(LIST, {"status": "todo", "page": 2})
    assert len(subjects(second)) == 3


def test_a7_list_shows_times_in_the_viewers_time_zone(owner_client, colleague_client, owner):
    timed(owner, berlin(2025, 1, 15, 23, 30), subject="Late call")
    assert "Wed 15 Jan 2025, 23:30" in owner_client.get(LIST).content.decode()
    assert "Wed 15 Jan 2025, 17:30" in colleague_client.get(LIST, {"owner": "all"}).content.decode()


# --- htmx and queries ------------------------------------------------------------------------------


def test_a7_htmx_request_returns_only_the_table_fragment(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Pitch")
    response = owner_client.get(LIST, {"q": "pitch"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="activity-filters"' not in html
    assert "Pitch" in html
    assert "HX-Request" in response["Vary"]


def test_a7_htmx_history_restore_gets_the_full_page(owner_client):
    response = owner_client.get(LIST, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_a7_filter_form_works_with_and_without_javascript(owner_client):
    html = owner_client.get(LIST).content.decode()
    match = re.search(r'<form id="activity-filters".*?>', html, flags=re.S)
    assert match is not None
    form = match.group(0)
    assert 'method="get"' in form
    assert 'action="/activities/"' in form
    assert 'hx-get="/activities/"' in form
    assert 'hx-target="#activity-results"' in form
    assert '<button type="submit">Apply filters</button>' in html


def test_a7_list_query_count_is_constant(django_assert_max_num_queries, owner_client, owner, colleague):
    deal, person, org = make_deal(owner), make_person(owner), make_org(owner)
    account = make_account(owner)
    starts = [berlin(2025, 1, 14, 8, 0) + dt.timedelta(minutes=index) for index in range(50)]
    bulk_timed(
        owner,
        starts,
        deal=deal,
        person=person,
        organization=org,
        calendar_account=account,
        sync_status="synced",
    )
    bulk_timed(colleague, starts, visibility=Visibility.OWNER)
    for index in range(3):
        make_user(owner.company, f"mate{index}@acme.test")
    owner_client.get(LIST)  # warm up the session
    with django_assert_max_num_queries(10):
        response = owner_client.get(LIST, {"owner": "all", "status": "all", "time": "this_week"})
    assert response.status_code == 200
    assert len(subjects(response)) == PAGE_SIZE
    with django_assert_max_num_queries(10):
        response = owner_client.get(LIST, {"owner": "all", "page": 2})
    assert len(subjects(response)) == PAGE_SIZE
