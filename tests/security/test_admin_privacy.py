"""Finding 3 of issue #13: Django admin shows staff who are not superusers nothing A5 and A6 hide.

A company admin (staff, every model permission, not superuser) looks at a colleague's private
activity (A6: "Private" and its time, nothing else) and at an activity linked to a deal only its
owner may see (A5: not listed at all), through every admin page that can name an activity: the
activity changelist (columns, filters, sorting, counts), the autocomplete endpoint, the event
links (list, search, change page) and the trash (list, search, restore messages).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Company, User
from activities.models import Activity, ActivityType, Deal, SyncStatus, Visibility
from calendarsync.models import CalendarAccount, EventLink, LinkOrigin, Provider
from calendarsync.sync.trash import move_to_trash
from tests.activities.test_admin import grant_admin_permissions, logged_in
from tests.conftest import PASSWORD, make_activity, make_user

pytestmark = pytest.mark.django_db

SECRET = "Secret merger talk"
HIDDEN_DEAL_SUBJECT = "Call about the hush deal"
CUSTOM_TYPE = "Golf outing"
ACTIVITIES = "admin:activities_activity_changelist"
LINKS = "admin:calendarsync_eventlink_changelist"
TRASH = "admin:calendarsync_activitytrash_changelist"


@pytest.fixture
def staff(company: Company) -> Client:
    return logged_in(grant_admin_permissions(make_user(company, "boss@acme.test")))


@pytest.fixture
def root(db: None) -> Client:
    return logged_in(User.objects.create_superuser(email="root@calsync.test", password=PASSWORD))


@pytest.fixture
def golf(company: Company) -> ActivityType:
    return ActivityType.objects.create(company=company, name=CUSTOM_TYPE, icon="other")


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    return CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email="owner@gmail.test")


@pytest.fixture
def private(owner: User, golf: ActivityType, account: CalendarAccount) -> Activity:
    """A colleague's private activity of a type no other activity has, done, synced, 95 minutes long."""
    return make_activity(
        owner,
        subject=SECRET,
        type=golf,
        visibility=Visibility.OWNER,
        done=True,
        busy=False,
        duration=dt.timedelta(minutes=95),
        sync_status=SyncStatus.SYNCED,
        calendar_account=account,
    )


@pytest.fixture
def hidden_by_deal(owner: User, company: Company) -> Activity:
    deal = Deal.objects.create(company=company, owner=owner, title="Hush deal", visibility=Visibility.OWNER)
    return make_activity(owner, subject=HIDDEN_DEAL_SUBJECT, deal=deal)


def link(activity: Activity, account: CalendarAccount, external_id: str) -> EventLink:
    return EventLink.objects.create(
        account=account,
        activity=activity,
        activity_type=activity.type,
        calendar_external_id="primary",
        external_id=external_id,
        origin=LinkOrigin.CRM,
    )


def page(client: Client, name: str, *args: object, **params: str) -> str:
    response = client.get(reverse(name, args=args), params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def result_pks(client: Client, name: str, **params: str) -> set[int]:
    response = client.get(reverse(name), params)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def row_of(html: str, pk: int) -> str:
    """The changelist row of object ``pk`` (its action checkbox carries the pk)."""
    rows: list[str] = re.findall(r"<tr>.*?</tr>", html, re.DOTALL)
    return next(row for row in rows if f'value="{pk}"' in row)


# --- the activity changelist ---------------------------------------------------------------------


def test_a6_masked_activity_row_shows_private_and_the_time_only(staff: Client, private: Activity) -> None:
    row = row_of(page(staff, ACTIVITIES), private.pk)
    assert "Private" in row
    assert private.start_at is not None
    assert timezone.localtime(private.start_at).strftime("%H:%M") in row
    for hidden in (SECRET, CUSTOM_TYPE, "1:35", "Only owner", "Synced", "icon-yes", "icon-no", "owner@gmail"):
        assert hidden not in row, hidden


def test_a6_superuser_still_sees_every_column(root: Client, private: Activity) -> None:
    row = row_of(page(root, ACTIVITIES), private.pk)
    for shown in (SECRET, CUSTOM_TYPE, "1:35", "Only owner", "Synced", "icon-yes"):
        assert shown in row, shown


@pytest.mark.parametrize(
    "params",
    [
        {"type__id__exact": "TYPE"},
        {"done__exact": "1"},
        {"busy__exact": "0"},
        {"sync_status__exact": SyncStatus.SYNCED},
        {"duration": "1:35:00"},
    ],
    ids=lambda params: next(iter(params)),
)
def test_a6_filters_on_hidden_fields_never_match_a_masked_activity(
    staff: Client, root: Client, private: Activity, golf: ActivityType, params: dict[str, str]
) -> None:
    params = {key: str(golf.pk) if value == "TYPE" else value for key, value in params.items()}
    assert private.pk in result_pks(root, ACTIVITIES, **params)  # the filter itself works
    assert private.pk not in result_pks(staff, ACTIVITIES, **params)


@pytest.mark.parametrize("params", [{"visibility__exact": Visibility.OWNER}, {}])
def test_a6_masked_activities_still_match_on_owner_time_and_visibility(
    staff: Client, private: Activity, owner: User, params: dict[str, str]
) -> None:
    assert private.pk in result_pks(staff, ACTIVITIES, owner__id__exact=str(owner.pk), **params)


def test_a6_the_type_filter_offers_no_type_only_masked_activities_have(
    staff: Client, root: Client, private: Activity
) -> None:
    assert CUSTOM_TYPE in page(root, ACTIVITIES)
    assert CUSTOM_TYPE not in page(staff, ACTIVITIES)


def test_a6_filter_counts_do_not_count_masked_activities_by_hidden_fields(
    staff: Client, private: Activity, owner: User
) -> None:
    make_activity(owner, subject="Public call")
    html = page(staff, ACTIVITIES, _facets="True")
    assert SECRET not in html
    assert CUSTOM_TYPE not in html
    # "Yes (1)" under "By done" would be the masked activity.
    assert not re.search(r"Yes\s*\(1\)", html)


@pytest.mark.parametrize("column", ["type", "duration", "done", "visibility", "sync_status"])
def test_a6_sorting_by_a_hidden_column_does_not_place_masked_activities(
    staff: Client, private: Activity, owner: User, golf: ActivityType, column: str
) -> None:
    """Sorted by type, a masked row between the Calls and the Meetings would tell its type."""
    make_activity(owner, subject="A call", type=ActivityType.objects.get(company=owner.company, name="Call"))
    make_activity(owner, subject="A meeting")
    response = staff.get(reverse(ACTIVITIES))
    columns = list(response.context["cl"].list_display)
    index = next(i for i, name in enumerate(columns) if str(name).startswith(column))
    for order in (str(index), f"-{index}"):
        sorted_response = staff.get(reverse(ACTIVITIES), {"o": order})
        assert sorted_response.status_code == 200
        assert list(sorted_response.context["cl"].result_list) == list(response.context["cl"].result_list)


@pytest.mark.parametrize("term", ["", "Secret", "merger"])
def test_a6_activity_autocomplete_never_offers_a_masked_activity(
    staff: Client, private: Activity, term: str
) -> None:
    response = staff.get(
        reverse("admin:autocomplete"),
        {"app_label": "calendarsync", "model_name": "eventlink", "field_name": "activity", "term": term},
    )
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert str(private.pk) not in [result["id"] for result in response.json()["results"]]


# --- event links --------------------------------------------------------------------------------------


def test_a6_event_link_list_shows_private_for_a_masked_activity(
    staff: Client, root: Client, private: Activity, account: CalendarAccount
) -> None:
    link(private, account, "evt-private")
    assert SECRET in page(root, LINKS)
    html = page(staff, LINKS)
    assert "evt-private" in html
    assert SECRET not in html
    assert "Private" in html


def test_a5_event_link_of_an_activity_the_viewer_may_not_see_is_not_listed(
    staff: Client, hidden_by_deal: Activity, account: CalendarAccount
) -> None:
    link(hidden_by_deal, account, "evt-hidden")
    html = page(staff, LINKS)
    assert HIDDEN_DEAL_SUBJECT not in html
    assert "evt-hidden" not in html
    assert result_pks(staff, LINKS, q="evt-hidden") == set()


def test_a6_event_link_search_shows_no_subject(
    staff: Client, private: Activity, account: CalendarAccount
) -> None:
    link(private, account, "evt-private")
    html = page(staff, LINKS, q="evt-private")
    assert "evt-private" in html
    assert SECRET not in html


def test_a6_event_link_change_page_shows_neither_subject_nor_type(
    staff: Client, root: Client, private: Activity, account: CalendarAccount
) -> None:
    event_link = link(private, account, "evt-private")
    name = "admin:calendarsync_eventlink_change"
    assert SECRET in page(root, name, event_link.pk)
    html = page(staff, name, event_link.pk)
    assert "evt-private" in html
    assert SECRET not in html
    assert CUSTOM_TYPE not in html
    assert "Private" in html


def test_a5_event_link_change_page_of_a_hidden_activity_does_not_exist(
    staff: Client, hidden_by_deal: Activity, account: CalendarAccount
) -> None:
    event_link = link(hidden_by_deal, account, "evt-hidden")
    response = staff.get(reverse("admin:calendarsync_eventlink_change", args=[event_link.pk]), follow=True)
    assert HIDDEN_DEAL_SUBJECT not in response.content.decode()


def test_event_links_of_own_and_visible_activities_still_show_their_subject(
    company: Company, owner: User, account: CalendarAccount
) -> None:
    public = make_activity(owner, subject="Public kickoff")
    own_private = make_activity(owner, subject="My own secret", visibility=Visibility.OWNER)
    link(public, account, "evt-public")
    link(own_private, account, "evt-own")
    html = page(logged_in(grant_admin_permissions(owner)), LINKS)
    assert "Public kickoff" in html
    assert "My own secret" in html


# --- the trash --------------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["Secret", "merger"])
def test_a6_trash_search_does_not_match_a_masked_subject(
    staff: Client, root: Client, private: Activity, account: CalendarAccount, term: str
) -> None:
    entry = move_to_trash(private, account, "Its event was deleted in the calendar")
    assert entry.pk in result_pks(root, TRASH, q=term)
    assert entry.pk not in result_pks(staff, TRASH, q=term)


def test_a6_trash_search_still_finds_a_visible_subject(
    staff: Client, owner: User, account: CalendarAccount
) -> None:
    entry = move_to_trash(make_activity(owner, subject="Public merger plan"), account, "deleted")
    assert result_pks(staff, TRASH, q="merger") == {entry.pk}


def test_a5_trash_does_not_list_an_activity_linked_to_a_hidden_deal(
    staff: Client, root: Client, hidden_by_deal: Activity, account: CalendarAccount
) -> None:
    entry = move_to_trash(hidden_by_deal, account, "Its event was deleted in the calendar")
    assert HIDDEN_DEAL_SUBJECT in page(root, TRASH)
    assert HIDDEN_DEAL_SUBJECT not in page(staff, TRASH)
    assert entry.pk not in result_pks(staff, TRASH, q="hush")
    detail = staff.get(reverse("admin:calendarsync_activitytrash_change", args=[entry.pk]), follow=True)
    assert HIDDEN_DEAL_SUBJECT not in detail.content.decode()


def test_a6_restore_message_never_names_a_masked_activity(
    staff: Client, private: Activity, account: CalendarAccount, golf: ActivityType
) -> None:
    entry = move_to_trash(private, account, "Its event was deleted in the calendar")
    golf.delete()  # restoring now fails, and the message names the entry
    response = staff.post(reverse(TRASH), {"action": "restore_activities", "_selected_action": [entry.pk]})
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("type no longer exists" in text for text in texts), texts
    assert not any(SECRET in text for text in texts)
    assert any(text.startswith("Private") for text in texts)


def test_a6_trash_page_of_a_restored_private_activity_does_not_name_it(
    staff: Client, root: Client, private: Activity, account: CalendarAccount
) -> None:
    """The entry's "restored activity" field links to the activity by its subject."""
    entry = move_to_trash(private, account, "Its event was deleted in the calendar")
    root.post(reverse(TRASH), {"action": "restore_activities", "_selected_action": [entry.pk]})
    name = "admin:calendarsync_activitytrash_change"
    assert SECRET in page(root, name, entry.pk)
    assert SECRET not in page(staff, name, entry.pk)
