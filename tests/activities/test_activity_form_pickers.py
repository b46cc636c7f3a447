"""The form's pickers without JavaScript: typed names matched on save, chips kept, only visible items (A3, A5, A6)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from activities.models import Activity, ActivityType, Visibility
from tests.activities.conftest import berlin, make_deal, make_org, make_person, timed
from tests.activities.form_html import submitted_values

CREATE = reverse("activities:create")

pytestmark = pytest.mark.usefixtures("frozen_now")


def edit_url(activity: Activity) -> str:
    return reverse("activities:edit", args=[activity.pk])


@pytest.fixture
def valid_post(owner):
    return {
        "subject": "Kick-off",
        "type": str(ActivityType.objects.get(company=owner.company, name="Meeting").pk),
        "due_date": "2025-01-15",
        "due_time": "10:00",
        "duration_preset": "30",
        "busy": "True",
        "visibility": Visibility.EVERYONE,
    }


def test_a3_typed_participant_is_matched_on_save(owner_client, owner, valid_post):
    pat = make_person(owner, "Pat Buyer")
    make_person(owner, "Sam Seller")
    response = owner_client.post(CREATE, {**valid_post, "participants_query": "pat bu"})
    assert response.status_code == 302
    assert list(Activity.objects.get().participants.all()) == [pat]


def test_a3_typed_participant_is_added_to_those_already_chosen(owner_client, owner, valid_post):
    sam, pat = make_person(owner, "Sam Seller"), make_person(owner, "Pat Buyer")
    owner_client.post(CREATE, {**valid_post, "participants": [sam.pk], "participants_query": "Pat Buyer"})
    assert set(Activity.objects.get().participants.all()) == {sam, pat}


def test_a3_an_exact_name_wins_over_longer_ones(owner_client, owner, valid_post):
    pat = make_person(owner, "Pat")
    make_person(owner, "Patricia")
    owner_client.post(CREATE, {**valid_post, "person_query": "pat"})
    assert Activity.objects.get().person == pat


def test_a3_a_participant_can_be_found_by_e_mail(owner_client, owner, valid_post):
    pat = make_person(owner, "Pat Buyer")
    pat.email = "pat@initech.test"
    pat.save()
    owner_client.post(CREATE, {**valid_post, "participants_query": "pat@initech.test"})
    assert list(Activity.objects.get().participants.all()) == [pat]


def test_a3_ambiguous_name_offers_candidates_and_keeps_everything_else(owner_client, owner, valid_post):
    sam = make_person(owner, "Sam Seller")
    pat, patricia = make_person(owner, "Pat Buyer"), make_person(owner, "Patricia Other")
    deal = make_deal(owner, "Initech renewal")
    entered = {
        **valid_post,
        "participants": [sam.pk],
        "participants_query": "pat",
        "deal": deal.pk,
        "guests": "ann@example.com\nbob@example.com",
        "location": "Room 4",
        "note": "Agenda attached",
        "duration_preset": "60",
    }
    response = owner_client.post(CREATE, entered)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Several persons match “pat”: tick the one you mean" in html
    assert Activity.objects.count() == 0
    posted = submitted_values(html)
    # Nothing entered is lost: chips, guests, texts and the preset come back as they were.
    assert posted["participants"] == [str(sam.pk)]
    assert posted["deal"] == [str(deal.pk)]
    assert posted["guests"] == ["ann@example.com\nbob@example.com"]
    assert (posted["location"], posted["note"], posted["duration_preset"]) == (
        ["Room 4"],
        ["Agenda attached"],
        ["60"],
    )
    # The candidates are checkboxes to tick; the typed text has become them.
    assert f'name="participants_pick" value="{pat.pk}" id=' in html
    assert f'name="participants_pick" value="{patricia.pk}" id=' in html
    assert posted["participants_query"] == [""]

    response = owner_client.post(CREATE, {**posted, "participants_pick": [str(patricia.pk)]})
    assert response.status_code == 302
    activity = Activity.objects.get()
    assert set(activity.participants.all()) == {sam, patricia}
    assert activity.deal == deal
    assert activity.guests == ["ann@example.com", "bob@example.com"]


def test_a3_no_match_keeps_the_typed_text_with_a_message(owner_client, owner, valid_post):
    make_deal(owner, "Initech renewal")
    response = owner_client.post(CREATE, {**valid_post, "deal_query": "Umbrella"})
    html = response.content.decode()
    assert "No deal you may see matches “Umbrella”." in html
    assert submitted_values(html)["deal_query"] == ["Umbrella"]
    assert Activity.objects.count() == 0


def test_a3_typed_deal_replaces_the_chosen_one(owner_client, owner, valid_post):
    old, new = make_deal(owner, "Old deal"), make_deal(owner, "Umbrella expansion")
    owner_client.post(CREATE, {**valid_post, "deal": old.pk, "deal_query": "umbrella"})
    assert Activity.objects.get().deal == new


def test_a3_a_ticked_candidate_replaces_a_single_link(owner_client, owner, valid_post):
    old, first, second = make_org(owner, "Old org"), make_org(owner, "Initech"), make_org(owner, "Initrode")
    response = owner_client.post(CREATE, {**valid_post, "organization": old.pk, "organization_query": "init"})
    html = response.content.decode()
    assert f'type="radio" name="organization_pick" value="{second.pk}" id=' in html
    posted = submitted_values(html)
    owner_client.post(CREATE, {**posted, "organization_pick": [str(first.pk)]})
    assert Activity.objects.get().organization == first


def test_a3_unticked_chips_are_removed_on_edit(owner_client, owner):
    pat, sam = make_person(owner, "Pat Buyer"), make_person(owner, "Sam Seller")
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), deal=make_deal(owner), person=pat)
    activity.participants.set([pat, sam])
    posted = submitted_values(owner_client.get(edit_url(activity)).content.decode())
    assert posted["participants"] == [str(pat.pk), str(sam.pk)]
    assert posted["person"] == [str(pat.pk)]
    # Unticking a chip (without JavaScript) or removing it (with) leaves its id out of the post.
    posted["participants"] = [str(sam.pk)]
    del posted["deal"]
    assert owner_client.post(edit_url(activity), posted).status_code == 302
    activity.refresh_from_db()
    assert list(activity.participants.all()) == [sam]
    assert activity.deal is None
    assert activity.person == pat


def test_a5_editing_keeps_participants_the_owner_may_not_see(owner_client, owner, colleague):
    """A colleague's private person on the owner's activity is neither shown nor dropped on save."""
    visible = make_person(owner, "Pat Buyer")
    secret = make_person(colleague, "Secret Sam", visibility=Visibility.OWNER)
    activity = timed(owner, berlin(2025, 1, 15, 9, 0))
    activity.participants.set([visible, secret])
    html = owner_client.get(edit_url(activity)).content.decode()
    assert "Secret Sam" not in html
    assert owner_client.post(edit_url(activity), submitted_values(html)).status_code == 302
    assert set(activity.participants.all()) == {visible, secret}


@pytest.mark.parametrize("field", ["participants_query", "deal_query", "person_query", "organization_query"])
def test_a6_typed_text_never_matches_a_colleagues_private_item(colleague_client, owner, valid_post, field):
    make_person(owner, "Hidden Harry", visibility=Visibility.OWNER)
    make_deal(owner, "Hidden Harry deal", visibility=Visibility.OWNER)
    make_org(owner, "Hidden Harry Ltd", visibility=Visibility.OWNER)
    response = colleague_client.post(CREATE, {**valid_post, field: "Hidden Harry"})
    html = response.content.decode()
    assert "you may see matches “Hidden Harry”" in html
    assert "Hidden Harry deal" not in html
    assert "Hidden Harry Ltd" not in html
    assert Activity.objects.count() == 0


def test_a1_typed_text_never_matches_another_companys_items(outsider_client, outsider, owner, valid_post):
    make_person(owner, "Acme Alice")
    make_deal(owner, "Acme deal")
    globex_meeting = ActivityType.objects.get(company=outsider.company, name="Meeting")
    post = {**valid_post, "type": globex_meeting.pk, "participants_query": "Acme", "deal_query": "Acme"}
    html = outsider_client.post(CREATE, post).content.decode()
    assert "No person you may see matches “Acme”." in html
    assert "No deal you may see matches “Acme”." in html
    assert "Acme Alice" not in html
    assert Activity.objects.count() == 0


def test_a5_a_posted_id_of_a_hidden_person_is_refused_and_not_shown(colleague_client, owner, valid_post):
    secret = make_person(owner, "Secret Sam", visibility=Visibility.OWNER)
    html = colleague_client.post(CREATE, {**valid_post, "participants_pick": [secret.pk]}).content.decode()
    assert "does not exist or you may not see them" in html
    assert "Secret Sam" not in html
    assert Activity.objects.count() == 0
