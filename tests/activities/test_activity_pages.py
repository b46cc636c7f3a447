"""Detail, delete and mark-done: who may see (A5, A6) and who may change (the owner only)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from activities.models import Activity, SyncStatus
from tests.activities.conftest import berlin, make_account, make_person, timed

pytestmark = pytest.mark.usefixtures("frozen_now")


def url(name: str, activity: Activity) -> str:
    return reverse(f"activities:{name}", args=[activity.pk])


@pytest.fixture
def meeting(owner):
    activity = timed(
        owner,
        berlin(2025, 1, 15, 23, 30),
        subject="Board meeting",
        note="Quarterly numbers",
        location="HQ",
        guests=["ann@example.com"],
        sync_status=SyncStatus.SYNCED,
        calendar_account=make_account(owner, "owner@gmail.test"),
    )
    activity.participants.add(make_person(owner, name="Pat Participant"))
    return activity


# --- anonymous ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "method"), [("detail", "get"), ("delete", "get"), ("delete", "post"), ("toggle_done", "post")]
)
def test_a1_anonymous_is_sent_to_login(client, meeting, name, method):
    response = getattr(client, method)(url(name, meeting))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert Activity.objects.filter(pk=meeting.pk, done=False).exists()


# --- detail ------------------------------------------------------------------------------------------


def test_a3_owner_sees_the_details(owner_client, meeting):
    html = owner_client.get(url("detail", meeting)).content.decode()
    for text in (
        "Board meeting",
        "Quarterly numbers",
        "HQ",
        "ann@example.com",
        "Pat Participant",
        "owner@gmail.test",
    ):
        assert text in html
    assert "Wednesday 15 January 2025, 23:30" in html
    assert url("edit", meeting) in html
    assert url("delete", meeting) in html


def test_a3_colleague_sees_details_in_their_time_zone_without_edit_links(colleague_client, meeting):
    html = colleague_client.get(url("detail", meeting)).content.decode()
    assert "Board meeting" in html
    assert "Wednesday 15 January 2025, 17:30" in html
    assert url("edit", meeting) not in html
    assert url("delete", meeting) not in html


def test_a5_detail_hides_participants_the_viewer_may_not_see(colleague_client, owner, meeting):
    meeting.participants.add(make_person(owner, name="Secret Sam", visibility="owner"))
    html = colleague_client.get(url("detail", meeting)).content.decode()
    assert "Pat Participant" in html
    assert "Secret Sam" not in html


def test_a5_detail_of_activity_linked_to_hidden_deal_is_404(
    colleague_client, owner_client, owner, hidden_deal
):
    activity = timed(owner, berlin(2025, 1, 15, 9, 0), deal=hidden_deal)
    assert colleague_client.get(url("detail", activity)).status_code == 404
    assert owner_client.get(url("detail", activity)).status_code == 200


def test_a6_private_detail_shows_only_private_time_and_owner(colleague_client, private_activity):
    response = colleague_client.get(url("detail", private_activity))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="private">Private</span>' in html
    assert "Tuesday 14 January 2025, 09:00" in html
    assert "Owner" in html
    for secret in (
        "Secret merger talk",
        "Bring the term sheet",
        "Hotel Adlon",
        "Merger deal",
        "Hidden Harry",
        "Initrode",
    ):
        assert secret not in html


def test_a1_outsider_gets_404_on_detail(outsider_client, meeting):
    assert outsider_client.get(url("detail", meeting)).status_code == 404


# --- delete ------------------------------------------------------------------------------------------


def test_a3_delete_asks_for_confirmation_then_deletes(owner_client, meeting):
    page = owner_client.get(url("delete", meeting))
    assert "Delete “Board meeting”?" in page.content.decode()
    assert Activity.objects.filter(pk=meeting.pk).exists()
    response = owner_client.post(url("delete", meeting), follow=True)
    assert response.redirect_chain == [(reverse("activities:list"), 302)]
    assert "Activity deleted." in response.content.decode()
    assert not Activity.objects.filter(pk=meeting.pk).exists()


@pytest.mark.parametrize("who", ["colleague_client", "outsider_client"])
def test_a3_only_the_owner_may_delete(request, meeting, who):
    client = request.getfixturevalue(who)
    assert client.get(url("delete", meeting)).status_code == 404
    assert client.post(url("delete", meeting)).status_code == 404
    assert Activity.objects.filter(pk=meeting.pk).exists()


def test_a6_colleague_gets_404_deleting_a_private_activity(colleague_client, private_activity):
    assert colleague_client.post(url("delete", private_activity)).status_code == 404
    assert Activity.objects.filter(pk=private_activity.pk).exists()


# --- mark done ---------------------------------------------------------------------------------------


def test_a3_htmx_checkbox_marks_done_and_returns_the_row(owner_client, meeting):
    response = owner_client.post(
        url("toggle_done", meeting), {"done": ["0", "1"]}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.strip().startswith(f'<tr id="activity-{meeting.pk}" class="is-done">')
    assert " checked" in html
    meeting.refresh_from_db()
    assert meeting.done is True


def test_a3_htmx_unticking_marks_to_do(owner_client, meeting):
    meeting.done = True
    meeting.save()
    owner_client.post(url("toggle_done", meeting), {"done": "0"}, headers={"HX-Request": "true"})
    meeting.refresh_from_db()
    assert meeting.done is False


def test_a3_mark_done_without_javascript_redirects_back(owner_client, meeting):
    response = owner_client.post(
        url("toggle_done", meeting), {"done": ["0", "1"], "next": "/activities/?status=all"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/activities/?status=all"
    meeting.refresh_from_db()
    assert meeting.done is True


def test_a3_mark_done_refuses_an_offsite_next(owner_client, meeting):
    response = owner_client.post(url("toggle_done", meeting), {"next": "https://evil.test/"})
    assert response["Location"] == reverse("activities:list")
    meeting.refresh_from_db()
    assert meeting.done is True  # no value posted: it flips


def test_a3_mark_done_needs_post(owner_client, meeting):
    assert owner_client.get(url("toggle_done", meeting)).status_code == 405


@pytest.mark.parametrize("who", ["colleague_client", "outsider_client"])
def test_a3_only_the_owner_may_mark_done(request, meeting, who):
    client = request.getfixturevalue(who)
    assert client.post(url("toggle_done", meeting), {"done": "1"}).status_code == 404
    meeting.refresh_from_db()
    assert meeting.done is False


def test_a6_colleague_gets_404_marking_a_private_activity_done(colleague_client, private_activity):
    assert colleague_client.post(url("toggle_done", private_activity), {"done": "1"}).status_code == 404


def test_r7_edit_page_of_a_recurring_occurrence_says_why_it_is_read_only(owner_client, owner):
    from django.urls import reverse

    from tests.conftest import make_activity

    reason = "This is one occurrence of a recurring calendar event: change the series in your calendar."
    activity = make_activity(owner, sync_read_only_reason=reason)
    html = owner_client.get(reverse("activities:edit", args=[activity.pk])).content.decode()
    assert reason in html
    response = owner_client.post(
        reverse("activities:edit", args=[activity.pk]),
        {
            "subject": "Renamed",
            "type": activity.type_id,
            "due_date": activity.due_date.isoformat(),
            "visibility": "everyone",
        },
    )
    activity.refresh_from_db()
    assert activity.subject == "Quarterly review"
    assert reason in response.content.decode()
