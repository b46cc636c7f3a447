"""Google connect flow (C3, C4, C7) against the emulator's consent page, token and revoke endpoints."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.conf import settings
from django.db import connection

from accounts.models import User
from calendarsync.crypto import Secret
from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.base import AuthRevoked, InsufficientPermissions
from calendarsync.providers.google import oauth
from calendarsync.providers.google.adapter import GoogleProvider
from calendarsync.providers.google.oauth import (
    ConsentDenied,
    GrantedTokens,
    InvalidGrant,
    MissingCalendarScope,
    OAuthError,
    StateMismatch,
    finish_authorization,
    revoke,
    start_authorization,
)
from calendarsync.providers.registry import PROVIDERS
from calendarsync.sync.accounts import provider_for

REDIRECT_URI = "http://127.0.0.1:8000/settings/calendar-sync/google/callback"
USER = "alice@example.com"


@pytest.fixture(autouse=True)
def _emulator(google_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # oauthlib refuses plain HTTP unless told otherwise: tests and local development only.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    return google_emulator


def consent(auth_url: str, *, decision: str = "allow", scopes: list[str] | None = None) -> str:
    """Press Allow/Deny on the emulator's consent page; returns the URL Google redirects back to."""
    query = {key: values[0] for key, values in parse_qs(urlsplit(auth_url).query).items()}
    requested = query.pop("scope").split()
    form: list[tuple[str, str]] = [*query.items(), ("requested_scope", " ".join(requested))]
    form += [("email", USER), ("decision", decision)]
    form += [("scope", scope) for scope in (requested if scopes is None else scopes)]
    response = requests.post(settings.GOOGLE_AUTH_URI, data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def connect() -> tuple[str, str, str]:
    """Start the flow and consent; returns (state, verifier, callback URL)."""
    auth_url, state, verifier = start_authorization(REDIRECT_URI)
    return state, verifier, consent(auth_url)


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_c3_authorization_url_asks_for_offline_calendar_access_with_pkce() -> None:
    auth_url, state, verifier = start_authorization(REDIRECT_URI, login_hint=USER)
    query = {key: values[0] for key, values in parse_qs(urlsplit(auth_url).query).items()}
    assert auth_url.startswith(settings.GOOGLE_AUTH_URI)
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] != verifier
    assert query["state"] == state
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["login_hint"] == USER
    assert settings.GOOGLE_CALENDAR_SCOPE in query["scope"].split()
    assert len(verifier) >= 43


def test_c3_connect_returns_tokens_email_and_scopes() -> None:
    state, verifier, callback = connect()
    granted = finish_authorization(REDIRECT_URI, state, verifier, callback)
    assert granted.email == USER
    assert granted.refresh_token
    assert granted.access_token
    assert granted.expiry is not None
    assert granted.expiry.tzinfo is not None
    assert settings.GOOGLE_CALENDAR_SCOPE in granted.granted_scopes
    # The stored credentials drive the adapter.
    provider = GoogleProvider.from_tokens(granted.as_credentials(), sleep=lambda _: None)
    assert any(c.is_primary for c in provider.list_calendars())


def test_c7_granted_tokens_never_show_in_repr() -> None:
    state, verifier, callback = connect()
    granted = finish_authorization(REDIRECT_URI, state, verifier, callback)
    assert granted.access_token not in repr(granted)
    assert granted.refresh_token not in repr(granted)
    assert isinstance(granted, GrantedTokens)


def test_tampered_state_is_refused() -> None:
    state, verifier, callback = connect()
    with pytest.raises(StateMismatch):
        finish_authorization(REDIRECT_URI, "a-different-state", verifier, callback)
    with pytest.raises(StateMismatch):
        finish_authorization(REDIRECT_URI, state, verifier, with_param(callback, state="forged"))


def test_missing_pkce_verifier_is_refused() -> None:
    state, _verifier, callback = connect()
    with pytest.raises(OAuthError, match="PKCE"):
        finish_authorization(REDIRECT_URI, state, "", callback)


def test_wrong_pkce_verifier_is_refused_by_google() -> None:
    state, verifier, callback = connect()
    with pytest.raises(InvalidGrant):
        finish_authorization(REDIRECT_URI, state, verifier[::-1], callback)


def test_replayed_code_is_refused() -> None:
    state, verifier, callback = connect()
    finish_authorization(REDIRECT_URI, state, verifier, callback)
    with pytest.raises(InvalidGrant):
        finish_authorization(REDIRECT_URI, state, verifier, callback)


def test_denied_consent() -> None:
    auth_url, state, verifier = start_authorization(REDIRECT_URI)
    callback = consent(auth_url, decision="deny")
    with pytest.raises(ConsentDenied):
        finish_authorization(REDIRECT_URI, state, verifier, callback)


def test_c4_partial_consent_without_calendar_scope_is_insufficient_permissions() -> None:
    auth_url, state, verifier = start_authorization(REDIRECT_URI)
    without_calendar = [s for s in settings.GOOGLE_SCOPES if s != settings.GOOGLE_CALENDAR_SCOPE]
    callback = consent(auth_url, scopes=without_calendar)
    with pytest.raises(InsufficientPermissions) as caught:
        finish_authorization(REDIRECT_URI, state, verifier, callback)
    # The tokens come along so the account can be kept and shown as "Insufficient permissions".
    assert isinstance(caught.value, MissingCalendarScope)
    assert caught.value.tokens.email == USER
    assert settings.GOOGLE_CALENDAR_SCOPE not in caught.value.tokens.granted_scopes
    assert caught.value.tokens.refresh_token


def test_email_falls_back_to_the_id_token_when_userinfo_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_token: str) -> str:
        raise OAuthError("Google userinfo answered 403")

    monkeypatch.setattr(oauth, "fetch_email", refuse)
    state, verifier, callback = connect()
    assert finish_authorization(REDIRECT_URI, state, verifier, callback).email == USER


def test_partial_consent_keeping_calendar_scope_is_enough() -> None:
    auth_url, state, verifier = start_authorization(REDIRECT_URI)
    callback = consent(auth_url, scopes=["openid", settings.GOOGLE_CALENDAR_SCOPE])
    granted = finish_authorization(REDIRECT_URI, state, verifier, callback)
    assert set(granted.granted_scopes) == {"openid", settings.GOOGLE_CALENDAR_SCOPE}


def test_r9_revoked_refresh_token_stops_the_adapter() -> None:
    state, verifier, callback = connect()
    granted = finish_authorization(REDIRECT_URI, state, verifier, callback)
    revoke(granted.refresh_token)
    provider = GoogleProvider.from_tokens(granted.as_credentials(), sleep=lambda _: None)
    with pytest.raises(AuthRevoked):
        provider.list_calendars()
    revoke(granted.refresh_token)  # revoking twice is fine


def test_r9_refreshed_tokens_are_saved_encrypted_on_the_account(owner: User, google_emulator: Any) -> None:
    state, verifier, callback = connect()
    granted = finish_authorization(REDIRECT_URI, state, verifier, callback)
    account = CalendarAccount(user=owner, provider=Provider.GOOGLE, email=granted.email)
    account.credentials = Secret(granted.as_credentials())
    account.save()
    assert "google" in PROVIDERS
    provider = provider_for(account)
    google_emulator.emulator.expire_access_tokens(USER)
    assert provider.list_calendars()

    stored = CalendarAccount.objects.get(pk=account.pk).credentials
    assert stored is not None
    assert stored["access_token"] != granted.access_token
    assert stored["refresh_token"] == granted.refresh_token
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendarsync_calendaraccount WHERE id = %s", [account.pk])
        (ciphertext,) = cursor.fetchone()
    assert stored["access_token"] not in ciphertext  # C7: encrypted at rest
    assert stored["refresh_token"] not in ciphertext


def test_r9_account_without_credentials_needs_reconnect(owner: User) -> None:
    account = CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email=USER)
    with pytest.raises(AuthRevoked):
        provider_for(account)
