"""Personal Preferences > Calendar Sync > Connect > Microsoft 365, through msal and the emulator (C1-C4, C6, C7)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import User
from calendarsync.actions import do_start_sync, do_update_preferences
from calendarsync.connect.microsoft import MICROSOFT_SESSION_KEY
from calendarsync.crypto import Secret
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    EventLink,
    LinkOrigin,
    Provider,
    SyncPreferences,
)
from calendarsync.sync.accounts import provider_for
from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator

CALENDAR_SCOPE = "Calendars.ReadWrite"


def start_connect(client: Client) -> str:
    response = client.post(reverse("calendarsync:connect_microsoft"))
    assert response.status_code == 302
    return str(response.headers["Location"])


def consent(
    emulator: RunningMicrosoftEmulator,
    auth_url: str,
    *,
    email: str,
    scopes: list[str] | None = None,
    decision: str = "allow",
) -> str:
    """Submit the emulator's consent form as a person would; returns the callback path + query."""
    split = urlsplit(auth_url)
    assert split.scheme == "https"  # msal only talks to the identity platform over TLS
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    form: dict[str, Any] = {key: value for key, value in query.items() if key != "scope"}
    form.update(
        requested_scope=query["scope"],
        email=email,
        scope=query["scope"].split() if scopes is None else scopes,
        decision=decision,
    )
    response = requests.post(
        f"{split.scheme}://{split.netloc}{split.path}",
        data=form,
        allow_redirects=False,
        timeout=10,
        verify=str(emulator.ca_bundle),
    )
    assert response.status_code in {302, 303}, response.text
    callback = urlsplit(response.headers["Location"])
    return f"{callback.path}?{callback.query}"


def requested_scopes(auth_url: str) -> list[str]:
    return parse_qs(urlsplit(auth_url).query)["scope"][0].split()


@pytest.fixture
def emulator(microsoft_emulator: RunningMicrosoftEmulator) -> RunningMicrosoftEmulator:
    microsoft_emulator.emulator.add_calendar(microsoft_emulator.user, None, "Team calendar")
    # Django's test client calls itself "testserver": register that redirect URI like a real app would.
    microsoft_emulator.emulator.register_client(
        microsoft_emulator.client_id,
        microsoft_emulator.client_secret,
        ["http://testserver" + reverse("calendarsync:microsoft_callback")],
    )
    return microsoft_emulator


def test_c3_connect_microsoft_saves_the_account_and_its_calendars(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    auth_url = start_connect(owner_client)
    # msal asked for calendar access and offline access, with PKCE and a nonce.
    query = parse_qs(urlsplit(auth_url).query)
    assert {CALENDAR_SCOPE, "User.Read", "offline_access", "openid"} <= set(requested_scopes(auth_url))
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"]
    response = owner_client.get(consent(emulator, auth_url, email=emulator.user), follow=True)
    account = CalendarAccount.objects.get(user=owner)
    assert account.provider == Provider.MICROSOFT
    assert account.email == emulator.user
    assert account.state == AccountState.ACTIVE
    assert account.credentials is not None
    assert account.credentials["refresh_token"]
    assert CALENDAR_SCOPE in account.credentials["scopes"]
    assert set(account.calendars.values_list("name", flat=True)) == {"Calendar", "Team calendar"}
    primary = account.calendars.get(is_primary=True)
    assert primary.external_id == emulator.calendar_id
    assert account.preferences.calendar == primary
    html = response.content.decode()
    assert f"Connected {emulator.user}." in html
    assert "Team calendar" in html


def test_c3_connected_account_syncs_through_the_registry(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    owner_client.get(consent(emulator, start_connect(owner_client), email=emulator.user))
    provider = provider_for(CalendarAccount.objects.get(user=owner))
    assert {c.name for c in provider.list_calendars()} == {"Calendar", "Team calendar"}


def test_c4_unticked_calendar_scope_shows_insufficient_permissions(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    auth_url = start_connect(owner_client)
    granted = [scope for scope in requested_scopes(auth_url) if scope != CALENDAR_SCOPE]
    response = owner_client.get(consent(emulator, auth_url, email=emulator.user, scopes=granted), follow=True)
    account = CalendarAccount.objects.get(user=owner)
    assert account.state == AccountState.INSUFFICIENT_PERMISSIONS
    assert not account.calendars.exists()
    html = response.content.decode()
    assert "Microsoft 365 did not grant access to your calendar" in html
    assert "Insufficient permissions" in html
    assert "IT admin" in html
    assert "third-party calendar apps" in html


def test_c4_reconnecting_with_calendar_access_fixes_insufficient_permissions(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    auth_url = start_connect(owner_client)
    granted = [scope for scope in requested_scopes(auth_url) if scope != CALENDAR_SCOPE]
    owner_client.get(consent(emulator, auth_url, email=emulator.user, scopes=granted))
    first = CalendarAccount.objects.get(user=owner)
    owner_client.get(consent(emulator, start_connect(owner_client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    assert account.pk == first.pk  # the same account, nothing deleted
    assert account.state == AccountState.ACTIVE
    assert account.calendars.count() == 2


def test_c3_denied_consent_connects_nothing_and_says_so(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user, decision="deny")
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "You declined access to your Microsoft 365 calendar" in response.content.decode()


def test_c3_unticking_everything_counts_as_denied(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user, scopes=[])
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "You declined access" in response.content.decode()


def test_tampered_state_is_refused(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user)
    path, query = callback.split("?", 1)
    params = {key: values[0] for key, values in parse_qs(query).items()}
    params["state"] = "forged-" + params["state"]
    response = owner_client.get(path, params, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "could not be verified" in response.content.decode()


def test_pkce_verifier_is_checked(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user)
    session = owner_client.session
    flow = dict(session[MICROSOFT_SESSION_KEY])
    flow["code_verifier"] = "x" * 43  # an attacker who stole the code lacks the verifier
    session[MICROSOFT_SESSION_KEY] = flow
    session.save()
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "Microsoft refused the authorization code" in response.content.decode()


def test_nonce_is_checked(emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user)
    session = owner_client.session
    flow = dict(session[MICROSOFT_SESSION_KEY])
    flow["nonce"] = "not-the-nonce-of-this-sign-in"
    session[MICROSOFT_SESSION_KEY] = flow
    session.save()
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "could not be verified" in response.content.decode()


def test_replayed_callback_is_refused(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user)
    owner_client.get(callback)
    CalendarAccount.objects.filter(user=owner).delete()
    response = owner_client.get(callback, follow=True)
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "Please connect again" in response.content.decode()


def test_callback_from_another_users_session_is_refused(
    emulator: RunningMicrosoftEmulator,
    owner_client: Client,
    colleague_client: Client,
    owner: User,
    colleague: User,
) -> None:
    callback = consent(emulator, start_connect(owner_client), email=emulator.user)
    colleague_client.get(callback)
    assert not CalendarAccount.objects.filter(user__in=[owner, colleague]).exists()


def test_c6_another_connected_provider_is_not_replaced(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    CalendarAccount.objects.create(
        user=owner,
        provider=Provider.GOOGLE,
        email="owner@gmail.test",
        credentials=Secret({"refresh_token": "r"}),
    )
    response = owner_client.post(reverse("calendarsync:connect_microsoft"), follow=True)
    assert (
        "owner@gmail.test is connected. Stop its sync before adding another account."
        in response.content.decode()
    )
    assert MICROSOFT_SESSION_KEY not in owner_client.session


def test_sign_in_service_unreachable_says_so(
    emulator: RunningMicrosoftEmulator, owner_client: Client, settings: Any
) -> None:
    settings.MICROSOFT_AUTHORITY = "https://127.0.0.1:9/common"  # nothing listens there
    response = owner_client.post(reverse("calendarsync:connect_microsoft"), follow=True)
    assert "Microsoft sign-in could not be reached" in response.content.decode()


def test_test_ca_is_trusted_although_requests_ca_bundle_points_elsewhere(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    # requests lets this variable override a session's verify; our per-request verify wins.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    owner_client.get(consent(emulator, start_connect(owner_client), email=emulator.user))
    assert CalendarAccount.objects.get(user=owner).state == AccountState.ACTIVE


def test_connect_needs_login_and_post(db: None, owner_client: Client) -> None:
    assert Client().post(reverse("calendarsync:connect_microsoft")).status_code == 302
    assert owner_client.get(reverse("calendarsync:connect_microsoft")).status_code == 405
    assert Client().get(reverse("calendarsync:microsoft_callback")).status_code == 302


def test_connect_is_csrf_protected(owner: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(reverse("calendarsync:connect_microsoft")).status_code == 403


def test_c7_tokens_are_encrypted_in_the_database_and_absent_from_page_admin_and_logs(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner_client.get(consent(emulator, start_connect(owner_client), email=emulator.user))
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


def test_r9_refreshed_tokens_are_saved_back_encrypted(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    owner_client.get(consent(emulator, start_connect(owner_client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    assert account.credentials is not None
    before = dict(account.credentials)
    emulator.emulator.expire_access_tokens(emulator.user)
    assert provider_for(account).list_calendars()
    account.refresh_from_db()
    assert account.credentials is not None
    after = dict(account.credentials)
    assert after["access_token"] != before["access_token"]
    # Microsoft rotates refresh tokens: the new one is kept.
    assert after["refresh_token"] != before["refresh_token"]
    assert after["expiry"]


# --------------------------------------------------------------------------- reconnect (C4, C6, R10)


def signing_in_as(auth_url: str, email: str) -> str:
    """The sign-in URL with another address typed into the sign-in page than the one suggested."""
    split = urlsplit(auth_url)
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    query["login_hint"] = email
    return urlunsplit(split._replace(query=urlencode(query)))


def broken_account(client: Client, owner: User, emulator: RunningMicrosoftEmulator) -> CalendarAccount:
    """A connected, started Microsoft 365 account with options and a link, whose grant was revoked."""
    client.get(consent(emulator, start_connect(client), email=emulator.user))
    account = CalendarAccount.objects.get(user=owner)
    do_update_preferences(acting_user=owner, account=account, changes={"include_details": False})
    do_start_sync(acting_user=owner, account=account)
    EventLink.objects.create(
        account=account, calendar_external_id="cal", external_id="AAMk-1", origin=LinkOrigin.CRM
    )
    emulator.emulator.revoke_tokens(emulator.user)
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    return account


def reconnect(client: Client, account: CalendarAccount) -> str:
    response = client.post(reverse("calendarsync:reconnect", args=[account.pk]))
    assert response.status_code == 302
    return str(response.headers["Location"])


def test_r10_reconnect_signs_in_to_microsoft_again_and_keeps_the_account_options_and_links(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    account = broken_account(owner_client, owner, emulator)
    old_refresh = dict(account.credentials or {})["refresh_token"]
    auth_url = reconnect(owner_client, account)
    assert auth_url.startswith(emulator.identity_url)
    assert parse_qs(urlsplit(auth_url).query)["login_hint"] == [emulator.user]
    html = owner_client.get(consent(emulator, auth_url, email=emulator.user), follow=True).content.decode()
    assert f"Reconnected {emulator.user}. Sync carries on with your options." in html
    assert "coming soon" not in html
    [again] = CalendarAccount.objects.filter(user=owner)
    assert again.pk == account.pk
    assert again.state == AccountState.ACTIVE
    assert dict(again.credentials or {})["refresh_token"] != old_refresh
    assert SyncPreferences.objects.get(account=again).include_details is False
    assert EventLink.objects.filter(account=again, external_id="AAMk-1").exists()
    assert {c.name for c in provider_for(again).list_calendars()} == {"Calendar", "Team calendar"}


def test_r10_reconnect_as_another_microsoft_account_is_refused_and_overwrites_nothing(
    emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User
) -> None:
    account = broken_account(owner_client, owner, emulator)
    before = dict(account.credentials or {})
    auth_url = signing_in_as(reconnect(owner_client, account), "mallory@contoso.test")
    response = owner_client.get(consent(emulator, auth_url, email="mallory@contoso.test"), follow=True)
    html = response.content.decode()
    assert "You signed in as mallory@contoso.test, but the account connected here is" in html
    assert f"To reconnect, sign in as {emulator.user}." in html
    [unchanged] = CalendarAccount.objects.filter(user=owner)
    assert (unchanged.pk, unchanged.email, unchanged.state) == (
        account.pk,
        emulator.user,
        AccountState.NEEDS_RECONNECT,
    )
    assert dict(unchanged.credentials or {}) == before
