"""Personal Preferences > Calendar Sync > Connect > Google, through the emulator's consent screen (C1-C4, C7)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import User
from calendarsync.actions import do_start_sync, do_update_preferences
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    EventLink,
    LinkOrigin,
    PrivateEvents,
    SyncPreferences,
    SyncType,
)

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"


def start_connect(client: Client) -> str:
    response = client.post(reverse("calendarsync:connect_google"))
    assert response.status_code == 302
    return str(response.headers["Location"])


def consent(auth_url: str, *, email: str, scopes: list[str] | None = None, decision: str = "allow") -> str:
    """Submit the emulator's consent form as a person would; returns the callback path + query."""
    split = urlsplit(auth_url)
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    requested = query["scope"].split()
    form: dict[str, Any] = {key: value for key, value in query.items() if key != "scope"}
    form.update(
        requested_scope=query["scope"],
        email=email,
        scope=requested if scopes is None else scopes,
        decision=decision,
    )
    response = requests.post(
        f"{split.scheme}://{split.netloc}{split.path}", data=form, allow_redirects=False, timeout=10
    )
    assert response.status_code in {302, 303}, response.text
    callback = urlsplit(response.headers["Location"])
    return f"{callback.path}?{callback.query}"


@pytest.fixture
def emulator(google_emulator: Any) -> Any:
    google_emulator.emulator.add_calendar(google_emulator.user, "team@group.calendar.test", "Team calendar")
    # Django's test client calls itself "testserver": register that redirect URI like a real console would.
    google_emulator.emulator.register_client(
        google_emulator.client_id,
        google_emulator.client_secret,
        ["http://testserver" + reverse("calendarsync:google_callback")],
    )
    return google_emulator


def test_c3_connect_google_saves_the_account_and_its_calendars(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    callback = consent(start_connect(owner_client), email=emulator.user)
    response = owner_client.get(callback, follow=True)
    account = CalendarAccount.objects.get(user=owner)
    assert account.provider == "google"
    assert account.email == emulator.user
    assert account.state == AccountState.ACTIVE
    assert account.credentials is not None
    assert account.credentials["refresh_token"]
    names = set(account.calendars.values_list("name", flat=True))
    assert {"Team calendar"} <= names
    assert account.calendars.filter(is_primary=True).count() == 1
    html = response.content.decode()
    assert f"Connected {emulator.user}." in html
    assert "Team calendar" in html


def test_c4_unticked_calendar_scope_shows_insufficient_permissions(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    auth_url = start_connect(owner_client)
    granted = [
        scope for scope in parse_qs(urlsplit(auth_url).query)["scope"][0].split() if scope != CALENDAR_SCOPE
    ]
    response = owner_client.get(consent(auth_url, email=emulator.user, scopes=granted), follow=True)
    account = CalendarAccount.objects.get(user=owner)
    assert account.state == AccountState.INSUFFICIENT_PERMISSIONS
    html = response.content.decode()
    assert "Insufficient permissions" in html
    assert "IT admin" in html
    assert "third-party calendar apps" in html


def test_c4_reconnecting_with_calendar_access_fixes_insufficient_permissions(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    auth_url = start_connect(owner_client)
    granted = [
        scope for scope in parse_qs(urlsplit(auth_url).query)["scope"][0].split() if scope != CALENDAR_SCOPE
    ]
    owner_client.get(consent(auth_url, email=emulator.user, scopes=granted))
    first = CalendarAccount.objects.get(user=owner)
    owner_client.get(consent(start_connect(owner_client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    assert account.pk == first.pk  # the same account, nothing deleted
    assert account.state == AccountState.ACTIVE
    assert account.calendars.exists()


def test_c3_denied_consent_connects_nothing_and_says_so(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    callback = consent(start_connect(owner_client), email=emulator.user, decision="deny")
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "You declined access to your Google Calendar" in response.content.decode()


def test_tampered_state_is_refused(emulator: Any, owner_client: Client, owner: User) -> None:
    callback = consent(start_connect(owner_client), email=emulator.user)
    path, query = callback.split("?", 1)
    params = {key: values[0] for key, values in parse_qs(query).items()}
    params["state"] = "forged-" + params["state"]
    response = owner_client.get(path, params, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "could not be verified" in response.content.decode()


def test_replayed_callback_is_refused(emulator: Any, owner_client: Client, owner: User) -> None:
    callback = consent(start_connect(owner_client), email=emulator.user)
    owner_client.get(callback)
    CalendarAccount.objects.filter(user=owner).delete()
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "Please connect again" in response.content.decode()


def test_callback_from_another_users_session_is_refused(
    emulator: Any, owner_client: Client, colleague_client: Client, owner: User, colleague: User
) -> None:
    callback = consent(start_connect(owner_client), email=emulator.user)
    colleague_client.get(callback)
    assert not CalendarAccount.objects.filter(user__in=[owner, colleague]).exists()


def test_connect_needs_login_and_post(db: None, owner_client: Client) -> None:
    assert Client().post(reverse("calendarsync:connect_google")).status_code == 302
    assert owner_client.get(reverse("calendarsync:connect_google")).status_code == 405


def test_connect_is_csrf_protected(owner: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(reverse("calendarsync:connect_google")).status_code == 403


def test_c7_tokens_are_encrypted_in_the_database_and_absent_from_page_admin_and_logs(
    emulator: Any, owner_client: Client, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner_client.get(consent(start_connect(owner_client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    assert account.credentials is not None
    refresh_token = account.credentials["refresh_token"]
    access_token = account.credentials["access_token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendarsync_calendaraccount WHERE id = %s", [account.pk])
        stored = cursor.fetchone()[0]
    assert refresh_token not in stored
    assert access_token not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    page = owner_client.get(reverse("calendarsync:page")).content.decode()
    assert refresh_token not in page
    assert access_token not in page
    admin = User.objects.create_superuser(email="root@acme.test", password="x-admin-password-1")
    admin_client = Client()
    admin_client.force_login(admin)
    for url in (
        reverse("admin:calendarsync_calendaraccount_changelist"),
        reverse("admin:calendarsync_calendaraccount_change", args=[account.pk]),
    ):
        html = admin_client.get(url).content.decode()
        assert refresh_token not in html
        assert access_token not in html
    assert refresh_token not in caplog.text
    assert access_token not in caplog.text
    assert refresh_token not in repr(account.credentials)


def test_c7_credentials_survive_key_rotation(
    emulator: Any, owner_client: Client, owner: User, settings
) -> None:
    from cryptography.fernet import Fernet

    owner_client.get(consent(start_connect(owner_client), email=emulator.user))
    before = CalendarAccount.objects.get(user=owner).credentials
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    assert CalendarAccount.objects.get(user=owner).credentials == before


def test_oauthlib_insecure_transport_is_not_in_production_settings() -> None:
    source = (settings.BASE_DIR / "calsync_project" / "settings.py").read_text()
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in source


# --------------------------------------------------------------------------- reconnect (C4, C6, R10)


def signing_in_as(auth_url: str, email: str) -> str:
    """The consent URL with another address typed into the sign-in page than the one suggested."""
    split = urlsplit(auth_url)
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    query["login_hint"] = email
    return urlunsplit(split._replace(query=urlencode(query)))


def broken_account(client: Client, owner: User, emulator: Any) -> CalendarAccount:
    """A connected, started Google account with options, a link, and a grant Google revoked since."""
    client.get(consent(start_connect(client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    do_update_preferences(acting_user=owner, account=account, changes={"sync_type": SyncType.ONE_WAY})
    do_start_sync(acting_user=owner, account=account)
    EventLink.objects.create(
        account=account, calendar_external_id=emulator.user, external_id="evt-1", origin=LinkOrigin.CRM
    )
    emulator.emulator.revoke_tokens(emulator.user)
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.NEEDS_RECONNECT, state_detail="Access to your calendar was revoked"
    )
    return account


def reconnect(client: Client, account: CalendarAccount) -> str:
    response = client.post(reverse("calendarsync:reconnect", args=[account.pk]))
    assert response.status_code == 302
    return str(response.headers["Location"])


def test_r10_reconnect_signs_in_to_google_again_and_keeps_the_account_options_and_links(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    account = broken_account(owner_client, owner, emulator)
    old_refresh = dict(account.credentials or {})["refresh_token"]
    auth_url = reconnect(owner_client, account)
    assert auth_url.startswith(emulator.auth_uri)
    assert parse_qs(urlsplit(auth_url).query)["login_hint"] == [emulator.user]
    html = owner_client.get(consent(auth_url, email=emulator.user), follow=True).content.decode()
    assert f"Reconnected {emulator.user}. Sync carries on with your options." in html
    [again] = CalendarAccount.objects.filter(user=owner)
    assert again.pk == account.pk
    assert (again.state, again.state_detail) == (AccountState.ACTIVE, "")
    assert dict(again.credentials or {})["refresh_token"] != old_refresh
    assert SyncPreferences.objects.get(account=again).sync_type == SyncType.ONE_WAY
    assert EventLink.objects.filter(account=again, external_id="evt-1").exists()


def test_r10_reconnect_as_another_google_account_is_refused_and_overwrites_nothing(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    account = broken_account(owner_client, owner, emulator)
    before = dict(account.credentials or {})
    auth_url = signing_in_as(reconnect(owner_client, account), "mallory@example.com")
    html = owner_client.get(consent(auth_url, email="mallory@example.com"), follow=True).content.decode()
    assert (
        f"You signed in as mallory@example.com, but the account connected here is {emulator.user}, "
        "so nothing was changed." in html
    )
    assert f"To reconnect, sign in as {emulator.user}." in html
    [unchanged] = CalendarAccount.objects.filter(user=owner)
    assert (unchanged.pk, unchanged.email) == (account.pk, emulator.user)
    assert unchanged.state == AccountState.NEEDS_RECONNECT
    assert dict(unchanged.credentials or {}) == before


def test_c4_reconnect_without_calendar_access_as_someone_else_is_refused_too(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    account = broken_account(owner_client, owner, emulator)
    auth_url = signing_in_as(reconnect(owner_client, account), "mallory@example.com")
    granted = [s for s in parse_qs(urlsplit(auth_url).query)["scope"][0].split() if s != CALENDAR_SCOPE]
    html = owner_client.get(
        consent(auth_url, email="mallory@example.com", scopes=granted), follow=True
    ).content.decode()
    assert "You signed in as mallory@example.com" in html
    account.refresh_from_db()
    assert account.state == AccountState.NEEDS_RECONNECT


def test_c6_re_adding_the_same_google_account_after_stop_offers_its_previous_options(
    emulator: Any, owner_client: Client, owner: User
) -> None:
    owner_client.get(consent(start_connect(owner_client), email=emulator.user))
    first = CalendarAccount.objects.get(user=owner)
    team = first.calendars.get(name="Team calendar")
    do_update_preferences(
        acting_user=owner, account=first, changes={"calendar": team, "private_events": PrivateEvents.SKIP}
    )
    owner_client.post(reverse("calendarsync:stop_sync", args=[first.pk]))
    html = owner_client.get(consent(start_connect(owner_client), email=emulator.user), follow=True)
    text = html.content.decode()
    assert (
        f"Connected {emulator.user}. Your options from the last time you synced this account are back" in text
    )
    second = CalendarAccount.objects.get(user=owner, stopped_at__isnull=True)
    preferences = SyncPreferences.objects.get(account=second)
    assert preferences.calendar is not None
    assert preferences.calendar.name == "Team calendar"
    assert preferences.private_events == PrivateEvents.SKIP
    assert preferences.sync_started_at is None
    assert 'id="start-sync"' in text


def test_reconnect_is_only_for_the_owner_and_needs_post_and_csrf(
    emulator: Any, owner_client: Client, owner: User, colleague_client: Client, outsider_client: Client
) -> None:
    owner_client.get(consent(start_connect(owner_client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    url = reverse("calendarsync:reconnect", args=[account.pk])
    assert colleague_client.post(url).status_code == 404
    assert outsider_client.post(url).status_code == 404
    assert owner_client.get(url).status_code == 405
    anonymous = Client().post(url)
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(url).status_code == 403
