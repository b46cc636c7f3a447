"""D1 on every surface: the activity page, the list's and the calendar's "Why?" popover (issue #14).

The popover's fragment (calendarsync:activity_sync) follows the activity's visibility: an item
the user may not see is not found (A5), another user's private one says nothing of its sync (A6).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import User
from activities.models import Activity, ActivityType, Visibility
from calendarsync.models import CalendarAccount, Provider, SyncPreferences
from tests.activities.conftest import make_deal
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 1, 14, 13, 0, tzinfo=dt.UTC)
STARTED = dt.datetime(2025, 1, 10, 8, 0, tzinfo=dt.UTC)
BEFORE_START = "Not sent: created before you started the sync on 10 Jan."


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def start_sync(user: User) -> CalendarAccount:
    account = CalendarAccount.objects.create(user=user, provider=Provider.GOOGLE, email="owner@gmail.test")
    preferences = SyncPreferences.objects.create(account=account, sync_started_at=STARTED)
    preferences.outgoing_types.set(ActivityType.objects.filter(company=user.company, name="Meeting"))
    return account


def made_before_start(owner: User, **fields: object) -> Activity:
    with time_machine.travel(STARTED - dt.timedelta(days=2), tick=False):
        activity = make_activity(owner, subject="Pitch", start_at=NOW + dt.timedelta(days=2), **fields)
    start_sync(owner)
    return activity


def why(client: Client, activity: Activity) -> str:
    response = client.get(reverse("calendarsync:activity_sync", args=[activity.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_d1_the_popover_says_why_the_owners_activity_was_not_sent(owner: User, owner_client: Client) -> None:
    html = why(owner_client, made_before_start(owner))
    assert BEFORE_START in html
    assert "Change its time, place, participants or description to send it." in html
    assert 'data-code="before_start"' in html


def test_d1_the_activity_page_shows_the_same_explanation(owner: User, owner_client: Client) -> None:
    activity = made_before_start(owner)
    html = owner_client.get(reverse("activities:detail", args=[activity.pk])).content.decode()
    assert BEFORE_START in html
    assert f'href="{reverse("activities:edit", args=[activity.pk])}"' in html


def test_d1_a_type_not_sent_links_to_the_options(owner: User, owner_client: Client) -> None:
    start_sync(owner)
    task = make_activity(owner, type=ActivityType.objects.get(company=owner.company, name="Task"))
    html = why(owner_client, task)
    assert "Not sent: Task is not among the types you send." in html
    assert f'href="{reverse("calendarsync:page")}#sync-options">Change</a>' in html


def test_d1_without_a_calendar_the_owner_is_told_to_connect_one(owner: User, owner_client: Client) -> None:
    html = why(owner_client, make_activity(owner))
    assert "Not synced: you have no calendar connected." in html
    assert ">Connect a calendar</a>" in html


def test_d1_a_colleague_hears_whose_sync_covers_it(
    owner: User, colleague: User, colleague_client: Client
) -> None:
    html = why(colleague_client, made_before_start(owner))
    assert "Not sent to your calendar: Owner owns it; each person&#x27;s sync covers only their own" in html
    assert "Owner&#x27;s sync: not sent." in html
    assert "owner@gmail.test" not in html


def test_a6_a_colleagues_private_activity_explains_nothing(owner: User, colleague_client: Client) -> None:
    activity = made_before_start(owner, visibility=Visibility.OWNER)
    html = why(colleague_client, activity)
    assert "Private: only its owner sees its sync status." in html
    assert "created before" not in html
    assert "Pitch" not in html
    page = colleague_client.get(reverse("activities:detail", args=[activity.pk])).content.decode()
    assert "created before" not in page


def test_a6_the_owner_sees_the_explanation_of_their_private_activity(
    owner: User, owner_client: Client
) -> None:
    assert BEFORE_START in why(owner_client, made_before_start(owner, visibility=Visibility.OWNER))


def test_a5_an_activity_the_user_may_not_see_is_not_found(
    owner: User, colleague_client: Client, outsider_client: Client
) -> None:
    hidden = made_before_start(owner, deal=make_deal(owner, visibility=Visibility.OWNER))
    url = reverse("calendarsync:activity_sync", args=[hidden.pk])
    assert colleague_client.get(url).status_code == 404
    visible = make_activity(owner)
    assert outsider_client.get(reverse("calendarsync:activity_sync", args=[visible.pk])).status_code == 404


def test_d1_the_popover_needs_a_login(owner: User, client: Client) -> None:
    response = client.get(reverse("calendarsync:activity_sync", args=[make_activity(owner).pk]))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def popover_buttons(html: str) -> list[str]:
    return re.findall(r'<button type="button" class="why-button" popovertarget="([^"]+)"', html)


def test_d1_list_rows_and_calendar_items_have_a_keyboard_reachable_why_popover(
    owner: User, owner_client: Client
) -> None:
    activity = made_before_start(owner)
    url = reverse("calendarsync:activity_sync", args=[activity.pk])
    for page in (
        owner_client.get(reverse("activities:list"), {"when": "all", "status": "all"}),
        owner_client.get(reverse("activities:calendar"), {"date": "2025-01-16", "view": "week"}),
    ):
        html = page.content.decode()
        [target] = popover_buttons(html)
        assert f'<div popover id="{target}"' in html
        assert f'hx-get="{url}"' in html
        assert f'aria-label="Why? The sync status of {activity.subject}"' in html


def test_a6_no_why_popover_on_a_colleagues_private_item(owner: User, colleague_client: Client) -> None:
    made_before_start(owner, visibility=Visibility.OWNER)
    html = colleague_client.get(reverse("activities:list"), {"when": "all", "status": "all", "owner": "all"})
    page = html.content.decode()
    assert '<span class="private">Private</span>' in page  # listed, as a private block
    assert popover_buttons(page) == []


def test_d1_the_help_names_every_cause_of_the_troubleshooting_article(
    owner: User, owner_client: Client
) -> None:
    start_sync(owner)
    html = owner_client.get(reverse("calendarsync:page")).content.decode()
    help_section = html[html.index('id="sync-help"') :]
    for cause in (
        "One-way sync",
        "Created before you started the sync",
        "In the past",
        "Type not selected",
        "Private events",
        "Insufficient permissions",
        "Needs reconnect",
        "occurrences</strong> are read-only",
        "at most 500 activities",
        "you may not see",
    ):
        assert cause in help_section, cause
