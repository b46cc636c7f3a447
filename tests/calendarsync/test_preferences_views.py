"""Personal Preferences > Calendar Sync: the options page, autosave, start and stop (O1-O10, C6)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import Company, User
from activities.models import ActivityType
from calendarsync.actions import do_start_sync
from calendarsync.models import AuditEvent, CalendarAccount, PrivateEvents, SyncPreferences, SyncType
from calendarsync.views import SYNC_STARTED_MESSAGE
from tests.calendarsync.support import HTMX, connect_account
from tests.conftest import activity_type

pytestmark = pytest.mark.django_db

PAGE = "/preferences/calendar-sync/"


def option_url(account: CalendarAccount, option: str) -> str:
    return reverse("calendarsync:update_preferences", args=[account.pk, option])


def snapshot(account: CalendarAccount) -> tuple[Any, ...]:
    preferences = SyncPreferences.objects.get(account=account)
    return (
        preferences.calendar_id,
        preferences.sync_type,
        preferences.incoming_type_id,
        sorted(preferences.outgoing_types.values_list("pk", flat=True)),
        preferences.external_visibility,
        preferences.private_events,
        preferences.include_details,
        preferences.sync_started_at,
    )


def texts_of_messages(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    return connect_account(owner)


# --------------------------------------------------------------------------- the page


def test_c1_page_url_is_personal_preferences_calendar_sync() -> None:
    assert reverse("calendarsync:page") == PAGE


def test_c3_without_an_account_the_page_offers_every_provider(owner_client: Client) -> None:
    html = owner_client.get(PAGE).content.decode()
    assert "Connect an account" in html
    assert 'id="connect-google"' in html
    assert "Microsoft 365" in html
    assert 'id="connect-microsoft"' in html
    assert reverse("calendarsync:connect_exchange") in html
    assert reverse("calendarsync:connect_other") in html
    assert 'id="sync-options"' not in html


def test_o1_o7_two_way_page_shows_every_option_in_spec_order(
    owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(PAGE).content.decode()
    titles = [
        "Calendar",
        "Sync type",
        "Convert external calendar events",
        "Choose which CRM activities appear in your calendar",
        "Default visibility of external events",
        "Private events",
        "Advanced",
    ]
    positions = [html.index(f'<h4 class="option-title">{title}</h4>') for title in titles]
    assert positions == sorted(positions)
    assert "Changes apply to items synced from now on; items already synced keep their type." in html
    assert 'id="start-sync"' in html


def test_o1_calendar_choice_lists_only_writable_calendars_and_names_read_only_ones(
    owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(PAGE).content.decode()
    select = html[html.index('<select name="calendar"') : html.index("</select>")]
    assert "My calendar" in select
    assert "Team calendar" in select
    assert "Holidays" not in select
    assert "Read-only, so CalSync cannot sync with them: Holidays." in html


def test_o3_o4_type_choices_are_every_active_company_type_incl_custom(
    owner_client: Client, account: CalendarAccount, company: Company, other_company: Company
) -> None:
    ActivityType.objects.create(company=company, name="Site visit")
    ActivityType.objects.create(company=company, name="Retired type", is_active=False)
    ActivityType.objects.create(company=other_company, name="Globex demo")
    html = owner_client.get(PAGE).content.decode()
    outgoing = html[html.index('id="option-outgoing_types"') : html.index('id="option-external_visibility"')]
    for name in ("Call", "Meeting", "Task", "Deadline", "Email", "Lunch", "Site visit"):
        assert f"{name}</label>" in outgoing
    assert "Retired type" not in html
    assert "Globex demo" not in html
    incoming = html[html.index('id="option-incoming_type"') : html.index('id="option-outgoing_types"')]
    assert "Site visit" in incoming


def test_o4_one_way_page_shows_only_outgoing_types_and_explains(
    owner_client: Client, account: CalendarAccount
) -> None:
    SyncPreferences.objects.filter(account=account).update(sync_type=SyncType.ONE_WAY)
    html = owner_client.get(PAGE).content.decode()
    assert 'id="option-outgoing_types"' in html
    for two_way_only in ("incoming_type", "external_visibility", "private_events"):
        assert f'id="option-{two_way_only}"' not in html
    assert "Events created in your\n        calendar are not imported" in html
    assert "are applied to their activities" in html


# --------------------------------------------------------------------------- autosave (O8)

GOOD_CHANGES: list[tuple[str, dict[str, Any], str, Any]] = [
    ("sync_type", {"sync_type": "one_way"}, "sync_type", "one_way"),
    ("external_visibility", {"external_visibility": "only_me"}, "external_visibility", "only_me"),
    ("private_events", {"private_events": "everyone"}, "private_events", "everyone"),
    ("include_details", {}, "include_details", False),
]


@pytest.mark.parametrize(("option", "data", "field", "expected"), GOOD_CHANGES)
def test_o8_htmx_change_saves_at_once_and_returns_only_the_fragment(
    owner_client: Client,
    account: CalendarAccount,
    option: str,
    data: dict[str, Any],
    field: str,
    expected: Any,
) -> None:
    response = owner_client.post(option_url(account, option), data, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert '<span class="saved" role="status">Saved</span>' in html
    assert getattr(SyncPreferences.objects.get(account=account), field) == expected
    event = AuditEvent.objects.get(action="preferences_updated")
    assert event.actor == account.user
    assert field in event.detail["changes"]


def test_o1_htmx_change_of_calendar(owner_client: Client, account: CalendarAccount) -> None:
    team = account.calendars.get(name="Team calendar")
    response = owner_client.post(option_url(account, "calendar"), {"calendar": team.pk}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Saved" in html
    assert "<html" not in html
    assert html.lstrip().startswith('<form id="option-calendar"')
    assert SyncPreferences.objects.get(account=account).calendar == team


def test_o3_htmx_change_of_incoming_and_outgoing_types(
    owner_client: Client, account: CalendarAccount, company: Company
) -> None:
    custom = ActivityType.objects.create(company=company, name="Site visit")
    task = activity_type(company, "Task")
    response = owner_client.post(
        option_url(account, "incoming_type"), {"incoming_type": custom.pk}, headers=HTMX
    )
    assert response.status_code == 200
    assert "Saved" in response.content.decode()
    response = owner_client.post(
        option_url(account, "outgoing_types"), {"outgoing_types": [task.pk, custom.pk]}, headers=HTMX
    )
    assert response.status_code == 200
    assert "Saved" in response.content.decode()
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.incoming_type == custom
    assert set(preferences.outgoing_types.all()) == {task, custom}


def test_o4_unticking_every_outgoing_type_is_allowed_and_explained(
    owner_client: Client, account: CalendarAccount
) -> None:
    response = owner_client.post(option_url(account, "outgoing_types"), {}, headers=HTMX)
    assert response.status_code == 200
    assert "none of your activities go to your calendar" in response.content.decode()
    assert not SyncPreferences.objects.get(account=account).outgoing_types.exists()


def test_o2_switching_sync_type_rerenders_all_options(owner_client: Client, account: CalendarAccount) -> None:
    response = owner_client.post(option_url(account, "sync_type"), {"sync_type": "one_way"}, headers=HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="sync-options"')
    assert 'id="sync-options"' in html
    assert "<html" not in html
    assert 'id="option-incoming_type"' not in html
    assert 'id="option-private_events"' not in html
    assert 'id="one-way-note"' in html
    sync_type_section = html[html.index('id="option-sync_type"') : html.index('id="option-outgoing_types"')]
    assert "Saved" in sync_type_section
    response = owner_client.post(option_url(account, "sync_type"), {"sync_type": "two_way"}, headers=HTMX)
    html = response.content.decode()
    assert 'id="option-incoming_type"' in html
    assert 'id="option-private_events"' in html
    assert 'id="one-way-note"' not in html


def test_o6_dont_sync_private_events_warns_about_double_booking(
    owner_client: Client, account: CalendarAccount
) -> None:
    response = owner_client.post(
        option_url(account, "private_events"), {"private_events": "skip"}, headers=HTMX
    )
    html = response.content.decode()
    assert 'id="private-events-warning"' in html
    assert "block that time by hand" in html
    assert "double booking" in html
    assert SyncPreferences.objects.get(account=account).private_events == PrivateEvents.SKIP
    response = owner_client.post(
        option_url(account, "private_events"), {"private_events": "only_me"}, headers=HTMX
    )
    assert "private-events-warning" not in response.content.decode()


def test_o8_plain_post_without_javascript_redirects_with_a_message(
    owner_client: Client, account: CalendarAccount
) -> None:
    response = owner_client.post(
        option_url(account, "external_visibility"), {"external_visibility": "only_me"}
    )
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert texts_of_messages(response) == ["Saved: Default visibility of external events."]
    assert SyncPreferences.objects.get(account=account).external_visibility == "only_me"


def test_o8_every_option_has_a_noscript_save_button_and_htmx_attributes(
    owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(PAGE).content.decode()
    assert html.count('<noscript><button type="submit" class="secondary">Save</button></noscript>') == 8
    assert html.count('hx-trigger="change"') == 8
    assert 'hx-target="#sync-options"' in html


# --------------------------------------------------------------------------- refused values (O8)


def bad_inputs(
    account: CalendarAccount, owner: User, outsider: User
) -> list[tuple[str, dict[str, Any], str]]:
    company = owner.company
    assert company is not None
    assert outsider.company is not None
    inactive = ActivityType.objects.create(company=company, name="Retired", is_active=False)
    foreign = activity_type(outsider.company, "Meeting")
    foreign_calendar = connect_account(outsider).calendars.get(is_primary=True)
    read_only = account.calendars.get(can_write=False)
    meeting = activity_type(company, "Meeting")
    return [
        ("incoming_type", {"incoming_type": foreign.pk}, "not an active activity type of your company"),
        ("incoming_type", {"incoming_type": inactive.pk}, "not an active activity type of your company"),
        ("incoming_type", {"incoming_type": "abc"}, "not an active activity type of your company"),
        ("incoming_type", {}, "Choose an activity type."),
        ("outgoing_types", {"outgoing_types": [meeting.pk, foreign.pk]}, "not an active activity type"),
        ("outgoing_types", {"outgoing_types": [inactive.pk]}, "not an active activity type"),
        ("outgoing_types", {"outgoing_types": ["1; DROP TABLE"]}, "not an active activity type"),
        ("sync_type", {"sync_type": "three_way"}, "“three_way” is not one of the options"),
        ("sync_type", {}, "Choose a sync type."),
        ("external_visibility", {"external_visibility": "public"}, "is not one of the options"),
        ("private_events", {"private_events": "delete"}, "is not one of the options"),
        ("calendar", {"calendar": foreign_calendar.pk}, "calendars CalSync can write to"),
        ("calendar", {"calendar": read_only.pk}, "calendars CalSync can write to"),
        ("calendar", {"calendar": ""}, "Choose a calendar."),
    ]


def test_o8_every_invalid_value_is_refused_by_htmx_with_a_message_and_changes_nothing(
    owner_client: Client, account: CalendarAccount, owner: User, outsider: User
) -> None:
    cases = bad_inputs(account, owner, outsider)
    before = snapshot(account)
    for option, data, message in cases:
        response = owner_client.post(option_url(account, option), data, headers=HTMX)
        html = response.content.decode()
        assert response.status_code == 422, (option, data)
        assert "Not saved:" in html, (option, data, html)
        assert message in html, (option, data, html)
        assert "Saved</span>" not in html
        assert "<html" not in html
    assert snapshot(account) == before
    assert not AuditEvent.objects.filter(action="preferences_updated").exists()


def test_o8_every_invalid_value_is_refused_without_javascript_too(
    owner_client: Client, account: CalendarAccount, owner: User, outsider: User
) -> None:
    cases = bad_inputs(account, owner, outsider)
    before = snapshot(account)
    for option, data, message in cases:
        response = owner_client.post(option_url(account, option), data)
        assert response.status_code == 302
        text = texts_of_messages(response)[-1]
        assert "was not saved" in text, (option, data, text)
        assert message in text, (option, data, text)
    assert snapshot(account) == before


def test_o8_invalid_incoming_type_is_refused_and_changes_nothing(
    owner_client: Client, account: CalendarAccount, other_company: Company
) -> None:
    before = snapshot(account)
    foreign = activity_type(other_company, "Call")
    response = owner_client.post(
        option_url(account, "incoming_type"), {"incoming_type": foreign.pk}, headers=HTMX
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "Not saved: That is not an active activity type of your company." in html
    # The fragment keeps showing the stored choice, not the refused one.
    assert f'<option value="{before[2]}" selected>Meeting</option>' in html
    assert snapshot(account) == before


def test_o8_unknown_option_is_a_404(owner_client: Client, account: CalendarAccount) -> None:
    response = owner_client.post(option_url(account, "sync_token"), {"sync_token": "x"}, headers=HTMX)
    assert response.status_code == 404


def test_o8_update_needs_post(owner_client: Client, account: CalendarAccount) -> None:
    assert owner_client.get(option_url(account, "sync_type")).status_code == 405


# --------------------------------------------------------------------------- start and stop (O9, C6)


def test_o9_start_sync_sets_started_and_says_when_activities_show(
    owner_client: Client, account: CalendarAccount
) -> None:
    response = owner_client.post(reverse("calendarsync:start_sync", args=[account.pk]), follow=True)
    html = response.content.decode()
    assert SYNC_STARTED_MESSAGE in html
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.sync_started_at is not None
    assert preferences.sync_stopped_at is None
    assert 'id="start-sync"' not in html
    assert "Sync is on since" in html
    assert 'id="account-edit"' in html
    assert "Stop sync" in html


def test_o9_start_refused_while_insufficient_permissions_says_why(owner_client: Client, owner: User) -> None:
    from calendarsync.models import AccountState

    account = connect_account(owner, state=AccountState.INSUFFICIENT_PERMISSIONS)
    response = owner_client.post(reverse("calendarsync:start_sync", args=[account.pk]), follow=True)
    assert "Sync did not start" in response.content.decode()
    assert SyncPreferences.objects.get(account=account).sync_started_at is None


def test_c6_stop_asks_for_confirmation_first(owner_client: Client, account: CalendarAccount) -> None:
    response = owner_client.get(reverse("calendarsync:stop_sync", args=[account.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Stop sync with {account.email}?" in html
    assert 'id="confirm-stop"' in html
    account.refresh_from_db()
    assert account.stopped_at is None


def test_c6_stop_then_add_account(owner_client: Client, account: CalendarAccount, owner: User) -> None:
    do_start_sync(acting_user=owner, account=account)
    response = owner_client.post(reverse("calendarsync:stop_sync", args=[account.pk]), follow=True)
    html = response.content.decode()
    assert "Sync stopped" in html
    assert "Your activities are kept" in html
    assert "Add account" in html
    assert 'id="connect-google"' in html
    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.credentials is None
    assert SyncPreferences.objects.get(account=account).sync_stopped_at is not None


def test_c6_a_stopped_account_can_no_longer_be_changed(
    owner_client: Client, account: CalendarAccount
) -> None:
    owner_client.post(reverse("calendarsync:stop_sync", args=[account.pk]))
    before = snapshot(account)
    assert owner_client.post(option_url(account, "sync_type"), {"sync_type": "one_way"}).status_code == 404
    assert owner_client.post(reverse("calendarsync:start_sync", args=[account.pk])).status_code == 404
    assert snapshot(account) == before


# --------------------------------------------------------------------------- who may (404) and CSRF


@pytest.mark.parametrize("intruder", ["colleague", "outsider"])
def test_someone_else_cannot_read_or_change_preferences_nor_start_or_stop(
    request: pytest.FixtureRequest, account: CalendarAccount, intruder: str
) -> None:
    client: Client = request.getfixturevalue(f"{intruder}_client")
    before = snapshot(account)
    page = client.get(PAGE).content.decode()
    assert account.email not in page
    assert 'id="sync-options"' not in page
    assert (
        client.post(option_url(account, "sync_type"), {"sync_type": "one_way"}, headers=HTMX).status_code
        == 404
    )
    assert client.post(option_url(account, "sync_type"), {"sync_type": "one_way"}).status_code == 404
    assert client.post(reverse("calendarsync:start_sync", args=[account.pk])).status_code == 404
    assert client.get(reverse("calendarsync:stop_sync", args=[account.pk])).status_code == 404
    assert client.post(reverse("calendarsync:stop_sync", args=[account.pk])).status_code == 404
    account.refresh_from_db()
    assert account.stopped_at is None
    assert account.credentials is not None
    assert snapshot(account) == before
    assert not AuditEvent.objects.exclude(action="connected").exists()


def test_anonymous_is_sent_to_log_in(account: CalendarAccount) -> None:
    for response in (
        Client().get(PAGE),
        Client().post(option_url(account, "sync_type"), {"sync_type": "one_way"}),
        Client().post(reverse("calendarsync:start_sync", args=[account.pk])),
        Client().post(reverse("calendarsync:stop_sync", args=[account.pk])),
    ):
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
    assert snapshot(account)[1] == SyncType.TWO_WAY


def test_csrf_is_enforced_on_every_change(owner: User, account: CalendarAccount) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = snapshot(account)
    assert (
        client.post(option_url(account, "sync_type"), {"sync_type": "one_way"}, headers=HTMX).status_code
        == 403
    )
    assert client.post(reverse("calendarsync:start_sync", args=[account.pk])).status_code == 403
    assert client.post(reverse("calendarsync:stop_sync", args=[account.pk])).status_code == 403
    assert snapshot(account) == before
    account.refresh_from_db()
    assert account.stopped_at is None


# --------------------------------------------------------------------------- Content-Security-Policy ready


INLINE_HANDLER = re.compile(r"""\s(on[a-z]+|hx-on[:\w-]*)\s*=""", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)


def test_the_calendar_sync_pages_have_no_inline_scripts_or_event_handlers(
    owner_client: Client, account: CalendarAccount
) -> None:
    pages = [
        PAGE,
        reverse("calendarsync:sync_status", args=[account.pk]),
        reverse("calendarsync:stop_sync", args=[account.pk]),
        reverse("calendarsync:connect_other"),
    ]
    for url in pages:
        html = owner_client.get(url).content.decode()
        assert not INLINE_SCRIPT.search(html), url
        assert not INLINE_HANDLER.search(html), url
    html = owner_client.get(PAGE).content.decode()
    assert '<script src="/static/js/prefs.js" defer></script>' in html


def test_the_page_without_an_account_has_no_inline_scripts_either(owner_client: Client) -> None:
    html = owner_client.get(PAGE).content.decode()
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html)
