"""Issue 13, finding 10: Stop sync and the admin Disconnect give CalSync's access back at the provider.

Google's grant is revoked at its revoke endpoint (the emulator records it); Microsoft offers apps no
revocation of delegated refresh tokens, so the tokens are dropped and the page says where the user
removes CalSync's access; an Exchange password is simply forgotten. A revocation that fails is logged
and never blocks the disconnect.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from calendarsync.actions import do_connect_account
from calendarsync.models import AuditEvent, CalendarAccount, Provider
from tests.calendarsync import conftest as calendarsync_fixtures
from tests.calendarsync.conftest import RunningGoogleEmulator
from tests.calendarsync.support import DEFAULT_CALENDARS, connect_account
from tests.conftest import PASSWORD

# The Google emulator's fixtures live with the calendar sync tests.
google_emulator = calendarsync_fixtures.google_emulator
google_emulator_server = calendarsync_fixtures.google_emulator_server

MICROSOFT_PERSONAL_CONSENT = "https://account.live.com/consent/Manage"
MICROSOFT_WORK_CONSENT = "https://myapps.microsoft.com"


def connect_google(user: User, emulator: RunningGoogleEmulator) -> tuple[CalendarAccount, dict[str, Any]]:
    """A Google account connected with real tokens the emulator issued."""
    tokens = emulator.emulator.issue_tokens(emulator.user, list(settings.GOOGLE_SCOPES), emulator.client_id)
    account = do_connect_account(
        acting_user=user,
        provider=Provider.GOOGLE,
        email=emulator.user,
        credentials={"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
        calendars=DEFAULT_CALENDARS,
    )
    return account, tokens


def refresh_works(emulator: RunningGoogleEmulator, refresh_token: str) -> bool:
    response = requests.post(
        emulator.token_uri,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(emulator.client_id, emulator.client_secret),
        timeout=5,
    )
    return response.status_code == 200


def access_works(emulator: RunningGoogleEmulator, access_token: str) -> bool:
    response = requests.get(
        f"{emulator.url}/oauth2/v3/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=5
    )
    return response.status_code == 200


def stop_sync(client: Client, account: CalendarAccount, capture: Any) -> str:
    with capture(execute=True):
        response = client.post(reverse("calendarsync:stop_sync", args=[account.pk]), follow=True)
    assert response.status_code == 200
    return str(response.content.decode())


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/revoke"


def test_10_stop_sync_revokes_the_google_grant_and_the_old_tokens_stop_working(
    owner: User,
    owner_client: Client,
    google_emulator: RunningGoogleEmulator,
    django_capture_on_commit_callbacks: Any,
) -> None:
    account, tokens = connect_google(owner, google_emulator)
    assert refresh_works(google_emulator, tokens["refresh_token"])

    html = stop_sync(owner_client, account, django_capture_on_commit_callbacks)

    assert "Sync stopped" in html
    revocations = google_emulator.emulator.revocations(google_emulator.user)
    assert [(r.kind, r.token, r.client_id) for r in revocations] == [
        ("refresh_token", tokens["refresh_token"], google_emulator.client_id)
    ]
    assert not refresh_works(google_emulator, tokens["refresh_token"])
    assert not access_works(google_emulator, tokens["access_token"])
    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.credentials is None
    assert AuditEvent.objects.filter(account=account, action="access_revoked").exists()


def test_10_admin_disconnect_revokes_the_google_grant(
    owner: User, google_emulator: RunningGoogleEmulator, django_capture_on_commit_callbacks: Any
) -> None:
    account, tokens = connect_google(owner, google_emulator)
    admin = Client()
    admin.force_login(User.objects.create_superuser(email="root@calsync.test", password=PASSWORD))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            reverse("admin:calendarsync_calendaraccount_changelist"),
            {"action": "disconnect", "_selected_action": [account.pk]},
            follow=True,
        )

    assert "Disconnected 1 account." in response.content.decode()
    assert [r.token for r in google_emulator.emulator.revocations(google_emulator.user)] == [
        tokens["refresh_token"]
    ]
    assert not refresh_works(google_emulator, tokens["refresh_token"])
    account.refresh_from_db()
    assert (account.stopped_at is not None, account.credentials) == (True, None)


@pytest.mark.parametrize("failure", ["unreachable", "error answer"])
def test_10_a_failing_revoke_is_logged_and_still_disconnects(
    failure: str,
    owner: User,
    owner_client: Client,
    google_emulator: RunningGoogleEmulator,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    account, tokens = connect_google(owner, google_emulator)
    settings.GOOGLE_REVOKE_URI = (
        closed_port_url() if failure == "unreachable" else f"{google_emulator.url}/no-such-endpoint"
    )

    with caplog.at_level(logging.WARNING, logger="calendarsync"):
        html = stop_sync(owner_client, account, django_capture_on_commit_callbacks)

    assert "Sync stopped" in html
    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.credentials is None
    assert any("could not revoke" in record.getMessage() for record in caplog.records)
    assert all(tokens["refresh_token"] not in record.getMessage() for record in caplog.records)
    assert AuditEvent.objects.filter(account=account, action="access_revoke_failed").exists()
    assert google_emulator.emulator.revocations(google_emulator.user) == []


def test_10_microsoft_stop_drops_the_tokens_and_says_where_to_remove_calsyncs_access(
    owner: User, owner_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    account = connect_account(owner, provider=Provider.MICROSOFT, email="owner@contoso.test")

    html = stop_sync(owner_client, account, django_capture_on_commit_callbacks)

    assert "Sync stopped" in html
    assert f'href="{MICROSOFT_PERSONAL_CONSENT}"' in html
    assert f'href="{MICROSOFT_WORK_CONSENT}"' in html
    account.refresh_from_db()
    assert account.credentials is None
    assert account.stopped_at is not None


def test_10_admin_disconnect_of_a_microsoft_account_says_its_user_can_remove_the_access(owner: User) -> None:
    account = connect_account(owner, provider=Provider.MICROSOFT, email="owner@contoso.test")
    admin = Client()
    admin.force_login(User.objects.create_superuser(email="root@calsync.test", password=PASSWORD))

    response = admin.post(
        reverse("admin:calendarsync_calendaraccount_changelist"),
        {"action": "disconnect", "_selected_action": [account.pk]},
        follow=True,
    )

    assert "1 Microsoft 365 account: CalSync deleted its tokens" in response.content.decode()
    account.refresh_from_db()
    assert account.credentials is None


def test_10_exchange_stop_forgets_the_password_without_calling_anyone(
    owner: User, owner_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    account = connect_account(owner, provider=Provider.EXCHANGE, email="owner@exchange.test")

    html = stop_sync(owner_client, account, django_capture_on_commit_callbacks)

    assert "Sync stopped" in html
    assert MICROSOFT_PERSONAL_CONSENT not in html
    account.refresh_from_db()
    assert account.credentials is None
    assert (
        list(account.audit_events.values_list("action", flat=True).order_by("pk"))[-1] == "access_forgotten"
    )


def test_10_a_grant_another_user_still_syncs_with_is_not_revoked(
    owner: User,
    colleague: User,
    owner_client: Client,
    google_emulator: RunningGoogleEmulator,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Google's revocation ends the app's access to the whole Google account: a colleague who
    connected the same (shared) Google account would silently lose their sync."""
    account, _ = connect_google(owner, google_emulator)
    _, colleague_tokens = connect_google(colleague, google_emulator)

    stop_sync(owner_client, account, django_capture_on_commit_callbacks)

    account.refresh_from_db()
    assert account.credentials is None
    assert google_emulator.emulator.revocations(google_emulator.user) == []
    assert refresh_works(google_emulator, colleague_tokens["refresh_token"])
    assert AuditEvent.objects.filter(account=account, action="access_revoke_skipped").exists()
